import FakeTimers from "@sinonjs/fake-timers";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  CgroupSource,
  HttpSource,
  LagProbe,
  parseCpuStat,
  parseMemoryMax,
  parsePsi,
  PsiSource,
  QueueSource,
  RssSource,
} from "../mod/governor/signals/mod.ts";

const psi = (someAvg10: number, someTotal: number, full = true) =>
  `some avg10=${someAvg10.toFixed(2)} avg60=1.00 avg300=0.50 total=${someTotal}\n` +
  (full ? `full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n` : "");

Deno.test("signals/psi: parses some/full lines of a pressure file", () => {
  const r = parsePsi(psi(2.21, 6671512));
  assertEquals(r?.some, { avg10: 2.21, avg60: 1, avg300: 0.5, total: 6671512 });
  assertEquals(r?.full?.total, 0);
  assertEquals(parsePsi("garbage\n"), null);
  assertEquals(parsePsi("some avg10=x avg60=1 avg300=1 total=1"), null);
});

Deno.test("signals/psi: share of stalled time from total deltas, on fake /proc/pressure files", async () => {
  const root = await Deno.makeTempDir({ prefix: "kw-psi-" });
  try {
    const write = (cpu: number, mem: number, io: number, avg = 3) => {
      Deno.writeTextFileSync(`${root}/cpu`, psi(avg, cpu, false));
      Deno.writeTextFileSync(`${root}/memory`, psi(avg, mem));
      Deno.writeTextFileSync(`${root}/io`, psi(avg, io));
    };
    const src = new PsiSource({ root });
    write(1_000_000, 0, 500_000, 7.5);
    // First sample: no delta yet, avg10 stands in.
    assertEquals(src.sample(0), { cpuPressure: 7.5, memoryPressure: 7.5, ioPressure: 7.5 });
    // 250 ms later: cpu stalled 250 ms (100%), memory 25 ms (10%), io 0.
    write(1_250_000, 25_000, 500_000);
    assertEquals(src.sample(250), { cpuPressure: 100, memoryPressure: 10, ioPressure: 0 });
    // A CPU hog ends: back down one sample later.
    write(1_255_000, 25_000, 500_000);
    assertEquals(src.sample(500).cpuPressure, 2);
    // A missing file is no signal, not an error.
    await Deno.remove(`${root}/io`);
    const r = src.sample(750);
    assertEquals(r.ioPressure, undefined);
    assertEquals(r.cpuPressure, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("signals/psi: a total that goes backwards (counter reset) falls back to avg10", () => {
  const files: Record<string, string> = { "/p/cpu": psi(4, 900), "/p/memory": "", "/p/io": "" };
  const src = new PsiSource({ root: "/p", read: (p) => files[p] ?? null });
  src.sample(0);
  files["/p/cpu"] = psi(4.5, 100);
  assertEquals(src.sample(100), { cpuPressure: 4.5 });
});

Deno.test("signals/cgroup: memory.current against memory.max and throttling from cpu.stat deltas", async () => {
  const root = await Deno.makeTempDir({ prefix: "kw-cg-" });
  try {
    const stat = (throttledUsec: number, periods: number, throttled: number) =>
      `usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods ${periods}\n` +
      `nr_throttled ${throttled}\nthrottled_usec ${throttledUsec}\nnr_bursts 0\nburst_usec 0\n`;
    Deno.writeTextFileSync(`${root}/memory.current`, "429496729\n");
    Deno.writeTextFileSync(`${root}/memory.max`, "536870912\n");
    Deno.writeTextFileSync(`${root}/cpu.stat`, stat(0, 0, 0));
    const src = new CgroupSource({ root });
    assertEquals(src.sample(0), { cgroupMemory: 80 });
    // 1 s later: throttled 300 ms of it, in 4 of 10 periods.
    Deno.writeTextFileSync(`${root}/cpu.stat`, stat(300_000, 10, 4));
    assertEquals(src.sample(1000), { cgroupMemory: 80, cpuThrottled: 30 });
    assertEquals(src.detail().throttledPeriodsPct, 40);
    // memory.max "max": no limit, no memory signal (as Envoy's cgroup monitor).
    Deno.writeTextFileSync(`${root}/memory.max`, "max\n");
    assertEquals(src.sample(2000), { cpuThrottled: 0 });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("signals/cgroup: parsers; cgroup v1 or no cgroup gives no signal", () => {
  assertEquals(parseMemoryMax("max\n"), null);
  assertEquals(parseMemoryMax("1024\n"), 1024);
  assertEquals(parseMemoryMax("0"), null);
  assertEquals(parseCpuStat("nr_periods 5\nthrottled_usec 7\nbad line\n"), {
    nr_periods: 5,
    throttled_usec: 7,
  });
  let reads = 0;
  const src = new CgroupSource({
    root: "/nonexistent",
    read: () => {
      reads++;
      return null;
    },
  });
  assertEquals(src.sample(0), {});
  assertEquals(reads, 3);
  // No cgroup v2 files: not looked for again for 10 s (failed reads are not free).
  assertEquals(src.sample(5000), {});
  assertEquals(reads, 3);
  src.sample(10_000);
  assertEquals(reads, 6);
});

Deno.test("signals/lag: EWMA of timer drift on recorded ticks", () => {
  const probe = new LagProbe({ intervalMs: 10, alpha: 0.5, now: () => 0 });
  assertEquals(probe.sample(0), {}, "no tick yet, no value");
  // Recorded (firedAt, expectedAt) pairs: on time, on time, an 80 ms block, on time.
  const ticks: [number, number][] = [[10, 10], [21, 20], [111, 31], [121, 121]];
  const drifts = ticks.map(([f, e]) => probe.observe(f, e));
  assertEquals(drifts, [0, 1, 80, 0]);
  // ewma: 0 -> 0.5 -> 40.25 -> 20.125
  assertEquals(probe.sample(0), { eventLoopLagMs: 20.13 });
  assertEquals(probe.detail().peakMs, 80);
  assertEquals(probe.sample(0), { eventLoopLagMs: 20.13 });
  assertEquals(probe.detail().peakMs, 0, "peak is per sample period");
});

Deno.test("signals/lag: the probe measures how late its timer fires (fake timers, blocked loop)", () => {
  const clock = FakeTimers.createClock(0);
  const probe = new LagProbe({ intervalMs: 10, alpha: 1, now: () => clock.now, timers: clock });
  probe.start();
  clock.tick(50);
  assertEquals(probe.lagMs, 0);
  // Simulate a 40 ms block: time jumps without timers firing, then the late timer runs.
  clock.setSystemTime(clock.now + 40);
  clock.tick(10);
  assert(probe.lagMs >= 29 && probe.lagMs <= 41, `lag ${probe.lagMs}`);
  clock.tick(30);
  assertEquals(probe.lagMs, 0);
  probe.stop();
  assertEquals(clock.countTimers(), 0);
});

Deno.test("signals/lag: stallMs shows a blocked loop at once: the overdue timer, then the drift that ended it", () => {
  // One pending timer at a time, fired by hand when the "loop" gets to it.
  let now = 0;
  let pending: { due: number; fn: () => void } | undefined;
  const timers = {
    setTimeout: (fn: () => void, ms: number) => (pending = { due: now + ms, fn }),
    clearTimeout: () => (pending = undefined),
  };
  const fire = () => {
    const p = pending!;
    pending = undefined;
    p.fn();
  };
  const probe = new LagProbe({ intervalMs: 10, alpha: 0.3, now: () => now, timers });
  assertEquals(probe.stallMs(0), 0, "not started");
  probe.start();
  now = 10;
  fire();
  now = 15;
  assertEquals(probe.stallMs(now), 0, "on time");
  // The loop is blocked: time passes, the timer due at 20 does not fire.
  now = 90;
  assertEquals(probe.stallMs(now), 70, "overdue by 70 ms, long before the EWMA would show it");
  assertEquals(probe.lagMs, 0);
  fire(); // the loop gets to its timers: the late firing re-arms for 100
  now = 95;
  assertEquals(probe.stallMs(now), 70, "until the next one is due, the stall that just ended");
  now = 100;
  fire();
  assertEquals(probe.stallMs(now), 0);
  probe.stop();
  assertEquals(probe.stallMs(1000), 0, "stopped");
});

Deno.test("signals/rss: RSS in MiB from the memory reader", () => {
  const src = new RssSource({
    memory: () => ({ rss: 300 * 1048576, heapUsed: 50 * 1048576, heapTotal: 64 * 1048576 }),
  });
  assertEquals(src.sample(0), { rssMb: 300 });
  assertEquals(src.detail(), { rssMb: 300, heapUsedMb: 50, heapTotalMb: 64 });
  assert(new RssSource().sample(0).rssMb! > 1, "the real reader works");
});

Deno.test("signals/queues: worst depth and oldest age over fresh reports, aged since the report", () => {
  let now = 0;
  const src = new QueueSource({ staleAfterMs: 10_000, now: () => now });
  assertEquals(src.sample(0), {});
  src.report("sms-out", 120, 800);
  src.report("stats", 5000, 100);
  now = 500;
  src.report("idle", 0, 0);
  assertEquals(src.sample(1000), { queueDepth: 5000, queueAgeMs: 1800 });
  // Reports older than staleAfterMs are dropped.
  now = 10_600;
  src.report("sms-out", 3, 50);
  assertEquals(src.sample(10_600), { queueDepth: 3, queueAgeMs: 50 });
  assertEquals(Object.keys(src.detail().subsystems as object), ["sms-out"]);
});

Deno.test("signals/http: in-flight, latency EWMA and sheddable demand in cores", () => {
  const windows = [
    { inflight: 3, completed: 10, latencySumMs: 50, sheddableCostMs: 0 },
    { inflight: 7, completed: 20, latencySumMs: 300, sheddableCostMs: 200 },
    { inflight: 0, completed: 0, latencySumMs: 0, sheddableCostMs: 50 },
  ];
  const src = new HttpSource({ takeWindow: () => windows.shift()! }, { alpha: 0.5 });
  assertEquals(src.sample(0), { inflight: 3, httpLatencyMs: 5 });
  // 200 ms of sheddable CPU asked for in 100 ms: 2 cores.
  assertEquals(src.sample(100), { inflight: 7, httpLatencyMs: 10, sheddableDemand: 2 });
  assertEquals(src.sample(200), { inflight: 0, httpLatencyMs: 10, sheddableDemand: 1.25 });
});
