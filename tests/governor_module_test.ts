import FakeTimers from "@sinonjs/fake-timers";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { type ConfigInput, validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import type { Clock, ModuleContext, TimerId } from "../mod/module.ts";
import type { SignalValues } from "../mod/governor/config.ts";
import { createGovernorModule, type GovernorModule } from "../mod/governor/mod.ts";
import type { SignalSource } from "../mod/governor/signals/mod.ts";
import type { Criticality, SubsystemInfo, SupervisorApi } from "../mod/supervisor/api.ts";
import { planSuspensions } from "../mod/governor/actions.ts";
import { defaultGovernorConfig } from "../mod/governor/config.ts";

/**
 * A fake supervisor: records suspend/resume calls in order, can be told to fail.
 * What the governor must never do is recorded in `violations` (the governor catches
 * every error a suspend throws and turns it into `governor.action_failed`, so an
 * assertion thrown in here would be swallowed); the rig's `close` fails the test on
 * any violation.
 */
class FakeSupervisor implements SupervisorApi {
  calls: string[] = [];
  violations: string[] = [];
  subs: SubsystemInfo[];
  failSuspend = new Set<string>();
  queueFns = new Set<(name: string, depth: number, age: number) => void>();
  constructor(specs: [string, Criticality][]) {
    this.subs = specs.map(([name, criticality]) => ({
      name,
      kind: "worker",
      state: "ready",
      criticality,
      pid: null,
      restarts: 0,
      lastHeartbeatMs: 0,
      lastFailure: null,
    }));
  }
  list(): SubsystemInfo[] {
    return this.subs.map((s) => ({ ...s }));
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  restart(): Promise<void> {
    return Promise.resolve();
  }
  suspend(name: string, reason: string): Promise<void> {
    if (this.failSuspend.has(name)) return Promise.reject(new Error(`cannot stop ${name}`));
    const s = this.subs.find((x) => x.name === name);
    if (!s) this.violations.push(`suspend of unknown ${name}`);
    else if (s.criticality === "essential") this.violations.push(`essential ${name} suspended`);
    if (!reason.includes("governor level")) {
      this.violations.push(`suspend ${name} without the level in its reason: ${reason}`);
    }
    if (!s) return Promise.reject(new Error(`no subsystem ${name}`));
    s.state = "suspended";
    this.calls.push(`suspend ${name}`);
    return Promise.resolve();
  }
  resume(name: string): Promise<void> {
    const s = this.subs.find((x) => x.name === name);
    if (!s) {
      this.violations.push(`resume of unknown ${name}`);
      return Promise.reject(new Error(`no subsystem ${name}`));
    }
    if (s.state !== "suspended") this.violations.push(`resume of ${name} in state ${s.state}`);
    s.state = "ready";
    this.calls.push(`resume ${name}`);
    return Promise.resolve();
  }
  onQueueReport(fn: (name: string, depth: number, age: number) => void): () => void {
    this.queueFns.add(fn);
    return () => this.queueFns.delete(fn);
  }
  essentialHealthy(): boolean {
    return true;
  }
}

/** A signal source whose values the test sets. */
class KnobSource implements SignalSource {
  readonly name = "knob";
  values: SignalValues = {};
  sample(): SignalValues {
    return { ...this.values };
  }
}

interface Rig {
  gov: GovernorModule;
  sup: FakeSupervisor;
  knob: KnobSource;
  clock: ReturnType<typeof FakeTimers.createClock>;
  bus: EventBus;
  store: Store;
  events: KwEvent[];
  /** Advance fake time and let suspend/resume work finish. */
  advance(ms: number): Promise<void>;
  /**
   * Stop; fails the test on any violation the fake supervisor saw, and on any
   * `governor.action_failed` unless `allowFailedActions`.
   */
  close(opts?: { allowFailedActions?: boolean }): Promise<void>;
}

async function rig(
  governor: ConfigInput["governor"] = {},
  subs: [string, Criticality][] = [
    ["forwarder", "essential"],
    ["stats", "optional"],
    ["reports", "optional"],
    ["sms-out", "important"],
    ["sync", "important"],
  ],
  useKnob = true,
): Promise<Rig> {
  const clock = FakeTimers.createClock(1_000_000);
  const c: Clock = {
    now: () => clock.now,
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms) as unknown as TimerId,
    clearTimeout: (id) => clock.clearTimeout(id as never),
    setInterval: (fn, ms) => clock.setInterval(fn, ms) as unknown as TimerId,
    clearInterval: (id) => clock.clearInterval(id as never),
  };
  const store = new Store({ path: ":memory:", now: c.now });
  const bus = new EventBus({ journal: store, now: c.now });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { module: "governor" });
  const config = validateConfig({ governor });
  const ctx: ModuleContext = { config, store, bus, clock: c };
  const sup = new FakeSupervisor(subs);
  const knob = new KnobSource();
  const gov = createGovernorModule(ctx, {
    supervisor: sup,
    ...(useKnob ? { sources: [knob] } : {}),
    meter: () => clock.now,
  });
  await gov.start();
  return {
    gov,
    sup,
    knob,
    clock,
    bus,
    store,
    events,
    async advance(ms: number) {
      for (let t = 0; t < ms; t += 100) {
        clock.tick(Math.min(100, ms - t));
        await gov.settled();
      }
    },
    async close(opts: { allowFailedActions?: boolean } = {}) {
      await gov.stop();
      store.close();
      assertEquals(sup.violations, [], "the governor asked the supervisor for something wrong");
      if (!opts.allowFailedActions) {
        assertEquals(
          events.filter((e) => e.kind === "governor.action_failed").map((e) => e.payload),
          [],
          "no suspend/resume may fail here",
        );
      }
    },
  };
}

