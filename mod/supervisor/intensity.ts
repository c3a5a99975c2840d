/**
 * Restart intensity as in Erlang/OTP: more than `maxRestarts` restarts within the
 * last `periodSec` seconds means restarting does not help, and the supervisor
 * escalates instead of restarting again.
 * @module
 */

/** Intensity parameters (the spec's `intensity`). */
export interface IntensityOptions {
  /** Restarts tolerated within the period. */
  maxRestarts: number;
  /** The sliding period in seconds. */
  periodSec: number;
}

/** Sliding window of restart times. */
export class RestartIntensity {
  readonly #o: IntensityOptions;
  #times: number[] = [];

  /** Build with the limits. */
  constructor(options: IntensityOptions) {
    this.#o = options;
  }

  #prune(now: number): void {
    const from = now - this.#o.periodSec * 1000;
    let i = 0;
    while (i < this.#times.length && this.#times[i] <= from) i++;
    if (i) this.#times.splice(0, i);
  }

  /**
   * Record a restart at `now`. Returns true when the limit is exceeded, i.e.
   * this would be restart number maxRestarts+1 within the period.
   */
  record(now: number): boolean {
    this.#prune(now);
    this.#times.push(now);
    return this.#times.length > this.#o.maxRestarts;
  }

  /** Restarts within the period ending at `now`. */
  count(now: number): number {
    this.#prune(now);
    return this.#times.length;
  }

  /** Forget the history (manual start). */
  reset(): void {
    this.#times = [];
  }
}
