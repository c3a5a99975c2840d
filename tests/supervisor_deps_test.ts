/**
 * The supervisor on fake time: dependency order on start, stop and restart, the
 * coupling of a required subsystem's restart to its dependents, and each
 * escalation (mark-failed, restart-group, bypass-hold, reboot).
 */
import { dependencyLevels } from "../mod/supervisor/supervisor.ts";
import { assert, assertEquals, assertRejects, harness, spec } from "./supervisor_fakes.ts";

// a <- b <- c (requires), d after a
const chain = () => [
  spec({ name: "c", requires: ["b"] }),
  spec({ name: "b", requires: ["a"] }),
  spec({ name: "a" }),
  spec({ name: "d", after: ["a"] }),
];

function ready(h: ReturnType<typeof harness>, ...names: string[]) {
  for (const n of names) h.runners.autoReady.add(n);
}

Deno.test("dependencyLevels puts dependencies first", () => {
  assertEquals(dependencyLevels(chain()), [["a"], ["b", "d"], ["c"]]);
});

Deno.test("start: dependents start only after what they need is ready", async () => {
  const h = harness(chain());
  await h.sup.startAll();
  await h.flush();
  assertEquals(h.runners.order, ["start:a"]);
  assertEquals(h.sup.get("b").state, "stopped");
  h.runners.last("a").ev.ready();
  await h.flush();
  assertEquals(h.runners.order, ["start:a", "start:b", "start:d"]);
  h.runners.last("b").ev.ready();
  await h.flush();
  assertEquals(h.runners.order, ["start:a", "start:b", "start:d", "start:c"]);
});

Deno.test("stop all: dependents stop before what they depend on", async () => {
  const h = harness(chain());
  ready(h, "a", "b", "c", "d");
  await h.sup.startAll();
  await h.flush();
  assertEquals(h.sup.list().map((s) => s.state), ["ready", "ready", "ready", "ready"]);
  h.runners.order.length = 0;
  await h.sup.stopAll();
  const i = (x: string) => h.runners.order.indexOf(`stop:${x}`);
  assert(i("c") < i("b") && i("b") < i("a") && i("d") < i("a"), h.runners.order.join(" "));
  assertEquals(h.sup.list().map((s) => s.state), ["stopped", "stopped", "stopped", "stopped"]);
});

Deno.test("manual stop stops dependents first; start brings the chain back in order", async () => {
  const h = harness(chain());
  ready(h, "a", "b", "c", "d");
  await h.sup.startAll();
  await h.flush();
  h.runners.order.length = 0;
  await h.sup.stop("a");
  await h.flush();
  assertEquals(h.runners.order, ["stop:c", "stop:b", "stop:a"]);
  assertEquals(h.sup.get("d").state, "ready", "after is ordering only");
  h.runners.order.length = 0;
  await h.sup.start("a");
  await h.flush();
  assertEquals(h.runners.order, ["start:a", "start:b", "start:c"]);
});

Deno.test("manual restart of a required subsystem restarts its dependents", async () => {
  const h = harness(chain());
  ready(h, "a", "b", "c", "d");
  await h.sup.startAll();
  await h.flush();
  h.runners.order.length = 0;
  await h.sup.restart("a");
  await h.flush();
  assertEquals(h.runners.order, ["stop:c", "stop:b", "stop:a", "start:a", "start:b", "start:c"]);
  assertEquals(h.sup.list().map((s) => s.state), ["ready", "ready", "ready", "ready"]);
  assertEquals(h.sup.get("a").restarts, 0, "manual restarts are not counted");
});

