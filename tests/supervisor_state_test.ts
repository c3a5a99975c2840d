/**
 * The subsystem state machine on fake time: every transition in TRANSITIONS,
 * timeouts, restart policy, intensity and backoff (with jitter bounds).
 */
import { TRANSITIONS } from "../mod/supervisor/state.ts";
import { Backoff, backoffBounds } from "../mod/supervisor/backoff.ts";
import { RestartIntensity } from "../mod/supervisor/intensity.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  harness,
  spec,
} from "./supervisor_fakes.ts";

const seen = new Set<string>();
function record(h: ReturnType<typeof harness>): void {
  for (const t of h.transitions()) seen.add(t.slice(t.indexOf(":") + 1));
}
function lastTransition(h: ReturnType<typeof harness>, to?: string) {
  const e = h.events.filter((e) =>
    e.kind === "supervisor.transition" && (to === undefined || e.payload.to === to)
  ).at(-1)!;
  return e.payload as {
    subsystem: string;
    from: string;
    to: string;
    cause: string;
    reason: string;
    delayMs?: number;
    exitCode?: number;
  };
}

Deno.test("start: stopped -> starting -> ready on the ready signal, event has the reason", async () => {
  const h = harness([spec({ name: "a" })]);
  await h.sup.startAll();
  await h.flush();
  assertEquals(h.sup.get("a").state, "starting");
  assertEquals(lastTransition(h).cause, "boot");
  h.runners.last("a").ev.ready();
  await h.flush();
  assertEquals(h.sup.get("a").state, "ready");
  assertEquals(lastTransition(h).cause, "ready");
  assertEquals(h.transitions(), ["a:stopped->starting", "a:starting->ready"]);
  record(h);
});

Deno.test("readiness timeout: starting -> restarting -> starting after backoff", async () => {
  const h = harness([spec({ name: "a", readinessTimeoutMs: 500 })]);
  await h.sup.startAll();
  await h.fc.tickAsync(499);
  assertEquals(h.sup.get("a").state, "starting");
  await h.fc.tickAsync(1);
  await h.flush();
  assertEquals(h.sup.get("a").state, "restarting");
  const t = lastTransition(h);
  assertEquals(t.cause, "readiness-timeout");
  assertEquals(t.delayMs, 100);
  assertEquals(h.runners.of("a")[0].log, ["start", "kill"]);
  await h.fc.tickAsync(100);
  await h.flush();
  assertEquals(h.sup.get("a").state, "starting");
  assertEquals(lastTransition(h).cause, "backoff-elapsed");
  assert(h.runners.last("a").restart);
  record(h);
});

Deno.test("heartbeat timeout: ready -> unhealthy -> restarting, detected exactly at the timeout", async () => {
  const h = harness([spec({ name: "a", heartbeat: { intervalMs: 100, timeoutMs: 300 } })]);
  h.runners.autoReady.add("a");
  await h.sup.startAll();
  await h.flush();
  const run = h.runners.last("a");
  for (let i = 0; i < 5; i++) {
    await h.fc.tickAsync(100);
    run.ev.heartbeat();
  }
  assertEquals(h.sup.get("a").state, "ready");
  const lastBeat = h.fc.now;
  await h.fc.tickAsync(299);
  assertEquals(h.sup.get("a").state, "ready");
  await h.fc.tickAsync(1);
  const unhealthy = h.events.find((e) =>
    e.kind === "supervisor.transition" && (e.payload as { to: string }).to === "unhealthy"
  )!;
  assertEquals(unhealthy.payload.cause, "heartbeat-timeout");
  assertMatch(String(unhealthy.payload.reason), /no heartbeat for 300 ms \(timeout 300 ms\)/);
  assertEquals(h.fc.now - lastBeat, 300);
  await h.flush();
  assertEquals(h.sup.get("a").state, "restarting");
  assertEquals(run.log, ["start", "kill"]);
  assertEquals(h.transitions().slice(-2), ["a:ready->unhealthy", "a:unhealthy->restarting"]);
  record(h);
});

