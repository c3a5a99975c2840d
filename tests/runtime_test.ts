import { assert, assertEquals } from "./helpers/assert.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import type { BypassModule } from "../mod/bypass/mod.ts";
import type { SupervisorModule } from "../mod/supervisor/mod.ts";
import { DataDirLockedError } from "../mod/data_dir_lock.ts";
import { daemonRunning } from "../mod/cli/client.ts";
import { processesWithArgv, uniqueSleep } from "./helpers/procs.ts";

const WORKER = new URL("../examples/heartbeat_worker.ts", import.meta.url).pathname;

function config(dataDir: string) {
  return validateConfig({
    dataDir,
    web: { listen: "127.0.0.1:0" },
    governor: { enabled: false },
    subsystems: [{ name: "engine", kind: "worker", module: WORKER, criticality: "essential" }],
  });
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test({
  name: "runtime: traffic stays in bypass across a restart of keepwire until essentials are ready",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-rt-" });
    try {
      let rt = new Runtime(config(dir));
      await rt.start();
      let bypass = rt.module<BypassModule>("bypass")!;
      await until(() => rt.health().ok);
      assertEquals(bypass.segments().map((s) => s.mode), ["inline"]);
      await rt.stop("test restart");
      // the shutdown hold was taken before the subsystems stopped, and is persisted
      const stopped = rt.store;
      assert(!stopped.db.isOpen);

      rt = new Runtime(config(dir));
      await rt.start();
      bypass = rt.module<BypassModule>("bypass")!;
      const atStart = bypass.segments()[0];
      const stillHeld = atStart.holds.some((h) => h.reason === "shutdown");
      // either still held, or already released by a fast engine start: then the
      // journal must show it was held at start and released on readiness
      await until(() =>
        bypass.segments()[0].holds.length === 0 && bypass.segments()[0].mode === "inline"
      );
      const kinds = rt.store.events({ order: "asc", limit: 1000 }).map((e) => e.kind);
      const iStop = kinds.indexOf("runtime.stopped");
      const iHold = kinds.indexOf("bypass.hold_added");
      assert(iHold >= 0 && iHold < iStop, "shutdown hold not taken before stopping");
      assert(
        kinds.includes("bypass.start_holds_released"),
        `no bypass.start_holds_released (held at start: ${stillHeld})`,
      );
      const ready = rt.store.events({ kind: "bypass.start_holds_released" })[0];
      assertEquals(ready.payload.released, ["shutdown"]);
      await rt.stop("test done");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("runtime: stop is idempotent (a signal during an update switch stops once)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-rt-" });
  try {
    let stops = 0;
    const rt = new Runtime(validateConfig({ dataDir: dir, web: { listen: "127.0.0.1:0" } }), {
      extraModules: () => [{
        name: "counter",
        start: () => Promise.resolve(),
        stop: async () => {
          stops++;
          await new Promise((r) => setTimeout(r, 20)); // the second stop arrives meanwhile
        },
      }],
    });
    await rt.start();
    const first = rt.stop("one");
    const second = rt.stop("two");
    assertEquals(await first, { clean: true });
    assertEquals(await second, { clean: true });
    assertEquals(stops, 1, "a module was stopped twice");
    const { Store } = await import("../mod/store/mod.ts");
    const s = new Store({ path: `${dir}/keepwire.db` });
    const stopped = s.events({ kind: "runtime.stopped" });
    s.close();
    assertEquals(stopped.map((e) => e.payload.reason), ["one"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runtime: prepareStop runs on every started module, in reverse order, before any stop", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-rt-" });
  try {
    const calls: string[] = [];
    const probe = (name: string) => ({
      name,
      start: () => Promise.resolve(),
      prepareStop: () => {
        calls.push(`prepare:${name}`);
        return Promise.resolve();
      },
      stop: () => {
        calls.push(`stop:${name}`);
        return Promise.resolve();
      },
    });
    const rt = new Runtime(validateConfig({ dataDir: dir, web: { listen: "127.0.0.1:0" } }), {
      extraModules: () => [probe("first"), probe("second")],
    });
    await rt.start();
    const { clean } = await rt.stop("test");
    assert(clean);
    assertEquals(calls, ["prepare:second", "prepare:first", "stop:second", "stop:first"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "runtime: a second runtime on the same data directory is refused, naming the holder; the first is untouched",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-rt-" });
    const secs = uniqueSleep();
    const cfg = () =>
      validateConfig({
        dataDir: dir,
        web: { listen: "127.0.0.1:0" },
        subsystems: [{
          name: "sleeper",
          kind: "process",
          command: "/bin/sleep",
          args: [secs],
          readyOn: "spawn",
        }],
      });
    const first = new Runtime(cfg());
    try {
      await first.start();
      const sup = first.module<SupervisorModule>("supervisor")!;
      await until(() => sup.list()[0].state === "ready");
      const pid = sup.list()[0].pid;
      const lastId = first.store.events({ limit: 1 })[0].id;

      const second = new Runtime(cfg());
      const err = await second.start().then(() => null, (e: Error) => e);
      if (!(err instanceof DataDirLockedError)) throw new Error(`not refused: ${err}`);
      assertEquals(err.holder, Deno.pid);
      assert(err.message.includes(`pid ${Deno.pid}`), err.message);
      await second.stop("refused");

      // the first: socket answers, nothing journalled, no holds, one copy of the subsystem
      assert(await daemonRunning(dir), "control socket gone");
      assertEquals(first.store.events({ limit: 1000 }).filter((e) => e.id > lastId), []);
      const bypass = first.module<BypassModule>("bypass")!;
      assertEquals(bypass.segments().map((s) => [s.mode, s.holds.length]), [["inline", 0]]);
      assertEquals(sup.list()[0].pid, pid);
      assertEquals(sup.list()[0].restarts, 0);
      assertEquals(processesWithArgv(["/bin/sleep", secs]).length, 1);
    } finally {
      await first.stop("test done");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
