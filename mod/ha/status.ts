/**
 * The HA module's answers as data: GET /api/ha (public), GET /api/ha/status and the
 * commands' answers, as zod schemas. The routes answer through them, so a field the
 * module renames fails type checking, and tests/openapi_test.ts fails on a field that
 * is added to the status without being documented here.
 * @module
 */
import { z } from "zod";
import { upgradeStatusSchema } from "./upgrade.ts";
import { sameType } from "../web/openapi.ts";
import { ROLES } from "./role.ts";
import { FAILBACK_STATES } from "./failback.ts";
import type { HaPublicStatus, HaStatus } from "./types.ts";

/** GET /api/ha (no login): who is active. */
export const haPublicStatusSchema = z.lazy(() =>
  z.object({
    node: z.string().describe("this node's id"),
    role: z.enum([...ROLES, "disabled"]).describe("`disabled` when ha.enabled is false"),
    peer: z.object({ id: z.string().nullable(), role: z.string() }).nullable().describe(
      "the peer's id and role as the peer link last reported it (unknown, unreachable)",
    ),
    virtualAddresses: z.array(z.string()),
  })
);

const peerViewSchema = z.lazy(() =>
  z.object({
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
  })
);

/** GET /api/ha/status, the answer of failover and maintenance, and /api/status's `ha`. */
export const haStatusSchema = z.lazy(() =>
  haPublicStatusSchema.unwrap().extend({
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
      witness: z.object({ fault: z.string().nullable(), hold: z.string().nullable() }).nullable()
        .describe("the witness's verdict and hold applied to the track file"),
      released: z.array(z.enum(["a", "b"])).describe(
        "active-active: sets released to the peer now (ha failover --set)",
      ),
    }).nullable().describe("what forces FAULT or lowers the priority now"),
    policy: z.object({
      failover: z.string(),
      preempt: z.boolean(),
      advertMs: z.number(),
      holdDownMs: z.number(),
    }),
    peers: z.array(z.object({ address: z.string(), id: z.string().nullable() })),
    peerLink: peerViewSchema.nullable().describe("what the peer link knows (null without it)"),
    activeActive: z.object({
      virtualRouterId: z.number(),
      virtualAddresses: z.array(z.string()),
      priority: z.number().describe("this node's priority for the second set (the peer's)"),
      failback: z.string(),
      state: z.string().nullable().describe("keepalived's state of the second set's instance"),
    }).nullable().describe(
      "active-active: the second client set (set b; set a is virtualAddresses and the role)",
    ),
    failback: z.array(z.object({
      set: z.enum(["a", "b"]),
      state: z.enum(FAILBACK_STATES),
      reason: z.string().describe("what it waits for, or does"),
      since: z.string(),
      askAt: z.string().nullable().describe("when it asks the holder (delay, or after a refusal)"),
      lastRefusal: z.string().nullable().describe("the holder's last refusal"),
    })).nullable().describe(
      "automatic failback with replication (ha.preempt / activeActive.failback auto with " +
        "ha.replication): per set this node takes back, what it waits for (null otherwise)",
    ),
    catchUp: z.object({
      held: z.boolean().describe("keepalived is held in FAULT (a standby) now"),
      since: z.string().describe("since when held, or when it let go"),
      reason: z.string().describe("why it holds (what it waits for), or why it let go"),
    }).nullable().describe(
      "the catch-up hold (ha.replication with a peer link): from its start this node is held " +
        "out of MASTER until the peer answers and is not active, its channels caught up with " +
        "the active peer, or the peer link lost the peer (null otherwise)",
    ),
    hook: z.object({
      running: z.string().nullable().describe("the role a run is in progress for, or null"),
      last: z.object({
        role: z.string(),
        from: z.string(),
        cause: z.string(),
        reason: z.string(),
        ok: z.boolean(),
        code: z.number().nullable(),
        timedOut: z.boolean(),
        ms: z.number(),
        output: z.string(),
        error: z.string().nullable(),
        at: z.string(),
      }).nullable().describe("the last finished run"),
      runs: z.number(),
      failures: z.number(),
    }).nullable().describe("the notify hook (ha.hook); null without one"),
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
    upgrade: upgradeStatusSchema.nullable().describe(
      "the last rolling upgrade (ha upgrade): step, target, where it stopped and why",
    ),
    witness: z.object({
      qnetd: z.string().describe("qnetd host:port"),
      running: z.boolean().describe("corosync + qdevice run"),
      pids: z.array(z.number()),
      quorate: z.boolean(),
      nodeids: z.object({ self: z.number(), peer: z.number() }),
      members: z.array(z.number()).nullable().describe("node ids of the last votequorum decision"),
      ring: z.string().nullable(),
      peerInMembership: z.boolean().nullable(),
      peerLeftAt: z.string().nullable().describe(
        "when corosync formed a membership without the peer",
      ),
      fault: z.string().nullable().describe("the verdict applied to the track file"),
      hold: z.string().nullable().describe("the hold applied (FAULT shown as standby)"),
      promoteWaitMs: z.number(),
      timing: z.object({
        tokenMs: z.number(),
        timeoutMs: z.number(),
        syncTimeoutMs: z.number(),
        demoteBoundMs: z.number(),
      }),
      fence: z.string().nullable().describe("why petting the watchdog is withheld (self-fencing)"),
      restarts: z.number(),
      lastError: z.string().nullable(),
      log: z.array(z.string()),
    }).nullable().describe("the witness (corosync + qdevice, quorum); null without ha.witness"),
  })
);

// A type error on a line below means types.ts and a schema here differ in a field: make
// the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<HaPublicStatus, z.output<typeof haPublicStatusSchema>>((v) => v, (v) => v);
sameType<HaStatus, z.output<typeof haStatusSchema>>((v) => v, (v) => v);
