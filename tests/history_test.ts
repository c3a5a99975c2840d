// The metric history: bounds (count per series, age, number of series), counters kept as
// increases, sampling on fake time, buckets, the modules' series, and GET /api/history
// refusing a bad query with a 400 that names the field.
import { assert, assertEquals } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";
import { validateConfig } from "../mod/config/mod.ts";
import type { ConfigInput } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import type { ModuleContext } from "../mod/module.ts";
import { Store } from "../mod/store/mod.ts";
import { createHistoryModule, type HistorySample, HistoryStore } from "../mod/history/mod.ts";
import { startTestRuntime } from "./helpers/runtime.ts";

function memStore(now: () => number): Store {
  return new Store({ path: ":memory:", now });
}

const gauge = (series: string, value: number, t?: number): HistorySample => ({
  series,
  value,
  unit: "u",
  ...(t === undefined ? {} : { t }),
});

Deno.test("history: each series keeps at most maxSamplesPerSeries, the newest", () => {
  const store = memStore(() => 0);
  try {
    const h = new HistoryStore(store, {
      maxAgeMs: 86_400_000,
      maxSamplesPerSeries: 5,
      maxSeries: 8,
    });
    for (let i = 0; i < 12; i++) {
      h.record([gauge("a.x", i), gauge("a.y", 100 + i)], 1_000_000 + i * 10_000);
    }
    h.trim(1_000_000 + 12 * 10_000);
    const r = h.query(["a.x", "a.y"], { since: 0, until: 2_000_000, step: 10_000 });
    assertEquals(r.series.map((s) => s.values), [[7, 8, 9, 10, 11], [107, 108, 109, 110, 111]]);
    assertEquals(r.times[0], 1_000_000 + 7 * 10_000);
    assertEquals(h.sampleCount(), 10);
  } finally {
    store.close();
  }
});

Deno.test("history: samples older than maxAgeMs are dropped, and a series left empty goes", () => {
  const store = memStore(() => 0);
  try {
    const h = new HistoryStore(store, {
      maxAgeMs: 60_000,
      maxSamplesPerSeries: 1000,
      maxSeries: 8,
    });
    for (let i = 0; i < 10; i++) h.record([gauge("a.x", i)], i * 10_000);
    h.record([gauge("b.old", 1)], 0);
    h.trim(100_000); // keeps t >= 40 s
    const r = h.query(["a.x"], { since: 0, until: 200_000, step: 10_000 });
    assertEquals(r.times, [40_000, 50_000, 60_000, 70_000, 80_000, 90_000]);
    assertEquals(h.list().map((s) => s.name), ["a.x"]);
    // the bound holds across a restart: a second HistoryStore on the same tables
    const again = new HistoryStore(store, {
      maxAgeMs: 60_000,
      maxSamplesPerSeries: 1000,
      maxSeries: 8,
    });
    assertEquals(again.list().map((s) => [s.name, s.lastT]), [["a.x", 90_000]]);
  } finally {
    store.close();
  }
});

Deno.test("history: a new series beyond maxSeries is dropped and counted; bad names and values too", () => {
  const store = memStore(() => 0);
  try {
    const h = new HistoryStore(store, {
      maxAgeMs: 86_400_000,
      maxSamplesPerSeries: 10,
      maxSeries: 2,
    });
    const n = h.record(
      [
        gauge("a.one", 1),
        gauge("a.two", 2),
        gauge("a.three", 3),
        gauge("bad name!", 4),
        gauge("a.nan", NaN),
      ],
      1000,
    );
    assertEquals(n, 2);
    assertEquals(h.dropped, 3);
    assertEquals(h.list().map((s) => s.name), ["a.one", "a.two"]);
    // an existing series still records
    assertEquals(h.record([gauge("a.one", 5)], 2000), 1);
  } finally {
    store.close();
  }
});

Deno.test("history: a counter is kept as its increase (a drop is a restart from 0); a gauge bucket shows its highest", () => {
  const store = memStore(() => 0);
  try {
    const h = new HistoryStore(store, {
      maxAgeMs: 86_400_000,
      maxSamplesPerSeries: 100,
      maxSeries: 8,
    });
    const totals = [1, 3, 3, 7, 2]; // 2 < 7: the counter started again
    totals.forEach((v, i) =>
      h.record([
        { series: "s.restarts", value: v, unit: "restarts", kind: "counter" },
        gauge("s.temp", 30 + (i % 2) * 5),
      ], i * 10_000)
    );
    const fine = h.query(["s.restarts"], { since: 0, until: 50_000, step: 10_000 });
    assertEquals(fine.series[0].values, [1, 2, 0, 4, 2]);
    const coarse = h.query(["s.restarts", "s.temp"], { since: 0, until: 50_000, step: 30_000 });
    assertEquals(coarse.times, [0, 30_000]);
    assertEquals(coarse.series[0].values, [3, 6]); // sums
    assertEquals(coarse.series[1].values, [35, 35]); // highest
    assertEquals(coarse.series[0].kind, "counter");
  } finally {
    store.close();
  }
});

