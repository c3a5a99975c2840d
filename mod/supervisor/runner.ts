/**
 * The contract between a subsystem's state machine (state.ts) and the thing that
 * runs it: a Worker (worker.ts), a process group (process.ts) or a probe (probe.ts).
 * One Runner instance runs one attempt; a restart builds a new one.
 * @module
 */
import type { Clock } from "../module.ts";
import type { Publish } from "./events.ts";
import type { SubsystemSpec, SupervisorConfig } from "./config.ts";

/** How one run ended. */
export interface ExitInfo {
  /** Exit code, when the run ended with one. */
  code: number | null;
  /** Terminating signal, when killed by one. */
  signal: string | null;
  /** A clean end (exit code 0, `onStop` finished): restart policy on-failure does not restart. */
  clean: boolean;
  /** What happened, for a person: `exit code 3`, `killed by SIGKILL`, `uncaught Error: boom`. */
  text: string;
  /** Kind of end. */
  cause: "exit" | "signal" | "crash" | "spawn-error" | "probe-failed";
}

/** What a runner reports to its state machine. Every callback may come at any time. */
export interface RunnerEvents {
  /** Started up (READY=1, sdk ready(), first good probe). */
  ready(): void;
  /** Alive (WATCHDOG=1, sdk heartbeat()). */
  heartbeat(): void;
  /** Status text (STATUS=, sdk status()). */
  status(text: string): void;
  /** Queue report (sdk reportQueue(), X_QUEUE_DEPTH=). */
  queue(depth: number, oldestAgeMs: number): void;
  /** The run ended by itself (exit, crash, probe failure threshold). */
  exited(info: ExitInfo): void;
  /** Degraded but not ended (a probe failing below its threshold). */
  unhealthy(reason: string): void;
  /** Healthy again after `unhealthy` (probe recovery threshold). */
  recovered(): void;
  /** The subsystem asks to be treated as hung (WATCHDOG=trigger). */
  trigger(reason: string): void;
  /** Extend the current timeout (EXTEND_TIMEOUT_USEC=) by this many ms from now. */
  extendTimeout(ms: number): void;
  /** New heartbeat timeout (WATCHDOG_USEC=). */
  heartbeatTimeout(ms: number): void;
  /** The subsystem announced it is shutting down (STOPPING=1). */
  stopping(): void;
  /** Main pid changed (MAINPID=). */
  pid(pid: number | null): void;
  /** A failure reason reported by the subsystem (ERRNO=). */
  errno(errno: number): void;
}

/** Runs one attempt of a subsystem. */
export interface Runner {
  /** Launch. Resolves once launched; rejects when it cannot launch (bad path, spawn error). */
  start(): Promise<void>;
  /** Graceful stop (SIGTERM / onStop), forced after `timeoutMs`; resolves when gone. */
  stop(timeoutMs: number): Promise<void>;
  /** Immediate kill (hang): SIGKILL to the group / worker.terminate(); resolves when gone. */
  kill(): Promise<void>;
  /** Suspend in place (SIGSTOP / onSuspend / pause probing). */
  suspend(): Promise<void>;
  /** Resume after suspend. */
  resume(): Promise<void>;
  /** Current main pid, or null. */
  readonly pid: number | null;
  /**
   * Wall-clock ms (Date.now) of the last heartbeat the runner saw without an event
   * (a worker's shared-memory heartbeat slot), or null. Read at heartbeat deadlines.
   */
  lastHeartbeat?(): number | null;
}

/** What a runner factory gets besides the spec and the callbacks. */
export interface RunnerContext {
  /** Clock (timers of probes and stop timeouts). */
  clock: Clock;
  /** Publish an event (output lines, notify protocol problems). */
  publish: Publish;
  /** Supervisor settings (output rate limit, ...). */
  config: SupervisorConfig;
  /** True when this run is a restart (probe: run the restart command first). */
  restart: boolean;
}

/** Builds the runner of one attempt. */
export type RunnerFactory = (
  spec: SubsystemSpec,
  events: RunnerEvents,
  ctx: RunnerContext,
) => Runner;
