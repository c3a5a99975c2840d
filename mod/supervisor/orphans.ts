/**
 * No subsystem process outlives keepwire's death or runs twice. Every process
 * subsystem runs in its own session and process group (process.ts); keepwire records
 * each group it spawns in the data directory (`process-groups.json`: the group id,
 * the leader's start time from /proc/PID/stat field 22, and the boot id), and drops it
 * when the group is gone. keepwire cannot stop its groups when it is killed with
 * SIGKILL (PR_SET_PDEATHSIG does not reach a setsid'd grandchild either), so the next
 * start on the same data directory ends whatever the record still names, before any
 * subsystem starts: SIGTERM to the session, SIGKILL after a timeout.
 *
 * A recorded pid is only signalled when its start time and the boot id still match, so
 * a pid the kernel reused for another program is never hit. Members of a recorded
 * session whose leader already exited are ended too (Linux does not reuse a pid while
 * it names a live session). A process that left the session with setsid(2) is out of
 * reach here: under systemd, `KillMode=control-group` ends it.
 * @module
 */
import { join } from "node:path";
import { z } from "zod";
import { sessionMembers } from "./procfs.ts";

/** File name of the record inside the data directory. */
export const GROUPS_FILE = "process-groups.json";

const recordSchema = z.lazy(() =>
  z.object({
    bootId: z.string(),
    groups: z.array(z.object({
      name: z.string(),
      pgid: z.number().int().positive(),
      start: z.string().regex(/^\d+$/),
    })),
  })
);

/** One recorded process group. */
export type RecordedGroup = { name: string; pgid: number; start: string };

/** A previous incarnation's group that was ended at start. */
export type EndedGroup = {
  /** Subsystem name. */
  name: string;
  /** Process group (and session) id. */
  pgid: number;
  /** Processes signalled. */
  pids: number[];
  /** True when SIGKILL was needed after the timeout. */
  forced: boolean;
};

/** Start time of a process (clock ticks since boot, /proc/PID/stat field 22), or null. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // fields after "comm)" start at field 3 (state); field 22 is index 19
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/** The kernel's boot id (changes on every boot), or "" when unknown. */
export function bootId(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "";
  }
}

/**
 * The record of live process groups in the data directory. Writes are synchronous
 * and atomic (temporary file, then rename), so a kill -9 at any moment leaves either
 * the old or the new record.
 */
export class GroupLedger {
  readonly #path: string;
  readonly #boot = bootId();
  #groups: RecordedGroup[] = [];

  /** A ledger in `dataDir` (nothing is read or written until used). */
  constructor(dataDir: string) {
    this.#path = join(dataDir, GROUPS_FILE);
  }

  /** Path of the record. */
  get path(): string {
    return this.#path;
  }

  /** The groups recorded now. */
  get groups(): readonly RecordedGroup[] {
    return this.#groups;
  }

  /** Record a group just spawned (its leader's pid is the pgid). */
  add(name: string, pgid: number): void {
    const start = processStartTime(pgid);
    if (start === null) return; // already gone: nothing to end later
    this.#groups = [...this.#groups.filter((g) => g.pgid !== pgid), { name, pgid, start }];
    this.#write();
  }

  /** Forget a group that is gone. */
  remove(pgid: number): void {
    if (!this.#groups.some((g) => g.pgid === pgid)) return;
    this.#groups = this.#groups.filter((g) => g.pgid !== pgid);
    this.#write();
  }

  /**
   * End every group a previous incarnation recorded and left running, then start a
   * fresh record. `timeoutMs(name)`: time between SIGTERM and SIGKILL.
   */
  async endPrevious(timeoutMs: (name: string) => number): Promise<EndedGroup[]> {
    const previous = this.#read();
    const ended: EndedGroup[] = [];
    if (previous && previous.bootId === this.#boot) {
      const jobs = previous.groups.map(async (g) => {
        const pids = remainingOf(g);
        if (!pids.length) return;
        const forced = await endProcesses(g, timeoutMs(g.name));
        ended.push({ name: g.name, pgid: g.pgid, pids, forced });
      });
      await Promise.all(jobs);
    }
    this.#groups = [];
    this.#write();
    return ended;
  }

  #read(): z.infer<typeof recordSchema> | null {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.#path);
    } catch {
      return null;
    }
    try {
      const r = recordSchema.safeParse(JSON.parse(text.slice(0, 1_000_000)));
      return r.success ? r.data : null;
    } catch {
      return null;
    }
  }

  #write(): void {
    const tmp = `${this.#path}.tmp`;
    try {
      Deno.writeTextFileSync(
        tmp,
        JSON.stringify({ bootId: this.#boot, groups: this.#groups }) + "\n",
        { mode: 0o600 },
      );
      Deno.renameSync(tmp, this.#path);
    } catch (e) {
      console.error(`keepwire: cannot record process groups in ${this.#path}: ${e}`);
    }
  }
}

/**
 * The processes of a recorded group still running: its session's members, unless the
 * leader's pid now belongs to another program (start time differs).
 */
function remainingOf(g: RecordedGroup): number[] {
  const leaderStart = processStartTime(g.pgid);
  if (leaderStart !== null && leaderStart !== g.start) return []; // pid reused
  return sessionMembers(g.pgid);
}

/** SIGTERM (and SIGCONT), then SIGKILL what is left after `timeoutMs`; true when forced. */
async function endProcesses(g: RecordedGroup, timeoutMs: number): Promise<boolean> {
  const signal = (sig: Deno.Signal) => {
    for (const pid of sessionMembers(g.pgid)) {
      try {
        Deno.kill(pid, sig);
      } catch { /* gone */ }
    }
  };
  signal("SIGTERM");
  signal("SIGCONT"); // a stopped (suspended) process must run to see SIGTERM
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!sessionMembers(g.pgid).length) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  signal("SIGKILL");
  const killDeadline = Date.now() + 5000;
  while (sessionMembers(g.pgid).length && Date.now() < killDeadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
