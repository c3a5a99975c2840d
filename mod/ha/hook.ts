/**
 * The notify hook (`ha.hook`): a configured command keepwire runs when this node's role
 * becomes active, standby, fault or maintenance — what moves the service where there is
 * no shared address to move (a layer-3 pair: a route on a router, a DNS record, a hosts
 * file). Its environment says what happened:
 *
 * | variable                  | value                                                      |
 * | ------------------------- | ---------------------------------------------------------- |
 * | `KW_HA_ROLE`              | the new role: `active`, `standby`, `fault`, `maintenance`  |
 * | `KW_HA_OLD_ROLE`          | the role before                                            |
 * | `KW_HA_CAUSE`             | `engine`, `engine-down`, `maintenance`, ... (role.ts)       |
 * | `KW_HA_REASON`            | the transition's reason for a person                       |
 * | `KW_HA_NODE`, `KW_HA_PEER`| this node's id, the peer's (id or address)                 |
 * | `KW_HA_VIRTUAL_ADDRESSES` | the virtual addresses, space-separated (may be empty)      |
 *
 * plus keepwire's own environment. One hook runs at a time, in order; while one runs,
 * only the latest further transition is kept (the final role is what counts). Each run
 * is bounded by `ha.hook.timeoutMs` (then SIGKILL); a run that exits non-zero, is
 * killed or cannot start is a failure, journalled by the module (`ha.hook_failed`) with
 * its output's tail. The hook runs beside keepalived's own transition (the address, if
 * any, moved already): it never delays or vetoes the role change.
 * @module
 */

/** The roles whose entry runs the hook. */
export const HOOK_ROLES: readonly string[] = ["active", "standby", "fault", "maintenance"];

/** Output kept from a run (tail). */
const OUTPUT_MAX = 2000;

/** One transition handed to the hook. */
export interface HookTransition {
  /** The new role. */
  role: string;
  /** The role before. */
  from: string;
  /** Machine-readable cause. */
  cause: string;
  /** For a person. */
  reason: string;
}

/** What one run did. */
export interface HookResult {
  /** Exit code 0 within the time. */
  ok: boolean;
  /** Exit code, or null (killed, not started). */
  code: number | null;
  /** Killed after `timeoutMs`. */
  timedOut: boolean;
  /** Wall time of the run. */
  ms: number;
  /** Tail of stdout + stderr. */
  output: string;
  /** Why it failed, for a person (null when ok). */
  error: string | null;
}

/** Runs argv with extra environment, bounded; never throws. */
export type HookSpawn = (
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
) => Promise<HookResult>;

/** The real spawn: a child process, SIGKILL after `timeoutMs`. */
export const spawnHook: HookSpawn = async (
  argv: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<HookResult> => {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    const error = `cannot run ${argv[0]}: ${(e as Error).message}`;
    return { ok: false, code: null, timedOut: false, ms: ms(), output: "", error };
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const dec = new TextDecoder();
  let output = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    try {
      for await (const c of s) output = (output + dec.decode(c)).slice(-OUTPUT_MAX);
    } catch { /* closed */ }
  };
  const [status] = await Promise.all([child.status, collect(child.stdout), collect(child.stderr)]);
  clearTimeout(timer);
  const ok = status.success && !timedOut;
  const error = ok
    ? null
    : timedOut
    ? `killed after ${timeoutMs} ms (ha.hook.timeoutMs)`
    : status.signal
    ? `killed by ${status.signal}`
    : `exited with code ${status.code}`;
  return { ok, code: status.signal ? null : status.code, timedOut, ms: ms(), output, error };
};

/** Options of {@link HookRunner}. */
export interface HookRunnerOptions {
  /** argv (absolute path first). */
  command: string[];
  timeoutMs: number;
  /** The fixed part of the environment (node, peer, addresses). */
  env: Record<string, string>;
  /** Replace the spawn (tests). */
  spawn?: HookSpawn;
  /** The clock's now (the time of a result). */
  now: () => number;
  /** Every run's result (the module journals failures). */
  onResult(t: HookTransition, r: HookResult): void;
}

/** What the status shows. */
export interface HookView {
  /** A run in progress for this role, or null. */
  running: string | null;
  /** The last finished run, or null. */
  last: (HookTransition & HookResult & { at: string }) | null;
  /** Runs and failures since start. */
  runs: number;
  failures: number;
}

/** Runs the hook on role changes, one at a time, the latest pending only. */
export class HookRunner {
  #o: HookRunnerOptions;
  #running: HookTransition | null = null;
  #pending: HookTransition | null = null;
  #last: HookView["last"] = null;
  #runs = 0;
  #failures = 0;
  #loop: Promise<void> | null = null;

  /** Build one (nothing runs until a transition). */
  constructor(o: HookRunnerOptions) {
    this.#o = o;
  }

  /** A role change: runs the hook when `to` is one of {@link HOOK_ROLES}. */
  transition(t: HookTransition): void {
    if (!HOOK_ROLES.includes(t.role)) return;
    this.#pending = t;
    this.#loop ??= this.#drain();
  }

  /** Resolves when no hook runs or waits (tests, stop). */
  async idle(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /** For the status. */
  get view(): HookView {
    return {
      running: this.#running?.role ?? null,
      last: this.#last,
      runs: this.#runs,
      failures: this.#failures,
    };
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending) {
        const t = this.#pending;
        this.#pending = null;
        this.#running = t;
        const env = {
          ...this.#o.env,
          KW_HA_ROLE: t.role,
          KW_HA_OLD_ROLE: t.from,
          KW_HA_CAUSE: t.cause,
          KW_HA_REASON: t.reason,
        };
        const r = await (this.#o.spawn ?? spawnHook)(this.#o.command, env, this.#o.timeoutMs);
        this.#running = null;
        this.#runs++;
        if (!r.ok) this.#failures++;
        this.#last = { ...t, ...r, at: new Date(this.#o.now()).toISOString() };
        try {
          this.#o.onResult(t, r);
        } catch { /* a listener's problem is not the hook's */ }
      }
    } finally {
      this.#loop = null;
    }
  }
}