Deno.test("governor: suspends optional at elevated and important at overload, resumes in reverse order, never essential", async () => {
  const r = await rig();
  try {
    r.knob.values = { eventLoopLagMs: 40 }; // elevated (30)
    await r.advance(1000);
    assertEquals(r.gov.level, "elevated");
    assertEquals(r.sup.calls, ["suspend stats", "suspend reports"]);
    r.knob.values = { eventLoopLagMs: 100 }; // overload (60)
    await r.advance(500);
    assertEquals(r.gov.level, "overload");
    assertEquals(r.sup.calls.slice(2), ["suspend sms-out", "suspend sync"]);
    r.knob.values = { eventLoopLagMs: 1000 }; // severe: still never the essential one
    await r.advance(1000);
    assertEquals(r.gov.level, "severe");
    assertEquals(r.sup.calls.length, 4);
    assertEquals(r.sup.subs.find((s) => s.name === "forwarder")!.state, "ready");
    // Load ends: down one level per leave hold, resuming in reverse order.
    r.knob.values = { eventLoopLagMs: 1 };
    await r.advance(5100); // the hold starts at the first quiet sample
    assertEquals(r.gov.level, "overload");
    assertEquals(r.sup.calls.length, 4, "nothing resumed while still overloaded");
    await r.advance(5000);
    assertEquals(r.gov.level, "elevated");
    assertEquals(r.sup.calls.slice(4), ["resume sync", "resume sms-out"]);
    await r.advance(5000);
    assertEquals(r.gov.level, "normal");
    assertEquals(r.sup.calls.slice(6), ["resume reports", "resume stats"]);
    // One event per level change, with from/to/reason.
    const changes = r.events.filter((e) => e.kind === "governor.level_changed");
    assertEquals(changes.map((e) => `${e.payload.from}>${e.payload.to}`), [
      "normal>elevated",
      "elevated>overload",
      "overload>severe",
      "severe>overload",
      "overload>elevated",
      "elevated>normal",
    ]);
    assertEquals(changes.map((e) => e.severity), [
      "notice",
      "warning",
      "error",
      "notice",
      "notice",
      "notice",
    ]);
    assertStringIncludes(String(changes[0].payload.reason), "eventLoopLagMs 40 >= 30");
    assertEquals(r.store.events({ kind: "governor.level_changed" }).length, 6, "journaled");
  } finally {
    await r.close();
  }
});

