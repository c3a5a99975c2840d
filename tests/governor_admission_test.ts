import { Hono } from "hono";
import FakeTimers from "@sinonjs/fake-timers";
import { assert, assertEquals } from "./helpers/assert.ts";
import { type AdmissionConfig, governorConfigSchema, type Level } from "../mod/governor/config.ts";
import { AdmissionController, classify } from "../mod/governor/admission.ts";
import { AimdLimit, GradientLimit } from "../mod/governor/limits.ts";
import { LagProbe } from "../mod/governor/signals/lag.ts";

/** A test rig: an app behind the admission middleware, a fake CPU meter, a settable level. */
function rig(over: Record<string, unknown> = {}) {
  const cfg: AdmissionConfig = governorConfigSchema.parse({
    admission: {
      burstMs: { normal: 0, elevated: 0, overload: 0, severe: 0 },
      rejectDelayMs: { normal: 0, elevated: 0, overload: 0, severe: 0 },
      budgetFraction: { normal: 0.5, elevated: 0.5, overload: 0.5, severe: 0.5 },
      routes: [
        { path: "/api/health", priority: "bulk" }, // neverShed wins over this
        { path: "/essential", priority: "vital" },
        { path: "/shed*", priority: "bulk" },
        { path: "/plus", priority: "deferrable" },
      ],
      ...over,
    },
  }).admission;
  const s = { now: 1000, level: "normal" as Level, ran: [] as string[] };
  const ctl = new AdmissionController({ config: cfg, level: () => s.level, meter: () => s.now });
  const app = new Hono();
  app.use("*", ctl.middleware());
  // Each handler "burns" CPU by advancing the fake meter by ?cost= ms (default 5).
  const handler = (name: string) => (c: { req: { query(k: string): string | undefined } }) => {
    s.ran.push(name);
    s.now += Number(c.req.query("cost") ?? 5);
    return new Response(name);
  };
  for (const p of ["/api/health", "/essential", "/crit", "/shed", "/shed2", "/plus"]) {
    app.get(p, handler(p));
  }
  const req = (path: string, headers: Record<string, string> = {}, env?: unknown) =>
    app.request(path, { headers }, env);
  return { s, ctl, app, req };
}

Deno.test("admission: sheddable work is admitted under the CPU budget, then rejected before it runs", async () => {
  const { s, ctl, req } = rig(); // budget: 50% of wall time, no saved credit
  assertEquals((await req("/shed")).status, 200); // 5 ms of work, 2.5 ms earned meanwhile
  assertEquals(ctl.stats().budgetTokensMs, -2.5);
  const r = await req("/shed");
  assertEquals(r.status, 503);
  assertEquals(r.headers.get("retry-after"), "1");
  assertEquals(r.headers.get("x-keepwire-reject-reason"), "budget");
  assertEquals((await r.json()).error.code, "overloaded");
  assertEquals(s.ran, ["/shed"], "the rejected request never reached its handler");
  // Standard and vital work is not budgeted (and their 10 ms pay the debt back).
  assertEquals((await req("/crit")).status, 200);
  assertEquals((await req("/essential")).status, 200);
  assertEquals((await req("/shed")).status, 200);
  // Debt again; it is paid back at the fill rate: 2.5 ms of debt takes 5 ms.
  s.now += 4;
  assertEquals((await req("/shed")).status, 503);
  s.now += 1;
  assertEquals((await req("/shed")).status, 200);
});

Deno.test("admission: saved credit lets a short burst through, bounded by burstMs", async () => {
  const { s, req } = rig({ burstMs: { normal: 5 } });
  s.now += 100; // idle: the bucket fills to 5 ms
  const st: number[] = [];
  for (let i = 0; i < 5; i++) st.push((await req("/shed")).status);
  // 5 + 2.5 x k - 5 x k >= 0 before each: three back to back, then debt.
  assertEquals(st, [200, 200, 200, 503, 503]);
});

