/**
 * Event kinds the governor publishes, with their payload types.
 * @module
 */
import type {} from "../events/mod.ts";
import type { Level, SignalValues } from "./config.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /**
     * The level changed. Severity: notice going down or to elevated, warning entering
     * overload, error entering severe. `signals` are the values of the sample that
     * caused it.
     */
    "governor.level_changed": { from: Level; to: Level; reason: string; signals: SignalValues };
    /** A suspend or resume the governor asked the supervisor for failed (retried later). */
    "governor.action_failed": {
      action: "list" | "suspend" | "resume";
      subsystem: string;
      error: string;
    };
  }
}

/** Every event kind the governor publishes (docs, UI filters). */
export const GOVERNOR_EVENTS = [
  "governor.level_changed",
  "governor.action_failed",
] as const;
