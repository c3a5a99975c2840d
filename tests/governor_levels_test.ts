import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { defaultGovernorConfig, governorConfigSchema } from "../mod/governor/config.ts";
import { LevelMachine, levelOf } from "../mod/governor/levels.ts";
import { levelConfigOf, parseTrace, replay } from "../mod/governor/replay.ts";

const TRACES = new URL("./fixtures/traces/", import.meta.url);
const trace = (name: string) => parseTrace(Deno.readTextFileSync(new URL(name, TRACES)));
const G = defaultGovernorConfig();
const CFG = levelConfigOf(G);

Deno.test("levels: levelOf compares against each threshold, scaled for hysteresis", () => {
  const t = { elevated: 30, overload: 60, severe: 250 };
  assertEquals(levelOf(29.9, t), "normal");
  assertEquals(levelOf(30, t), "elevated");
  assertEquals(levelOf(60, t), "overload");
  assertEquals(levelOf(300, t), "severe");
  assertEquals(levelOf(50, t, 0.8), "overload"); // 50 >= 0.8 * 60
  assertEquals(levelOf(1e9, null), "normal");
  assertEquals(levelOf(100, { elevated: null, overload: 50, severe: null }), "overload");
});

Deno.test("levels: a surge is caught within its hold time and left only after the load ends (recorded trace)", () => {
  const samples = trace("surge.jsonl");
  const surgeStart = 10_000, surgeEnd = 20_000;
  const trs = replay(samples, G);
  assertEquals(trs.map((t) => `${t.from}>${t.to}`), [
    "normal>overload",
    "overload>elevated",
    "elevated>normal",
  ]);
  const [up, down1, down2] = trs;
  // Caught within the overload hold (+ one sample interval to see it).
  assert(up.t >= surgeStart + G.enterHoldMs.overload, `entered at ${up.t}`);
  assert(up.t <= surgeStart + G.enterHoldMs.overload + 100, `entered late at ${up.t}`);
  assertStringIncludes(up.reason, "(overload) for 200 ms");
  // Left only after the load ended, one step per leave hold.
  assertEquals(down1.t, surgeEnd + G.leaveHoldMs);
  assertEquals(down2.t, surgeEnd + 2 * G.leaveHoldMs);
  assertStringIncludes(down1.reason, "below 80% of overload thresholds for 5000 ms");
});

Deno.test("levels: a noisy signal straddling a threshold enters once and does not flap (recorded trace)", () => {
  const trs = replay(trace("noisy.jsonl"), G);
  assertEquals(trs.map((t) => `${t.from}>${t.to}`), ["normal>elevated"]);
  assertStringIncludes(trs[0].reason, "eventLoopLagMs");
});

Deno.test("levels: noise with short spikes below every threshold stays normal", () => {
  assertEquals(replay(trace("noisy_quiet.jsonl"), G), []);
});

Deno.test("levels: a slow RSS leak climbs level by level, then steps down after the restart", () => {
  const trs = replay(trace("rss_leak.jsonl"), G);
  assertEquals(trs.map((t) => `${t.from}>${t.to}`), [
    "normal>elevated",
    "elevated>overload",
    "overload>severe",
    "severe>overload",
    "overload>elevated",
    "elevated>normal",
  ]);
  for (const t of trs.slice(0, 3)) assertStringIncludes(t.reason, "rssMb");
  assertEquals(trs[3].t, 70_000 + G.leaveHoldMs);
});

Deno.test("levels: fake time: a short blip shorter than the hold is ignored; a held one is caught", () => {
  const m = new LevelMachine(CFG, 0);
  // 150 ms of heavy lag (overload hold is 200 ms): ignored.
  for (let t = 0; t <= 150; t += 50) assertEquals(m.update(t, { eventLoopLagMs: 100 }), null);
  assertEquals(m.update(200, { eventLoopLagMs: 1 }), null);
  assertEquals(m.level, "normal");
  // Held: entered exactly when the hold is met.
  assertEquals(m.update(1000, { eventLoopLagMs: 100 }), null);
  assertEquals(m.update(1100, { eventLoopLagMs: 100 }), null);
  const tr = m.update(1200, { eventLoopLagMs: 100 });
  assertEquals([tr?.from, tr?.to, tr?.t], ["normal", "overload", 1200]);
});