Deno.test("admission: under a flood, bulk is shed before standard, and vital never", async () => {
  const { s, req } = rig();
  const count = { shed: [0, 0], crit: [0, 0], ess: [0, 0] };
  for (let i = 0; i < 300; i++) {
    // 10 bulk, 1 standard, 1 vital per millisecond of fake time.
    for (let k = 0; k < 10; k++) {
      const r = await req("/shed?cost=2");
      count.shed[r.status === 200 ? 0 : 1]++;
    }
    count.crit[(await req("/crit?cost=0.2")).status === 200 ? 0 : 1]++;
    count.ess[(await req("/essential?cost=0.2")).status === 200 ? 0 : 1]++;
    s.now += 1;
  }
  assertEquals(count.crit[1], 0);
  assertEquals(count.ess[1], 0);
  assert(count.shed[1] > 2000, `sheddable rejected: ${count.shed[1]}`);
  assert(count.shed[0] > 50, `sheddable admitted: ${count.shed[0]}`);
  // Sheddable work stays within its share of 50% (a little under: with no saved credit,
  // what is earned while no sheddable request waits is lost).
  const elapsed = s.now - 1000;
  const share = count.shed[0] * 2 / elapsed;
  assert(share >= 0.4 && share <= 0.5, `sheddable share ${share}`);
});

Deno.test("admission: levels reject below their minimum priority; deferrable outlasts bulk", async () => {
  const { s, req } = rig({ deferrableHeadroom: 0.5 });
  s.level = "severe"; // default minPriority at severe: deferrable
  const r = await req("/shed");
  assertEquals(
    [r.status, r.headers.get("x-keepwire-reject-reason"), r.headers.get("retry-after")],
    [
      503,
      "level",
      "5",
    ],
  );
  assertEquals((await req("/plus?cost=5")).status, 200);
  s.level = "overload";
  s.now += 100;
  // One 5 ms sheddable request: the bulk bucket (50%) is 2.5 ms in debt, the
  // deferrable bucket (50% + half the rest = 75%) only 1.25 ms.
  assertEquals((await req("/shed?cost=5")).status, 200);
  s.now += 2; // bulk: -1.5, deferrable: +0.25
  assertEquals((await req("/shed")).status, 503);
  assertEquals((await req("/plus")).status, 200);
  assertEquals((await req("/crit")).status, 200);
});

Deno.test("admission: /api/health and vital routes are never shed", async () => {
  const { s, req } = rig({
    minPriority: {
      normal: "standard",
      elevated: "standard",
      overload: "standard",
      severe: "standard",
    },
  });
  s.level = "severe";
  assertEquals((await req("/api/health")).status, 200);
  assertEquals((await req("/essential")).status, 200);
  assertEquals((await req("/shed")).status, 503);
  assertEquals((await req("/plus")).status, 503);
  assertEquals((await req("/crit")).status, 200);
});

Deno.test("admission: the priority header is trusted from the control socket or listed peers; anyone may lower", async () => {
  const { s, req } = rig({ trustedAddresses: ["10.0.0.7"] });
  s.level = "severe"; // sheddable rejected outright
  const up = { "x-keepwire-priority": "standard" };
  assertEquals((await req("/shed", up)).status, 503, "untrusted caller cannot raise");
  assertEquals((await req("/shed", up, { trusted: true })).status, 200, "control socket can");
  assertEquals(
    (await req("/shed", up, { remote: { transport: "tcp", hostname: "10.0.0.7", port: 1 } }))
      .status,
    200,
    "a listed peer can",
  );
  const down = { "x-keepwire-priority": "bulk" };
  assertEquals((await req("/crit", down)).status, 503, "anyone can lower their own request");
  assertEquals((await req("/crit", { "x-keepwire-priority": "bogus" })).status, 200);
});

