/**
 * Per-subsystem work queues as subsystems report them through the SDK
 * (SupervisorApi.onQueueReport). The signals are the worst subsystem's depth and
 * the age of its oldest item, aged by the time since the report while the queue
 * is not empty. Signals: `queueDepth`, `queueAgeMs`.
 *
 * A suspended subsystem's queue does not count: it grows because the subsystem is
 * suspended, not because keepwire is short of capacity, and counting it would let a
 * suspension feed the very signal that caused it (elevated → suspend → queue ages →
 * overload → suspend more). Nor does a report made while it was suspended, after it
 * is resumed: only what it reports once running again counts.
 * @module
 */
import type { SignalValues } from "../config.ts";
import type { SignalSource } from "./types.ts";

/** Options of the queue source. */
export interface QueueSourceOptions {
  /** A report older than this is ignored (ms). */
  staleAfterMs: number;
  /** Time of a report (ms); the injected clock. */
  now: () => number;
  /** Is this subsystem suspended now? Its queue is then left out of the signals. */
  suspended?: (name: string) => boolean;
}

interface Report {
  depth: number;
  oldestAgeMs: number;
  at: number;
  /** Made while the subsystem was suspended. */
  suspended: boolean;
}

/** The queue source. */
export class QueueSource implements SignalSource {
  /** Source name. */
  readonly name = "queues";
  #o: QueueSourceOptions;
  #reports = new Map<string, Report>();
  #lastNow = 0;

  /** Build. */
  constructor(o: QueueSourceOptions) {
    this.#o = o;
  }

  /** Take one report (the callback given to SupervisorApi.onQueueReport). */
  report(name: string, depth: number, oldestAgeMs: number, at = this.#o.now()): void {
    if (!Number.isFinite(depth) || !Number.isFinite(oldestAgeMs)) return;
    this.#reports.set(name, {
      depth: Math.max(0, depth),
      oldestAgeMs: Math.max(0, oldestAgeMs),
      at,
      suspended: this.#o.suspended?.(name) ?? false,
    });
  }

  /** Worst depth and oldest age over the fresh reports. */
  sample(now: number): SignalValues {
    this.#lastNow = now;
    let depth: number | undefined;
    let age: number | undefined;
    for (const [name, r] of this.#reports) {
      if (now - r.at > this.#o.staleAfterMs) {
        this.#reports.delete(name);
        continue;
      }
      if (r.suspended || this.#o.suspended?.(name)) continue;
      const a = r.depth > 0 ? r.oldestAgeMs + Math.max(0, now - r.at) : 0;
      depth = Math.max(depth ?? 0, r.depth);
      age = Math.max(age ?? 0, a);
    }
    if (depth === undefined) return {};
    return { queueDepth: depth, queueAgeMs: Math.round(age ?? 0) };
  }

  /** Each subsystem's last report. */
  detail(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, r] of this.#reports) {
      out[name] = {
        depth: r.depth,
        oldestAgeMs: r.depth > 0
          ? Math.round(r.oldestAgeMs + Math.max(0, this.#lastNow - r.at))
          : 0,
        reportedAt: r.at,
        ...(r.suspended || this.#o.suspended?.(name) ? { suspended: true } : {}),
      };
    }
    return { subsystems: out };
  }
}
