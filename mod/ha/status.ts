/**
 * The HA module's answers as data: GET /api/ha (public), GET /api/ha/status and the
 * commands' answers, as zod schemas. The routes answer through them, so a field the
 * module renames fails type checking, and tests/openapi_test.ts fails on a field that
 * is added to the status without being documented here.
 * @module
 */
import { z } from "zod";
import type { SameType } from "../web/openapi.ts";
import { ROLES } from "./role.ts";
import type { HaPublicStatus, HaStatus } from "./types.ts";

/** GET /api/ha (no login): who is active. */
export const haPublicStatusSchema = z.object({
  node: z.string().describe("this node's id"),
  role: z.enum([...ROLES, "disabled"]).describe("`disabled` when ha.enabled is false"),
  peer: z.object({ id: z.string().nullable(), role: z.string() }).nullable().describe(
    "the peer's id and role as the peer link last reported it (unknown, unreachable)",
  ),
  virtualAddresses: z.array(z.string()),
});

const peerViewSchema = z.object({
  id: z.string().nullable(),
  role: z.string().describe("`unknown` until the first good answer; `unreachable` once lost"),
  reachable: z.boolean(),
  lastSeenAt: z.string().nullable(),
  version: z.string().nullable(),
  degraded: z.array(z.string()).describe("the peer's unhealthy parts (name: detail)"),
  takeoverPending: z.boolean(),
  handingOver: z.boolean(),
  lastError: z.string().nullable(),
  refused: z.number().describe("answers refused (unsigned, malformed, other pair)"),
  refusedInbound: z.number(),
  url: z.string(),
  listening: z.string().nullable(),
});

/** GET /api/ha/status, the answer of failover and maintenance, and /api/status's `ha`. */
export const haStatusSchema = haPublicStatusSchema.extend({
  enabled: z.boolean(),
  since: z.string().nullable().describe("when the role was entered (ISO)"),
  reason: z.string().nullable().describe("why the role is what it is"),
  priority: z.number().describe("the configured priority"),
  engine: z.object({
    running: z.boolean(),
    pid: z.number().nullable(),
    state: z.string().nullable(),
    effectivePriority: z.number().nullable(),
    restarts: z.number(),
    lastError: z.string().nullable(),
    refusedLines: z.number(),
    log: z.array(z.string()),
  }).describe("keepalived's view"),
  dualActive: z.object({
    count: z.number(),
    lastAt: z.string().nullable(),
    lastSeen: z.string().nullable().describe("what showed the last dual active"),
    yielding: z.string().nullable().describe(
      "why this node yields now (FAULT held while the peer is seen active), or null",
    ),
  }).describe("dual actives this node saw and resolved"),
  track: z.object({
    fault: z.boolean(),
    faultReasons: z.array(z.string()),
    penalty: z.number().describe("sum of the active penalties (≤ 0)"),
    penalties: z.array(z.object({ name: z.string(), weight: z.number(), detail: z.string() })),
    maintenance: z.boolean(),
    handoverUntil: z.number().nullable(),
    manualHold: z.boolean(),
  }).nullable().describe("what forces FAULT or lowers the priority now"),
  policy: z.object({
    failover: z.string(),
    preempt: z.boolean(),
    advertMs: z.number(),
    holdDownMs: z.number(),
  }),
  peers: z.array(z.object({ address: z.string(), id: z.string().nullable() })),
  peerLink: peerViewSchema.nullable().describe("what the peer link knows (null without it)"),
  manual: z.object({
    held: z.boolean(),
    pending: z.boolean(),
    reason: z.string().nullable(),
    releasedUntil: z.string().nullable(),
  }).nullable().describe("`failover: manual` state (null in auto)"),
  history: z.array(z.object({
    from: z.string(),
    to: z.string(),
    cause: z.string(),
    reason: z.string(),
    at: z.string(),
    afterMs: z.number(),
  })).describe("recent role transitions, newest last"),
  transitions: z.record(z.string(), z.number()).describe("transitions since start by role"),
  lastActiveAt: z.string().nullable(),
});

// the hand-written types of types.ts and these schemas cannot drift apart
const _publicSame: SameType<z.output<typeof haPublicStatusSchema>, HaPublicStatus> = true;
const _statusSame: SameType<z.output<typeof haStatusSchema>, HaStatus> = true;
