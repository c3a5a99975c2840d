/**
 * The metric history behind the charts. Every `history.intervalMs` (on the injected clock)
 * it asks each module that has series (`Module.history()`, one {@link HistorySample} per
 * series: the governor its signals against their thresholds, the supervisor restarts per
 * subsystem, storage disk temperatures and SMART counters) and adds the journal's event
 * count by severity, then keeps the samples in the store, bounded by age and by a count
 * per series (docs/history.md). No module imports this one: each only implements the hook.
 * @module
 */
import type { Hono } from "hono";
import type { Module, ModuleContext, ModulePage, TimerId } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import { SEVERITIES } from "../events/mod.ts";
import type { HistoryConfig } from "./config.ts";
import { type HistoryResult, HistoryStore, type SeriesInfo } from "./store.ts";
import { historyRoutes, historyStatusSchema } from "./routes.ts";
import type { z } from "zod";
import type { HistorySample } from "./types.ts";
import { CHARTS_PAGE } from "./page.tsx";

export type { HistoryKind, HistorySample } from "./types.ts";
export { type HistoryConfig, historyConfigSchema } from "./config.ts";
export { type HistoryResult, HistoryStore, type SeriesInfo } from "./store.ts";
export { historyQuerySchema, historyResponseSchema, parseDuration } from "./routes.ts";

/** A module that has series: its name and its `history()` hook. */
export interface HistorySource {
  /** Module name (for errors). */
  name: string;
  /** The module's samples now. */
  history(): HistorySample[];
}

/** What the history module is built with besides its context. */
export interface HistoryDeps {
  /** The modules with a `history()` hook (the runtime's, read at each sample). */
  sources: () => HistorySource[];
}

/** Trim the tables every this many samples (and at start). */
const TRIM_EVERY = 30;

/** The history module. */
export class HistoryModule implements Module {
  /** Module name. */
  readonly name = "history";
  readonly #ctx: ModuleContext;
  readonly #cfg: HistoryConfig;
  readonly #deps: HistoryDeps;
  readonly #store: HistoryStore;
  #timer: TimerId | undefined;
  #ticks = 0;
  #lastTick: number | null = null;
  /** Events journalled since start, by severity (the `events.<severity>` counters). */
  readonly #events: Record<string, number> = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  readonly #errors: Record<string, string> = {};

  /** Build (the tables are migrated here, so the routes answer before start). */
  constructor(ctx: ModuleContext, deps: HistoryDeps) {
    this.#ctx = ctx;
    this.#cfg = ctx.config.history;
    this.#deps = deps;
    this.#store = new HistoryStore(ctx.store, {
      maxAgeMs: this.#cfg.maxAgeHours * 3_600_000,
      maxSamplesPerSeries: this.#cfg.maxSamplesPerSeries,
      maxSeries: this.#cfg.maxSeries,
    });
  }

  /** Sampling interval (ms). */
  get intervalMs(): number {
    return this.#cfg.intervalMs;
  }

  /** The tables. */
  get store(): HistoryStore {
    return this.#store;
  }

  /** Trim, then sample on the clock (nothing when `history.enabled` is false). */
  start(): Promise<void> {
    if (!this.#cfg.enabled) return Promise.resolve();
    const now = this.#ctx.clock.now();
    this.#store.trim(now);
    this.#lastTick = now;
    this.#timer = this.#ctx.clock.setInterval(() => this.sample(), this.#cfg.intervalMs);
    return Promise.resolve();
  }

  /** Stop sampling. */
  stop(): Promise<void> {
    if (this.#timer !== undefined) this.#ctx.clock.clearInterval(this.#timer);
    this.#timer = undefined;
    return Promise.resolve();
  }

  /**
   * Take one sample of every series now and store it (the timer calls this; tests too).
   * A module whose hook throws is skipped this time and named in the status. Returns how
   * many samples were stored.
   */
  sample(): number {
    const now = this.#ctx.clock.now();
    const samples: HistorySample[] = [];
    for (const src of this.#deps.sources()) {
      try {
        samples.push(...src.history());
        delete this.#errors[src.name];
      } catch (e) {
        this.#errors[src.name] = e instanceof Error ? e.message : String(e);
      }
    }
    samples.push(...this.#eventCounts(now));
    let stored = 0;
    try {
      stored = this.#store.record(samples, now);
      if (++this.#ticks % TRIM_EVERY === 0) this.#store.trim(now);
      delete this.#errors.store;
    } catch (e) {
      // a full disk or a busy database costs this sample, never the caller
      this.#errors.store = e instanceof Error ? e.message : String(e);
    }
    return stored;
  }

  /** `events.<severity>`: events journalled since the last sample, kept as counters. */
  #eventCounts(now: number): HistorySample[] {
    const since = this.#lastTick ?? now;
    this.#lastTick = now;
    const counts = this.#ctx.store.eventCountsBySeverity(since, now);
    return SEVERITIES.filter((s) => s !== "debug").map((s) => {
      this.#events[s] += counts[s];
      return {
        series: `events.${s}`,
        value: this.#events[s],
        unit: "events",
        kind: "counter" as const,
        label: s,
      };
    });
  }

  /** Series names matching a name or a prefix ending `.` or `*`. */
  match(series: string): string[] {
    return this.#store.match(series);
  }

  /** Query some series (see {@link HistoryStore.query}). */
  query(names: string[], q: { since: number; until: number; step: number }): HistoryResult {
    return this.#store.query(names, q);
  }

  /** Every series kept. */
  list(): SeriesInfo[] {
    return this.#store.list();
  }

  /** Now on the module's clock. */
  now(): number {
    return this.#ctx.clock.now();
  }

  /** GET /history, GET /history/series. */
  routes(): Hono {
    return historyRoutes(this);
  }

  /** The Charts page. */
  pages(): ModulePage[] {
    return [CHARTS_PAGE];
  }

  /** Status for /api/status. */
  status(): z.infer<typeof historyStatusSchema> {
    return {
      enabled: this.#cfg.enabled,
      intervalMs: this.#cfg.intervalMs,
      series: this.#store.list().length,
      dropped: this.#store.dropped,
      errors: { ...this.#errors },
    };
  }

  /** `history_*` metric families. */
  metrics(): MetricFamily[] {
    return [
      {
        name: "history_series",
        help: "series the metric history keeps",
        type: "gauge",
        samples: [{ value: this.#store.list().length }],
      },
      {
        name: "history_dropped_total",
        help: "history samples refused (a new series beyond history.maxSeries, a bad name)",
        type: "counter",
        samples: [{ value: this.#store.dropped }],
      },
    ];
  }
}

/** Build the history module. */
export function createHistoryModule(ctx: ModuleContext, deps: HistoryDeps): HistoryModule {
  return new HistoryModule(ctx, deps);
}
