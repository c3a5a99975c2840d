/**
 * Event-loop lag from a timer-drift probe (Deno's `monitorEventLoopDelay` is a
 * stub): a timeout is armed for `intervalMs`; how late it fires is the drift,
 * smoothed with an EWMA. Signal: `eventLoopLagMs`.
 * @module
 */
import type { SignalValues } from "../config.ts";
import type { SignalSource } from "./types.ts";

/** Options of the lag probe. */
export interface LagProbeOptions {
  /** Probe interval (ms). */
  intervalMs: number;
  /** EWMA weight of a new drift sample (0..1]. */
  alpha: number;
  /** Monotonic time in ms (performance.now in production). */
  now: () => number;
  /** Timer functions (the injected clock in tests). */
  timers?: {
    setTimeout(fn: () => void, ms: number): unknown;
    clearTimeout(id: unknown): void;
  };
}

/** The timer-drift probe. */
export class LagProbe implements SignalSource {
  /** Source name. */
  readonly name = "lag";
  #o: LagProbeOptions;
  #ewma = 0;
  #max = 0;
  #peak = 0;
  #last = 0;
  #ticks = 0;
  #expected: number | undefined;
  #timer: unknown;

  /** Build (not started). */
  constructor(o: LagProbeOptions) {
    this.#o = o;
  }

  /**
   * Feed one probe firing: `firedAt` is when the timer ran, `expectedAt` when it
   * was due. Returns the drift (ms). Used by the timer and by tests on recorded ticks.
   */
  observe(firedAt: number, expectedAt: number): number {
    const drift = Math.max(0, firedAt - expectedAt);
    this.#ticks++;
    this.#ewma = this.#ticks === 1
      ? drift
      : this.#o.alpha * drift + (1 - this.#o.alpha) * this.#ewma;
    this.#last = drift;
    if (drift > this.#max) this.#max = drift;
    return drift;
  }

  /** Current smoothed lag (ms). */
  get lagMs(): number {
    return this.#ewma;
  }

  /**
   * How long the event loop has been kept from its timers, at `now` (ms): the overdue
   * time of the probe's pending timer, or, before that timer is due, the drift of the
   * firing that ended the last stall (the requests that queued during it are taken
   * right after it). Unlike the EWMA this shows a step at once; 0 when not started.
   */
  stallMs(now: number): number {
    if (this.#expected === undefined) return 0;
    return now > this.#expected ? now - this.#expected : this.#last;
  }

  /** Start probing. */
  start(): void {
    if (this.#timer !== undefined) return;
    const t = this.#o.timers ?? {
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (id: unknown) => clearTimeout(id as number),
    };
    const arm = () => {
      this.#expected = this.#o.now() + this.#o.intervalMs;
      this.#timer = t.setTimeout(() => {
        this.observe(this.#o.now(), this.#expected!);
        arm();
      }, this.#o.intervalMs);
      // The probe alone must not keep a process alive.
      if (!this.#o.timers) Deno.unrefTimer(this.#timer as number);
    };
    arm();
  }

  /** Stop probing. */
  stop(): void {
    if (this.#timer === undefined) return;
    if (this.#o.timers) this.#o.timers.clearTimeout(this.#timer);
    else clearTimeout(this.#timer as number);
    this.#timer = undefined;
    this.#expected = undefined;
  }

  /** `eventLoopLagMs`: the EWMA of the drift. */
  sample(_now: number): SignalValues {
    this.#peak = this.#max;
    this.#max = 0;
    if (this.#ticks === 0) return {};
    return { eventLoopLagMs: round(this.#ewma) };
  }

  /** Smoothed and last drift, and the peak drift between the last two samples. */
  detail(): Record<string, unknown> {
    return {
      ewmaMs: round(this.#ewma),
      lastMs: round(this.#last),
      peakMs: round(this.#peak),
      intervalMs: this.#o.intervalMs,
    };
  }
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
