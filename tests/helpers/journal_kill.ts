/**
 * Test helper: run tests/helpers/journal_burst.ts as a child on `dir` and kill it with SIGKILL
 * in the middle of its burst, collecting the events it acknowledged before the kill.
 */

const BURST = new URL("./journal_burst.ts", import.meta.url).pathname;

/** What the parent saw of one burst. */
export interface BurstKill {
  /** Acknowledged event id → its `seq` payload, as printed before the kill. */
  acked: Map<number, number>;
  /** Whether the kill was sent (false: the burst ended, or the deadline passed, first). */
  killed: boolean;
  /** The child's exit status. */
  status: Deno.CommandStatus;
}

/**
 * Publish `events` events in a child runtime on `dir` and SIGKILL it once it has started and
 * acknowledged at least `killAfter`. Reading gives up after `deadlineMs` (checked between
 * reads of the child's output). The child's stderr goes to `stderr`.
 */
export async function burstAndKill(
  dir: string,
  events: number,
  killAfter: number,
  opts: { stderr: "inherit" | "null"; deadlineMs?: number },
): Promise<BurstKill> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BURST, dir, String(events)],
    stdout: "piped",
    stderr: opts.stderr,
  }).spawn();
  const acked = new Map<number, number>();
  let killed = false;
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", started = false;
    const deadline = Date.now() + (opts.deadlineMs ?? Infinity);
    outer: while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === "started") started = true;
        const m = /^ack (\d+) (\d+)$/.exec(line);
        if (m) acked.set(Number(m[1]), Number(m[2]));
        if (started && acked.size >= killAfter && !killed) {
          child.kill("SIGKILL");
          killed = true;
          break outer;
        }
      }
    }
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    return { acked, killed, status: await child.status };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}