Deno.test("admission: the concurrency limit caps sheddable requests in flight", async () => {
  const cfg = governorConfigSchema.parse({
    admission: {
      concurrency: { algorithm: "fixed", initial: 2, min: 1, max: 2 },
      budgetFraction: { normal: 1 },
      routes: [{ path: "/slow", priority: "bulk" }],
    },
  }).admission;
  const ctl = new AdmissionController({ config: cfg, level: () => "normal", meter: () => 0 });
  const app = new Hono();
  app.use("*", ctl.middleware({ cost: "sync" }));
  const gates: (() => void)[] = [];
  app.get("/slow", async (c) => {
    await new Promise<void>((r) => gates.push(r));
    return c.text("ok");
  });
  app.get("/crit", (c) => c.text("ok"));
  const a = app.request("/slow");
  const b = app.request("/slow");
  const third = await app.request("/slow");
  assertEquals([third.status, third.headers.get("x-keepwire-reject-reason")], [503, "concurrency"]);
  assertEquals((await app.request("/crit")).status, 200);
  assertEquals(ctl.stats().sheddableInflight, 2);
  for (const g of gates) g();
  assertEquals([(await a).status, (await b).status], [200, 200]);
  assertEquals(ctl.stats().sheddableInflight, 0);
  assertEquals(ctl.stats().rejectedBy.concurrency, 1);
});

Deno.test("admission: `sync` cost charges only the synchronous part; `wall` charges time in flight", async () => {
  for (const mode of ["sync", "wall"] as const) {
    const cfg = governorConfigSchema.parse({
      admission: {
        burstMs: { normal: 5 },
        budgetFraction: { normal: 0.1 },
        routes: [{ path: "/io", priority: "bulk" }],
      },
    }).admission;
    const s = { now: 0 };
    const ctl = new AdmissionController({ config: cfg, level: () => "normal", meter: () => s.now });
    const app = new Hono();
    app.use("*", ctl.middleware({ cost: mode }));
    app.get("/io", async (c) => {
      s.now += 1; // 1 ms of CPU
      await Promise.resolve();
      s.now += 50; // 50 ms waiting on I/O
      return c.text("ok");
    });
    assertEquals((await app.request("/io")).status, 200);
    // Started with 5 ms of credit, earned 5.1 ms (capped at 5); charged 1 ms (sync) or 51 ms (wall).
    assertEquals(ctl.stats().budgetTokensMs, mode === "sync" ? 5 : -40.9, mode);
    assertEquals((await app.request("/io")).status, mode === "sync" ? 200 : 503, mode);
  }
});

Deno.test("admission: the HTTP window counts in-flight, latency and sheddable demand (admitted or not)", async () => {
  const { s, ctl, req } = rig();
  await req("/shed?cost=5"); // admitted: learns a 5 ms cost
  assertEquals((await req("/shed")).status, 503); // rejected: still demand, estimated at 5 ms
  await req("/crit?cost=1");
  const w = ctl.takeWindow();
  assertEquals(w.inflight, 0);
  assertEquals(w.completed, 2);
  assertEquals(w.latencySumMs, 6);
  assertEquals(w.sheddableCostMs, 1 + 5); // the first estimate is the 1 ms default
  assertEquals(ctl.takeWindow().completed, 0, "taking resets the window");
  assertEquals(s.ran, ["/shed", "/crit"]);
});

Deno.test("admission: disabled admits everything but still counts", async () => {
  const { s, ctl, req } = rig({ enabled: false });
  s.level = "severe";
  for (let i = 0; i < 5; i++) assertEquals((await req("/shed")).status, 200);
  assertEquals(ctl.stats().admitted.bulk, 5);
});

Deno.test("admission: route rules: first match wins, prefixes end in *, methods filter", () => {
  const rules = [
    { path: "/api/events/stream", priority: "bulk" as const },
    { path: "/api/events*", priority: "deferrable" as const },
    { path: "/api/x", methods: ["POST"], priority: "vital" as const },
  ];
  assertEquals(classify(rules, "GET", "/api/events/stream", "standard"), "bulk");
  assertEquals(classify(rules, "GET", "/api/events", "standard"), "deferrable");
  assertEquals(classify(rules, "GET", "/api/eventsX", "standard"), "deferrable");
  assertEquals(classify(rules, "GET", "/api/x", "standard"), "standard");
  assertEquals(classify(rules, "POST", "/api/x", "standard"), "vital");
});

