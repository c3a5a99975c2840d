/** The alert module's API as its routes and pages use it (no import back into mod.ts). */
import type { AlertConfig, AlertEditPart, ChannelConfig, Recipient } from "./config.ts";
import type { Delivery, DeliveryState } from "./outbox.ts";

/** Result of a test send. */
export interface TestSendResult {
  /** Accepted by the server. */
  ok: boolean;
  /** Channel name. */
  channel: string;
  /** Address used. */
  to: string | null;
  /** The server's answer, or the error. */
  answer: string;
  /** Time taken (ms). */
  ms: number;
}

/** Status of the module (API and /api/status). */
export interface AlertStatus {
  /** Enabled in the config. */
  enabled: boolean;
  /** Deliveries per state. */
  counts: Record<DeliveryState, number>;
  /** Age of the oldest pending delivery (ms), or null. */
  oldestPendingMs: number | null;
  /** Counters since start. */
  sent: number;
  /** Attempts that failed since start. */
  failedAttempts: number;
  /** Deliveries given up since start. */
  failed: number;
  /** Deliveries sent again after a restart (possible duplicates) since start. */
  resent: number;
  /** Channels whose endpoint answered 410 (stopped). */
  stopped: string[];
  /** Per channel: type, address shown, deliveries in the current rate window. */
  channels: { name: string; type: string; target: string; inWindow: number }[];
}

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
