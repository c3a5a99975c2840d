/**
 * Process subsystems: any executable, run in its own session and process group
 * (Deno.Command has no setsid option, so a two-line launcher does it:
 * `/bin/sh -c 'export WATCHDOG_PID=$$; exec setsid -- "$@"'`; sh exec's setsid, and
 * setsid exec's the program without forking because the child is not a group
 * leader, so the program keeps the pid Deno spawned and that pid is its pgid and sid).
 *
 * Readiness and heartbeats come over sd_notify (notify.ts): NOTIFY_SOCKET,
 * WATCHDOG_USEC and WATCHDOG_PID are passed. stdout/stderr go to the journal line
 * by line, rate limited. Stop = SIGTERM to the group, SIGKILL after the stop
 * timeout; when the main process ends, whatever is left in its session is killed,
 * so no orphan survives.
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { type Clock, systemClock, type TimerId } from "../module.ts";
import type { Publish } from "./events.ts";
import type { SubsystemSpec } from "./config.ts";
import type { ExitInfo, Runner, RunnerContext, RunnerEvents } from "./runner.ts";
import { type HubNotify, type NotifyHub, type NotifyMessage, NotifyServer } from "./notify.ts";
import type { GroupLedger } from "./orphans.ts";
import { killGroup, pidAlive, sessionMembers } from "./procfs.ts";

/** A process runner's context: the common one, plus where spawned groups are recorded. */
export interface ProcessRunnerContext extends RunnerContext {
  /** Records each spawned group in the data directory (orphans.ts); none in unit tests. */
  groups?: GroupLedger;
  /** The subsystem's SDK socket (mod/sdk/socket.ts), passed as KEEPWIRE_SDK_SOCKET. */
  sdkSocket?: (name: string, ids?: { uid: number; gid: number }) => string;
  /**
   * Receive sd_notify on this hub's thread (heartbeats cost the main thread nothing);
   * without one, or on a test clock, each run receives on the main thread.
   */
  notifyHub?: NotifyHub;
}

const LAUNCH_WD = 'export WATCHDOG_PID=$$; exec "$0" -- "$@"';
const LAUNCH = 'exec "$0" -- "$@"';

/** Find an executable: a path with `/` as is (relative to cwd), else search PATH. */
export function findExecutable(
  command: string,
  path = Deno.env.get("PATH") ?? "/usr/bin:/bin",
  cwd?: string,
): string | null {
  const ok = (p: string) => {
    try {
      const st = Deno.statSync(p);
      return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  };
  if (command.includes("/")) {
    const p = isAbsolute(command) ? command : resolve(cwd ?? Deno.cwd(), command);
    return ok(p) ? p : null;
  }
  for (const dir of path.split(":")) {
    if (!dir) continue;
    const p = join(dir, command);
    if (ok(p)) return p;
  }
  return null;
}

let setsidPath: string | null | undefined;

/** Path of util-linux `setsid`, or an error naming the package. */
export function setsidBinary(): string {
  setsidPath ??= findExecutable("setsid", `${Deno.env.get("PATH") ?? ""}:/usr/bin:/bin`);
  if (!setsidPath) {
    throw new Error("setsid not found: install util-linux (process subsystems need it)");
  }
  return setsidPath;
}

/** uid and gid of a user name or numeric uid (from /etc/passwd). */
export function lookupUser(user: string, passwd?: string): { uid: number; gid: number } {
  const text = passwd ?? Deno.readTextFileSync("/etc/passwd");
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    if (f[0] === user || (/^\d+$/.test(user) && f[2] === user)) {
      return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  }
  if (/^\d+$/.test(user)) return { uid: Number(user), gid: Number(user) };
  throw new Error(`unknown user "${user}"`);
}

/** Token bucket for journaled output lines. */
export class LineLimiter {
  #tokens: number;
  #last: number;
  #dropped = 0;
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;

  /** `rate` lines/s sustained, `burst` at once. */
  constructor(rate: number, burst: number, now: () => number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#last = now();
  }

  /** May this line be journaled? Returns the lines dropped before it (to report) or -1 to drop. */
  take(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate / 1000);
    this.#last = now;
    if (this.#tokens < 1) {
      this.#dropped++;
      return -1;
    }
    this.#tokens--;
    const d = this.#dropped;
    this.#dropped = 0;
    return d;
  }
}

const limiters = new WeakMap<SubsystemSpec, LineLimiter>();

/** Process groups alive now: killed if keepwire exits without stopping them (Deno.exit). */
const liveGroups = new Set<number>();
let unloadHooked = false;

function trackGroup(pgid: number): void {
  liveGroups.add(pgid);
  if (unloadHooked) return;
  unloadHooked = true;
  globalThis.addEventListener("unload", () => {
    for (const g of liveGroups) killGroup(g, "SIGKILL");
    liveGroups.clear();
  });
}

async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  try {
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
      while (buf.length > 4096) {
        onLine(buf.slice(0, 4096));
        buf = buf.slice(4096);
      }
    }
  } catch { /* stream cancelled */ }
  buf += dec.decode();
  if (buf) onLine(buf);
}

