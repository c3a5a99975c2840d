/**
 * The supervisor with real runners: real processes (setsid, the real
 * systemd-notify), real Workers, real time. Generous timeouts; the machine is shared.
 * Needs: util-linux (setsid), systemd (systemd-notify), perl (perl-base).
 */
import { join } from "node:path";
import { systemClock } from "../mod/module.ts";
import type { EventInput } from "../mod/events/mod.ts";
import { Supervisor } from "../mod/supervisor/supervisor.ts";
import { defaultRunners } from "../mod/supervisor/mod.ts";
import { leakedWorkerThreads, WorkerPool } from "../mod/supervisor/worker.ts";
import { pidAlive, sessionMembers } from "../mod/supervisor/procfs.ts";
import { missingTools } from "./helpers/tools.ts";
import type { SubsystemSpec } from "../mod/supervisor/config.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  MockEscalation,
  type RecordedEvent,
  spec,
  supConfig,
} from "./supervisor_fakes.ts";
import { kwDaemon } from "./helpers/cli.ts";
import { processesWithArgv, uniqueSleep, waitFor } from "./helpers/procs.ts";
import { Store } from "../mod/store/mod.ts";
import { bootId, GroupLedger, GROUPS_FILE, processStartTime } from "../mod/supervisor/orphans.ts";

const haveSetsid = missingTools(["setsid"]) === undefined;
const havePerl = missingTools(["perl"]) === undefined;
const procOk = missingTools(["systemd-notify", "setsid"]) === undefined;
const SDK = new URL("../mod/sdk/mod.ts", import.meta.url).href;

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withSupervisor(
  specs: SubsystemSpec[],
  fn: (sup: Supervisor, events: RecordedEvent[], dir: string) => Promise<void>,
  dir?: string,
): Promise<void> {
  const pool = new WorkerPool(specs.some((s) => s.kind === "worker") ? 1 : 0);
  const events: RecordedEvent[] = [];
  const sup = new Supervisor({
    specs,
    config: supConfig(),
    clock: systemClock,
    publish: (e: EventInput) =>
      void events.push({
        kind: e.kind,
        severity: e.severity ?? "info",
        payload: (e.payload ?? {}) as Record<string, unknown>,
      }),
    runners: defaultRunners(pool),
    escalation: new MockEscalation(),
  });
  pool.warm();
  try {
    await sup.startAll();
    await fn(sup, events, dir ?? "");
  } finally {
    await sup.stopAll();
    pool.close();
  }
}

function transitions(events: RecordedEvent[], name: string): string[] {
  return events.filter((e) => e.kind === "supervisor.transition" && e.payload.subsystem === name)
    .map((e) => `${e.payload.from}->${e.payload.to}:${e.payload.cause}`);
}

const fast = { initialMs: 20, maxMs: 200, multiplier: 2, jitter: 0, resetAfterMs: 60_000 };

