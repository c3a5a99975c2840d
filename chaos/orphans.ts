/**
 * Chaos: keepwire killed with SIGKILL while its process subsystems run, then started again on
 * the same data directory.
 *
 * A real `keepwire run` (a child process) supervises two process subsystems that do not speak
 * sd_notify: `/bin/sleep` (ready on spawn) and a shell loop that forks `sleep` children. Each
 * injection kills keepwire with SIGKILL, checks that the subsystems outlived it (otherwise
 * there was nothing to test), and starts keepwire again. It survived when, within 30 s, the
 * previous copies are gone and exactly one copy of each subsystem runs. After the last cycle an
 * orderly stop must leave no copy at all (counted as one more injection).
 */
import { join } from "node:path";
import { kwDaemon } from "../tests/helpers/cli.ts";
import { killAll, pollUntil, processesWithArgv, uniqueSleep } from "../tests/helpers/procs.ts";
import { pidAlive } from "../mod/supervisor/procfs.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

const until = (cond: () => boolean, ms: number) => pollUntil(cond, ms);

async function run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult> {
  const cycles = opts.bounded ? 5 : 50;
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-orphans-" });
  const secs = uniqueSleep();
  const loop = join(dir, "loop.sh");
  await Deno.writeTextFile(loop, "while :; do sleep 0.2; done\n");
  const copies = {
    sleeper: () => processesWithArgv(["/bin/sleep", secs]),
    looper: () => processesWithArgv(["/bin/sh", loop]),
  };
  const cfg = join(dir, "keepwire.json");
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      governor: { enabled: false },
      subsystems: [
        { name: "sleeper", kind: "process", command: "/bin/sleep", args: [secs], readyOn: "spawn" },
        { name: "looper", kind: "process", command: "/bin/sh", args: [loop], readyOn: "spawn" },
      ],
    }),
  );
  const args = ["--config", cfg, "--data", dir, "--listen", "127.0.0.1:0"];
  const one = () => Object.values(copies).every((c) => c().length === 1);
  let injected = 0;
  let survived = 0;
  let lost = 0;
  let daemon = await kwDaemon(args);
  try {
    if (!await until(one, 30_000)) throw new Error("the subsystems did not start");
    for (let i = 0; i < cycles; i++) {
      const before = Object.values(copies).flatMap((c) => c());
      daemon.child.kill("SIGKILL");
      await daemon.child.status;
      injected++;
      const outlived = before.filter(pidAlive).length;
      daemon = await kwDaemon(args);
      const ok = await until(() => one() && before.every((p) => !pidAlive(p)), 30_000);
      if (ok) survived++;
      else {
        lost++;
        opts.log(
          `cycle ${i}: ${copies.sleeper().length} sleeper and ${copies.looper().length} looper ` +
            `copies; previous still alive: ${before.filter(pidAlive).join(" ") || "none"}`,
        );
      }
      if (outlived === 0) opts.log(`cycle ${i}: the subsystems died with keepwire`);
    }
    // one more check, counted like a cycle: an orderly stop leaves no copy
    injected++;
    daemon.child.kill("SIGTERM");
    const st = await daemon.child.status;
    if (st.code !== 0) opts.log(`orderly stop exited ${st.code}: ${daemon.output().slice(-500)}`);
    if (await until(() => Object.values(copies).every((c) => c().length === 0), 10_000)) {
      survived++;
    } else {
      const left = Object.values(copies).flatMap((c) => c());
      opts.log(`after an orderly stop ${left.length} copies are left`);
      lost++;
    }
  } finally {
    try {
      daemon.child.kill("SIGKILL");
    } catch { /* exited */ }
    await daemon.child.status;
    killAll(Object.values(copies).flatMap((c) => c()));
    await Deno.remove(dir, { recursive: true });
  }
  return {
    injected,
    survived,
    lost,
    notes: `${cycles} kill -9 of keepwire + restart (exactly one copy of each of 2 process ` +
      `subsystems), then an orderly stop (none left)`,
  };
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "orphans",
  description:
    "kill -9 of keepwire with process subsystems running, then restart on the same data directory: exactly one copy of each, none after an orderly stop",
  run,
};