Deno.test("governor: debug events are sampled and the UI refresh slows while elevated", async () => {
  const r = await rig();
  try {
    const pub = (n: number, severity: "debug" | "info") => {
      for (let i = 0; i < n; i++) {
        r.bus.publishUntyped({ module: "t", kind: `t.${severity}`, severity });
      }
    };
    assertEquals(r.gov.uiRefreshMs(), 1000);
    pub(10, "debug");
    r.knob.values = { cpuPressure: 85 };
    await r.advance(1000);
    assertEquals(r.gov.level, "elevated");
    assertEquals(r.gov.uiRefreshMs(), 3000);
    assertEquals(r.gov.uiThrottleMs(), 2000);
    pub(100, "debug");
    pub(20, "info");
    assertEquals(r.store.events({ kind: "t.debug", limit: 1000 }).length, 10 + 10);
    assertEquals(r.store.events({ kind: "t.info", limit: 1000 }).length, 20);
    const fams = r.gov.metrics();
    const sampled = fams.find((f) => f.name === "governor_debug_events_sampled_out_total")!;
    assertEquals(sampled.samples[0].value, 90);
    r.knob.values = { cpuPressure: 1 };
    await r.advance(5100);
    assertEquals(r.gov.level, "normal");
    pub(10, "debug");
    assertEquals(r.store.events({ kind: "t.debug", limit: 1000 }).length, 30);
    assertEquals(r.gov.uiRefreshMs(), 1000);
  } finally {
    await r.close();
  }
});

Deno.test("governor: GET /api/governor shows level, each signal against its thresholds, and what is suspended and why", async () => {
  const r = await rig();
  try {
    r.knob.values = { eventLoopLagMs: 45, rssMb: 100 };
    await r.advance(1000);
    const res = await r.gov.routes().request("/governor");
    assertEquals(res.status, 200);
    const s = await res.json();
    assertEquals(s.level, "elevated");
    assertStringIncludes(s.reason, "eventLoopLagMs");
    const lag = s.signals.find((x: { name: string }) => x.name === "eventLoopLagMs");
    assertEquals([lag.value, lag.unit, lag.level], [45, "ms", "elevated"]);
    assertEquals(lag.thresholds, { elevated: 30, overload: 60, severe: 250 });
    assertEquals(s.signals.find((x: { name: string }) => x.name === "cpuPressure").value, null);
    assertEquals(s.suspended.map((x: { name: string }) => x.name), ["stats", "reports"]);
    assertStringIncludes(s.suspended[0].reason, "governor level elevated");
    assertEquals(s.degradation.uiRefreshMs, 3000);
    assertEquals(s.degradation.debugSampleRate, 0.1);
    assertEquals(s.transitions.length, 1);
    assertEquals(typeof s.admission.concurrencyLimit, "number");
    // Metrics: governor_* families, each with help and type.
    const fams = r.gov.metrics();
    for (const f of fams) {
      assert(f.name.startsWith("governor_"), f.name);
      assert(f.help.length > 5 && (f.type === "gauge" || f.type === "counter"), f.name);
    }
    const byName = new Map(fams.map((f) => [f.name, f]));
    assertEquals(byName.get("governor_level")!.samples, [{ value: 1 }]);
    assertEquals(byName.get("governor_suspended")!.samples.length, 2);
    assert(
      byName.get("governor_signal_threshold")!.samples.some((x) =>
        x.labels?.signal === "eventLoopLagMs" && x.labels.level === "overload" && x.value === 60
      ),
    );
    assertEquals(r.gov.health().detail, "level elevated, 2 subsystem(s) suspended");
  } finally {
    await r.close();
  }
});

