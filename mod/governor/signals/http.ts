/**
 * HTTP load as the admission middleware counts it: requests in flight, mean
 * latency of the requests that finished since the last sample (EWMA), and the
 * sheddable demand: CPU time the arriving sheddable requests would cost (admitted
 * or not) per unit of wall time, in cores. Demand is not lowered by shedding, so
 * the governor stays up while a flood lasts and comes down when it ends.
 * Signals: `inflight`, `httpLatencyMs`, `sheddableDemand`.
 * @module
 */
import type { SignalValues } from "../config.ts";
import type { SignalSource } from "./types.ts";

/** Counters of the admission middleware since the previous window was taken. */
export interface HttpWindow {
  /** Requests in flight now. */
  inflight: number;
  /** Requests finished in the window. */
  completed: number;
  /** Sum of their latencies (ms). */
  latencySumMs: number;
  /** Estimated CPU cost of the sheddable requests that arrived (ms). */
  sheddableCostMs: number;
}

/** What the HTTP source reads (the admission controller). */
export interface HttpWindowProvider {
  /** Take (and reset) the counters. */
  takeWindow(): HttpWindow;
}

/** Options of the HTTP source. */
export interface HttpSourceOptions {
  /** EWMA weight of a new sample. */
  alpha: number;
}

/** The HTTP source. */
export class HttpSource implements SignalSource {
  /** Source name. */
  readonly name = "http";
  #provider: HttpWindowProvider;
  #alpha: number;
  #lat: number | undefined;
  #demand: number | undefined;
  #lastT: number | undefined;
  #last: HttpWindow | undefined;

  /** Build on a provider. */
  constructor(provider: HttpWindowProvider, o: HttpSourceOptions) {
    this.#provider = provider;
    this.#alpha = o.alpha;
  }

  /** `inflight`, `httpLatencyMs`, `sheddableDemand`. */
  sample(now: number): SignalValues {
    const w = this.#provider.takeWindow();
    this.#last = w;
    const out: SignalValues = { inflight: w.inflight };
    const a = this.#alpha;
    if (w.completed > 0) {
      const mean = w.latencySumMs / w.completed;
      this.#lat = this.#lat === undefined ? mean : a * mean + (1 - a) * this.#lat;
    }
    if (this.#lat !== undefined) out.httpLatencyMs = Math.round(this.#lat * 100) / 100;
    if (this.#lastT !== undefined && now > this.#lastT) {
      const d = w.sheddableCostMs / (now - this.#lastT);
      this.#demand = this.#demand === undefined ? d : a * d + (1 - a) * this.#demand;
      out.sheddableDemand = Math.round(this.#demand * 1000) / 1000;
    }
    this.#lastT = now;
    return out;
  }

  /** The last window. */
  detail(): Record<string, unknown> {
    return { lastWindow: this.#last ?? null };
  }
}
