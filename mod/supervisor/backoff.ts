/**
 * Restart backoff: geometric growth from `initialMs` by `multiplier` up to `maxMs`,
 * spread by ±`jitter`, and immediate (0 ms) for the first restart after a long
 * healthy run (ready for at least `resetAfterMs`).
 * @module
 */

/** Backoff parameters (the spec's `backoff`). */
export interface BackoffOptions {
  /** Delay before the first restart. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Growth factor per consecutive restart. */
  multiplier: number;
  /** Relative spread, 0..1: the delay is drawn from base × [1-jitter, 1+jitter]. */
  jitter: number;
  /** A run at least this long (ready) resets the backoff: the next restart is immediate. */
  resetAfterMs: number;
}

/** Lowest and highest delay the n-th consecutive restart (n ≥ 1) can get. */
export function backoffBounds(o: BackoffOptions, n: number): { min: number; max: number } {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.multiplier, Math.max(0, n - 1)));
  return {
    min: Math.max(0, Math.floor(base * (1 - o.jitter))),
    max: Math.min(o.maxMs, Math.ceil(base * (1 + o.jitter))),
  };
}

/** Backoff state of one subsystem. */
export class Backoff {
  readonly #o: BackoffOptions;
  readonly #random: () => number;
  #attempt = 0;

  /** Build; `random` is injectable for tests (default Math.random). */
  constructor(options: BackoffOptions, random: () => number = Math.random) {
    this.#o = options;
    this.#random = random;
  }

  /** Consecutive restarts counted so far (0 after a reset). */
  get attempt(): number {
    return this.#attempt;
  }

  /**
   * Delay before the next restart. `healthyMs` is how long the subsystem had
   * been ready before this failure (0 when it never got ready).
   */
  next(healthyMs: number): number {
    if (healthyMs >= this.#o.resetAfterMs && healthyMs > 0) {
      this.#attempt = 0;
      return 0;
    }
    this.#attempt++;
    const { min, max } = backoffBounds(this.#o, this.#attempt);
    const base = Math.min(
      this.#o.maxMs,
      this.#o.initialMs * Math.pow(this.#o.multiplier, this.#attempt - 1),
    );
    const d = base * (1 + this.#o.jitter * (2 * this.#random() - 1));
    return Math.round(Math.min(max, Math.max(min, d)));
  }

  /** Forget consecutive restarts (manual start, group restart). */
  reset(): void {
    this.#attempt = 0;
  }
}