/** Runs one attempt of a process subsystem. */
export class ProcessRunner implements Runner {
  readonly #spec: SubsystemSpec;
  readonly #ev: RunnerEvents;
  readonly #clock: Clock;
  readonly #publish: Publish;
  readonly #limiter: LineLimiter;
  #child: Deno.ChildProcess | undefined;
  #notify: NotifyServer | HubNotify | undefined;
  readonly #hub: NotifyHub | undefined;
  #pgid = 0;
  #mainPid: number | null = null;
  #ending = false;
  #gone: Promise<void> = Promise.resolve();
  #goneResolve: () => void = () => {};
  #pollTimer: TimerId | undefined;
  #stopExtendedUntil = 0;
  readonly #groups: GroupLedger | undefined;
  readonly #sdkSocket: ProcessRunnerContext["sdkSocket"];

  /** Build for one attempt. */
  constructor(spec: SubsystemSpec, ev: RunnerEvents, ctx: ProcessRunnerContext) {
    this.#groups = ctx.groups;
    this.#sdkSocket = ctx.sdkSocket;
    // the hub stamps beats with Date.now: only comparable with the system clock
    this.#hub = ctx.clock === systemClock ? ctx.notifyHub : undefined;
    this.#spec = spec;
    this.#ev = ev;
    this.#clock = ctx.clock;
    this.#publish = ctx.publish;
    let lim = limiters.get(spec);
    if (!lim) {
      lim = new LineLimiter(
        ctx.config.output.linesPerSec,
        ctx.config.output.burst,
        () => ctx.clock.now(),
      );
      limiters.set(spec, lim);
    }
    this.#limiter = lim;
  }

  /** Main pid (MAINPID= when reported, else the spawned one). */
  get pid(): number | null {
    if (!this.#child) return null;
    return this.#mainPid ?? this.#pgid;
  }

  /** Last bare WATCHDOG=1 received on the hub thread (Date.now ms), or null. */
  lastHeartbeat(): number | null {
    return this.#notify && "lastBeat" in this.#notify ? this.#notify.lastBeat() : null;
  }

  /** Spawn in a new session; resolves once spawned. */
  async start(): Promise<void> {
    const spec = this.#spec;
    const cwd = spec.cwd ? resolve(spec.cwd) : undefined;
    const exe = findExecutable(spec.command!, undefined, cwd);
    if (!exe) throw new Error(`executable not found: ${spec.command}`);
    const setsid = setsidBinary();
    const ids = spec.user ? lookupUser(spec.user) : undefined;
    const notify = this.#hub ? await this.#hub.open(spec.name) : NotifyServer.open(spec.name);
    this.#notify = notify;
    const hb = spec.heartbeat;
    const env: Record<string, string> = {
      ...spec.env,
      NOTIFY_SOCKET: notify.address,
      KEEPWIRE_SUBSYSTEM: spec.name,
    };
    if (hb) env.WATCHDOG_USEC = String(hb.timeoutMs * 1000);
    if (this.#sdkSocket) env.KEEPWIRE_SDK_SOCKET = this.#sdkSocket(spec.name, ids);
    const { promise, resolve: done } = Promise.withResolvers<void>();
    this.#gone = promise;
    this.#goneResolve = done;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("/bin/sh", {
        args: ["-c", hb ? LAUNCH_WD : LAUNCH, setsid, exe, ...spec.args],
        env,
        cwd,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
      }).spawn();
    } catch (e) {
      notify.close();
      done();
      throw e;
    }
    this.#child = child;
    this.#pgid = child.pid;
    trackGroup(child.pid);
    this.#groups?.add(spec.name, child.pid);
    this.#ev.pid(child.pid);
    notify.serve((m) => this.#onNotify(m));
    pumpLines(child.stdout, (l) => this.#line("stdout", l));
    pumpLines(child.stderr, (l) => this.#line("stderr", l));
    child.status.then((st) => this.#onLeaderExit(st));
    if (spec.readyOn === "spawn") this.#ev.ready();
  }

  #line(stream: "stdout" | "stderr", line: string): void {
    const dropped = this.#limiter.take();
    if (dropped < 0) return;
    if (dropped > 0) {
      this.#publish({
        module: "supervisor",
        kind: "supervisor.output_dropped",
        severity: "warning",
        payload: { subsystem: this.#spec.name, dropped },
      });
    }
    this.#publish({
      module: "supervisor",
      kind: "supervisor.output",
      severity: stream === "stderr" ? "warning" : "info",
      payload: { subsystem: this.#spec.name, stream, line },
    });
  }

