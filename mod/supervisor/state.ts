/**
 * THE subsystem state machine, in one file:
 *
 *   stopped → starting → ready → unhealthy → restarting (backoff) → failed
 *   ready/unhealthy ⇄ suspended (governor); any → stopped (stop); failed → starting (start)
 *
 * It owns the timers of one subsystem (readiness timeout, heartbeat timeout,
 * backoff), the restart decision (policy, intensity, backoff) and the runner of
 * the current attempt. Every transition is checked against `TRANSITIONS` and
 * published as a `supervisor.transition` event with its reason. Commands and
 * failure handling run one at a time, in order.
 * @module
 */
import type { Clock, TimerId } from "../module.ts";
import type { Severity } from "../events/mod.ts";
import type { Publish } from "./events.ts";
import type { SubsystemInfo, SubsystemState } from "./api.ts";
import type { SubsystemSpec, SupervisorConfig } from "./config.ts";
import type { ExitInfo, Runner, RunnerEvents, RunnerFactory } from "./runner.ts";
import { Backoff } from "./backoff.ts";
import { RestartIntensity } from "./intensity.ts";
import {
  EssentialNotSuspendableError,
  InvalidTransitionError,
  SubsystemStateError,
} from "./errors.ts";

/** The legal transitions: from → allowed targets. */
export const TRANSITIONS: Readonly<Record<SubsystemState, readonly SubsystemState[]>> = {
  stopped: ["starting", "failed"],
  starting: ["ready", "restarting", "failed", "stopped"],
  ready: ["unhealthy", "restarting", "failed", "suspended", "stopped"],
  unhealthy: ["ready", "restarting", "failed", "suspended", "stopped"],
  restarting: ["starting", "failed", "stopped"],
  failed: ["starting", "stopped"],
  suspended: ["ready", "starting", "restarting", "failed", "stopped"],
};

/** Why a transition happened. */
export type Cause =
  | "manual"
  | "boot"
  | "dependency"
  | "ready"
  | "exit"
  | "signal"
  | "crash"
  | "spawn-error"
  | "heartbeat-timeout"
  | "readiness-timeout"
  | "stop-timeout"
  | "watchdog-trigger"
  | "probe-failed"
  | "probe-recovered"
  | "backoff-elapsed"
  | "policy"
  | "intensity"
  | "escalation"
  | "governor"
  | "shutdown";

/** A transition's reason. */
export interface Reason {
  /** Machine-readable cause. */
  cause: Cause;
  /** For a person: `exit code 3`, `heartbeat timeout (3000 ms)`, `manual`. */
  text: string;
  /** Exit code, when the cause is an exit. */
  exitCode?: number | null;
  /** Signal, when killed by one. */
  signal?: string | null;
}

/** One transition as published. */
export interface Transition {
  /** Subsystem name. */
  subsystem: string;
  /** Previous state. */
  from: SubsystemState;
  /** New state. */
  to: SubsystemState;
  /** Why. */
  reason: Reason;
  /** When (clock ms). */
  time: number;
  /** Automatic restarts so far. */
  restarts: number;
  /** Backoff delay, when entering `restarting`. */
  delayMs?: number;
  /** True when `failed` was decided automatically (restarts did not help): escalation runs. */
  gaveUp?: boolean;
}

/** A transition that the table does not allow (a bug, never user input). */

/** What a subsystem is built with. */
export interface SubsystemDeps {
  /** Clock for every timer. */
  clock: Clock;
  /** Builds the runner of each attempt. */
  runners: RunnerFactory;
  /** Supervisor settings. */
  config: SupervisorConfig;
  /** Publish an event on the bus. */
  publish: Publish;
  /** Told synchronously after every transition. */
  onTransition(t: Transition): void;
  /** Before an automatic (re)start: null to go, or why not (a required subsystem is down). */
  canStart?(name: string): string | null;
  /** Random source for jitter (tests). */
  random?: () => number;
}

const UP: ReadonlySet<SubsystemState> = new Set(["starting", "ready", "unhealthy", "suspended"]);

/** Reason of a runner exit. */
export function exitReason(info: ExitInfo): Reason {
  const cause: Cause = info.cause === "signal"
    ? "signal"
    : info.cause === "exit"
    ? "exit"
    : info.cause === "probe-failed"
    ? "probe-failed"
    : info.cause === "spawn-error"
    ? "spawn-error"
    : "crash";
  return { cause, text: info.text, exitCode: info.code, signal: info.signal };
}

