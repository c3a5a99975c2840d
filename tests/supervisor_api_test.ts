/**
 * The supervisor module, its HTTP API and the `keepwire sub` CLI (against a
 * stand-in daemon on a unix socket serving the real routes).
 */
import { join } from "node:path";
import { Hono } from "hono";
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { controlSocketPath } from "../mod/cli/client.ts";
import { runCli } from "../mod/cli/mod.ts";
import { ApiError } from "../mod/web/mod.ts";
import { errorResponse } from "../mod/web/errors.ts";
import { createSupervisorModule, type SupervisorModule } from "../mod/supervisor/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  fakeClock,
  FakeRunners,
  MockEscalation,
} from "./supervisor_fakes.ts";

function build() {
  const { fc, clock } = fakeClock();
  const config = validateConfig({
    dataDir: "/nonexistent",
    subsystems: [
      { name: "db", kind: "worker", module: "db.ts", criticality: "essential", heartbeat: null },
      { name: "api", kind: "process", command: "/bin/true", requires: ["db"] },
      { name: "report", kind: "worker", module: "r.ts", criticality: "optional", heartbeat: null },
    ],
  });
  const store = new Store({ path: ":memory:", now: () => fc.now });
  const bus = new EventBus({ now: () => fc.now });
  bus.attachJournal(store);
  const runners = new FakeRunners();
  for (const n of ["db", "api", "report"]) runners.autoReady.add(n);
  const pets: string[] = [];
  const mod = createSupervisorModule({ config, store, bus, clock }, {
    escalation: new MockEscalation(),
    petters: [{ name: "bypass-watchdogs", pet: () => void pets.push("pet") }],
    runners: runners.factory,
    env: {},
  });
  const app = new Hono();
  app.onError((e, c) =>
    e instanceof ApiError ? errorResponse(c, e) : c.json({ error: String(e) }, 500)
  );
  app.route("/api", mod.routes());
  return { fc, mod, app, store, runners, pets };
}

async function settle(fc: { tickAsync(ms: number): Promise<unknown> }, mod: SupervisorModule) {
  for (let i = 0; i < 5; i++) {
    await fc.tickAsync(0);
    await mod.supervisor.settled();
  }
}

Deno.test("module: starts the subsystems, journals transitions, pets while healthy", async () => {
  const { fc, mod, store, pets } = build();
  assertEquals(mod.name, "supervisor");
  await mod.start();
  await settle(fc, mod);
  assertEquals(mod.list().map((s) => s.state), ["ready", "ready", "ready"]);
  assert(mod.essentialHealthy());
  assertEquals(mod.health!().ok, true);
  await fc.tickAsync(1000);
  assert(pets.length >= 2, `${pets.length} pets`);
  const journaled = store.events({ kind: "supervisor.transition", order: "asc" });
  assertEquals(journaled.length, 6);
  assertEquals(journaled[0].payload.subsystem, "db");
  await mod.stop();
  assertEquals(mod.list().map((s) => s.state), ["stopped", "stopped", "stopped"]);
  store.close();
});

Deno.test("API: list, start/stop/restart, 404 for unknown, 400 for a bad name, 409 on conflict", async () => {
  const { fc, mod, app, store } = build();
  await mod.start();
  await settle(fc, mod);
  const list = await (await app.request("/api/subsystems")).json();
  assertEquals(list.subsystems.map((s: { name: string }) => s.name), ["db", "api", "report"]);
  assertEquals(Object.keys(list.subsystems[0]).slice(0, 8), [
    "name",
    "kind",
    "state",
    "criticality",
    "pid",
    "restarts",
    "lastHeartbeatMs",
    "lastFailure",
  ]);
  let r = await app.request("/api/subsystems/report/stop", { method: "POST" });
  assertEquals(r.status, 200);
  assertEquals((await r.json()).subsystem.state, "stopped");
  r = await app.request("/api/subsystems/report/start", { method: "POST" });
  await settle(fc, mod);
  assertEquals(
    (await (await app.request("/api/subsystems/report")).json()).subsystem.state,
    "ready",
  );
  r = await app.request("/api/subsystems/db/restart", { method: "POST" });
  assertEquals(r.status, 200);
  await settle(fc, mod);
  assertEquals(mod.list().map((s) => s.state), ["ready", "ready", "ready"]);
  r = await app.request("/api/subsystems/ghost/start", { method: "POST" });
  assertEquals(r.status, 404);
  assertEquals((await r.json()).error.code, "not_found");
  r = await app.request("/api/subsystems/Bad!Name/start", { method: "POST" });
  assertEquals(r.status, 400);
  r = await app.request("/api/subsystems/db/suspend", { method: "POST" });
  assertEquals(r.status, 409);
  assertMatch((await r.json()).error.message, /essential/);
  await mod.stop();
  store.close();
});

async function captureCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await runCli(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("CLI: sub list [--json], sub start|stop|restart NAME via the daemon socket", async () => {
  const { fc, mod, app, store } = build();
  const dir = await Deno.makeTempDir({ prefix: "kw-sub-cli-" });
  const ac = new AbortController();
  const server = Deno.serve({
    path: controlSocketPath(dir),
    transport: "unix",
    signal: ac.signal,
    onListen: () => {},
  }, async (req) => {
    const res = await app.fetch(req);
    await settle(fc, mod);
    return res;
  });
  try {
    await mod.start();
    await settle(fc, mod);
    const j = await captureCli(["sub", "list", "--json", "-d", dir]);
    assertEquals(j.code, 0, j.err);
    const body = JSON.parse(j.out);
    assertEquals(Object.keys(body), ["subsystems"]);
    assertEquals(body.subsystems[1], {
      name: "api",
      kind: "process",
      state: "ready",
      criticality: "important",
      pid: body.subsystems[1].pid,
      restarts: 0,
      lastHeartbeatMs: 0,
      lastFailure: null,
    });
    assert(typeof body.subsystems[1].pid === "number");
    const t = await captureCli(["sub", "list", "-d", dir]);
    assertEquals(t.code, 0);
    assertMatch(t.out, /^NAME\s+KIND\s+STATE\s+CRITICALITY\s+PID\s+RESTARTS\s+HEARTBEAT/);
    assertMatch(t.out, /\ndb\s+worker\s+ready\s+essential/);
    const s = await captureCli(["sub", "stop", "report", "-d", dir]);
    assertEquals([s.code, s.out], [0, "report: stopped"]);
    const st = await captureCli(["sub", "start", "report", "-d", dir]);
    assertEquals(st.code, 0);
    const rs = await captureCli(["sub", "restart", "api", "--json", "-d", join(dir)]);
    assertEquals(rs.code, 0);
    assertEquals(JSON.parse(rs.out).subsystem.name, "api");
    const unknown = await captureCli(["sub", "start", "ghost", "-d", dir]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.err, /no subsystem named "ghost"/);
    const bad = await captureCli(["sub", "stop", "Bad!", "-d", dir]);
    assertEquals(bad.code, 2);
    assertMatch(bad.err, /invalid subsystem name/);
  } finally {
    ac.abort();
    await server.finished;
    await mod.stop();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
  const none = await captureCli(["sub", "list", "-d", "/nonexistent-kw"]);
  assertEquals(none.code, 3);
});