Deno.test("WATCHDOG=trigger acts like a heartbeat timeout", async () => {
  const h = harness([spec({ name: "a" })]);
  h.runners.autoReady.add("a");
  await h.sup.startAll();
  await h.flush();
  h.runners.last("a").ev.trigger("the subsystem sent WATCHDOG=trigger");
  await h.flush();
  assertEquals(h.transitions().slice(-2), ["a:ready->unhealthy", "a:unhealthy->restarting"]);
  assertEquals(lastTransition(h).cause, "watchdog-trigger");
  record(h);
});

Deno.test("EXTEND_TIMEOUT_USEC extends the readiness deadline", async () => {
  const h = harness([spec({ name: "a", readinessTimeoutMs: 100 })]);
  await h.sup.startAll();
  await h.fc.tickAsync(50);
  h.runners.last("a").ev.extendTimeout(500);
  await h.fc.tickAsync(449);
  assertEquals(h.sup.get("a").state, "starting");
  await h.fc.tickAsync(51);
  await h.flush();
  assertEquals(h.sup.get("a").state, "restarting");
  record(h);
});

Deno.test("exit: ready -> restarting with exit code; restart policy decides", async () => {
  const h = harness([
    spec({ name: "always", restart: "always" }),
    spec({ name: "onfail", restart: "on-failure" }),
    spec({ name: "never", restart: "never" }),
  ]);
  for (const n of ["always", "onfail", "never"]) h.runners.autoReady.add(n);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("always").exit(0);
  h.runners.last("onfail").exit(0);
  h.runners.last("never").exit(3);
  await h.flush();
  assertEquals(h.sup.get("always").state, "restarting");
  assertEquals(h.sup.get("onfail").state, "stopped");
  assertEquals(h.sup.get("never").state, "failed");
  const failed = h.events.find((e) =>
    e.kind === "supervisor.transition" && e.payload.subsystem === "never" &&
    e.payload.to === "failed"
  )!;
  assertEquals(failed.payload.exitCode, 3);
  assertMatch(String(failed.payload.reason), /exit code 3; restart policy is never/);
  assertEquals(h.sup.get("never").info().lastFailure, "exit code 3; restart policy is never");
  // on-failure does restart after a non-zero exit
  await h.sup.start("onfail");
  await h.flush();
  h.runners.last("onfail").exit(1);
  await h.flush();
  assertEquals(h.sup.get("onfail").state, "restarting");
  record(h);
});

Deno.test("exit while starting; never policy fails from starting, unhealthy and suspended", async () => {
  const h = harness([
    spec({ name: "s" }),
    spec({ name: "n1", restart: "never" }),
    spec({ name: "n2", restart: "never", kind: "probe", module: undefined, probe: probe() }),
    spec({ name: "n3", restart: "never" }),
    spec({ name: "n4", restart: "never" }),
  ]);
  for (const n of ["n2", "n3", "n4"]) h.runners.autoReady.add(n);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("s").exit(1); // starting -> restarting
  h.runners.last("n1").exit(1); // starting -> failed
  h.runners.last("n2").ev.unhealthy("probe failed (1/3)"); // ready -> unhealthy
  await h.flush();
  h.runners.last("n2").exit(1); // unhealthy -> failed
  await h.sup.suspend("n3", "load");
  await h.flush();
  h.runners.last("n3").exit(1); // suspended -> failed
  await h.flush();
  h.runners.last("n4").exit(2); // ready -> failed
  await h.flush();
  assertEquals(h.sup.get("s").state, "restarting");
  for (const n of ["n1", "n2", "n3", "n4"]) assertEquals(h.sup.get(n).state, "failed", n);
  record(h);
});

function probe() {
  return { check: { type: "tcp" as const, host: "127.0.0.1", port: 1 } };
}

Deno.test("probe thresholds map to unhealthy -> ready (recovered) and unhealthy -> restarting", async () => {
  const h = harness([spec({ name: "p", kind: "probe", module: undefined, probe: probe() })]);
  h.runners.autoReady.add("p");
  await h.sup.startAll();
  await h.flush();
  const run = h.runners.last("p");
  run.ev.unhealthy("probe failed (1/3): refused");
  assertEquals(h.sup.get("p").state, "unhealthy");
  run.ev.recovered();
  assertEquals(h.sup.get("p").state, "ready");
  run.ev.unhealthy("probe failed (1/3): refused");
  run.ev.exited({
    code: null,
    signal: null,
    clean: false,
    text: "3 consecutive probe failures",
    cause: "probe-failed",
  });
  await h.flush();
  assertEquals(h.sup.get("p").state, "restarting");
  assertEquals(lastTransition(h).cause, "probe-failed");
  record(h);
});