/** One supervised subsystem: its state, timers, restart decisions and current runner. */
export class Subsystem {
  /** The spec. */
  readonly spec: SubsystemSpec;
  readonly #d: SubsystemDeps;
  readonly #backoff: Backoff;
  readonly #intensity: RestartIntensity;
  #state: SubsystemState = "stopped";
  #since: number;
  #readySince: number | null = null;
  #runner: Runner | undefined;
  #restarts = 0;
  #lastBeat: number | null = null;
  #lastFailure: string | null = null;
  #statusText: string | null = null;
  #queue: { depth: number; oldestAgeMs: number } | null = null;
  #pid: number | null = null;
  #errno: number | null = null;
  #hbTimeoutMs: number | null;
  #extendUntil = 0;
  #readinessDeadline = 0;
  #readinessTimer: TimerId | undefined;
  #hbTimer: TimerId | undefined;
  #backoffTimer: TimerId | undefined;
  #stopAnnouncedTimer: TimerId | undefined;
  #chain: Promise<void> = Promise.resolve();
  #queueListeners = new Set<(depth: number, oldestAgeMs: number) => void>();

  /** Build in state `stopped`. */
  constructor(spec: SubsystemSpec, deps: SubsystemDeps) {
    this.spec = spec;
    this.#d = deps;
    this.#backoff = new Backoff(spec.backoff, deps.random);
    this.#intensity = new RestartIntensity(spec.intensity);
    this.#since = deps.clock.now();
    this.#hbTimeoutMs = spec.heartbeat?.timeoutMs ?? null;
  }

  /** Name. */
  get name(): string {
    return this.spec.name;
  }

  /** Current state. */
  get state(): SubsystemState {
    return this.#state;
  }

  /** When the current state was entered (clock ms). */
  get since(): number {
    return this.#since;
  }

