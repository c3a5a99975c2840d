/**
 * Chaos: random kills and hangs of the subsystems of a running keepwire.
 *
 * A real runtime (as `keepwire run` builds it) supervises two process subsystems: `pinger`,
 * a shell script that says READY=1 and sends WATCHDOG=1 every 100 ms through the real
 * `systemd-notify` (heartbeat timeout 600 ms), and `sleeper`, a `/bin/sleep` ready on spawn.
 * Each injection picks one at random and either kills its main process with SIGKILL (a crash)
 * or, for `pinger`, freezes its whole process group with SIGSTOP (a hang: only the heartbeat
 * timeout can tell).
 *
 * An injection survived when, within 20 s, the subsystem is ready again with exactly one more
 * restart than before, the old process is gone, and exactly one copy of it runs. At the end the
 * restart count of each subsystem must equal the faults injected into it, and after an orderly
 * stop no copy may be left. Worker subsystems are not injected here: a worker has no process
 * of its own to kill, and a hung worker thread is leaked by Deno 2.9 (see docs/supervisor.md).
 */
import { join } from "node:path";
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import type { SupervisorModule } from "../mod/supervisor/mod.ts";
import { findExecutable } from "../mod/supervisor/process.ts";
import { pidAlive } from "../mod/supervisor/procfs.ts";
import { killAll, pollUntil, processesWithArgv, uniqueSleep } from "../tests/helpers/procs.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

const fastRestarts = {
  backoff: { initialMs: 10, maxMs: 50, multiplier: 2, jitter: 0, resetAfterMs: 60_000 },
  intensity: { maxRestarts: 100_000, periodSec: 1 },
};

const until = (cond: () => boolean, ms: number) => pollUntil(cond, ms, 10);

async function run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult> {
  const total = opts.bounded ? 100 : 1000;
  const haveNotify = findExecutable("systemd-notify") !== null;
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-kills-" });
  const script = join(dir, "pinger.sh");
  const secs = uniqueSleep();
  await Deno.writeTextFile(
    script,
    "systemd-notify --ready\nwhile :; do systemd-notify WATCHDOG=1; sleep 0.1; done\n",
  );
  const argv: Record<string, string[]> = {
    pinger: ["/bin/sh", script],
    sleeper: ["/bin/sleep", secs],
  };
  const subsystems = [
    { name: "sleeper", kind: "process", command: "/bin/sleep", args: [secs], readyOn: "spawn" },
    ...(haveNotify
      ? [{
        name: "pinger",
        kind: "process",
        command: "/bin/sh",
        args: [script],
        heartbeat: { intervalMs: 100, timeoutMs: 600 },
      }]
      : []),
  ].map((s) => ({ ...s, ...fastRestarts, stopTimeoutMs: 500 }));
  if (!haveNotify) opts.log("systemd-notify missing (package systemd): kills of sleeper only");
  const rt = new Runtime(
    validateConfig({
      dataDir: dir,
      web: { listen: "127.0.0.1:0" },
      governor: { enabled: false },
      subsystems,
    }),
  );
  let injected = 0;
  let survived = 0;
  let lost = 0;
  const per: Record<string, number> = { sleeper: 0, pinger: 0 };
  const kinds = { kill: 0, hang: 0 };
  let slowest = 0;
  try {
    await rt.start();
    const sup = rt.module<SupervisorModule>("supervisor")!;
    const info = (n: string) => sup.list().find((s) => s.name === n)!;
    const names = subsystems.map((s) => s.name);
    if (!await until(() => names.every((n) => info(n).state === "ready"), 30_000)) {
      throw new Error(`subsystems not ready: ${JSON.stringify(sup.list())}`);
    }
    for (let i = 0; i < total; i++) {
      const name = names[Math.floor(Math.random() * names.length)];
      const hang = name === "pinger" && Math.random() < 0.3;
      const before = info(name);
      const pid = before.pid!;
      injected++;
      per[name]++;
      kinds[hang ? "hang" : "kill"]++;
      const t0 = Date.now();
      try {
        if (hang) Deno.kill(-pid, "SIGSTOP");
        else Deno.kill(pid, "SIGKILL");
      } catch (e) {
        opts.log(`#${i} ${name}: could not signal ${pid}: ${(e as Error).message}`);
      }
      const ok = await until(() => {
        const now = info(name);
        return now.state === "ready" && now.restarts === before.restarts + 1 &&
          now.pid !== pid && !pidAlive(pid) && processesWithArgv(argv[name]).length === 1;
      }, 20_000);
      slowest = Math.max(slowest, Date.now() - t0);
      if (ok) survived++;
      else {
        lost++;
        const now = info(name);
        opts.log(
          `#${i} ${hang ? "hang" : "kill"} of ${name} (pid ${pid}): not recovered: ${now.state}, ` +
            `restarts ${before.restarts} -> ${now.restarts}, copies ${
              processesWithArgv(argv[name]).length
            }`,
        );
        // resynchronise so one failure is not counted again for every later injection
        await until(() => info(name).state === "ready", 20_000);
      }
      if ((i + 1) % 100 === 0) opts.log(`${i + 1}/${total} injected, ${lost} lost`);
    }
    for (const n of names) {
      if (info(n).restarts !== per[n]) {
        opts.log(`${n}: ${info(n).restarts} restarts counted for ${per[n]} faults`);
        lost += Math.abs(info(n).restarts - per[n]);
        survived = Math.max(0, injected - lost);
      }
    }
  } finally {
    await rt.stop("chaos done");
    const left = Object.values(argv).flatMap((a) => processesWithArgv(a));
    if (left.length) {
      opts.log(`after stop ${left.length} subsystem process(es) left: ${left.join(" ")}`);
      lost += left.length;
      survived = Math.max(0, injected - lost);
      killAll(left);
    }
    await Deno.remove(dir, { recursive: true });
  }
  return {
    injected,
    survived,
    lost,
    notes: `${kinds.kill} kill -9, ${kinds.hang} SIGSTOP hangs; recovered ready with one ` +
      `restart each, one copy; slowest ${slowest} ms`,
  };
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "subsystem_kills",
  description:
    "random kill -9 and SIGSTOP hangs of process subsystems: each recovered ready, restart counts exact, one copy, none after stop",
  run,
};