Deno.test("suspend and resume: heartbeats are not checked while suspended; essential refused", async () => {
  const h = harness([
    spec({ name: "a", heartbeat: { intervalMs: 100, timeoutMs: 300 } }),
    spec({ name: "e", criticality: "essential" }),
    spec({ name: "u", kind: "probe", module: undefined, probe: probe() }),
  ]);
  for (const n of ["a", "e", "u"]) h.runners.autoReady.add(n);
  await h.sup.startAll();
  await h.flush();
  await h.sup.suspend("a", "cpu pressure");
  assertEquals(h.sup.get("a").state, "suspended");
  assertEquals(lastTransition(h).cause, "governor");
  assertEquals(h.runners.last("a").log, ["start", "suspend"]);
  await h.fc.tickAsync(5000);
  assertEquals(h.sup.get("a").state, "suspended");
  await h.sup.resume("a", "pressure gone");
  assertEquals(h.sup.get("a").state, "ready");
  assertEquals(h.runners.last("a").log, ["start", "suspend", "resume"]);
  await h.fc.tickAsync(299);
  assertEquals(h.sup.get("a").state, "ready");
  await h.fc.tickAsync(1);
  assert(h.transitions().includes("a:ready->unhealthy"));
  await assertRejects(() => h.sup.suspend("e", "x"), "essential");
  // unhealthy -> suspended
  h.runners.last("u").ev.unhealthy("slow");
  await h.sup.suspend("u", "load");
  assertEquals(h.sup.get("u").state, "suspended");
  record(h);
});

Deno.test("suspend mode stop: suspended -> starting on resume (process)", async () => {
  const h = harness([
    spec({
      name: "p",
      kind: "process",
      module: undefined,
      command: "/bin/true",
      suspendMode: "stop",
    }),
  ]);
  h.runners.autoReady.add("p");
  await h.sup.startAll();
  await h.flush();
  await h.sup.suspend("p", "load");
  assertEquals(h.runners.last("p").log, ["start", "stop"]);
  assertEquals(h.sup.get("p").info().pid, null);
  await h.sup.resume("p", "ok");
  await h.flush();
  assertEquals(h.transitions().slice(-3), [
    "p:ready->suspended",
    "p:suspended->starting",
    "p:starting->ready",
  ]);
  record(h);
});

Deno.test("stop from every state ends in stopped; start from failed; restart from suspended", async () => {
  const names = ["st", "rd", "uh", "rs", "fl", "sp", "sp2"];
  const h = harness(names.map((n) => spec({ name: n, restart: n === "fl" ? "never" : "always" })));
  for (const n of ["rd", "uh", "rs", "fl", "sp", "sp2"]) h.runners.autoReady.add(n);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("uh").ev.trigger("x"); // ready -> unhealthy (then restarting once the kill runs)
  h.runners.last("rs").exit(1);
  h.runners.last("fl").exit(1);
  await h.sup.suspend("sp", "load");
  await h.sup.suspend("sp2", "load");
  await h.flush();
  assertEquals(h.sup.get("rs").state, "restarting");
  assertEquals(h.sup.get("fl").state, "failed");
  await h.sup.restart("sp2"); // suspended -> restarting -> starting
  assertEquals(h.transitions().filter((t) => t.startsWith("sp2:")).slice(-3), [
    "sp2:suspended->restarting",
    "sp2:restarting->starting",
    "sp2:starting->ready",
  ]);
  for (const n of names) await h.sup.stop(n);
  for (const n of names) assertEquals(h.sup.get(n).state, "stopped", n);
  // unhealthy -> stopped directly
  const h2 = harness([spec({ name: "u", kind: "probe", module: undefined, probe: probe() })]);
  h2.runners.autoReady.add("u");
  await h2.sup.startAll();
  await h2.flush();
  h2.runners.last("u").ev.unhealthy("slow");
  await h2.sup.stop("u");
  assertEquals(h2.transitions().at(-1), "u:unhealthy->stopped");
  // failed -> starting by manual start (history reset)
  const h3 = harness([spec({ name: "f", restart: "never" })]);
  h3.runners.autoReady.add("f");
  await h3.sup.startAll();
  await h3.flush();
  h3.runners.last("f").exit(9);
  await h3.flush();
  await h3.sup.start("f");
  await h3.flush();
  assertEquals(h3.transitions().slice(-3), [
    "f:ready->failed",
    "f:failed->starting",
    "f:starting->ready",
  ]);
  record(h);
  record(h2);
  record(h3);
});