  /** Automatic restarts since keepwire started. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Snapshot for the API and CLI. */
  info(): SubsystemInfo {
    const now = this.#d.clock.now();
    if (this.#state === "ready" || this.#state === "unhealthy") this.#pollBeat();
    return {
      name: this.spec.name,
      kind: this.spec.kind,
      state: this.#state,
      criticality: this.spec.criticality,
      pid: this.#pid ?? this.#runner?.pid ?? null,
      restarts: this.#restarts,
      lastHeartbeatMs: this.#lastBeat === null ? null : Math.max(0, now - this.#lastBeat),
      lastFailure: this.#lastFailure,
      statusText: this.#statusText,
      queue: this.#queue,
    };
  }

  /** Listen to queue reports of this subsystem. */
  onQueue(fn: (depth: number, oldestAgeMs: number) => void): () => void {
    this.#queueListeners.add(fn);
    return () => this.#queueListeners.delete(fn);
  }

  /** Resolves when every queued command has run (tests, shutdown). */
  idle(): Promise<void> {
    return this.#chain;
  }

  // ---- commands (serialized) -------------------------------------------------

  /** Start from stopped or failed (fresh backoff and intensity). No-op otherwise. */
  start(reason: Reason): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state !== "stopped" && this.#state !== "failed") return;
      this.#backoff.reset();
      this.#intensity.reset();
      await this.#begin(reason, false);
    });
  }

  /** Stop (graceful, forced after stopTimeoutMs); ends in `stopped`. */
  stop(reason: Reason): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state === "stopped") return;
      this.#clearTimers();
      await this.#stopRunner();
      this.#to("stopped", reason);
    });
  }

  /** Restart now (manual or dependency): no backoff, not counted for intensity. */
  restart(reason: Reason): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state === "stopped" || this.#state === "failed") {
        this.#backoff.reset();
        this.#intensity.reset();
        await this.#begin(reason, false);
        return;
      }
      this.#clearTimers();
      if (this.#state !== "restarting") this.#to("restarting", reason, { delayMs: 0 });
      await this.#stopRunner();
      await this.#begin(reason, true);
    });
  }

  /** Stop and mark failed (escalation, a group that gave up). */
  markFailed(reason: Reason): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state === "failed") return;
      this.#clearTimers();
      await this.#stopRunner();
      this.#lastFailure = reason.text;
      this.#to("failed", reason);
    });
  }

  /** Suspend (governor). Essential subsystems are never suspended. */
  suspend(reason: Reason): Promise<void> {
    return this.#enqueue(async () => {
      if (this.spec.criticality === "essential") {
        throw new EssentialNotSuspendableError(this.name);
      }
      if (this.#state !== "ready" && this.#state !== "unhealthy") {
        throw new SubsystemStateError(
          `subsystem ${this.name} is ${this.#state}; only a running one suspends`,
        );
      }
      this.#clearTimers();
      if (this.#stopMode()) {
        await this.#stopRunner();
      } else {
        await this.#runner?.suspend();
      }
      this.#to("suspended", reason);
    });
  }

  /** Resume after suspend (governor). */
  resume(reason: Reason): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#state !== "suspended") return;
      if (!this.#runner) {
        await this.#begin(reason, true);
        return;
      }
      await this.#runner.resume();
      this.#lastBeat = this.#d.clock.now();
      this.#to("ready", reason);
      this.#armHeartbeat();
    });
  }

  /** Forget backoff and intensity history (group restart). */
  resetHistory(): void {
    this.#backoff.reset();
    this.#intensity.reset();
  }

  // ---- internals ------------------------------------------------------------

  #stopMode(): boolean {
    return this.spec.kind === "process" && this.spec.suspendMode === "stop";
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.#chain.then(fn);
    this.#chain = p.then(() => {}, () => {});
    return p;
  }

  #to(to: SubsystemState, reason: Reason, extra: { delayMs?: number; gaveUp?: boolean } = {}) {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(to)) throw new InvalidTransitionError(this.name, from, to);
    const now = this.#d.clock.now();
    this.#state = to;
    this.#since = now;
    if (to === "ready" && from !== "unhealthy" && from !== "suspended") this.#readySince = now;
    if (!UP.has(to)) this.#readySince = null;
    const t: Transition = {
      subsystem: this.name,
      from,
      to,
      reason,
      time: now,
      restarts: this.#restarts,
      ...extra,
    };
    const severity: Severity = to === "failed"
      ? (this.spec.criticality === "essential" ? "critical" : "error")
      : to === "restarting" || to === "unhealthy"
      ? "warning"
      : to === "ready" && (from === "unhealthy" || reason.cause === "backoff-elapsed")
      ? "notice"
      : "info";
    this.#d.publish({
      module: "supervisor",
      kind: "supervisor.transition",
      severity,
      payload: {
        subsystem: this.name,
        kind: this.spec.kind,
        criticality: this.spec.criticality,
        from,
        to,
        cause: reason.cause,
        reason: reason.text,
        ...(reason.exitCode != null ? { exitCode: reason.exitCode } : {}),
        ...(reason.signal ? { signal: reason.signal } : {}),
        ...(extra.delayMs !== undefined ? { delayMs: extra.delayMs } : {}),
        ...(extra.gaveUp ? { gaveUp: true } : {}),
        restarts: this.#restarts,
      },
    });
    this.#d.onTransition(t);
  }

  #clearTimers(): void {
    const c = this.#d.clock;
    if (this.#readinessTimer !== undefined) c.clearTimeout(this.#readinessTimer);
    if (this.#hbTimer !== undefined) c.clearTimeout(this.#hbTimer);
    if (this.#backoffTimer !== undefined) c.clearTimeout(this.#backoffTimer);
    if (this.#stopAnnouncedTimer !== undefined) c.clearTimeout(this.#stopAnnouncedTimer);
    this.#readinessTimer =
      this.#hbTimer =
      this.#backoffTimer =
      this.#stopAnnouncedTimer =
        undefined;
  }

  async #stopRunner(): Promise<void> {
    const r = this.#runner;
    this.#runner = undefined;
    this.#pid = null;
    if (r) await r.stop(this.spec.stopTimeoutMs);
  }

  async #killRunner(): Promise<void> {
    const r = this.#runner;
    this.#runner = undefined;
    this.#pid = null;
    if (r) await r.kill();
  }

  /** Enter `starting` and launch a new runner. Runs inside the chain. */
  async #begin(reason: Reason, restart: boolean): Promise<void> {
    const blocked = this.#d.canStart?.(this.name) ?? null;
    if (blocked !== null) {
      if (this.#state !== "stopped") {
        this.#clearTimers();
        this.#to("stopped", { cause: "dependency", text: blocked });
      }
      return;
    }
    this.#to("starting", reason);
    this.#hbTimeoutMs = this.spec.heartbeat?.timeoutMs ?? null;
    this.#extendUntil = 0;
    this.#errno = null;
    this.#readinessDeadline = this.#d.clock.now() + this.spec.readinessTimeoutMs;
    this.#armReadiness();
    let runner: Runner;
    try {
      runner = this.#d.runners(this.spec, this.#events(() => runner), {
        clock: this.#d.clock,
        publish: (e) => this.#d.publish(e),
        config: this.#d.config,
        restart,
      });
    } catch (e) {
      await this.#failure(
        { cause: "spawn-error", text: `cannot build runner: ${(e as Error).message}` },
        false,
      );
      return;
    }
    this.#runner = runner;
    try {
      await runner.start();
    } catch (e) {
      if (this.#runner !== runner) return;
      this.#runner = undefined;
      await this.#failure(
        { cause: "spawn-error", text: `cannot start: ${(e as Error).message}` },
        false,
      );
    }
  }

  #armReadiness(): void {
    const c = this.#d.clock;
    if (this.#readinessTimer !== undefined) c.clearTimeout(this.#readinessTimer);
    const wait = Math.max(0, this.#readinessDeadline - c.now());
    this.#readinessTimer = c.setTimeout(() => {
      this.#readinessTimer = undefined;
      if (this.#state !== "starting") return;
      const r = this.#runner;
      this.#enqueue(async () => {
        if (this.#state !== "starting" || this.#runner !== r) return;
        await this.#failure({
          cause: "readiness-timeout",
          text: `not ready within ${this.spec.readinessTimeoutMs} ms`,
        }, false);
      });
    }, wait);
  }

  #armHeartbeat(): void {
    const c = this.#d.clock;
    if (this.#hbTimer !== undefined) c.clearTimeout(this.#hbTimer);
    this.#hbTimer = undefined;
    if (this.#hbTimeoutMs === null || this.#lastBeat === null) return;
    const deadline = Math.max(this.#lastBeat + this.#hbTimeoutMs, this.#extendUntil);
    this.#hbTimer = c.setTimeout(() => this.#checkHeartbeat(), Math.max(0, deadline - c.now()));
  }

  /** Take in a heartbeat the runner saw without an event (shared-memory slot). */
  #pollBeat(): void {
    const at = this.#runner?.lastHeartbeat?.() ?? null;
    if (at !== null && (this.#lastBeat === null || at > this.#lastBeat)) this.#lastBeat = at;
  }

  #checkHeartbeat(): void {
    this.#hbTimer = undefined;
    if (this.#state !== "ready" && this.#state !== "unhealthy") return;
    this.#pollBeat();
    if (this.#hbTimeoutMs === null || this.#lastBeat === null) return;
    const now = this.#d.clock.now();
    const deadline = Math.max(this.#lastBeat + this.#hbTimeoutMs, this.#extendUntil);
    if (now < deadline) {
      this.#armHeartbeat();
      return;
    }
    this.#hang({
      cause: "heartbeat-timeout",
      text: `no heartbeat for ${now - this.#lastBeat} ms (timeout ${this.#hbTimeoutMs} ms)`,
    });
  }

  #hang(reason: Reason): void {
    const r = this.#runner;
    if (this.#state === "ready") this.#to("unhealthy", reason);
    this.#enqueue(async () => {
      if (this.#runner !== r) return;
      if (this.#state !== "unhealthy" && this.#state !== "starting") return;
      await this.#failure(reason, false);
    });
  }

  /**
   * The current run failed or ended: kill what is left, then decide by restart
   * policy, intensity and backoff. Runs inside the chain.
   */
  async #failure(reason: Reason, clean: boolean): Promise<void> {
    if (this.#state === "stopped" || this.#state === "failed" || this.#state === "restarting") {
      return;
    }
    const now0 = this.#d.clock.now();
    const healthyMs = this.#readySince === null ? 0 : now0 - this.#readySince;
    this.#clearTimers();
    await this.#killRunner();
    if (this.#errno !== null) reason = { ...reason, text: `${reason.text} (ERRNO=${this.#errno})` };
    if (!clean) this.#lastFailure = reason.text;
    const policy = this.spec.restart;
    if (policy === "never" || (policy === "on-failure" && clean)) {
      if (clean) {
        this.#to("stopped", reason);
      } else {
        const text = `${reason.text}; restart policy is never`;
        this.#lastFailure = text;
        this.#to("failed", { ...reason, text }, { gaveUp: true });
      }
      return;
    }
    const now = this.#d.clock.now();
    if (this.#intensity.record(now)) {
      const { maxRestarts, periodSec } = this.spec.intensity;
      const text = `more than ${maxRestarts} restarts within ${periodSec} s; last: ${reason.text}`;
      this.#lastFailure = text;
      this.#to("failed", { ...reason, cause: "intensity", text }, { gaveUp: true });
      return;
    }
    const delay = this.#backoff.next(healthyMs);
    this.#restarts++;
    this.#to("restarting", reason, { delayMs: delay });
    const attempt = this.#restarts;
    const relaunch = () =>
      this.#enqueue(async () => {
        if (this.#state !== "restarting" || this.#restarts !== attempt) return;
        await this.#begin({
          cause: "backoff-elapsed",
          text: `restart ${attempt} after ${delay} ms`,
        }, true);
      });
    if (delay === 0) {
      void relaunch(); // immediate: no timer tick in between
      return;
    }
    this.#backoffTimer = this.#d.clock.setTimeout(() => {
      this.#backoffTimer = undefined;
      void relaunch();
    }, delay);
  }

  #events(current: () => Runner | undefined): RunnerEvents {
    const mine = () => current() !== undefined && current() === this.#runner;
    const c = this.#d.clock;
    return {
      ready: () => {
        if (!mine() || this.#state !== "starting") return;
        if (this.#readinessTimer !== undefined) c.clearTimeout(this.#readinessTimer);
        this.#readinessTimer = undefined;
        this.#lastBeat = c.now();
        this.#to("ready", { cause: "ready", text: "ready" });
        this.#armHeartbeat();
      },
      heartbeat: () => {
        if (!mine()) return;
        this.#lastBeat = c.now();
      },
      status: (text) => {
        if (mine()) this.#statusText = text;
      },
      queue: (depth, oldestAgeMs) => {
        if (!mine()) return;
        this.#queue = { depth, oldestAgeMs };
        for (const fn of this.#queueListeners) {
          try {
            fn(depth, oldestAgeMs);
          } catch (e) {
            console.error(`supervisor: queue listener failed:`, e);
          }
        }
      },
      exited: (info) => {
        if (!mine()) return;
        const r = this.#runner;
        this.#runner = undefined;
        this.#pid = null;
        this.#enqueue(async () => {
          if (this.#runner !== undefined && this.#runner !== r) return;
          await this.#failure(exitReason(info), info.clean);
        });
      },
      unhealthy: (text) => {
        if (!mine() || this.#state !== "ready") return;
        this.#lastFailure = text;
        this.#to("unhealthy", { cause: "probe-failed", text });
      },
      recovered: () => {
        if (!mine() || this.#state !== "unhealthy") return;
        this.#to("ready", { cause: "probe-recovered", text: "recovered" });
      },
      trigger: (text) => {
        if (!mine() || !UP.has(this.#state) || this.#state === "suspended") return;
        this.#hang({ cause: "watchdog-trigger", text });
      },
      extendTimeout: (ms) => {
        if (!mine()) return;
        const until = c.now() + ms;
        if (this.#state === "starting") {
          this.#readinessDeadline = Math.max(this.#readinessDeadline, until);
          this.#armReadiness();
        } else if (this.#state === "ready" || this.#state === "unhealthy") {
          this.#extendUntil = Math.max(this.#extendUntil, until);
          this.#armHeartbeat();
        }
      },
      heartbeatTimeout: (ms) => {
        if (!mine()) return;
        this.#hbTimeoutMs = ms > 0 ? ms : null;
        if (this.#state === "ready" || this.#state === "unhealthy") this.#armHeartbeat();
      },
      stopping: () => {
        if (!mine()) return;
        if (this.#hbTimer !== undefined) c.clearTimeout(this.#hbTimer);
        this.#hbTimer = undefined;
        this.#hbTimeoutMs = null;
        if (this.#stopAnnouncedTimer !== undefined) return;
        this.#stopAnnouncedTimer = c.setTimeout(() => {
          this.#stopAnnouncedTimer = undefined;
          if (!mine()) return;
          this.#hang({
            cause: "stop-timeout",
            text: `did not exit within ${this.spec.stopTimeoutMs} ms after STOPPING=1`,
          });
        }, this.spec.stopTimeoutMs);
      },
      pid: (pid) => {
        if (mine()) this.#pid = pid;
      },
      errno: (n) => {
        if (mine()) this.#errno = n;
      },
    };
  }
}
