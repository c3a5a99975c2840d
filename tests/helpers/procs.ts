/** Test helper: find live processes by their exact command line (from /proc). */

/** Pids of live (non-zombie) processes whose argv is exactly `argv`. */
export function processesWithArgv(argv: string[]): number[] {
  const want = argv.join("\0");
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replace(/\0$/, "");
      if (cmd !== want) continue;
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
      if (state !== "Z" && state !== "X") out.push(Number(e.name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A sleep duration no other process uses (to count one test's copies of /bin/sleep). */
export function uniqueSleep(): string {
  return `3600.${crypto.getRandomValues(new Uint32Array(1))[0]}`;
}

/** Poll until `cond` holds; throws after `ms`. */
export async function waitFor(cond: () => boolean, ms = 20_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Poll `cond` every `stepMs` until it holds (true) or `ms` pass (false); never throws. */
export async function pollUntil(cond: () => boolean, ms: number, stepMs = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}

/** SIGKILL every pid in `pids`, ignoring those already gone (cleanup after a test). */
export function killAll(pids: Iterable<number>): void {
  for (const p of pids) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** SIGTERM `child`, SIGKILL it if it has not exited after `graceMs`, and wait for its exit. */
export async function stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  const t = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  await child.status;
  clearTimeout(t);
}
