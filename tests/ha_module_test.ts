/**
 * The HA module with a fake keepalived (the engine is the one part replaced; the
 * real one runs in tests/ha_engine_test.ts and the lab): FIFO lines drive the role,
 * conditions and maintenance and a handover reach the track files, maintenance
 * survives a restart, a dead keepalived is a fault and restarted with backoff,
 * bad FIFO lines are counted and never acted on. All on fake time.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule, type HaDeps, type HaModule, haRoutes } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import { HaEngineError, HaNotActiveError } from "../mod/ha/errors.ts";
import type { TrackValues } from "../mod/ha/track.ts";
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";
import type { Level } from "../mod/governor/config.ts";
import type { Criticality, SubsystemState } from "../mod/supervisor/api.ts";

class FakeEngine implements Engine {
  ev: EngineEvents;
  starts = 0;
  stops = 0;
  writes: TrackValues[] = [];
  failStart: string | null = null;
  pid: number | null = null;
  config = "fake";
  constructor(ev: EngineEvents) {
    this.ev = ev;
  }
  start(): Promise<{ pid: number }> {
    this.starts++;
    if (this.failStart) return Promise.reject(new HaEngineError(this.failStart));
    this.pid = 4000 + this.starts;
    return Promise.resolve({ pid: this.pid });
  }
  stop(): Promise<void> {
    this.stops++;
    this.pid = null;
    return Promise.resolve();
  }
  writeTrack(v: TrackValues): void {
    this.writes.push(v);
  }
  get last(): TrackValues | undefined {
    return this.writes.at(-1);
  }
  /** keepalived writes a FIFO line. */
  line(state: string, prio = 150): void {
    this.ev.onLine(`INSTANCE "keepwire" ${state} ${prio}`);
  }
}

const HA = {
  enabled: true,
  node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
  interface: "kwtest0",
  virtualAddresses: ["10.231.0.50/24"],
  peers: [{ address: "10.231.0.12", id: "n2" }],
  failoverHoldMs: 2000,
};

