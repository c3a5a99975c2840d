/**
 * The supervisor module on fake time (fake runners), and its HTTP API and the
 * `keepwire sub` CLI as `keepwire run` serves them: a real runtime with auth, admission
 * and the control socket, real worker and process subsystems.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { runCli } from "../mod/cli/mod.ts";
import { createSupervisorModule, type SupervisorModule } from "../mod/supervisor/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  fakeClock,
  FakeRunners,
  MockEscalation,
} from "./supervisor_fakes.ts";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.ts";
import { processesWithArgv, uniqueSleep, waitFor } from "./helpers/procs.ts";

function build() {
  const { fc, clock } = fakeClock();
  const config = validateConfig({
    dataDir: Deno.makeTempDirSync({ prefix: "kw-sup-mod-" }),
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
  const close = () => {
    store.close();
    Deno.removeSync(config.dataDir, { recursive: true });
  };
  return { fc, mod, store, runners, pets, close };
}

async function settle(fc: { tickAsync(ms: number): Promise<unknown> }, mod: SupervisorModule) {
  for (let i = 0; i < 5; i++) {
    await fc.tickAsync(0);
    await mod.supervisor.settled();
  }
}

Deno.test("module: starts the subsystems, journals transitions, pets while healthy", async () => {
  const { fc, mod, store, pets, close } = build();
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
  close();
});

const WORKER = new URL("../examples/heartbeat_worker.ts", import.meta.url).pathname;

/** A runtime as `keepwire run` starts it, with a worker db, a process api and a worker report. */
async function withRuntime(fn: (t: TestRuntime, sleeper: string[]) => Promise<void>) {
  const secs = uniqueSleep();
  const t = await startTestRuntime({
    governor: { enabled: false },
    subsystems: [
      { name: "db", kind: "worker", module: WORKER, criticality: "essential" },
      {
        name: "api",
        kind: "process",
        command: "/bin/sleep",
        args: [secs],
        readyOn: "spawn",
        requires: ["db"],
      },
      { name: "report", kind: "worker", module: WORKER, criticality: "optional" },
    ],
  });
  try {
    const states = async () =>
      ((await (await t.api("/api/subsystems")).json()).subsystems as { state: string }[])
        .map((s) => s.state);
    const deadline = Date.now() + 30_000;
    while ((await states()).some((s) => s !== "ready")) {
      if (Date.now() > deadline) throw new Error(`not ready: ${await states()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await fn(t, ["/bin/sleep", secs]);
  } finally {
    await t.close();
  }
}

/** An answer of a subsystem command: the subsystem, or an error. */
interface Answer {
  subsystem: { state: string };
  error: { code: string; message: string };
}

async function post(t: TestRuntime, path: string): Promise<{ status: number; body: Answer }> {
  const r = await t.api(path, { method: "POST" });
  return { status: r.status, body: await r.json() };
}

Deno.test({
  name:
    "API (keepwire run): auth required; list, stop/start/restart; 404, 400 and 409 each with its code",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withRuntime(async (t, sleeper) => {
      const anon = await fetch(`${t.base}/api/subsystems`);
      assertEquals(anon.status, 401);
      await anon.body?.cancel();
      const list = await (await t.api("/api/subsystems")).json();
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
      // the pid shown is the process that runs. readyOn "spawn" is ready once /bin/sh is
      // spawned, which exec's setsid, which exec's the command (process.ts): on a busy machine
      // the pid may still run sh or setsid when the list is read (CI saw it: no /bin/sleep yet)
      await waitFor(
        () => processesWithArgv(sleeper).join() === String(list.subsystems[1].pid),
        20_000,
        `pid ${list.subsystems[1].pid} running ${sleeper.join(" ")}`,
      );

      let r = await post(t, "/api/subsystems/report/stop");
      assertEquals([r.status, r.body.subsystem.state], [200, "stopped"]);
      r = await post(t, "/api/subsystems/report/suspend");
      assertEquals([r.status, r.body.error.code], [409, "invalid_state"]);
      r = await post(t, "/api/subsystems/report/start");
      assertEquals(r.status, 200);
      await waitFor(() => t.rt.module<SupervisorModule>("supervisor")!.list()[2].state === "ready");

      const oldPid = list.subsystems[1].pid;
      r = await post(t, "/api/subsystems/api/restart");
      assertEquals(r.status, 200);
      await waitFor(
        () => {
          const pids = processesWithArgv(sleeper);
          return pids.length === 1 && pids[0] !== oldPid;
        },
        20_000,
        "a new api process, and only one",
      );

      r = await post(t, "/api/subsystems/ghost/start");
      assertEquals([r.status, r.body.error.code], [404, "subsystem_not_found"]);
      r = await post(t, "/api/subsystems/Bad!Name/start");
      assertEquals([r.status, r.body.error.code], [400, "bad_subsystem_name"]);
      r = await post(t, "/api/subsystems/db/suspend");
      assertEquals([r.status, r.body.error.code], [409, "essential_not_suspendable"]);
      assertMatch(r.body.error.message, /essential/);
    });
  },
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

Deno.test({
  name:
    "CLI: sub list [--json], sub start|stop|restart NAME through the control socket of keepwire run",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withRuntime(async (t, sleeper) => {
      const dir = t.dataDir;
      const j = await captureCli(["sub", "list", "--json", "-d", dir]);
      assertEquals(j.code, 0, j.err);
      const body = JSON.parse(j.out);
      assertEquals(Object.keys(body), ["subsystems"]);
      const api = body.subsystems[1];
      assert(typeof api.lastHeartbeatMs === "number" || api.lastHeartbeatMs === null);
      assertEquals({ ...api, lastHeartbeatMs: null }, {
        name: "api",
        kind: "process",
        state: "ready",
        criticality: "important",
        pid: processesWithArgv(sleeper)[0],
        restarts: 0,
        lastHeartbeatMs: null,
        lastFailure: null,
      });
      const tx = await captureCli(["sub", "list", "-d", dir]);
      assertEquals(tx.code, 0);
      assertMatch(tx.out, /^NAME\s+KIND\s+STATE\s+CRITICALITY\s+PID\s+RESTARTS\s+HEARTBEAT/);
      assertMatch(tx.out, /\ndb\s+worker\s+ready\s+essential/);
      const s = await captureCli(["sub", "stop", "report", "-d", dir]);
      assertEquals([s.code, s.out], [0, "report: stopped"]);
      const st = await captureCli(["sub", "start", "report", "-d", dir]);
      assertEquals(st.code, 0, st.err);
      const rs = await captureCli(["sub", "restart", "api", "--json", "-d", dir]);
      assertEquals(rs.code, 0, rs.err);
      assertEquals(JSON.parse(rs.out).subsystem.name, "api");
      const unknown = await captureCli(["sub", "start", "ghost", "-d", dir]);
      assertEquals(unknown.code, 2);
      assertMatch(unknown.err, /no subsystem named "ghost"/);
      const bad = await captureCli(["sub", "stop", "Bad!", "-d", dir]);
      assertEquals(bad.code, 2);
      assertMatch(bad.err, /invalid subsystem name/);
    });
    const none = await captureCli(["sub", "list", "-d", "/nonexistent-kw"]);
    assertEquals(none.code, 3);
  },
});
