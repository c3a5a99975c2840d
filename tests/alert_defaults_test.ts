/**
 * What raises an alert by default (issue 14 §3), item by item, against the default rules:
 * each listed happening, as the event its module publishes, goes to every recipient of an
 * appliance with no rule of its own, in words (not JSON); the quiet neighbours of those
 * events (a role change to standby, the governor at overload, a subsystem becoming ready)
 * do not.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import type { EventKind, KwEvent, Severity } from "../mod/events/mod.ts";
import { DEFAULT_ALERT_KINDS, defaultRuleMatches, describe } from "../mod/events/words.ts";
import { render } from "../mod/alert/render.ts";
import { createAlertModule } from "../mod/alert/mod.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { systemClock } from "../mod/module.ts";
import type { ConfigInput } from "../mod/config/mod.ts";

let id = 0;
function ev(
  kind: EventKind,
  payload: Record<string, unknown>,
  severity: Severity = "error",
): KwEvent {
  return {
    id: ++id,
    time: Date.UTC(2026, 11, 2, 7),
    module: kind.split(".")[0],
    kind,
    severity,
    payload,
  };
}

const array = { array: "md0", health: "degraded", level: "raid1", mdadm: "x" };

/** Issue 14 §3, in its order: what it names, and the event(s) that say it. */
const DEFAULTS: [string, KwEvent][] = [
  [
    "HA role change: this node took over",
    ev("ha.role_changed", {
      node: "n2",
      from: "standby",
      to: "active",
      cause: "keepalived",
      reason: "peer gone",
      afterMs: 5,
      priority: 100,
    }),
  ],
  [
    "HA role change: this node went to fault",
    ev("ha.role_changed", {
      node: "n1",
      from: "active",
      to: "fault",
      cause: "track",
      reason: "essential failed",
      afterMs: 5,
      priority: null,
    }),
  ],
  [
    "HA failover pending (manual failover: the active is gone)",
    ev("ha.failover_pending", {
      node: "n2",
      peer: "n1",
      reason: "the peer link lost the active",
    }),
  ],
  ["HA peer lost", ev("ha.peer_lost", { node: "n1", peer: "n2", reason: "no answer to 3 polls" })],
  [
    "HA peer degraded",
    ev("ha.peer_degraded", { node: "n1", peer: "n2", parts: ["storage: md0 degraded"] }),
  ],
  ["HA dual active", ev("ha.dual_active", { node: "n1", peer: "n2", resolvedBy: "priority" })],
  ["HA quorum lost", ev("ha.quorum_lost", { node: "n1", reason: "witness unreachable" })],
  [
    "replication to the standby lost",
    ev("repl.standby_lost", { pairId: "p1", reason: "timeout", acked: 10, pending: 3 }, "warning"),
  ],
  [
    "an ex-primary's tail set aside",
    ev("repl.tail_saved", {
      pairId: "p1",
      file: "/var/lib/keepwire/repl/p1-e3.kwtail",
      frames: 1,
      fromSeq: 41,
      toSeq: 41,
      epoch: 3,
    }, "warning"),
  ],
  [
    "HA peer link certificate about to expire",
    ev("ha.cert_expiring", {
      node: "n1",
      whose: "peer",
      holder: "n2",
      fingerprint: "ab".repeat(32),
      notAfter: "2027-01-01T00:00:00.000Z",
      daysLeft: 29,
    }, "warning"),
  ],
  [
    "the HA peer left the pair",
    ev("ha.peer_unpaired", {
      node: "n1",
      peer: "n2",
      pairId: "lab",
      unpairedAt: "2026-12-02T07:00:00.000Z",
    }, "warning"),
  ],
  [
    "HA self-fence (quorum lost, could not demote: watchdog reset)",
    ev("ha.self_fence", { node: "n1", reason: "still MASTER 600 ms after quorum loss" }),
  ],
  [
    "HA witness engine failed (the node cannot be active)",
    ev("ha.witness_failed", { node: "n1", reason: "corosync exited 1", restartInMs: 2000 }),
  ],
  [
    "RAID degraded",
    ev("storage.array_degraded", { ...array, degradedDisks: 1, mdadm: "DegradedArray" }),
  ],
  ["RAID member failed", ev("storage.member_failed", { ...array, device: "sdb1", mdadm: "Fail" })],
  [
    "RAID failed",
    ev("storage.array_health_changed", {
      ...array,
      health: "failed",
      from: "degraded",
      to: "failed",
    }),
  ],
  [
    "RAID rebuild finished",
    ev("storage.rebuild_finished", {
      ...array,
      health: "ok",
      action: "recovery",
      completed: true,
      mdadm: "RebuildFinished",
    }, "notice"),
  ],
  [
    "SMART failing",
    ev("storage.disk_health_changed", {
      disk: "sda",
      from: "ok",
      to: "failing",
      reasons: ["reallocated sectors 120"],
    }),
  ],
  [
    "subsystem failed",
    ev("supervisor.transition", {
      subsystem: "dpi",
      kind: "worker",
      criticality: "essential",
      from: "restarting",
      to: "failed",
      cause: "crash",
      reason: "crashed 5 times",
      restarts: 5,
    }),
  ],
  [
    "subsystem escalated",
    ev("supervisor.escalation", {
      subsystem: "dpi",
      action: "bypass-hold",
      reason: "failed",
      segments: "all",
    }),
  ],
  [
    "bypass held longer than a set time",
    ev("alert.bypass_held", {
      segment: "lan0",
      holds: ["operator"],
      heldMs: 900_000,
    }, "warning"),
  ],
  [
    "update rolled back",
    ev("update.rolled_back", {
      failed: "B",
      version: "2.0.0",
      running: "A",
      reason: "health gate failed",
      bypassHeld: true,
    }),
  ],
  ["update committed", ev("update.committed", { slot: "B", version: "2.0.0" }, "notice")],
  [
    "governor critical (severe)",
    ev("governor.level_changed", {
      from: "overload",
      to: "severe",
      reason: "cpu pressure",
      signals: {},
    }, "critical"),
  ],
  [
    "hardware watchdog reset found at boot",
    ev("watchdog.last_reset_by_watchdog", { device: "/dev/watchdog0" }, "warning"),
  ],
  ["account locked out", ev("auth.locked", { user: "admin", forMs: 900_000 }, "warning")],
];