async function rig(opts: { ha?: Record<string, unknown>; deps?: HaDeps; dbPath?: string } = {}) {
  const prev = setInterfaceCheck(() => true);
  const config = (() => {
    try {
      return validateConfig({ ha: { ...HA, ...(opts.ha ?? {}) }, dataDir: "/nonexistent" });
    } finally {
      setInterfaceCheck(prev);
    }
  })();
  const { fc, clock } = fakeClock();
  const store = new Store({ path: opts.dbPath ?? ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha." });
  let engine!: FakeEngine;
  const mod = createHaModule({ config, store, bus, clock }, {
    ...opts.deps,
    engine: (_ha, _dir, ev) => engine = new FakeEngine(ev),
  });
  await mod.start();
  const kinds = () => events.map((e) => e.kind);
  const roles = () =>
    events.filter((e) => e.kind === "ha.role_changed").map((e) =>
      `${e.payload.from}->${e.payload.to}`
    );
  return { mod, engine, fc, store, bus, events, kinds, roles };
}

Deno.test("ha module: keepalived's FIFO lines drive the role; each change is an ha.role_changed event", async () => {
  const r = await rig();
  assertEquals(r.engine.starts, 1);
  assertEquals(r.engine.last, { fault: 0, priority: 0 }, "no condition holds: FAULT lifted");
  assertEquals(r.mod.status().role, "init");
  r.engine.line("FAULT");
  r.engine.line("BACKUP");
  r.engine.line("MASTER");
  r.engine.line("MASTER_PRIORITY", 120);
  assertEquals(r.roles(), ["stopped->init", "init->fault", "fault->standby", "standby->active"]);
  const s = r.mod.status();
  assertEquals(s.role, "active");
  assertEquals(s.engine.effectivePriority, 120);
  assertEquals(s.transitions.active, 1);
  assertEquals(r.mod.publicStatus(), {
    node: "n1",
    role: "active",
    peer: { id: "n2", role: "unknown" },
    virtualAddresses: ["10.231.0.50/24"],
  });
  const ev = r.events.find((e) => e.kind === "ha.role_changed" && e.payload.to === "active")!;
  assertEquals(ev.payload.reason, "keepalived reported MASTER (priority 150)");
  assert(ev.id > 0, "journalled");
  await r.mod.stop();
  assertEquals(r.engine.stops, 1);
  assertEquals(r.roles().at(-1), "active->stopped");
});

Deno.test("ha module: a FIFO line that is malformed or of another instance is counted and never acted on", async () => {
  const r = await rig();
  r.engine.line("BACKUP");
  r.engine.ev.onLine('INSTANCE "other" MASTER 200');
  r.engine.ev.onLine("MASTER now please");
  assertEquals(r.mod.status().role, "standby");
  assertEquals(r.mod.status().engine.refusedLines, 2);
  assertEquals(r.kinds().filter((k) => k === "ha.engine_line_refused").length, 1);
  await r.mod.stop();
});

Deno.test("ha module: failover only from active; FAULT for failoverHoldMs, then lifted", async () => {
  const r = await rig();
  r.engine.line("BACKUP");
  assertThrows(() => r.mod.failover("admin"), HaNotActiveError, "standby, not active");
  r.engine.line("MASTER");
  const before = r.engine.writes.length;
  r.mod.failover("admin");
  assertEquals(r.engine.writes.slice(before), [{ fault: 1, priority: 0 }]);
  assert(r.kinds().includes("ha.failover_manual"));
  assertEquals(r.mod.status().track!.faultReasons, ["handover"]);
  r.engine.line("FAULT", 150); // keepalived leaves MASTER with a priority-0 advert
  assertEquals(r.mod.status().role, "fault");
  await r.fc.tickAsync(1999);
  assertEquals(r.engine.last, { fault: 1, priority: 0 });
  await r.fc.tickAsync(1);
  assertEquals(r.engine.last, { fault: 0, priority: 0 });
  r.engine.line("BACKUP");
  assertEquals(r.mod.status().role, "standby", "nopreempt: the old active stays standby");
  await r.mod.stop();
});

Deno.test("ha module: conditions from the table force FAULT or add penalties; their modules' events re-evaluate at once", async () => {
  let essential: string | null = null;
  let bypass: string | null = null;
  let governor: string | null = null;
  const r = await rig({
    deps: {
      readers: {
        essential_failed: () => essential,
        bypass_forced: () => bypass,
        governor_top_level: () => governor,
        storage_failed: () => {
          throw new Error("no array status");
        },
      },
    },
  });
  // a reader that throws cannot vouch for its part: its penalty applies
  assertEquals(r.engine.last, { fault: 0, priority: -50 });
  r.engine.line("MASTER");
  essential = "queue-worker failed";
  r.bus.publishUntyped({ module: "supervisor", kind: "supervisor.transition", payload: {} });
  assertEquals(r.engine.last, { fault: 1, priority: -50 }, "no wait for the poll");
  assertEquals(r.mod.status().track!.faultReasons, ["essential_failed: queue-worker failed"]);
  essential = null;
  bypass = "lan: bypass";
  governor = "severe";
  await r.fc.tickAsync(1000); // the poll
  assertEquals(r.engine.last, { fault: 0, priority: -140 });
  const changed = r.events.filter((e) => e.kind === "ha.track_changed").at(-1)!;
  assertEquals(changed.payload.penalty, -140);
  const writes = r.engine.writes.length;
  await r.fc.tickAsync(5000);
  assertEquals(r.engine.writes.length, writes, "unchanged values are not rewritten");
  await r.mod.stop();
});

Deno.test("ha module: maintenance holds FAULT, is persisted and restored at the next start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-ha-mod-" });
  try {
    const a = await rig({ dbPath: `${dir}/kw.db` });
    a.engine.line("MASTER");
    a.mod.setMaintenance(true, "admin");
    assertEquals(a.engine.last, { fault: 1, priority: 0 });
    a.engine.line("FAULT");
    assertEquals(a.mod.status().role, "maintenance");
    assert(a.kinds().includes("ha.maintenance_changed"));
    await a.mod.stop();
    a.store.close();

    const b = await rig({ dbPath: `${dir}/kw.db` });
    assertEquals(b.mod.status().role, "maintenance");
    assertEquals(b.engine.writes[0], { fault: 1, priority: 0 }, "FAULT from the first write");
    b.engine.line("BACKUP"); // must not move it
    assertEquals(b.mod.status().role, "maintenance");
    b.mod.setMaintenance(false, "ops");
    assertEquals(b.engine.last, { fault: 0, priority: 0 });
    assertEquals(b.mod.status().role, "standby");
    await b.mod.stop();
    b.store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ha module: keepalived dying is a fault, restarted with a short doubling backoff; never active while down", async () => {
  const r = await rig();
  r.engine.line("MASTER");
  r.engine.ev.onExit("keepalived killed by SIGKILL");
  assertEquals(r.mod.status().role, "fault");
  assertEquals(r.mod.health().ok, false);
  const delays = () =>
    r.events.filter((e) => e.kind === "ha.engine_failed").map((e) => e.payload.restartInMs);
  assertEquals(delays(), [500]);
  r.engine.failStart = "keepalived: not found";
  for (const wait of [500, 1000, 2000, 4000, 5000]) await r.fc.tickAsync(wait);
  // doubling from 0.5 s, capped at 5 s: a standby is never long without keepalived
  assertEquals(delays(), [500, 1000, 2000, 4000, 5000, 5000]);
  assertEquals(r.engine.starts, 6);
  assertEquals(r.mod.status().engine.lastError, "keepalived is not usable: keepalived: not found");
  r.engine.failStart = null;
  await r.fc.tickAsync(5000);
  assertEquals(r.engine.starts, 7);
  assertEquals(r.mod.status().role, "init");
  assertEquals(r.mod.health().ok, true);
  assertEquals(r.mod.status().engine.restarts, 6);
  assertEquals(r.roles().slice(-2), ["active->fault", "fault->init"]);
  // after 10 s of running, the next failure starts from 0.5 s again
  await r.fc.tickAsync(10_001);
  r.engine.ev.onExit("keepalived killed by SIGKILL");
  assertEquals(delays().at(-1), 500);
  await r.mod.stop();
});

