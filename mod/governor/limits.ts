/**
 * Adaptive concurrency limits for sheddable requests, treated like a TCP
 * congestion window (Little's law): Gradient2 (Netflix concurrency-limits: the
 * limit follows the ratio of long-term to short-term latency) or AIMD (add one
 * while latency is under target, cut by a factor above it), or a fixed limit.
 * @module
 */
import type { ConcurrencyConfig } from "./config.ts";

/** A concurrency limiter. */
export interface ConcurrencyLimiter {
  /** Algorithm name. */
  readonly algorithm: string;
  /** Current limit (in-flight sheddable requests). */
  readonly limit: number;
  /** Feed one finished request: its latency and the in-flight count when it started. */
  onSample(latencyMs: number, inflight: number): void;
}

/** A fixed limit. */
export class FixedLimit implements ConcurrencyLimiter {
  /** Algorithm name. */
  readonly algorithm = "fixed";
  /** The limit. */
  readonly limit: number;
  /** Build. */
  constructor(limit: number) {
    this.limit = limit;
  }
  /** Ignored. */
  onSample(): void {}
}

/** AIMD on latency. */
export class AimdLimit implements ConcurrencyLimiter {
  /** Algorithm name. */
  readonly algorithm = "aimd";
  #limit: number;
  #c: ConcurrencyConfig;

  /** Build. */
  constructor(c: ConcurrencyConfig) {
    this.#c = c;
    this.#limit = c.initial;
  }

  /** Current limit. */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  /** Cut above target; grow by one per limit's worth of samples while busy. */
  onSample(latencyMs: number, inflight: number): void {
    if (latencyMs > this.#c.latencyTargetMs) {
      this.#limit = Math.max(this.#c.min, this.#limit * this.#c.backoff);
    } else if (inflight * 2 >= this.#limit) {
      this.#limit = Math.min(this.#c.max, this.#limit + 1 / this.#limit);
    }
  }
}

/** Gradient2 on latency. */
export class GradientLimit implements ConcurrencyLimiter {
  /** Algorithm name. */
  readonly algorithm = "gradient";
  #limit: number;
  #c: ConcurrencyConfig;
  #short: number | undefined;
  #long: number | undefined;
  #n = 0;

  /** Build. */
  constructor(c: ConcurrencyConfig) {
    this.#c = c;
    this.#limit = c.initial;
  }

  /** Current limit. */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  /** Short- and long-term latency averages (ms), for status. */
  get latencies(): { shortMs: number | null; longMs: number | null } {
    return { shortMs: this.#short ?? null, longMs: this.#long ?? null };
  }

  /** newLimit = limit × clamp(long/short, 0.5, 1) + queueSize, smoothed. */
  onSample(latencyMs: number, inflight: number): void {
    const rtt = Math.max(latencyMs, 1e-3);
    this.#n++;
    const aS = 2 / (this.#c.shortWindow + 1);
    // The long average warms up as a plain mean, then becomes an EWMA over longWindow.
    const aL = this.#n < this.#c.longWindow ? 1 / this.#n : 2 / (this.#c.longWindow + 1);
    this.#short = this.#short === undefined ? rtt : aS * rtt + (1 - aS) * this.#short;
    this.#long = this.#long === undefined ? rtt : aL * rtt + (1 - aL) * this.#long;
    // A long average far above the short one (a past spike) decays quickly.
    if (this.#long / this.#short > 2) this.#long *= 0.9;
    // Application-limited: too few in flight to learn anything.
    if (inflight * 2 < this.#limit) return;
    const gradient = Math.max(0.5, Math.min(1, this.#long / this.#short));
    const target = this.#limit * gradient + this.#c.queueSize;
    const next = this.#limit * (1 - this.#c.smoothing) + target * this.#c.smoothing;
    this.#limit = Math.max(this.#c.min, Math.min(this.#c.max, next));
  }
}

/** Build the limiter the config names. */
export function createLimiter(c: ConcurrencyConfig): ConcurrencyLimiter {
  switch (c.algorithm) {
    case "aimd":
      return new AimdLimit(c);
    case "fixed":
      return new FixedLimit(c.initial);
    default:
      return new GradientLimit(c);
  }
}
