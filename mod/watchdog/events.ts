/**
 * Event kinds the watchdog module publishes, with their payload types.
 * @module
 */
import type {} from "../events/mod.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /** The hardware watchdog was opened: its countdown runs from now. */
    "watchdog.opened": {
      driver: string;
      device: string | null;
      timeoutSec: number | null;
      /** The last reset of the box was the watchdog's (null: the driver cannot tell). */
      lastResetByWatchdog: boolean | null;
      warning: string | null;
    };
    /** The box was last reset by this watchdog (a hang or a crash before). */
    "watchdog.last_reset_by_watchdog": { device: string | null };
    /** Closed with the magic character on an orderly stop (the box does not reset). */
    "watchdog.closed": Record<string, never>;
  }
}

/** Every event kind the watchdog module publishes. */
export const WATCHDOG_EVENTS = [
  "watchdog.opened",
  "watchdog.last_reset_by_watchdog",
  "watchdog.closed",
] as const;