Deno.test("governor: a failed suspend is reported and retried later; stop resumes what it suspended", async () => {
  const r = await rig({}, [["a", "optional"], ["b", "optional"]]);
  try {
    r.sup.failSuspend.add("a");
    r.knob.values = { eventLoopLagMs: 40 };
    await r.advance(1000);
    assertEquals(r.sup.calls, ["suspend b"]);
    const failed = r.events.filter((e) => e.kind === "governor.action_failed");
    assertEquals(failed.length, 1);
    assertEquals(failed[0].payload.subsystem, "a");
    r.sup.failSuspend.clear();
    await r.advance(6000);
    assertEquals(r.sup.calls, ["suspend b", "suspend a"]);
    await r.gov.stop();
    assertEquals(r.sup.calls.slice(2), ["resume a", "resume b"]);
  } finally {
    await r.close({ allowFailedActions: true });
  }
});

Deno.test("governor: queue reports through the supervisor raise the level (built-in sources)", async () => {
  const r = await rig(
    {
      signals: {
        lag: { enabled: false },
        psi: { enabled: false },
        cgroup: { enabled: false },
        rss: { enabled: false },
        http: { enabled: false },
      },
    },
    [["sms-out", "important"], ["stats", "optional"]],
    false,
  );
  try {
    for (const fn of r.sup.queueFns) fn("sms-out", 50_000, 40_000);
    await r.advance(1000);
    assertEquals(r.gov.level, "overload");
    assertStringIncludes(r.gov.snapshot().reason, "queue");
    assertEquals(r.sup.calls, ["suspend stats", "suspend sms-out"]);
    const q = r.gov.snapshot().sources.queues as { subsystems: Record<string, unknown> };
    assert(q.subsystems["sms-out"]);
  } finally {
    await r.close();
  }
  assertEquals(r.sup.queueFns.size, 0, "unsubscribed on stop");
});

Deno.test("governor: disabled does nothing and admits everything", async () => {
  const r = await rig({ enabled: false });
  try {
    r.knob.values = { eventLoopLagMs: 1000 };
    await r.advance(2000);
    assertEquals(r.gov.level, "normal");
    assertEquals(r.sup.calls, []);
    assertEquals(r.gov.admissionController.decide("bulk", "/x", r.clock.now), null);
  } finally {
    await r.close();
  }
});