Deno.test("spawn error: starting -> restarting with the error as reason", async () => {
  const h = harness([spec({ name: "a" })]);
  h.runners.failStart.set("a", "executable not found: /nope");
  await h.sup.startAll();
  await h.flush();
  assertEquals(h.sup.get("a").state, "restarting");
  assertEquals(lastTransition(h).cause, "spawn-error");
  assertMatch(lastTransition(h).reason, /executable not found/);
  record(h);
});

Deno.test("intensity: more than maxRestarts within the period -> failed (gave up)", async () => {
  const h = harness([spec({ name: "a", intensity: { maxRestarts: 3, periodSec: 10 } })]);
  await h.sup.startAll();
  await h.flush();
  for (let i = 0; i < 3; i++) {
    h.runners.last("a").exit(1);
    await h.flush();
    assertEquals(h.sup.get("a").state, "restarting", `restart ${i + 1}`);
    await h.fc.tickAsync(2000);
    await h.flush();
    assertEquals(h.sup.get("a").state, "starting");
  }
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.sup.get("a").state, "failed");
  const t = lastTransition(h);
  assertEquals(t.from, "starting");
  assertEquals(t.cause, "intensity");
  assertMatch(t.reason, /more than 3 restarts within 10 s; last: exit code 1/);
  assertEquals(h.sup.get("a").restarts, 3);
  record(h);
});

Deno.test("intensity: restarts spread wider than the period never give up", async () => {
  const h = harness([spec({ name: "a", intensity: { maxRestarts: 2, periodSec: 5 } })]);
  h.runners.autoReady.add("a");
  await h.sup.startAll();
  await h.flush();
  for (let i = 0; i < 10; i++) {
    await h.fc.tickAsync(3000);
    h.runners.last("a").exit(1);
    await h.flush();
    await h.fc.tickAsync(1000);
    await h.flush();
    assertEquals(h.sup.get("a").state, "ready", `round ${i}`);
  }
  assertEquals(h.sup.get("a").restarts, 10);
  record(h);
});

Deno.test("backoff grows geometrically to max; first restart after a long healthy run is immediate", async () => {
  const h = harness([
    spec({
      name: "a",
      backoff: { initialMs: 100, maxMs: 500, multiplier: 2, jitter: 0, resetAfterMs: 10_000 },
      intensity: { maxRestarts: 100, periodSec: 1 },
    }),
  ]);
  h.runners.autoReady.add("a");
  await h.sup.startAll();
  await h.flush();
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    h.runners.last("a").exit(1);
    await h.flush();
    delays.push(lastTransition(h, "restarting").delayMs!);
    await h.fc.tickAsync(1000);
    await h.flush();
  }
  assertEquals(delays, [100, 200, 400, 500, 500]);
  // a long healthy run: the next restart is immediate, then backoff starts over
  await h.fc.tickAsync(10_000);
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(lastTransition(h, "restarting").delayMs, 0);
  await h.fc.tickAsync(0);
  await h.flush();
  assertEquals(h.sup.get("a").state, "ready");
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(lastTransition(h, "restarting").delayMs, 100);
  record(h);
});

