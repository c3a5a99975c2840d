/**
 * The contract between the composition root (runtime.ts) and every module:
 * what a module gets (context) and what it gives (lifecycle, health, routes, pages).
 * @module
 */
import type { Hono } from "hono";
import type { Config } from "./config/mod.ts";
import type { Store } from "./store/mod.ts";
import type { EventBus } from "./events/mod.ts";
import type { MetricFamily } from "./web/metrics.ts";
import type { ModulePage } from "./web/ui/contract.ts";
import type { HistorySample } from "./history/types.ts";

export type { ModulePage, PageDeps, PageViewer } from "./web/ui/contract.ts";

export { type Clock, systemClock, type TimerId } from "./clock.ts";
import type { Clock } from "./clock.ts";

/** What every module is built with. */
export interface ModuleContext {
  /** Validated configuration. */
  config: Config;
  /** The store (open). */
  store: Store;
  /** The event bus (journal attached). */
  bus: EventBus;
  /** The clock. */
  clock: Clock;
}

/** Health of one part, as /api/health reports it. */
export interface PartHealth {
  /** True when the part works. */
  ok: boolean;
  /** Essential parts make /api/health 503 when not ok. */
  essential: boolean;
  /** Short reason when not ok, or a summary. */
  detail?: string;
}

/** A runtime module: started in order, stopped in reverse order. */
export interface Module {
  /** Short name: `store`, `web`, `bypass`, `supervisor`, ... */
  readonly name: string;
  /** Start; throws to abort the start of the runtime. */
  start(): Promise<void>;
  /**
   * Called on every started module, in reverse start order, before any module stops
   * (e.g. the bypass module puts traffic on the bypass path while the subsystems that
   * carry it are still up). Runs within the runtime's shutdown timeout; a failure is
   * journalled and the stop goes on.
   */
  prepareStop?(): Promise<void>;
  /** Stop; must finish within the runtime's shutdown timeout. */
  stop(): Promise<void>;
  /** Current health. */
  health?(): PartHealth;
  /** Status snapshot for /api/status (JSON). */
  status?(): unknown;
  /** Routes mounted under `/api` (e.g. `/bypass`, `/subsystems`). */
  routes?(): Hono;
  /** Metric families for /metrics (names without the `keepwire_` prefix). */
  metrics?(): MetricFamily[];
  /**
   * Its UI pages (usually one, from the module's `page.tsx`): the web module mounts each
   * at its path and lists it in the navigation. Asked once, when the web starts.
   */
  pages?(): ModulePage[];
  /**
   * This module's series for the metric history (charts), one sample per series now; called
   * every `history.intervalMs` by mod/history (mod/history/types.ts says how series are kept).
   */
  history?(): HistorySample[];
  /**
   * Config sections this module changes at run time, as in force now (e.g. `{ alert: ... }`
   * after edits on the Alerts page); the settings page shows them instead of the file's.
   */
  configInForce?(): Record<string, unknown>;
}