  #onNotify(m: NotifyMessage): void {
    const ev = this.#ev;
    if (m.problems.length) {
      this.#publish({
        module: "supervisor",
        kind: "supervisor.notify_invalid",
        severity: "warning",
        payload: { subsystem: this.#spec.name, problems: m.problems },
      });
    }
    if (m.status !== undefined) ev.status(m.status);
    if (m.mainPid !== undefined) {
      this.#mainPid = m.mainPid;
      ev.pid(m.mainPid);
    }
    if (m.errno !== undefined) ev.errno(m.errno);
    if (m.watchdogUsec !== undefined) ev.heartbeatTimeout(Math.ceil(m.watchdogUsec / 1000));
    if (m.extendTimeoutUsec !== undefined) {
      const ms = Math.ceil(m.extendTimeoutUsec / 1000);
      this.#stopExtendedUntil = this.#clock.now() + ms;
      ev.extendTimeout(ms);
    }
    if (m.queueDepth !== undefined) ev.queue(m.queueDepth, m.queueOldestMs ?? 0);
    if (m.ready) ev.ready();
    if (m.watchdog) ev.heartbeat();
    if (m.stopping) ev.stopping();
    if (m.trigger) ev.trigger("the subsystem sent WATCHDOG=trigger");
  }

  #onLeaderExit(st: Deno.CommandStatus): void {
    const main = this.#mainPid;
    if (!this.#ending && main !== null && main !== this.#pgid && pidAlive(main)) {
      // A forking daemon: the launcher exited, the MAINPID it reported lives on.
      this.#pollTimer = this.#clock.setInterval(() => {
        if (pidAlive(main)) return;
        this.#clock.clearInterval(this.#pollTimer!);
        this.#pollTimer = undefined;
        this.#finish({
          code: null,
          signal: null,
          clean: false,
          text: `main pid ${main} exited`,
          cause: "exit",
        });
      }, 100);
      return;
    }
    const info: ExitInfo = st.signal
      ? {
        code: st.code,
        signal: st.signal,
        clean: false,
        text: `killed by ${st.signal}`,
        cause: "signal",
      }
      : {
        code: st.code,
        signal: null,
        clean: st.code === 0,
        text: `exit code ${st.code}`,
        cause: "exit",
      };
    this.#finish(info);
  }

  #finish(info: ExitInfo): void {
    // Whatever is left of the group dies with its main process; then sweep the session.
    killGroup(this.#pgid, "SIGKILL");
    liveGroups.delete(this.#pgid);
    this.#sweep();
    this.#notify?.close();
    this.#goneResolve();
    if (!this.#ending) this.#ev.exited(info);
  }

  /** Kill processes that left the group but stayed in the session (setpgid). */
  #sweep(): void {
    const sid = this.#pgid;
    queueMicrotask(() => {
      for (const pid of sessionMembers(sid)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      this.#groups?.remove(sid);
    });
  }

  /** SIGTERM the group, SIGKILL after the timeout (EXTEND_TIMEOUT_USEC extends it). */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.#child) return;
    this.#ending = true;
    killGroup(this.#pgid, "SIGTERM");
    killGroup(this.#pgid, "SIGCONT"); // a suspended group must run to see SIGTERM
    const main = this.#mainPid;
    if (this.#pollTimer !== undefined && main !== null) {
      try {
        Deno.kill(main, "SIGTERM");
      } catch { /* gone */ }
    }
    const deadline = this.#clock.now() + timeoutMs;
    let timer: TimerId | undefined;
    const forced = new Promise<"timeout">((res) => {
      const tick = () => {
        const until = Math.max(deadline, this.#stopExtendedUntil);
        const left = until - this.#clock.now();
        if (left <= 0) return res("timeout");
        timer = this.#clock.setTimeout(tick, left);
      };
      tick();
    });
    const r = await Promise.race([this.#gone.then(() => "gone" as const), forced]);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    if (r === "timeout") {
      this.#publish({
        module: "supervisor",
        kind: "supervisor.stop_forced",
        severity: "warning",
        payload: { subsystem: this.#spec.name, afterMs: timeoutMs },
      });
      await this.kill();
    }
    this.#cleanup();
  }

  /** SIGKILL the group now; resolves when the main process is gone. */
  async kill(): Promise<void> {
    if (!this.#child) return;
    this.#ending = true;
    killGroup(this.#pgid, "SIGKILL");
    if (this.#mainPid !== null && this.#mainPid !== this.#pgid) {
      try {
        Deno.kill(this.#mainPid, "SIGKILL");
      } catch { /* gone */ }
    }
    if (this.#pollTimer !== undefined) {
      this.#clock.clearInterval(this.#pollTimer);
      this.#pollTimer = undefined;
      this.#finish({
        code: null,
        signal: "SIGKILL",
        clean: false,
        text: "killed",
        cause: "signal",
      });
    }
    await this.#gone;
    this.#cleanup();
  }

  #cleanup(): void {
    this.#notify?.close();
    if (this.#pollTimer !== undefined) this.#clock.clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  /** SIGSTOP the group. */
  suspend(): Promise<void> {
    if (this.#child) killGroup(this.#pgid, "SIGSTOP");
    return Promise.resolve();
  }

  /** SIGCONT the group. */
  resume(): Promise<void> {
    if (this.#child) killGroup(this.#pgid, "SIGCONT");
    return Promise.resolve();
  }
}

/** Runner factory for process subsystems. */
export function createProcessRunner(
  spec: SubsystemSpec,
  ev: RunnerEvents,
  ctx: ProcessRunnerContext,
): Runner {
  return new ProcessRunner(spec, ev, ctx);
}