Deno.test("a crash of a required subsystem stops dependents; they start after it is ready", async () => {
  const h = harness(chain());
  ready(h, "a", "b", "c", "d");
  await h.sup.startAll();
  await h.flush();
  h.runners.order.length = 0;
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.runners.order, ["stop:c", "stop:b"]);
  assertEquals(h.sup.get("b").state, "stopped");
  const ev = h.events.find((e) =>
    e.kind === "supervisor.transition" && e.payload.subsystem === "b" && e.payload.to === "stopped"
  )!;
  assertEquals(ev.payload.cause, "dependency");
  assert(String(ev.payload.reason).includes("required a is restarting"));
  await h.fc.tickAsync(100);
  await h.flush();
  assertEquals(h.runners.order.slice(2), ["start:a", "start:b", "start:c"]);
  assertEquals(h.sup.get("c").state, "ready");
});

Deno.test("manual start pulls in what a subsystem requires", async () => {
  const h = harness(chain().map((s) => ({ ...s, autoStart: false })));
  ready(h, "a", "b", "c");
  await h.sup.startAll();
  await h.flush();
  assertEquals(h.runners.order, []);
  await h.sup.start("c");
  await h.flush();
  assertEquals(h.runners.order, ["start:a", "start:b", "start:c"]);
  assertEquals(h.sup.get("d").state, "stopped");
});

Deno.test("after: ordering only; a failed predecessor does not block", async () => {
  const h = harness([spec({ name: "a", restart: "never" }), spec({ name: "d", after: ["a"] })]);
  await h.sup.startAll();
  await h.flush();
  assertEquals(h.runners.order, ["start:a"]);
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.sup.get("a").state, "failed");
  assertEquals(h.runners.order, ["start:a", "start:d"]);
});

Deno.test("escalation mark-failed: failed, an escalation event, no actions", async () => {
  const h = harness([spec({ name: "a", restart: "never" })]);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("a").exit(4);
  await h.flush();
  assertEquals(h.sup.get("a").state, "failed");
  const e = h.events.find((e) => e.kind === "supervisor.escalation")!;
  assertEquals(e.payload.action, "mark-failed");
  assertEquals(h.escalation.calls, []);
});

Deno.test("escalation bypass-hold (default for essential) holds all; ready again releases", async () => {
  const h = harness([
    spec({ name: "fw", criticality: "essential", intensity: { maxRestarts: 1, periodSec: 60 } }),
  ]);
  ready(h, "fw");
  await h.sup.startAll();
  await h.flush();
  assert(h.sup.essentialHealthy());
  h.runners.last("fw").exit(1);
  await h.flush();
  await h.fc.tickAsync(100);
  await h.flush();
  h.runners.last("fw").exit(1);
  await h.flush();
  assertEquals(h.sup.get("fw").state, "failed");
  assertEquals(h.escalation.calls, ["hold:all:supervisor:fw"]);
  assertEquals(h.sup.essentialFailed(), ["fw"]);
  assert(!h.sup.essentialHealthy());
  const e = h.events.find((e) => e.kind === "supervisor.escalation")!;
  assertEquals(e.severity, "critical");
  await h.sup.start("fw");
  await h.flush();
  assertEquals(h.escalation.calls, ["hold:all:supervisor:fw", "release:all:supervisor:fw"]);
  assertEquals(h.sup.essentialFailed(), []);
});

Deno.test("escalation bypass-hold on named segments", async () => {
  const h = harness([
    spec({
      name: "a",
      restart: "never",
      escalation: { action: "bypass-hold", segments: ["seg0", "seg1"] },
    }),
  ]);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.escalation.calls, ["hold:seg0,seg1:supervisor:a"]);
});

Deno.test("escalation reboot goes through the injected action", async () => {
  const h = harness([
    spec({
      name: "a",
      intensity: { maxRestarts: 0, periodSec: 60 },
      escalation: { action: "reboot" },
    }),
  ]);
  await h.sup.startAll();
  await h.flush();
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.escalation.calls.length, 1);
  assert(h.escalation.calls[0].startsWith("reboot:subsystem a failed: more than 0 restarts"));
});