Deno.test("history: a sample carrying its own time is stored once; metadata follows the latest sample", () => {
  const store = memStore(() => 0);
  try {
    const h = new HistoryStore(store, {
      maxAgeMs: 86_400_000,
      maxSamplesPerSeries: 100,
      maxSeries: 8,
    });
    assertEquals(h.record([gauge("d.temp", 34, 5000)], 10_000), 1);
    assertEquals(h.record([gauge("d.temp", 34, 5000)], 20_000), 0); // same SMART read
    assertEquals(
      h.record([{ ...gauge("d.temp", 36, 25_000), thresholds: { warn: 60 } }], 30_000),
      1,
    );
    const [s] = h.list();
    assertEquals([s.thresholds, s.lastT], [{ warn: 60 }, 25_000]);
  } finally {
    store.close();
  }
});

function ctxOn(clock: FakeClock, history: ConfigInput["history"] = {}): ModuleContext {
  const store = memStore(clock.now);
  const bus = new EventBus({ journal: store, now: clock.now });
  return { config: validateConfig({ history }), store, bus, clock };
}

Deno.test("history: samples every intervalMs on the injected clock, with each module's series and the journal's events by severity", async () => {
  const clock = new FakeClock();
  const ctx = ctxOn(clock, { intervalMs: 10_000 });
  let temp = 30;
  let failing = false;
  const m = createHistoryModule(ctx, {
    sources: () => [
      { name: "fake", history: () => [gauge("fake.temp", temp++)] },
      {
        name: "broken",
        history: () => {
          if (failing) throw new Error("sensor gone");
          return [gauge("broken.v", 1)];
        },
      },
    ],
  });
  try {
    await m.start();
    const t0 = clock.now();
    await clock.advance(9_999);
    assertEquals(m.list(), [], "a sample before the first interval");
    ctx.bus.publishUntyped({ module: "test", kind: "test.ping", severity: "warning", payload: {} });
    ctx.bus.publishUntyped({ module: "test", kind: "test.ping", severity: "warning", payload: {} });
    await clock.advance(1);
    failing = true;
    ctx.bus.publishUntyped({ module: "test", kind: "test.ping", severity: "error", payload: {} });
    await clock.advance(50_000);
    const r = m.query(m.match("fake."), { since: t0, until: clock.now() + 1, step: 10_000 });
    assertEquals(r.times.map((t) => t - t0), [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    assertEquals(r.series[0].values, [30, 31, 32, 33, 34, 35]);
    const ev = m.query(m.match("events."), { since: t0, until: clock.now() + 1, step: 10_000 });
    const by = Object.fromEntries(ev.series.map((s) => [s.label, s.values]));
    assertEquals(by.warning, [2, 0, 0, 0, 0, 0]);
    assertEquals(by.error, [0, 1, 0, 0, 0, 0]);
    assertEquals(by.critical, [0, 0, 0, 0, 0, 0]);
    assertEquals(Object.keys(by).includes("debug"), false);
    // the module that threw is named and skipped; the others went on
    assertEquals((m.status() as { errors: Record<string, string> }).errors, {
      broken: "sensor gone",
    });
    assertEquals(m.query(["broken.v"], { since: t0, until: clock.now() + 1, step: 10_000 }).times, [
      t0 + 10_000,
    ]);
    await m.stop();
    await clock.advance(60_000);
    assertEquals(
      m.query(m.match("fake."), { since: t0, until: clock.now() + 1, step: 10_000 }).times.length,
      6,
      "sampled after stop",
    );
  } finally {
    await m.stop();
    ctx.store.close();
  }
});

Deno.test("history: history.enabled false takes no sample", async () => {
  const clock = new FakeClock();
  const ctx = ctxOn(clock, { enabled: false });
  const m = createHistoryModule(ctx, {
    sources: () => [{ name: "x", history: () => [gauge("x.v", 1)] }],
  });
  try {
    await m.start();
    await clock.advance(120_000);
    assertEquals(m.list(), []);
  } finally {
    await m.stop();
    ctx.store.close();
  }
});

Deno.test({
  name:
    "history: GET /api/history answers a running keepwire's series (supervisor restarts, disk temperature, events) and refuses a bad query naming the field",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t = await startTestRuntime({
      history: { intervalMs: 250 },
      hardware: { raid: { smartPollMs: 1000 } },
      subsystems: [{
        name: "flappy",
        kind: "process",
        command: "/bin/sh",
        args: ["-c", "sleep 0.1; exit 3"],
        readyOn: "spawn",
        backoff: { initialMs: 50, maxMs: 100 },
        intensity: { maxRestarts: 1000, periodSec: 60 },
      }],
    });
    try {
      const deadline = Date.now() + 30_000;
      let body: { times: number[]; series: { name: string; values: (number | null)[] }[] };
      for (;;) {
        const res = await t.api("/api/history?series=supervisor.restarts.&since=10m");
        assertEquals(res.status, 200);
        body = await res.json();
        const sum = (body.series[0]?.values ?? []).reduce<number>((a, v) => a + (v ?? 0), 0);
        if (sum >= 2) break;
        assert(Date.now() < deadline, `no restarts recorded: ${JSON.stringify(body)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assertEquals(body.series.map((s) => s.name), ["supervisor.restarts.flappy"]);
      const temps = await (await t.api("/api/history?series=storage.temperature.*")).json();
      assert(temps.series.length >= 1, `no disk temperature: ${JSON.stringify(temps)}`);
      assertEquals(temps.series[0].unit, "°C");
      assert(temps.series[0].values.includes(34));
      const list = await (await t.api("/api/history/series")).json();
      assert(list.series.some((s: { name: string }) => s.name === "events.info"));

      const bad = async (q: string, field: string) => {
        const res = await t.api(`/api/history?${q}`);
        const b = await res.json();
        assertEquals(res.status, 400, `${q}: ${JSON.stringify(b)}`);
        assertEquals(b.error.code, "bad_request");
        assert(b.error.fields?.[field], `${q}: no field ${field} in ${JSON.stringify(b)}`);
      };
      await bad("since=1h", "series");
      await bad("series=a%20b", "series");
      await bad("series=events.info&step=fast", "step");
      await bad("series=events.info&step=10ms", "step");
      await bad("series=events.info&since=yesterday", "since");
      await bad("series=events.info&since=1h&until=2h", "since");
      await bad("series=events.info&since=30d&step=1s", "step");
      await bad("series=events.info&colour=red", "colour");
      // a name with no samples (yet) is an empty answer, not an error
      const none = await t.api("/api/history?series=governor.pressure");
      assertEquals(none.status, 200);
      assertEquals((await none.json()).series, []);
      // the OpenAPI document names the query fields
      const doc = await (await t.api("/api/openapi.json")).json();
      const params = doc.paths["/api/history"].get.parameters.map((p: { name: string }) => p.name);
      assertEquals(params.sort(), ["series", "since", "step", "until"]);
    } finally {
      await t.close();
    }
  },
});

Deno.test("history: the governor's series are its signals with their level thresholds, the pressure and the level", async () => {
  const { createGovernorModule } = await import("../mod/governor/mod.ts");
  const clock = new FakeClock();
  const store = memStore(clock.now);
  const bus = new EventBus({ journal: store, now: clock.now });
  const config = validateConfig({ governor: { enabled: true } });
  const gov = createGovernorModule({ config, store, bus, clock }, {
    sources: [{ name: "knob", sample: () => ({ eventLoopLagMs: 45 }) }],
    meter: clock.now,
  });
  try {
    assertEquals(gov.history(), [], "series before start");
    await gov.start();
    await clock.advance(config.governor.sampleIntervalMs * 3);
    const by = Object.fromEntries(gov.history().map((s) => [s.series, s]));
    assertEquals(by["governor.signal.eventLoopLagMs"], {
      series: "governor.signal.eventLoopLagMs",
      value: 45,
      unit: "ms",
      label: "eventLoopLagMs",
      thresholds: { elevated: 30, overload: 60, severe: 250 },
    });
    assertEquals(by["governor.pressure"].value, 45 / 60);
    assertEquals(by["governor.pressure"].thresholds, { overload: 1 });
    assert(by["governor.level"].value >= 0);
  } finally {
    await gov.stop();
    store.close();
  }
});

Deno.test("history: the default step is a round width, no finer than the sampling interval, at most 360 buckets", async () => {
  const { defaultStep } = await import("../mod/history/routes.ts");
  assertEquals(defaultStep(3_600_001, 500), 10_000); // 1 h → 10 s
  assertEquals(defaultStep(3_600_001, 10_000), 10_000);
  assertEquals(defaultStep(3_600_001, 20_000), 30_000); // not finer than the interval
  assertEquals(defaultStep(6 * 3_600_000, 10_000), 60_000);
  assertEquals(defaultStep(48 * 3_600_000, 10_000), 600_000);
  assertEquals(defaultStep(400 * 86_400_000, 10_000), 2 * 86_400_000);
});

Deno.test("history: the charts' polling is a background read the governor sheds first (deferrable), the series list too", async () => {
  const { classify } = await import("../mod/governor/admission.ts");
  const rules = validateConfig({}).governor.admission.routes;
  assertEquals(classify(rules, "GET", "/api/history", "standard"), "deferrable");
  assertEquals(classify(rules, "GET", "/api/history/series", "standard"), "deferrable");
  assertEquals(classify(rules, "GET", "/api/storage", "standard"), "standard");
});