Deno.test("limits: gradient shrinks the limit when latency rises and grows it back when it falls", () => {
  const c = governorConfigSchema.parse({}).admission.concurrency;
  const g = new GradientLimit({ ...c, initial: 50, min: 4, max: 200 });
  for (let i = 0; i < 200; i++) g.onSample(10, 50); // steady 10 ms at the limit
  const steady = g.limit;
  assert(steady >= 50, `steady ${steady}`);
  for (let i = 0; i < 50; i++) g.onSample(100, g.limit); // latency x10: queueing
  const shrunk = g.limit;
  assert(shrunk < steady / 2, `shrunk ${shrunk} from ${steady}`);
  for (let i = 0; i < 300; i++) g.onSample(10, g.limit);
  assert(g.limit > shrunk * 2, `recovered to ${g.limit}`);
  // Application-limited (few in flight): no change.
  const before = g.limit;
  for (let i = 0; i < 50; i++) g.onSample(500, 1);
  assertEquals(g.limit, before);
});

Deno.test("limits: AIMD adds while under target and cuts above it, within bounds", () => {
  const c = governorConfigSchema.parse({}).admission.concurrency;
  const a = new AimdLimit({ ...c, initial: 10, min: 4, max: 12, latencyTargetMs: 100 });
  for (let i = 0; i < 200; i++) a.onSample(10, a.limit);
  assertEquals(a.limit, 12);
  for (let i = 0; i < 100; i++) a.onSample(500, a.limit);
  assertEquals(a.limit, 4);
});

Deno.test("admission: a flood is throttled at once by the demand the middleware measures, before the governor's sample", async () => {
  const cfg = governorConfigSchema.parse({
    admission: {
      routes: [{ path: "/shed", priority: "bulk" }],
      rejectDelayMs: { overload: 0 },
    },
  });
  const s = { now: 0 };
  const ctl = new AdmissionController({
    config: cfg.admission,
    level: () => "normal", // the governor has not noticed yet
    meter: () => s.now,
    demandThresholds: cfg.thresholds.sheddableDemand,
  });
  const app = new Hono();
  app.use("*", ctl.middleware());
  app.get("/shed", (c) => {
    s.now += 5;
    return c.text("ok");
  });
  // Below capacity (one 5 ms request every 10 ms = 0.5 cores): nothing shed, level normal.
  for (let i = 0; i < 100; i++) {
    s.now = i * 10;
    assertEquals((await app.request("/shed")).status, 200);
  }
  assertEquals(ctl.level(s.now), "normal");
  // 10x flood: a request every 0.5 ms. The middleware sees arrivals only as fast as the
  // loop takes them: the normal budget (90%, 10 ms of credit) runs out first; then the
  // queued arrivals are rejected quickly, the measured demand jumps and admission
  // applies overload (60%, 1 ms of credit) at once, long before the governor's next sample.
  const t0 = 2000;
  let firstReject = -1;
  const admittedAt: number[] = [];
  for (let i = 0; i < 2000; i++) {
    s.now = Math.max(s.now, t0 + i * 0.5);
    const at = s.now;
    const st = (await app.request("/shed")).status;
    if (st === 200) admittedAt.push(at);
    else if (firstReject < 0) firstReject = at - t0;
  }
  assertEquals(ctl.level(s.now), "overload");
  assert(firstReject >= 0 && firstReject <= 120, `first rejection after ${firstReject} ms`);
  // Steady state (second half of the flood): the overload share of 60%.
  const half = t0 + 500;
  const share = admittedAt.filter((t) => t >= half).length * 5 / (s.now - half);
  assert(share >= 0.55 && share <= 0.66, `sheddable share in the flood ${share}`);
  // Without demand thresholds the middleware applies the governor's level only.
  assertEquals(
    new AdmissionController({ config: cfg.admission, level: () => "normal", meter: () => 0 })
      .level(0),
    "normal",
  );
});