Deno.test("levels: jumps straight to severe; values between hysteresis and threshold hold the level", () => {
  const m = new LevelMachine(CFG, 0);
  m.update(0, { memoryPressure: 80 });
  assertEquals(m.update(200, { memoryPressure: 80 })?.to, "severe");
  // 45 is below the severe threshold 50 but above 0.8 x 50 = 40: stays severe.
  for (let t = 300; t <= 20_000; t += 100) m.update(t, { memoryPressure: 45 });
  assertEquals(m.level, "severe");
  // 35 < 40: leaves after the hold, one step at a time.
  let tr = null;
  for (let t = 20_100; !tr; t += 100) tr = m.update(t, { memoryPressure: 35 });
  assertEquals([tr.from, tr.to, tr.t], ["severe", "overload", 25_100]);
});

Deno.test("levels: rising again during the leave hold restarts it", () => {
  const m = new LevelMachine(CFG, 0);
  m.update(0, { eventLoopLagMs: 100 });
  m.update(200, { eventLoopLagMs: 100 });
  assertEquals(m.level, "overload");
  for (let t = 300; t < 4000; t += 100) m.update(t, { eventLoopLagMs: 1 });
  m.update(4000, { eventLoopLagMs: 55 }); // above 0.8 x 60: hold restarts
  for (let t = 4100; t < 9100; t += 100) {
    assertEquals(m.update(t, { eventLoopLagMs: 1 }), null, `no change at ${t}`);
  }
  assertEquals(m.update(9100, { eventLoopLagMs: 1 })?.to, "elevated");
});

Deno.test("levels: a signal that stops reporting goes stale and stops counting", () => {
  const m = new LevelMachine(CFG, 0);
  m.update(0, { memoryPressure: 30 });
  m.update(200, {});
  assertEquals(m.level, "overload");
  assertEquals(m.signals(200).find((s) => s.name === "memoryPressure")?.value, 30);
  // No report at all after t=0: stale after 5000 ms, then the leave hold runs.
  let last = null;
  for (let t = 300; t <= 20_000; t += 100) last = m.update(t, {}) ?? last;
  assertEquals(m.level, "normal");
  assertEquals(m.signals(20_000).find((s) => s.name === "memoryPressure")?.value, null);
  assert(last);
});

Deno.test("levels: disabled signals and custom thresholds from the config", () => {
  const g = governorConfigSchema.parse({
    thresholds: { eventLoopLagMs: null, cpuPressure: { elevated: 10, overload: 20 } },
    enterHoldMs: { elevated: 0 },
  });
  const m = new LevelMachine(levelConfigOf(g), 0);
  assertEquals(m.update(0, { eventLoopLagMs: 10_000 }), null);
  assertEquals(m.update(100, { cpuPressure: 12 })?.to, "elevated");
  const s = m.signals(100);
  assertEquals(s.find((x) => x.name === "eventLoopLagMs")?.thresholds, null);
  assertEquals(s.find((x) => x.name === "cpuPressure")?.thresholds, {
    elevated: 10,
    overload: 20,
    severe: null,
  });
});

Deno.test("levels: replay of a trace recorded live (bench server, 10x flood on a busy box) gives the live transitions", () => {
  // Recorded with governor.traceFile while bench/governor.ts flooded the sheddable route at
  // 10x C for 5 s; the live governor reported these transitions (times relative to the
  // first sample): elevated at 503 ms (the shared box's CPU pressure), overload at
  // 4337 ms (the flood: demand 9.6 cores), back to elevated at 14405 ms.
  const trs = replay(trace("recorded_flood_10x.jsonl"), G);
  assertEquals(trs.map((t) => [t.t, t.from, t.to]), [
    [503, "normal", "elevated"],
    [4337, "elevated", "overload"],
    [14405, "overload", "elevated"],
  ]);
  assertStringIncludes(trs[1].reason, "sheddableDemand");
  // The flood ended (last sample asking for overload) before the leave hold started.
  const samples = trace("recorded_flood_10x.jsonl");
  const lastHigh = samples.filter((s) => (s.signals.sheddableDemand ?? 0) >= 1.5 * 0.8).at(-1)!;
  assert(trs[2].t - lastHigh.t >= G.leaveHoldMs, "left only a leave hold after the load ended");
});
