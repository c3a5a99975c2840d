/**
 * Event kinds the runtime (the composition root) publishes, with their payload types.
 * @module
 */
import type {} from "./events/mod.ts";

declare module "./events/mod.ts" {
  interface EventMap {
    /** Every module started; the web answers. */
    "runtime.started": {
      version: string;
      pid: number;
      /** host:port of the web UI/API. */
      listen: string;
      /** Module names in start order. */
      modules: string[];
      /** From the start of the first module to now. */
      startMs: number;
      /** Start time of each module (ms, one decimal). */
      moduleStartMs: Record<string, number>;
    };
    /** A module failed to start; what started is stopped again. */
    "runtime.start_failed": { module: string; error: string };
    /** A stop step (prepareStop or stop of a module) failed or overran its time. */
    "runtime.stop_failed": { module: string; error: string };
    /** The runtime stopped (the last event before the journal closes). */
    "runtime.stopped": { reason: string; clean: boolean; uptimeMs: number };
  }
}

/** Every event kind the runtime publishes. */
export const RUNTIME_EVENTS = [
  "runtime.started",
  "runtime.start_failed",
  "runtime.stop_failed",
  "runtime.stopped",
] as const;