Deno.test("escalation restart-group restarts the group; the group gives up after its intensity", async () => {
  const h = harness([
    spec({
      name: "x",
      group: "g",
      intensity: { maxRestarts: 0, periodSec: 60 },
      escalation: { action: "restart-group" },
    }),
    spec({ name: "y", group: "g" }),
    spec({ name: "z" }),
  ], { groupIntensity: { maxRestarts: 2, periodSec: 300 } });
  ready(h, "x", "y", "z");
  await h.sup.startAll();
  await h.flush();
  for (let round = 1; round <= 2; round++) {
    h.runners.order.length = 0;
    h.runners.last("x").exit(1);
    await h.flush();
    assertEquals(h.runners.order, ["stop:y", "start:x", "start:y"], `round ${round}`);
    assertEquals(h.sup.get("x").state, "ready");
    assertEquals(h.sup.get("y").state, "ready");
  }
  assertEquals(h.sup.get("z").state, "ready");
  h.runners.last("x").exit(1);
  await h.flush();
  assertEquals(h.sup.get("x").state, "failed");
  assertEquals(h.sup.get("y").state, "failed");
  assertEquals(h.sup.get("z").state, "ready");
  const last = h.events.filter((e) => e.kind === "supervisor.escalation").at(-1)!;
  assertEquals(last.payload.gaveUp, true);
});

Deno.test("escalation restart-group without a group: the subsystem and its dependents", async () => {
  const h = harness([
    spec({
      name: "a",
      intensity: { maxRestarts: 0, periodSec: 60 },
      escalation: { action: "restart-group" },
    }),
    spec({ name: "b", requires: ["a"] }),
    spec({ name: "other" }),
  ]);
  ready(h, "a", "b", "other");
  await h.sup.startAll();
  await h.flush();
  h.runners.order.length = 0;
  h.runners.last("a").exit(1);
  await h.flush();
  assertEquals(h.runners.order, ["stop:b", "start:a", "start:b"]);
  assertEquals(h.sup.list().map((s) => s.state), ["ready", "ready", "ready"]);
});

Deno.test("queue reports reach onQueueReport subscribers", async () => {
  const h = harness([spec({ name: "a" })]);
  ready(h, "a");
  await h.sup.startAll();
  await h.flush();
  const got: string[] = [];
  const off = h.sup.onQueueReport((n, d, a) => got.push(`${n}:${d}:${a}`));
  h.runners.last("a").ev.queue(7, 120);
  off();
  h.runners.last("a").ev.queue(8, 130);
  assertEquals(got, ["a:7:120"]);
  assertEquals(h.sup.get("a").info().queue, { depth: 8, oldestAgeMs: 130 });
});

Deno.test("unknown names are rejected", async () => {
  const h = harness([spec({ name: "a" })]);
  await assertRejects(() => h.sup.start("nope"), 'no subsystem named "nope"');
});

Deno.test("supervisor.essentials_ready: once after start, then on every change only", async () => {
  const h = harness([
    spec({ name: "e", criticality: "essential" }),
    spec({ name: "o", criticality: "optional" }),
  ]);
  const seen = () =>
    h.events.filter((e) => e.kind === "supervisor.essentials_ready").map((e) => e.payload.ready);
  await h.sup.startAll();
  await h.flush();
  assertEquals(seen(), [false]);
  h.runners.last("o").ev.ready();
  await h.flush();
  assertEquals(seen(), [false], "an optional subsystem does not change it");
  h.runners.last("e").ev.ready();
  await h.flush();
  assertEquals(seen(), [false, true]);
  h.runners.last("e").exit(1);
  await h.flush();
  assertEquals(seen(), [false, true, false]);
  await h.fc.tickAsync(1000);
  await h.flush();
  h.runners.last("e").ev.ready();
  await h.flush();
  assertEquals(seen(), [false, true, false, true]);
});

Deno.test("supervisor.essentials_ready: true at start when nothing is essential", async () => {
  const h = harness([spec({ name: "o", criticality: "optional" })]);
  await h.sup.startAll();
  await h.flush();
  assertEquals(
    h.events.filter((e) => e.kind === "supervisor.essentials_ready").map((e) => e.payload.ready),
    [true],
  );
});
