// The rolling upgrade state machine (mod/ha/upgrade.ts) on fake time with a fake pair:
// every transition, a failure at each step (stopped, the step and reason shown, one node
// still active and both serving), resume after this node's own restart.
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import {
  RollingUpgrade,
  storeSchemaMismatch,
  UPGRADE_TRANSITIONS,
  type UpgradeBundleInfo,
  type UpgradeDriver,
  type UpgradeNodeView,
  type UpgradeState,
  type UpgradeStatus,
} from "../mod/ha/upgrade.ts";
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";

type Fail =
  | "bundle"
  | "peer_down"
  | "send"
  | "peer_install"
  | "peer_rollback"
  | "peer_never"
  | "handover"
  | "handover_stuck"
  | "local_install"
  | "local_rollback";

class FakePair implements UpgradeDriver {
  a: UpgradeNodeView = node("a", "active");
  b: UpgradeNodeView = node("b", "standby");
  received = false;
  calls: string[] = [];
  bundleInfo: UpgradeBundleInfo = { version: "1.1.0", compatible: "kw-x86", storeSchema: "core:7" };
  constructor(public clock: FakeClock, public fail: Fail | null = null) {}
  bundle(path: string) {
    this.calls.push("bundle");
    if (this.fail === "bundle") return Promise.reject(new Error(`no such file ${path}`));
    return Promise.resolve(this.bundleInfo);
  }
  local() {
    return Promise.resolve({ ...this.a });
  }
  peer() {
    if (this.fail === "peer_down" || this.b.role === "down") {
      return Promise.reject(new Error("connection refused"));
    }
    return Promise.resolve({ ...this.b });
  }
  send() {
    this.calls.push("send");
    if (this.fail === "send") {
      return Promise.reject(new Error("peer refused the bundle: disk full"));
    }
    this.received = true;
    return Promise.resolve();
  }
  peerInstall() {
    this.calls.push("peerInstall");
    if (this.fail === "peer_install") {
      return Promise.reject(new Error("install failed: signature not trusted"));
    }
    // the peer restarts: down 3 s, back pending, then commits (or rolls back)
    this.b = { ...this.b, activation: "pending" };
    this.clock.setTimeout(() => this.b = { ...this.b, role: "down" }, 200);
    this.clock.setTimeout(() => {
      if (this.fail === "peer_never") return;
      this.b = this.fail === "peer_rollback"
        ? { ...this.b, role: "standby", activation: "committed", detail: "health gate failed" }
        : { ...this.b, role: "standby", version: "1.1.0", activation: "pending" };
    }, 3000);
    this.clock.setTimeout(() => {
      if (this.fail === null || this.fail.startsWith("handover") || this.fail.startsWith("local")) {
        this.b = { ...this.b, activation: "committed" };
      }
    }, 6000);
    return Promise.resolve();
  }
  /** Why the pair cannot hand over yet (null: it can). */
  notReady: string | null = null;
  ready() {
    return Promise.resolve(this.notReady);
  }
  handover() {
    this.calls.push("handover");
    if (this.fail === "handover") {
      return Promise.reject(new Error("this node is fault, not active"));
    }
    if (this.fail !== "handover_stuck") {
      this.clock.setTimeout(() => {
        this.a = { ...this.a, role: "standby" };
        this.b = { ...this.b, role: "active" };
      }, 1500);
    }
    return Promise.resolve();
  }
  localInstall() {
    this.calls.push("localInstall");
    if (this.fail === "local_install") return Promise.reject(new Error("slot busy"));
    this.a = { ...this.a, activation: "pending" };
    this.clock.setTimeout(() => {
      this.a = this.fail === "local_rollback"
        ? { ...this.a, activation: "failed" }
        : { ...this.a, version: "1.1.0", activation: "committed" };
    }, 4000);
    return Promise.resolve();
  }
}

function node(id: string, role: string): UpgradeNodeView {
  return {
    node: id,
    role,
    version: "1.0.0",
    compatible: "kw-x86",
    schema: "core:7",
    healthy: true,
    activation: "committed",
  };
}

class MemStore {
  saved: UpgradeStatus | null = null;
  load = () => this.saved;
  save = (s: UpgradeStatus) => void (this.saved = structuredClone(s));
}

