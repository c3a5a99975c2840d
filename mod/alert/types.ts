/** The alert module's API as its routes and pages use it (no import back into mod.ts). */
import type { AlertConfig, AlertEditPart, ChannelConfig, Recipient } from "./config.ts";
import { z } from "zod";
import { type Delivery, DELIVERY_STATES, type DeliveryState } from "./outbox.ts";

/** Result of a test send. */
export const testSendResultSchema = z.lazy(() =>
  z.object({
    ok: z.boolean().describe("accepted by the server"),
    channel: z.string(),
    to: z.string().nullable().describe("address used"),
    answer: z.string().describe("the server's answer, or the error"),
    ms: z.number().describe("time taken"),
  })
);
/** Result of a test send. */
export type TestSendResult = z.infer<typeof testSendResultSchema>;

/** Status of the module (GET /api/alert and /api/status). */
export const alertStatusSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean(),
    counts: z.object(
      Object.fromEntries(DELIVERY_STATES.map((s) => [s, z.number()])) as Record<
        DeliveryState,
        z.ZodNumber
      >,
    ).describe("deliveries per state"),
    oldestPendingMs: z.number().nullable().describe("age of the oldest pending delivery"),
    sent: z.number().describe("sent since start"),
    failedAttempts: z.number().describe("attempts that failed since start"),
    failed: z.number().describe("deliveries given up since start"),
    resent: z.number().describe("sent again after a restart (possible duplicates) since start"),
    stopped: z.array(z.string()).describe("channels whose endpoint answered 410"),
    channels: z.array(z.object({
      name: z.string(),
      type: z.string(),
      target: z.string().describe("address shown"),
      inWindow: z.number().describe("deliveries in the current rate window"),
    })),
  })
);
/** Status of the module (GET /api/alert and /api/status). */
export type AlertStatus = z.infer<typeof alertStatusSchema>;

/** What the routes call on the alert module. */
export interface AlertApi {
  /** The effective configuration. */
  readonly config: AlertConfig;
  /** Status (counts, oldest pending, channels). */
  status(): AlertStatus;
  /** Channels and whether each is stopped (secrets in it: answer it redacted). */
  channelsView(): Record<string, ChannelConfig & { stopped: boolean }>;
  /** Parts of the section that come from run-time edits. */
  readonly edited: readonly AlertEditPart[];
  /** Add or replace a channel; an empty secret keeps the stored one. */
  putChannel(input: unknown): { name: string };
  /** Remove a channel (refused while a recipient uses it). */
  deleteChannel(name: string): { name: string };
  /** Add or replace a recipient. */
  putRecipient(input: unknown): { name: string };
  /** Remove a recipient (refused while a rule names it). */
  deleteRecipient(name: string): { name: string };
  /** Add a routing rule. */
  addRule(input: unknown): { index: number };
  /** Remove a routing rule by its index. */
  deleteRule(index: number): { index: number };
  /** Recipients in force and where they come from. */
  recipients(): { source: "config" | "api"; recipients: Recipient[] };
  /** Replace the recipients (null: back to the config's). */
  setRecipients(input: unknown | null): { source: "config" | "api"; recipients: Recipient[] };
  /** Send a test message through one channel and report the server's answer. */
  testSend(channelName: string, to?: string): Promise<TestSendResult>;
  /** Deliveries of the outbox, newest first. */
  deliveries(q?: { status?: DeliveryState; recipient?: string; limit?: number }): Delivery[];
  /** One delivery (throws when unknown). */
  delivery(id: string): Delivery;
  /** Retry one failed delivery. */
  retry(id: string): Delivery;
  /** Retry every failed delivery; returns how many. */
  retryAllFailed(): number;
}
