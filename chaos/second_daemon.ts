/**
 * Chaos: a second `keepwire run` on the data directory of a running one (an operator's
 * mistake, a unit started twice).
 *
 * A real `keepwire run` (a child process) supervises a process subsystem and a bypass segment.
 * Each injection starts a second `keepwire run` on the same data directory (on another port).
 * It survived when the second one exits 1 within 30 s with a message naming the first one's
 * pid, and the first is untouched: the same control socket (inode) answers, its journal has no
 * new `runtime.*`, `bypass.*` or `supervisor.transition` event, its bypass segments are inline
 * with no hold, and its subsystem runs as the same single process with no restart.
 */
import { join } from "node:path";
import { kwDaemon, MAIN } from "../tests/helpers/cli.ts";
import { killAll, processesWithArgv, uniqueSleep } from "../tests/helpers/procs.ts";
import { controlSocketPath, daemonRequest } from "../mod/cli/client.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

type Sub = { name: string; pid: number | null; restarts: number; state: string };
type Seg = { name: string; mode: string; holds: unknown[] };
type Ev = { id: number; kind: string };

/** `keepwire run ...args` to its end, or killed after `ms` (then null). */
async function runOnce(
  args: string[],
  ms: number,
): Promise<{ code: number; stderr: string } | null> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const out = await child.output();
  clearTimeout(timer);
  return out.signal === "SIGKILL"
    ? null
    : { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult> {
  const attempts = opts.bounded ? 5 : 25;
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-second-" });
  const secs = uniqueSleep();
  const cfg = join(dir, "keepwire.json");
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      governor: { enabled: false },
      subsystems: [
        { name: "sleeper", kind: "process", command: "/bin/sleep", args: [secs], readyOn: "spawn" },
      ],
    }),
  );
  const args = ["--config", cfg, "--data", dir, "--listen", "127.0.0.1:0"];
  const first = await kwDaemon(args);
  const ask = <T>(path: string) => daemonRequest<T>(dir, "GET", path);
  let injected = 0;
  let survived = 0;
  let lost = 0;
  try {
    const deadline = Date.now() + 30_000;
    let subs: Sub[] = [];
    while (Date.now() < deadline) {
      subs = (await ask<{ subsystems: Sub[] }>("/api/subsystems")).subsystems;
      if (subs[0]?.state === "ready") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (subs[0]?.state !== "ready") throw new Error(`subsystem not ready: ${JSON.stringify(subs)}`);
    const pid = subs[0].pid;
    const inode = (await Deno.stat(controlSocketPath(dir))).ino;
    const lastId = (await ask<{ events: Ev[] }>("/api/events?limit=1")).events[0]?.id ?? 0;
    for (let i = 0; i < attempts; i++) {
      injected++;
      const problems: string[] = [];
      const second = await runOnce(args, 30_000);
      if (!second) problems.push("the second run did not exit within 30 s");
      else {
        if (second.code !== 1) problems.push(`the second run exited ${second.code}`);
        if (!second.stderr.includes(`in use by keepwire pid ${first.child.pid}`)) {
          problems.push(`no holder pid in: ${second.stderr.trim().slice(0, 200)}`);
        }
      }
      try {
        if ((await Deno.stat(controlSocketPath(dir))).ino !== inode) {
          problems.push("the control socket was replaced");
        }
        const now = (await ask<{ subsystems: Sub[] }>("/api/subsystems")).subsystems[0];
        if (now.pid !== pid || now.restarts !== 0 || now.state !== "ready") {
          problems.push(`subsystem changed: ${JSON.stringify(now)}`);
        }
        const copies = processesWithArgv(["/bin/sleep", secs]).length;
        if (copies !== 1) problems.push(`${copies} copies of the subsystem`);
        const segs = (await ask<{ segments: Seg[] }>("/api/bypass")).segments;
        if (segs.some((s) => s.mode !== "inline" || s.holds.length)) {
          problems.push(`bypass changed: ${JSON.stringify(segs)}`);
        }
        const events = (await ask<{ events: Ev[] }>(`/api/events?since=${lastId}&limit=1000`))
          .events.filter((e) =>
            /^(runtime|bypass)\./.test(e.kind) || e.kind === "supervisor.transition"
          );
        if (events.length) problems.push(`journalled: ${events.map((e) => e.kind).join(" ")}`);
      } catch (e) {
        problems.push(`the first daemon does not answer: ${(e as Error).message}`);
      }
      if (problems.length) {
        lost++;
        opts.log(`attempt ${i}: ${problems.join("; ")}`);
      } else survived++;
    }
  } finally {
    first.child.kill("SIGTERM");
    await first.child.status;
    killAll(processesWithArgv(["/bin/sleep", secs]));
    await Deno.remove(dir, { recursive: true });
  }
  return {
    injected,
    survived,
    lost,
    notes: "second keepwire run on the same data dir: exit 1 naming the holder; the first's " +
      "socket, journal, bypass and subsystem untouched",
  };
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "second_daemon",
  description:
    "a second keepwire run on the data directory of a running one: refused, naming the holder's pid; the first untouched",
  run,
};