Deno.test("admission: at normal level the saved credit tolerates bursts below capacity", async () => {
  const cfg = governorConfigSchema.parse({
    admission: { routes: [{ path: "/shed", priority: "bulk" }] },
  });
  const s = { now: 0 };
  const ctl = new AdmissionController({
    config: cfg.admission,
    level: () => "normal",
    meter: () => s.now,
    demandThresholds: cfg.thresholds.sheddableDemand,
  });
  const app = new Hono();
  app.use("*", ctl.middleware());
  app.get("/shed", (c) => {
    s.now += 5;
    return c.text("ok");
  });
  // 0.8 of a core on average, arriving in bursts of 8 back-to-back requests every 50 ms.
  let rejected = 0;
  for (let burst = 0; burst < 40; burst++) {
    s.now = Math.max(s.now, burst * 50);
    for (let k = 0; k < 8; k++) if ((await app.request("/shed")).status !== 200) rejected++;
  }
  assertEquals(rejected, 0);
});

Deno.test("admission: at overload a 503 is held for rejectDelayMs (pacing clients that retry at once), bounded by maxDelayed", async () => {
  const clock = FakeTimers.createClock(0);
  const cfg = governorConfigSchema.parse({
    admission: {
      routes: [{ path: "/shed", priority: "bulk" }],
      minPriority: { overload: "deferrable" },
      maxDelayed: 2,
    },
  }).admission;
  let level: Level = "overload";
  const ctl = new AdmissionController({
    config: cfg,
    level: () => level,
    meter: () => clock.now,
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
  });
  const app = new Hono();
  app.use("*", ctl.middleware());
  app.get("/shed", (c) => c.text("ran"));
  const done: number[] = [];
  const ps = [1, 2, 3].map((i) =>
    Promise.resolve(app.request("/shed")).then((r) => {
      done.push(i);
      return r;
    })
  );
  await clock.tickAsync(0);
  assertEquals(done, [3], "beyond maxDelayed the 503 leaves at once");
  assertEquals(ctl.stats().delayed, 2);
  await clock.tickAsync(49);
  assertEquals(done, [3]);
  await clock.tickAsync(1);
  assertEquals(done.sort(), [1, 2, 3]);
  for (const r of await Promise.all(ps)) assertEquals(r.status, 503);
  level = "normal"; // no hold at normal
  const r = await app.request("/shed");
  assertEquals(await r.text(), "ran");
});

/**
 * A single event loop in front of the admission middleware, on simulated time: requests
 * queue in arrival order and are taken one after another; the loop reaches its timers
 * (the lag probe) only when nothing is queued, as when Deno hands over the requests that
 * piled up while a handler ran. Every request costs `overheadMs` outside the middleware
 * (parsing, routing, the response; more when other processes share the core), a
 * sheddable one 5 ms more when admitted. A vital probe arrives every 10 ms.
 */
async function queuedLoop(o: { mult: number; overheadMs: number; stallMs?: number | null }) {
  const cfg = governorConfigSchema.parse({
    admission: {
      routes: [{ path: "/shed", priority: "bulk" }, { path: "/essential", priority: "vital" }],
      rejectDelayMs: { overload: 0, severe: 0 },
      ...(o.stallMs !== undefined ? { stallMs: o.stallMs } : {}),
    },
  });
  // Timers that fire only when the loop is idle (tick), never while it works (busy).
  const clock = {
    now: 0,
    timers: [] as { due: number; fn: () => void }[],
    setTimeout(fn: () => void, ms: number): unknown {
      const t = { due: clock.now + ms, fn };
      clock.timers.push(t);
      return t;
    },
    clearTimeout(id: unknown): void {
      clock.timers = clock.timers.filter((t) => t !== id);
    },
    idleUntil(end: number): void {
      for (;;) {
        clock.timers.sort((a, b) => a.due - b.due);
        const t = clock.timers[0];
        if (!t || t.due > end) break;
        clock.timers.shift();
        clock.now = Math.max(clock.now, t.due);
        t.fn();
      }
      clock.now = Math.max(clock.now, end);
    },
  };
  const probe = new LagProbe({ intervalMs: 10, alpha: 0.3, now: () => clock.now, timers: clock });
  const ctl = new AdmissionController({
    config: cfg.admission,
    level: () => "normal", // the governor has not noticed yet
    meter: () => clock.now,
    demandThresholds: cfg.thresholds.sheddableDemand,
    stall: (now) => probe.stallMs(now),
  });
  const app = new Hono();
  app.use("*", ctl.middleware());
  app.get("/shed", (c) => (clock.now += 5, c.text("ok")));
  app.get("/essential", (c) => (clock.now += 0.2, c.text("ok")));
  const arrivals: [number, string][] = [];
  for (let t = 1000; t < 3000; t += 5 / o.mult) arrivals.push([t, "/shed"]);
  for (let t = 1005; t < 3000; t += 10) arrivals.push([t, "/essential"]);
  arrivals.sort((a, b) => a[0] - b[0]);
  probe.start();
  let essentialWaitMax = 0, shed = 0, rejected = 0;
  for (const [at, path] of arrivals) {
    clock.idleUntil(at);
    clock.now += o.overheadMs;
    if (path === "/essential") essentialWaitMax = Math.max(essentialWaitMax, clock.now - at);
    const status = (await app.request(path)).status;
    if (path === "/shed") {
      shed++;
      if (status !== 200) rejected++;
    }
  }
  probe.stop();
  return { essentialWaitMax, rejectedPct: rejected / shed * 100, stats: ctl.stats() };
}