/** Neighbours that must stay quiet by default. */
const QUIET: [string, KwEvent][] = [
  ["quorum regained", ev("ha.quorum_regained", { node: "n1", members: [1, 2] }, "info")],
  [
    "a peer link certificate rotated",
    ev("ha.cert_rotated", {
      node: "n1",
      peer: "n2",
      by: "cli",
      fingerprint: "ab".repeat(32),
      previous: "cd".repeat(32),
      notAfter: null,
    }, "notice"),
  ],
  ["witness engine started", ev("ha.witness_started", { node: "n1", pids: [10, 11] }, "info")],
  [
    "role change to standby",
    ev("ha.role_changed", {
      node: "n1",
      from: "init",
      to: "standby",
      cause: "keepalived",
      reason: "start",
      afterMs: 5,
      priority: 100,
    }, "info"),
  ],
  [
    "governor at overload",
    ev(
      "governor.level_changed",
      { from: "elevated", to: "overload", reason: "cpu", signals: {} },
      "warning",
    ),
  ],
  [
    "subsystem ready",
    ev("supervisor.transition", {
      subsystem: "dpi",
      kind: "worker",
      criticality: "essential",
      from: "starting",
      to: "ready",
      cause: "ready",
      reason: "ready",
      restarts: 0,
    }, "info"),
  ],
  [
    "SMART ok again",
    ev(
      "storage.disk_health_changed",
      { disk: "sda", from: "failing", to: "ok", reasons: [] },
      "notice",
    ),
  ],
  [
    "an alert delivered",
    ev("alert.delivered", {
      id: "kwa_1",
      recipient: "ops",
      channel: "mail",
      attempts: 1,
      answer: "250 ok",
      afterMs: 3,
    }, "debug"),
  ],
];

Deno.test("alert defaults: every happening of issue 14 §3 raises an alert by default, in words", () => {
  const missing = DEFAULTS.filter(([, e]) => !defaultRuleMatches(e)).map(([what, e]) =>
    `${what} (${e.kind})`
  );
  assertEquals(missing, [], "not alerted by default");
  for (const [what, e] of DEFAULTS) {
    assert(DEFAULT_ALERT_KINDS.includes(e.kind), `${e.kind} not listed as a default kind`);
    const r = render(e, "gw-1");
    assert(
      !r.text.includes("{") &&
        !r.text.includes("Check the event journal on the appliance for details"),
      `${what}: generic or JSON words: ${r.text}`,
    );
    assert(r.subject.includes("gw-1"), `${what}: the subject does not name the appliance`);
    assert(r.text.includes("2026-12-02"), `${what}: the text does not say when`);
  }
  const loud = QUIET.filter(([, e]) => defaultRuleMatches(e)).map(([what]) => what);
  assertEquals(loud, [], "alerted by default but should not be");
});

Deno.test("alert defaults: with no rule of its own, an appliance sends each of them to every recipient", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-alert-defaults-" });
  const store = new Store({ path: `${dir}/keepwire.db` });
  try {
    const config = validateConfig({
      dataDir: dir,
      alert: {
        channels: {
          hook: {
            type: "webhook",
            url: "http://127.0.0.1:9/h",
            secret: "whsec_" + btoa("d".repeat(32)),
          },
        },
        recipients: [{ name: "ops", channel: "hook" }, { name: "noc", channel: "hook" }],
      },
    } as unknown as ConfigInput);
    const m = createAlertModule({ config, store, bus: new EventBus(), clock: systemClock });
    for (const [what, e] of DEFAULTS) assertEquals(m.recipientsFor(e).sort(), ["noc", "ops"], what);
    for (const [what, e] of QUIET) assertEquals(m.recipientsFor(e), [], what);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("words: a subsystem's ordinary transition is not worded as a failure", () => {
  const t = (from: string, to: string, reason: string, restarts: number) =>
    describe(ev("supervisor.transition", {
      subsystem: "flappy",
      kind: "worker",
      criticality: "important",
      from,
      to,
      cause: "heartbeat",
      reason,
      restarts,
    }, "info"));
  const ready = t("starting", "ready", "ready", 13);
  assertEquals(
    ready.what,
    "Subsystem flappy (important) went from starting to ready: ready (13 restart(s) so far).",
  );
  assertEquals(ready.advice, "Nothing to do.");
  assert(!t("ready", "restarting", "crashed", 2).what.includes("FAILED"));
  assert(t("restarting", "failed", "crashed 5 times", 5).what.includes("FAILED after 5"));
});