Deno.test("ha module: keepalived missing at start: unhealthy with the reason, role fault, start does not throw", async () => {
  const { clock } = fakeClock();
  const prev = setInterfaceCheck(() => true);
  const config = validateConfig({ ha: HA });
  setInterfaceCheck(prev);
  const store = new Store({ path: ":memory:" });
  const bus = new EventBus({ journal: store });
  const mod: HaModule = createHaModule({ config, store, bus, clock }, {
    engine: (_h, _d, ev) => {
      const e = new FakeEngine(ev);
      e.failStart = "cannot run keepalived: No such file or directory";
      return e;
    },
  });
  await mod.start();
  assertEquals(mod.status().role, "fault");
  assertEquals(mod.health(), {
    ok: false,
    essential: false,
    detail:
      "keepalived not running: keepalived is not usable: cannot run keepalived: No such file or directory",
  });
  await mod.stop();
  store.close();
});

Deno.test("ha routes: public GET, failover and maintenance with errors mapped by status", async () => {
  const r = await rig();
  const { Hono } = await import("hono");
  const { errorResponse } = await import("../mod/web/errors.ts");
  const { KeepwireError } = await import("../mod/errors.ts");
  const app = new Hono();
  app.onError((err, c) => {
    if (err instanceof KeepwireError) return errorResponse(c, err);
    throw err;
  });
  app.route("/api", haRoutes(r.mod));
  const post = (path: string, body: unknown) =>
    app.request(path, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  r.engine.line("BACKUP");
  assertEquals((await (await app.request("/api/ha")).json()).role, "standby");
  const no = await post("/api/ha/failover", {});
  assertEquals(no.status, 409);
  assertEquals((await no.json()).error.code, "ha_not_active");
  const bad = await post("/api/ha/maintenance", { on: "yes" });
  assertEquals(bad.status, 400);
  assert((await bad.json()).error.fields.on);
  const ok = await post("/api/ha/maintenance", { on: true, by: "alice" });
  assertEquals(ok.status, 200);
  assertEquals((await ok.json()).role, "maintenance");
  assertEquals(r.store.getSetting<{ by: string }>("ha.maintenance")!.by, "alice");
  await r.mod.stop();
});

Deno.test("ha readers: what each condition reads from the runtime's modules", async () => {
  const { haReaders } = await import("../mod/ha/track.ts");
  const subs: { name: string; criticality: Criticality; state: SubsystemState }[] = [
    { name: "queue", criticality: "essential", state: "ready" },
    { name: "smsc", criticality: "essential", state: "restarting" },
    { name: "stats", criticality: "optional", state: "failed" },
  ];
  let level: Level = "overload";
  const r = haReaders({
    supervisor: { list: () => subs },
    bypass: { segments: () => [{ name: "lan", mode: "inline" }, { name: "wan", mode: "bypass" }] },
    storage: { health: () => ({ ok: false, detail: "md0 degraded" }) },
    governor: {
      get level() {
        return level;
      },
    },
  });
  assertEquals(r.essential_failed(), "smsc restarting");
  assertEquals(r.bypass_forced(), "wan bypass");
  assertEquals(r.storage_failed(), "md0 degraded");
  assertEquals(r.governor_top_level(), null);
  level = "severe"; // the governor's highest level (LEVELS in mod/governor/config.ts)
  assertEquals(r.governor_top_level(), "severe");
  subs[1].state = "ready";
  assertEquals(r.essential_failed(), null);
  assertEquals(haReaders({}).essential_failed(), null);
});

Deno.test("ha module: a lower-priority advert while MASTER is a dual active, journalled once per episode", async () => {
  const r = await rig();
  r.engine.line("MASTER");
  r.engine.line("MASTER_RX_LOWER_PRI", 150);
  r.engine.line("MASTER_RX_LOWER_PRI", 150);
  await r.fc.tickAsync(1000);
  r.engine.line("MASTER_RX_LOWER_PRI", 150);
  const dual = r.events.filter((e) => e.kind === "ha.dual_active");
  assertEquals(dual.length, 1);
  assertEquals(dual[0].payload.peer, "n2");
  assertEquals(dual[0].severity, "warning");
  assertEquals(r.mod.status().dualActive.count, 1);
  assertEquals(r.mod.status().role, "active", "keepalived keeps the address by priority");
  await r.fc.tickAsync(6000); // a later partition is a new episode
  r.engine.line("MASTER_RX_LOWER_PRI", 150);
  assertEquals(r.events.filter((e) => e.kind === "ha.dual_active").length, 2);
  assertEquals(r.mod.status().engine.refusedLines, 0);
  await r.mod.stop();
});