Deno.test("governor: the trace file records samples that replay reproduces", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-gov-" });
  try {
    const traceFile = `${dir}/trace.jsonl`;
    const r = await rig({ traceFile });
    try {
      r.knob.values = { eventLoopLagMs: 100 };
      await r.advance(1000);
      r.knob.values = { eventLoopLagMs: 1 };
      await r.advance(11_000);
    } finally {
      await r.close();
    }
    const { parseTrace, replay } = await import("../mod/governor/replay.ts");
    const live = r.gov.snapshot().transitions.map((t) => `${t.from}>${t.to}@${t.t}`);
    const replayed = replay(parseTrace(await Deno.readTextFile(traceFile)), defaultGovernorConfig())
      .map((t) => `${t.from}>${t.to}@${t.t}`);
    assertEquals(replayed, live);
    assertEquals(live.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("actions: plan never suspends essential, skips stopped/failed, resumes newest first", () => {
  const cfg = defaultGovernorConfig().actions;
  const info = (name: string, criticality: Criticality, state = "ready") =>
    ({ name, criticality, state, kind: "process" }) as SubsystemInfo;
  const list = [
    info("e", "essential"),
    info("i1", "important"),
    info("o1", "optional"),
    info("o2", "optional", "failed"),
    info("o3", "optional", "stopped"),
  ];
  const p = planSuspensions("severe", cfg, list, new Map());
  assertEquals(p.suspend.map((s) => s.name), ["o1", "i1"]);
  const ours = new Map([
    ["o1", { name: "o1", criticality: "optional" as const, since: 0, reason: "", seq: 1 }],
    ["i1", { name: "i1", criticality: "important" as const, since: 0, reason: "", seq: 2 }],
  ]);
  assertEquals(planSuspensions("normal", cfg, list, ours).resume.map((s) => s.name), ["i1", "o1"]);
  assertEquals(planSuspensions("elevated", cfg, list, ours).resume.map((s) => s.name), ["i1"]);
  assertEquals(
    planSuspensions("severe", { ...cfg, suspend: false }, list, new Map()).suspend,
    [],
  );
});

Deno.test("governor: a trace file that cannot be opened fails the start with a clear error", async () => {
  let err: Error | undefined;
  try {
    const r = await rig({ traceFile: "/nonexistent-dir/trace.jsonl" });
    await r.close();
  } catch (e) {
    err = e as Error;
  }
  assert(err, "start must fail");
  assertStringIncludes(err.message, "governor.traceFile: cannot open /nonexistent-dir/trace.jsonl");
});

Deno.test("fake supervisor: what the governor must never do fails the test at close (cannot be swallowed)", async () => {
  const r = await rig({}, [["fw", "essential"], ["opt", "optional"]]);
  // Drive the fake the way a broken governor would: it records, it does not throw into the governor.
  await r.sup.suspend("fw", "governor level elevated: x").catch(() => {});
  await r.sup.suspend("opt", "no level here").catch(() => {});
  let failed: unknown;
  try {
    await r.close();
  } catch (e) {
    failed = e;
  }
  assert(failed instanceof Error, "close must fail on violations");
  assertStringIncludes(failed.message, "essential fw suspended");
  assertStringIncludes(failed.message, "suspend opt without the level in its reason");
});

Deno.test("governor: a suspended subsystem's queue is not pressure (suspension does not feed the signal that caused it)", async () => {
  // The loop seen on an idle box: the worker's backlog raises the level, the governor
  // suspends the worker, the suspended worker's queue keeps growing and ageing, and that
  // pushed the level further up (overload), suspending the important subsystems too.
  const r = await rig(
    {
      signals: {
        lag: { enabled: false },
        psi: { enabled: false },
        cgroup: { enabled: false },
        rss: { enabled: false },
        http: { enabled: false },
      },
    },
    [["worker", "optional"], ["sms-out", "important"]],
    false,
  );
  try {
    const report = (depth: number, age: number) => {
      for (const fn of r.sup.queueFns) fn("worker", depth, age);
    };
    report(2000, 1000); // elevated (queueDepth 1000)
    await r.advance(1000);
    assertEquals(r.gov.level, "elevated");
    assertEquals(r.sup.calls, ["suspend worker"]);
    // Suspended, the worker still reports: the backlog grows and ages past overload
    // (depth 10000 at i = 8, age 30000 at i = 9).
    for (let i = 1; i <= 9; i++) {
      report(2000 + i * 1000, 1000 + i * 3500);
      await r.advance(500);
      assert(r.gov.level !== "overload", `overload after ${i * 500} ms of suspension`);
    }
    assertEquals(r.sup.calls, ["suspend worker"], "sms-out was never suspended");
    const q = r.gov.snapshot().sources.queues as {
      subsystems: Record<string, { suspended?: boolean }>;
    };
    assertEquals(q.subsystems.worker.suspended, true);
    // Its queue does not count: its last value goes stale (staleAfterMs 5 s), the level
    // falls back after the leave hold (5 s) and the worker is resumed; the backlog it
    // reported while suspended does not raise the level again.
    await r.advance(7000);
    assertEquals(r.gov.level, "normal");
    assertEquals(r.sup.calls, ["suspend worker", "resume worker"]);
    await r.advance(2000);
    assertEquals(r.gov.level, "normal");
    // Running again, what it reports counts again.
    report(3000, 500);
    await r.advance(1000);
    assertEquals(r.gov.level, "elevated");
    const changes = r.events.filter((e) => e.kind === "governor.level_changed")
      .map((e) => `${e.payload.from}>${e.payload.to}`);
    assertEquals(changes, ["normal>elevated", "elevated>normal", "normal>elevated"]);
  } finally {
    await r.close();
  }
});