Deno.test("admission: a flood's start queues requests in front of the loop unseen; its stall sheds them at once", async () => {
  // 10x capacity, each request costing 0.2 ms besides its handler. Counted when the loop
  // takes them, the arrivals look like ~1 core while the normal budget runs sheddable work
  // back to back; and even the overload budget (65% of wall time) leaves too little time to
  // reject 2000 requests a second. Without the stall rule the queue (essential requests
  // in it) grows for the whole flood: here to ~760 ms.
  const before = await queuedLoop({ mult: 10, overheadMs: 0.2, stallMs: null });
  assert(before.essentialWaitMax > 500, `without the rule: ${before.essentialWaitMax} ms`);
  // With it (default 60 ms): the queue is shed as soon as the loop has been stalled for
  // 60 ms, and an essential request waits at most about that once, at the start.
  const after = await queuedLoop({ mult: 10, overheadMs: 0.2 });
  assert(after.essentialWaitMax <= 80, `essential waited ${after.essentialWaitMax} ms`);
  assert(after.stats.rejectedBy.stall > 0, "rejected for the stall");
  assertEquals(after.stats.level, "overload");
  // Below capacity the loop never stalls that long: nothing is shed.
  for (const overheadMs of [0.1, 0.2]) {
    const calm = await queuedLoop({ mult: 0.8, overheadMs });
    assertEquals(calm.rejectedPct, 0);
    assertEquals(calm.stats.rejectedBy.stall, 0);
    assertEquals(calm.stats.level, "normal");
  }
});

Deno.test("admission: after a stall overload holds for stallHoldMs, then the measured demand decides", () => {
  const cfg = governorConfigSchema.parse({ admission: { stallMs: 60, stallHoldMs: 250 } });
  let stall = 0;
  const ctl = new AdmissionController({
    config: cfg.admission,
    level: () => "normal",
    meter: () => 0,
    demandThresholds: cfg.thresholds.sheddableDemand,
    stall: () => stall,
  });
  assertEquals(ctl.level(1000), "normal");
  stall = 59;
  assertEquals(ctl.level(1001), "normal");
  stall = 60;
  assertEquals(ctl.level(1002), "overload");
  assertEquals(ctl.decide("bulk", "/x", 1002), "stall");
  assertEquals(ctl.decide("vital", "/x", 1002), null, "vital is never shed");
  assertEquals(ctl.decide("standard", "/x", 1002), null, "standard is not shed by a stall");
  stall = 0; // the loop caught up: admitted by the (overload) budget again, level held
  assertEquals(ctl.level(1251), "overload");
  assertEquals(ctl.level(1252), "normal");
  // Off: null.
  const off = new AdmissionController({
    config: { ...cfg.admission, stallMs: null },
    level: () => "normal",
    meter: () => 0,
    stall: () => 1000,
  });
  assertEquals(off.level(0), "normal");
});