Deno.test({
  name: "process: a child killed -9 comes back ready; nothing of the old group survives",
  ignore: !procOk,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const script = join(dir, "svc.sh");
      await Deno.writeTextFile(
        script,
        `systemd-notify --ready --status="up $$"\nsleep 1000 &\nwhile :; do sleep 1; done\n`,
      );
      await withSupervisor([
        spec({
          name: "svc",
          kind: "process",
          module: undefined,
          command: "/bin/sh",
          args: [script],
          backoff: fast,
        }),
      ], async (sup, events) => {
        const s = sup.get("svc");
        await until("ready", () => s.state === "ready");
        const pid = s.info().pid!;
        assertMatch(s.info().statusText ?? "", /^up \d+$/);
        await until("the background sleep", () => sessionMembers(pid).length >= 3);
        const members = sessionMembers(pid);
        Deno.kill(pid, "SIGKILL");
        await until("restarting", () => s.restarts === 1);
        await until("ready again", () => s.state === "ready");
        assert(s.info().pid !== pid, "a new process");
        const t = transitions(events, "svc");
        assert(t.includes("ready->restarting:signal"), t.join(" "));
        const ev = events.find((e) => e.payload.to === "restarting")!;
        assertEquals(ev.payload.reason, "killed by SIGKILL");
        await until("old group gone", () => members.every((p) => !pidAlive(p)), 5000);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "process: stop leaves no orphan, even one that left the process group",
  ignore: !procOk || !havePerl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const pidfile = join(dir, "escaped.pid");
      const script = join(dir, "svc.sh");
      await Deno.writeTextFile(
        script,
        `perl -e 'setpgrp(0,0); open(F,">${pidfile}"); print F $$; close F; sleep 1000' &\n` +
          `trap '' TERM\nsystemd-notify --ready\nwhile :; do sleep 1; done\n`,
      );
      await withSupervisor([
        spec({
          name: "svc",
          kind: "process",
          module: undefined,
          command: "/bin/sh",
          args: [script],
          stopTimeoutMs: 300,
        }),
      ], async (sup, events) => {
        const s = sup.get("svc");
        await until("ready", () => s.state === "ready");
        await until("pid file", () => {
          try {
            return Deno.readTextFileSync(pidfile).length > 0;
          } catch {
            return false;
          }
        });
        const escaped = Number(Deno.readTextFileSync(pidfile));
        const leader = s.info().pid!;
        assert(pidAlive(escaped));
        await sup.stop("svc");
        assertEquals(s.state, "stopped");
        assert(events.some((e) => e.kind === "supervisor.stop_forced"), "SIGTERM was ignored");
        await until("no orphan", () => !pidAlive(escaped) && !pidAlive(leader), 5000);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "process: real systemd-notify --ready and WATCHDOG=1; restarted when the pings stop",
  ignore: !procOk,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const script = join(dir, "wd.sh");
      await Deno.writeTextFile(
        script,
        [
          `[ -n "$NOTIFY_SOCKET" ] && [ "$WATCHDOG_USEC" = 800000 ] && [ "$WATCHDOG_PID" = $$ ] || exit 7`,
          `systemd-notify --ready`,
          `for i in 1 2 3 4 5; do systemd-notify WATCHDOG=1; sleep 0.1; done`,
          `systemd-notify STATUS=silent`,
          `while :; do sleep 1; done`,
        ].join("\n") + "\n",
      );
      await withSupervisor([
        spec({
          name: "wd",
          kind: "process",
          module: undefined,
          command: "/bin/sh",
          args: [script],
          heartbeat: { intervalMs: 200, timeoutMs: 800 },
          backoff: fast,
        }),
      ], async (sup, events) => {
        const s = sup.get("wd");
        await until("ready", () => s.state === "ready");
        await until("heartbeat timeout and restart", () => s.restarts >= 1);
        await until("ready again", () => s.state === "ready");
        const t = transitions(events, "wd");
        assertEquals(t.slice(0, 5), [
          "stopped->starting:boot",
          "starting->ready:ready",
          "ready->unhealthy:heartbeat-timeout",
          "unhealthy->restarting:heartbeat-timeout",
          "restarting->starting:backoff-elapsed",
        ]);
        const hb = events.find((e) => e.payload.cause === "heartbeat-timeout")!;
        const silent = Number(/no heartbeat for (\d+) ms/.exec(String(hb.payload.reason))![1]);
        assert(silent >= 800 && silent < 800 + 1000, `detected after ${silent} ms`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "worker: an endless loop is detected within one heartbeat timeout and restarted",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const marker = join(dir, "looped");
      const mod = join(dir, "loop_worker.ts");
      await Deno.writeTextFile(
        mod,
        `import { ready, status } from "${SDK}";\n` +
          `ready();\n` +
          `let first = true;\n` +
          `try { Deno.statSync(${
            JSON.stringify(marker)
          }); first = false; } catch { /* first run */ }\n` +
          `if (first) {\n` +
          `  Deno.writeTextFileSync(${JSON.stringify(marker)}, "x");\n` +
          `  setTimeout(() => { while (true) { /* hang */ } }, 300);\n` +
          `} else status("second run");\n`,
      );
      const started = Date.now();
      await withSupervisor([
        spec({
          name: "w",
          module: mod,
          heartbeat: { intervalMs: 50, timeoutMs: 400 },
          backoff: fast,
        }),
      ], async (sup, events) => {
        const s = sup.get("w");
        await until("ready", () => s.state === "ready");
        await until("hang detected", () => s.restarts >= 1);
        await until(
          "ready again",
          () => s.state === "ready" && s.info().statusText === "second run",
        );
        const t = transitions(events, "w");
        assert(t.includes("ready->unhealthy:heartbeat-timeout"), t.join(" "));
        const hb = events.find((e) => e.payload.cause === "heartbeat-timeout")!;
        const silent = Number(/no heartbeat for (\d+) ms/.exec(String(hb.payload.reason))![1]);
        assert(silent >= 400 && silent < 400 + 1000, `detected after ${silent} ms`);
        // Deno 2.9: the terminated thread keeps spinning; keepwire demotes and reports it.
        // Deno 2.9.6 leaks it: wait for the report; elsewhere the thread may end instead
        const leaks = Deno.version.deno === "2.9.6";
        await until(
          "leak handled",
          () =>
            events.some((e) => e.kind === "supervisor.worker_thread_leaked") ||
            !leaks && leakedWorkerThreads().length === 0 && Date.now() - started > 3000,
          20_000,
        );
        const leak = events.find((e) => e.kind === "supervisor.worker_thread_leaked");
        if (leaks) assert(leak, "Deno 2.9.6 leaks the spinning thread");
        if (leak) {
          assertEquals(leak.payload.subsystem, "w");
          assertEquals(leak.payload.demoted, true, "chrt --idle (util-linux) demoted the thread");
          const tid = Number(leak.payload.tid);
          assert(leakedWorkerThreads().some((l) => l.tid === tid));
          const policy = new TextDecoder().decode(
            (await new Deno.Command("chrt", { args: ["-p", String(tid)] }).output()).stdout,
          );
          assertMatch(policy, /SCHED_IDLE/);
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "worker: an uncaught error restarts it; a missing module is a clear spawn error",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const mod = join(dir, "crash_worker.ts");
      await Deno.writeTextFile(
        mod,
        `import { ready } from "${SDK}";\nready();\n` +
          `self.addEventListener("message", (e) => { if (e.data === "crash") throw new Error("boom"); });\n` +
          `setTimeout(() => { throw new Error("boom"); }, 100);\n`,
      );
      await withSupervisor([
        spec({
          name: "c",
          module: mod,
          backoff: fast,
          intensity: { maxRestarts: 2, periodSec: 60 },
        }),
        spec({ name: "m", module: join(dir, "missing.ts"), restart: "never" }),
      ], async (sup, events) => {
        await until("failed after intensity", () => sup.get("c").state === "failed");
        const t = transitions(events, "c");
        assert(t.includes("ready->restarting:crash"), t.join(" "));
        assertMatch(sup.get("c").info().lastFailure ?? "", /uncaught .*boom/);
        await until("m failed", () => sup.get("m").state === "failed");
        assertMatch(sup.get("m").info().lastFailure ?? "", /module not found/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a subsystem that exits at once, in a loop, never takes keepwire down",
  ignore: !haveSetsid,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const okMod = join(dir, "ok_worker.ts");
      await Deno.writeTextFile(okMod, `import { ready } from "${SDK}";\nready();\n`);
      await withSupervisor([
        spec({
          name: "loop",
          kind: "process",
          module: undefined,
          command: "/bin/sh",
          args: ["-c", "exit 3"],
          backoff: { initialMs: 1, maxMs: 5, multiplier: 2, jitter: 0, resetAfterMs: 60_000 },
          intensity: { maxRestarts: 100_000, periodSec: 60 },
        }),
        spec({
          name: "gives-up",
          kind: "process",
          module: undefined,
          command: "/bin/false",
          backoff: { initialMs: 1, maxMs: 5, multiplier: 2, jitter: 0, resetAfterMs: 60_000 },
          intensity: { maxRestarts: 5, periodSec: 60 },
        }),
        spec({ name: "steady", module: okMod, heartbeat: { intervalMs: 50, timeoutMs: 1000 } }),
      ], async (sup) => {
        // measure our own event-loop lag while the loop hammers us for 2 s
        let maxLag = 0;
        let last = performance.now();
        const probe = setInterval(() => {
          const now = performance.now();
          maxLag = Math.max(maxLag, now - last - 20);
          last = now;
        }, 20);
        const loop = sup.get("loop");
        try {
          // hammered for at least 2 s and at least 20 restarts (deadline: a busy machine)
          const t0 = Date.now();
          await until(
            "20 restarts and 2 s of hammering",
            () => loop.restarts >= 20 && Date.now() - t0 >= 2000,
            60_000,
          );
          await until("gives-up failed", () => sup.get("gives-up").state === "failed", 30_000);
        } finally {
          clearInterval(probe);
        }
        assert(["restarting", "starting"].includes(loop.state), loop.state);
        assertEquals(sup.get("gives-up").state, "failed");
        assertEquals(sup.get("gives-up").restarts, 5);
        assertEquals(sup.get("steady").state, "ready");
        assertEquals(sup.get("steady").restarts, 0);
        assert(maxLag < 1000, `event loop lagged ${maxLag.toFixed(0)} ms`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "process: keepwire exiting abruptly (Deno.exit) takes its process groups along",
  ignore: !procOk,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-sup-" });
    try {
      const pidfile = join(dir, "child.pid");
      const script = join(dir, "svc.sh");
      await Deno.writeTextFile(
        script,
        `echo $$ > ${pidfile}\nsystemd-notify --ready\nwhile :; do sleep 1; done\n`,
      );
      const host = join(dir, "host.ts");
      const base = new URL("../", import.meta.url).href;
      await Deno.writeTextFile(
        host,
        `import { Supervisor } from "${base}mod/supervisor/supervisor.ts";\n` +
          `import { defaultRunners } from "${base}mod/supervisor/mod.ts";\n` +
          `import { WorkerPool } from "${base}mod/supervisor/worker.ts";\n` +
          `import { subsystemSpecSchema, supervisorConfigSchema } from "${base}mod/supervisor/config.ts";\n` +
          `import { systemClock } from "${base}mod/module.ts";\n` +
          `const sup = new Supervisor({ specs: [subsystemSpecSchema.parse({ name: "svc", kind: "process",` +
          ` command: "/bin/sh", args: [${
            JSON.stringify(script)
          }] })], config: supervisorConfigSchema.parse({}),` +
          ` clock: systemClock, publish: () => {}, runners: defaultRunners(new WorkerPool(0)),` +
          ` escalation: { bypassHold: async () => {}, bypassRelease: async () => {}, reboot: async () => {} } });\n` +
          `await sup.startAll();\n` +
          `while (sup.get("svc").state !== "ready") await new Promise((r) => setTimeout(r, 10));\n` +
          `Deno.exit(3);\n`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-check",
          "--unstable-net",
          `--config=${new URL("../deno.json", import.meta.url).pathname}`,
          host,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 3, new TextDecoder().decode(out.stderr));
      const child = Number(await Deno.readTextFile(pidfile));
      await until("child gone", () => !pidAlive(child), 5000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "process: keepwire killed -9 leaves its process subsystem running; the next start ends it, exactly one copy runs, and an orderly stop leaves none",
  ignore: !haveSetsid,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-orphan-" });
    const secs = uniqueSleep();
    const argv = ["/bin/sleep", secs];
    const cfg = join(dir, "keepwire.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({
        subsystems: [{
          name: "sleeper",
          kind: "process",
          command: "/bin/sleep",
          args: [secs],
          readyOn: "spawn",
        }],
      }),
    );
    const args = ["--config", cfg, "--data", dir, "--listen", "127.0.0.1:0"];
    const daemons: Deno.ChildProcess[] = [];
    try {
      const first = await kwDaemon(args);
      daemons.push(first.child);
      await waitFor(() => processesWithArgv(argv).length === 1, 30_000, "the first copy");
      const [orphan] = processesWithArgv(argv);
      first.child.kill("SIGKILL");
      await first.child.status;
      assert(pidAlive(orphan), "the subsystem died with keepwire (nothing to test)");

      const second = await kwDaemon(args);
      daemons.push(second.child);
      await waitFor(
        () => !pidAlive(orphan) && processesWithArgv(argv).length === 1,
        30_000,
        "the orphan ended and one new copy",
      );
      const store = new Store({ path: join(dir, "keepwire.db") });
      const ended = store.events({ kind: "supervisor.orphan_ended" });
      store.close();
      assertEquals(ended.map((e) => [e.payload.subsystem, e.payload.pgid]), [["sleeper", orphan]]);

      second.child.kill("SIGTERM");
      assertEquals((await second.child.status).code, 0, second.output());
      await waitFor(() => processesWithArgv(argv).length === 0, 10_000, "no copy after stop");
    } finally {
      for (const c of daemons) {
        try {
          c.kill("SIGKILL");
        } catch { /* exited */ }
        await c.status;
      }
      for (const pid of processesWithArgv(argv)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "process groups: a recorded pid now used by another program is never signalled",
  ignore: !haveSetsid,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-orphan-" });
    const secs = uniqueSleep();
    const stranger = new Deno.Command("setsid", { args: ["/bin/sleep", secs] }).spawn();
    try {
      await waitFor(() => processesWithArgv(["/bin/sleep", secs]).length === 1);
      const [pid] = processesWithArgv(["/bin/sleep", secs]);
      const start = processStartTime(pid)!;
      // as if a previous keepwire had recorded this pid, but for a process started earlier
      await Deno.writeTextFile(
        join(dir, GROUPS_FILE),
        JSON.stringify({
          bootId: bootId(),
          groups: [{ name: "x", pgid: pid, start: String(Number(start) - 1) }],
        }),
      );
      assertEquals(await new GroupLedger(dir).endPrevious(() => 100), []);
      assert(pidAlive(pid), "a reused pid was killed");
      // the same record with the right start time: ended
      await Deno.writeTextFile(
        join(dir, GROUPS_FILE),
        JSON.stringify({ bootId: bootId(), groups: [{ name: "x", pgid: pid, start }] }),
      );
      const ended = await new GroupLedger(dir).endPrevious(() => 5000);
      assertEquals(ended.map((e) => [e.name, e.pgid, e.forced]), [["x", pid, false]]);
      await waitFor(() => !pidAlive(pid), 5000, "ended");
      assertEquals(
        JSON.parse(await Deno.readTextFile(join(dir, GROUPS_FILE))).groups,
        [],
        "the record starts fresh",
      );
    } finally {
      try {
        stranger.kill("SIGKILL");
      } catch { /* gone */ }
      await stranger.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