function rig(fail: Fail | null = null, timings = {}) {
  const clock = new FakeClock();
  const bus = new EventBus({ now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => void events.push(e));
  const pair = new FakePair(clock, fail);
  const store = new MemStore();
  const m = new RollingUpgrade({
    node: "a",
    driver: pair,
    clock,
    bus,
    store,
    timings: {
      pollMs: 500,
      peerActivateMs: 30_000,
      handoverMs: 10_000,
      localActivateMs: 30_000,
      ...timings,
    },
  });
  return { clock, bus, events, pair, store, m };
}

async function settle(clock: FakeClock, m: RollingUpgrade): Promise<void> {
  for (let i = 0; i < 400 && m.running; i++) await clock.advance(500);
  assert(!m.running, "rollout still running after 200 s of fake time");
  await m.done;
}

const steps = (s: UpgradeStatus) => s.steps.map((x) => x.state);
const kinds = (ev: KwEvent[]) => ev.map((e) => e.kind).filter((k) => k.startsWith("ha.upgrade_"));

Deno.test("ha upgrade: every step in order, both nodes on the new version, events", async () => {
  const { clock, events, pair, store, m } = rig();
  const s0 = m.start("/tmp/x.kwb", "alice");
  assertEquals(s0.state, "checking");
  assertThrows(() => m.start("/tmp/x.kwb", "bob"), Error, "a rollout is running");
  await settle(clock, m);
  const s = m.status();
  assertEquals(s.state, "done");
  assertEquals(steps(s), [
    "checking",
    "sending",
    "peer_installing",
    "peer_activating",
    "handing_over",
    "local_installing",
    "local_activating",
    "done",
  ]);
  assertEquals(s.from, { local: "1.0.0", peer: "1.0.0" });
  assertEquals(s.target, "1.1.0");
  assertEquals([pair.a.version, pair.b.version], ["1.1.0", "1.1.0"]);
  assertEquals([pair.a.role, pair.b.role], ["standby", "active"]);
  assertEquals(pair.calls, ["bundle", "send", "peerInstall", "handover", "localInstall"]);
  assertEquals(store.saved?.state, "done");
  const k = kinds(events);
  assertEquals(k[0], "ha.upgrade_started");
  assertEquals(k.at(-1), "ha.upgrade_done");
  assertEquals(k.filter((x) => x === "ha.upgrade_step").length, 6);
  // a new rollout may start after done
  assertEquals(m.start("/tmp/y.kwb", "alice").state, "checking");
  await settle(clock, m);
  assertEquals(m.status().state, "stopped"); // b is active now: a refuses to drive
  assert(m.status().reason!.includes("this node is standby, not active"), m.status().reason!);
});

Deno.test("ha upgrade: transitions table is closed and every running step can stop", () => {
  for (const [from, tos] of Object.entries(UPGRADE_TRANSITIONS)) {
    for (const to of tos) assert(to in UPGRADE_TRANSITIONS, `${from} → ${to}`);
    if (!["idle", "done", "stopped"].includes(from)) {
      assert(tos.includes("stopped" as UpgradeState), `${from} cannot stop`);
    }
  }
});

/** Checks that refuse before anything is touched. */
const refusals: [string, (p: FakePair) => void, string][] = [
  ["bundle missing", (p) => p.fail = "bundle", "no such file"],
  ["peer unreachable", (p) => p.fail = "peer_down", "peer not reachable"],
  ["incompatible bundle", (p) => p.bundleInfo.compatible = "kw-arm", "incompatible bundle"],
  ["not newer", (p) => p.bundleInfo.version = "1.0.0", "not newer than 1.0.0"],
  ["older than the peer", (p) => p.b.version = "1.2.0", "not newer than 1.2.0 on node b"],
  ["not a semver", (p) => p.bundleInfo.version = "abc", "not a semantic version"],
  ["schema differs", (p) => p.b.schema = "core:8", "store schema differs"],
  [
    "the bundle changes the schema",
    (p) => p.bundleInfo.storeSchema = "core:8",
    "(core 7 → 8): it declares core:8, node a runs core:7",
  ],
  [
    "the bundle adds a module with tables",
    (p) => {
      p.bundleInfo.storeSchema = "core:7,fax:1";
      p.a.codeSchema = "core:7";
    },
    "(fax 0 → 1)",
  ],
  [
    "the bundle migrates a module not enabled here",
    (p) => {
      p.bundleInfo.storeSchema = "bypass:2,core:7";
      p.a.codeSchema = p.b.codeSchema = "bypass:1,core:7";
    },
    "(bypass 1 → 2)",
  ],
  [
    "the bundle does not declare its schema",
    (p) => delete p.bundleInfo.storeSchema,
    "the bundle does not declare its store schema",
  ],
  ["peer unhealthy", (p) => p.b = { ...p.b, healthy: false, detail: "disk" }, "b is not healthy"],
  ["peer mid-update", (p) => p.b.activation = "pending", "update pending"],
  ["not active", (p) => p.a.role = "standby", "not active"],
  ["peer not standby", (p) => p.b.role = "fault", "not standby"],
];
for (const [name, set, want] of refusals) {
  Deno.test(`ha upgrade: check refuses (${name}) before touching anything`, async () => {
    const { clock, events, pair, m } = rig();
    set(pair);
    m.start("/tmp/x.kwb", "alice");
    await settle(clock, m);
    const s = m.status();
    assertEquals(s.state, "stopped");
    assertEquals(s.stoppedAt, "checking");
    assert(s.reason!.includes(want), `${s.reason} lacks ${want}`);
    assertEquals(pair.calls.filter((c) => c !== "bundle"), []);
    assertEquals(pair.a.role === "active" || pair.a.role === "standby", true);
    const st = events.find((e) => e.kind === "ha.upgrade_stopped");
    assertEquals(st?.payload.step, "checking");
  });
}

/** Failures after the check: where it stops, and the pair still has one active node. */
const failures: [Fail, UpgradeState, string, string][] = [
  ["send", "sending", "disk full", "a"],
  ["peer_install", "peer_installing", "signature not trusted", "a"],
  ["peer_rollback", "peer_activating", "rolled back to 1.0.0", "a"],
  ["peer_never", "peer_activating", "did not come back committed within 30 s", "a"],
  ["handover", "handing_over", "not active", "a"],
  ["handover_stuck", "handing_over", "did not become active within 10 s", "a"],
  ["local_install", "local_installing", "slot busy", "b"],
  ["local_rollback", "local_activating", "this node rolled back", "b"],
];
for (const [fail, at, want, active] of failures) {
  Deno.test(`ha upgrade: failure at ${at} (${fail}) stops there, ${active} stays active`, async () => {
    const { clock, events, pair, m } = rig(fail);
    m.start("/tmp/x.kwb", "alice");
    await settle(clock, m);
    const s = m.status();
    assertEquals(s.state, "stopped");
    assertEquals(s.stoppedAt, at);
    assert(s.reason!.includes(want), `${s.reason} lacks ${want}`);
    const roles = { a: pair.a.role, b: pair.b.role };
    assertEquals(roles[active as "a" | "b"], "active");
    assertEquals(Object.values(roles).filter((r) => r === "active").length, 1);
    const st = events.filter((e) => e.kind === "ha.upgrade_stopped");
    assertEquals(st.length, 1);
    assertEquals(st[0].payload.step, at);
    assertEquals(st[0].severity, "error");
    // a stopped rollout can be started again
    pair.fail = null;
    assertEquals(m.start("/tmp/x.kwb", "alice").state, "checking");
    await settle(clock, m);
  });
}

Deno.test("ha upgrade: this node restarts in local_activating; resume finishes it", async () => {
  const { clock, pair, store, m, bus } = rig();
  // stop the first machine once it is in local_activating (the process "exits")
  m.start("/tmp/x.kwb", "alice");
  for (let i = 0; i < 400 && store.saved?.state !== "local_activating"; i++) {
    await clock.advance(100);
  }
  assertEquals(store.saved?.state, "local_activating");
  // a fresh machine (after the restart) loads the saved state, refuses a new start, resumes
  const m2 = new RollingUpgrade({
    node: "a",
    driver: pair,
    clock,
    bus,
    store,
    timings: { pollMs: 500, localActivateMs: 30_000 },
  });
  assertEquals(m2.status().state, "local_activating");
  assertThrows(() => m2.start("/tmp/x.kwb", "bob"), Error, "a rollout is running");
  m2.resume();
  assert(m2.running);
  await settle(clock, m2);
  assertEquals(m2.status().state, "done");
  assertEquals(pair.a.version, "1.1.0");
  await settle(clock, m);
});

Deno.test("ha upgrade: resume after a rollback at this node's restart stops with the reason", async () => {
  const { clock, pair, store, bus } = rig();
  store.saved = {
    state: "local_activating",
    bundle: "/tmp/x.kwb",
    target: "1.1.0",
    from: { local: "1.0.0", peer: "1.0.0" },
    by: "alice",
    startedAt: clock.now(),
    updatedAt: clock.now(),
    stoppedAt: null,
    reason: null,
    steps: [],
  };
  pair.a = { ...pair.a, role: "standby" }; // back on the old slot, committed: rolled back
  const m = new RollingUpgrade({ node: "a", driver: pair, clock, bus, store, timings: {} });
  m.resume();
  await settle(clock, m);
  assertEquals(m.status().state, "stopped");
  assertEquals(m.status().stoppedAt, "local_activating");
  assert(m.status().reason!.includes("rolled back to 1.0.0"));
});

Deno.test("ha upgrade: the handover waits until the pair is ready (the standby caught up)", async () => {
  const { clock, pair, m } = rig();
  pair.notReady = "the standby is 120 frames (4000 ms) behind";
  m.start("/tmp/x.kwb", "alice");
  // the peer is back committed after 6 s; still not ready at 20 s: no handover yet
  for (let i = 0; i < 40; i++) await clock.advance(500);
  assertEquals(m.status().state, "peer_activating");
  assert(!pair.calls.includes("handover"), pair.calls.join(","));
  assertEquals(pair.a.role, "active");
  pair.notReady = null;
  await settle(clock, m);
  assertEquals(m.status().state, "done");
});

Deno.test("ha upgrade: a pair never ready stops before the handover, with the reason", async () => {
  const { clock, pair, m } = rig();
  pair.notReady = "the standby is 120 frames (4000 ms) behind";
  m.start("/tmp/x.kwb", "alice");
  await settle(clock, m);
  const s = m.status();
  assertEquals([s.state, s.stoppedAt], ["stopped", "peer_activating"]);
  assert(s.reason!.includes("120 frames"), s.reason!);
  assert(!pair.calls.includes("handover"));
  assertEquals([pair.a.role, pair.b.role], ["active", "standby"]);
});

Deno.test("ha upgrade: a status that cannot be saved stops the rollout, never the process", async () => {
  const { clock, pair, store, events, m } = rig();
  // the step after the handover cannot be saved (before the fix this rejected unhandled
  // and ended the process)
  store.save = (st: UpgradeStatus) => {
    if (st.state === "local_installing") throw new Error("not authorized");
    store.saved = structuredClone(st);
  };
  m.start("/tmp/x.kwb", "alice");
  await settle(clock, m);
  const s = m.status();
  assertEquals([s.state, s.stoppedAt], ["stopped", "local_installing"]);
  assert(s.reason!.includes("not authorized"), s.reason!);
  assert(!pair.calls.includes("localInstall"));
  assertEquals(kinds(events).at(-1), "ha.upgrade_stopped");
});

Deno.test("ha upgrade: a new version with another store schema stops before the handover", async () => {
  const { clock, pair, m } = rig();
  const install = pair.peerInstall.bind(pair);
  pair.peerInstall = async () => {
    await install();
    // the new version ran a migration on the peer
    clock.setTimeout(() => pair.b = { ...pair.b, schema: "core:8" }, 3000);
  };
  m.start("/tmp/x.kwb", "alice");
  await settle(clock, m);
  const s = m.status();
  assertEquals([s.state, s.stoppedAt], ["stopped", "peer_activating"]);
  assert(s.reason!.includes("changes the store schema (core:7 here, core:8 on b)"), s.reason!);
  assert(!pair.calls.includes("handover"));
  assertEquals([pair.a.role, pair.b.role], ["active", "standby"]);
});

Deno.test("ha upgrade: a bundle of the same store schema rolls out; SDK groups and disabled modules are not compared", async () => {
  const { clock, pair, m } = rig();
  // a subsystem's table group migrated at run time, a module not enabled (bypass) on either
  pair.a = { ...pair.a, schema: "core:7,sdk_smsgw_queue:2", codeSchema: "bypass:1,core:7" };
  pair.b = { ...pair.b, schema: "core:7,sdk_smsgw_queue:2" }; // an older peer: no codeSchema
  pair.bundleInfo.storeSchema = "bypass:1,core:7";
  m.start("/tmp/x.kwb", "alice");
  await settle(clock, m);
  assertEquals(m.status().state, "done", m.status().reason ?? "");
});

Deno.test("ha upgrade: storeSchemaMismatch names both schemas and the modules that differ", () => {
  const n = (schema: string, codeSchema?: string): UpgradeNodeView => ({
    ...node("n1", "active"),
    schema,
    ...(codeSchema ? { codeSchema } : {}),
  });
  assertEquals(storeSchemaMismatch("alert:1,core:4", [n("alert:1,core:4")]), null);
  const why = storeSchemaMismatch("alert:2,core:5", [n("alert:1,core:4")])!;
  assert(why.includes("(alert 1 → 2, core 4 → 5): it declares alert:2,core:5"), why);
  assert(why.includes("node n1 runs alert:1,core:4"), why);
  // a module the node never migrated and whose code it does not report: not compared
  assertEquals(storeSchemaMismatch("alert:1,core:4", [n("core:4")]), null);
  // ... but compared with what its code declares when it reports it
  assert(storeSchemaMismatch("alert:1,core:4", [n("core:4", "core:4")])!.includes("alert 0 → 1"));
  assert(storeSchemaMismatch(undefined, [n("core:4")])!.includes("does not declare"));
});