Deno.test("healthy since: a suspend/resume inside a long healthy run does not restart the clock", async () => {
  const h = harness([
    spec({
      name: "a",
      backoff: { initialMs: 100, maxMs: 500, multiplier: 2, jitter: 0, resetAfterMs: 10_000 },
      intensity: { maxRestarts: 100, periodSec: 1 },
    }),
  ]);
  h.runners.autoReady.add("a");
  await h.sup.startAll();
  await h.flush();
  for (const expected of [100, 200]) {
    h.runners.last("a").exit(1);
    await h.flush();
    assertEquals(lastTransition(h, "restarting").delayMs, expected);
    await h.fc.tickAsync(expected);
    await h.flush();
    assertEquals(h.sup.get("a").state, "ready");
  }
  // ready for 11 s in all, suspended and resumed after 6 s: still one healthy run
  await h.fc.tickAsync(6000);
  await h.sup.suspend("a", "load");
  await h.sup.resume("a", "load gone");
  await h.flush();
  assertEquals(h.transitions().slice(-2), ["a:ready->suspended", "a:suspended->ready"]);
  await h.fc.tickAsync(5000);
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(
    lastTransition(h, "restarting").delayMs,
    0,
    "healthy since was reset by the resume (the backoff should have started over)",
  );
  record(h);
});

Deno.test("backoff jitter stays within [base(1-j), min(max, base(1+j))]", () => {
  const o = { initialMs: 100, maxMs: 3000, multiplier: 3, jitter: 0.25, resetAfterMs: 1000 };
  for (const r of [0, 0.0001, 0.25, 0.5, 0.75, 0.9999, 1]) {
    const b = new Backoff(o, () => r);
    for (let n = 1; n <= 8; n++) {
      const d = b.next(0);
      const { min, max } = backoffBounds(o, n);
      assert(d >= min && d <= max, `r=${r} n=${n}: ${d} not in [${min}, ${max}]`);
      assert(d <= o.maxMs);
    }
  }
  const b = new Backoff(o, Math.random);
  const seenDelays = new Set<number>();
  for (let i = 0; i < 200; i++) {
    b.reset();
    seenDelays.add(b.next(0));
  }
  assert(seenDelays.size > 10, "jitter spreads the first delay");
  for (const d of seenDelays) assert(d >= 75 && d <= 125, `${d}`);
  assertEquals(backoffBounds(o, 1), { min: 75, max: 125 });
  assertEquals(backoffBounds(o, 10), { min: 2250, max: 3000 });
  // reset after a healthy run
  assertEquals(b.next(1000), 0);
  assertEquals(b.attempt, 0);
});

Deno.test("RestartIntensity counts a sliding window", () => {
  const r = new RestartIntensity({ maxRestarts: 2, periodSec: 1 });
  assertEquals(r.record(0), false);
  assertEquals(r.record(500), false);
  assertEquals(r.record(900), true);
  assertEquals(r.count(1400), 2);
  assertEquals(r.record(2000), false);
  r.reset();
  assertEquals(r.count(2000), 0);
});

Deno.test("markFailed from stopped, restarting (backoff) and running states", async () => {
  const h = harness([spec({ name: "a" }), spec({ name: "b", autoStart: false })]);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.sup.get("a").state, "restarting");
  await h.sup.get("a").markFailed({ cause: "escalation", text: "group gave up" });
  await h.sup.get("b").markFailed({ cause: "escalation", text: "group gave up" });
  assertEquals(h.transitions().slice(-2), ["a:restarting->failed", "b:stopped->failed"]);
  // no backoff timer left behind
  await h.fc.tickAsync(60_000);
  assertEquals(h.sup.get("a").state, "failed");
  record(h);
});

Deno.test("every transition in the table was exercised above", () => {
  const all = Object.entries(TRANSITIONS).flatMap(([from, tos]) =>
    tos.map((to) => `${from}->${to}`)
  );
  const missing = all.filter((t) => !seen.has(t));
  assertEquals(missing, [], `not exercised: ${missing.join(", ")}`);
});

Deno.test("the transition table: every state is reachable from stopped and can get back to stopped", () => {
  const states = Object.keys(TRANSITIONS) as (keyof typeof TRANSITIONS)[];
  for (const tos of Object.values(TRANSITIONS)) {
    for (const to of tos) assert(states.includes(to), `unknown target state ${to}`);
  }
  const reach = (from: keyof typeof TRANSITIONS) => {
    const seen = new Set([from]);
    const todo = [from];
    while (todo.length) {
      for (const to of TRANSITIONS[todo.pop()!]) {
        if (!seen.has(to)) seen.add(to), todo.push(to);
      }
    }
    return seen;
  };
  assertEquals([...reach("stopped")].sort(), [...states].sort(), "unreachable states");
  for (const st of states) assert(reach(st).has("stopped"), `${st} can never stop`);
});
