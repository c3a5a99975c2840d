/**
 * Event kinds the alert module publishes. Deliveries are journalled at `debug` (sent) or
 * `warning` (failed), never above, and no default rule matches `alert.*`, so an alert
 * about alerts cannot loop.
 * @module
 */
import type {} from "../events/mod.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /** A delivery was accepted by its server (`answer` is the server's reply, shortened). */
    "alert.delivered": {
      id: string;
      recipient: string;
      channel: string;
      attempts: number;
      answer: string;
      afterMs: number;
    };
    /** An attempt failed; `final` when no retry follows. */
    "alert.failed": {
      id: string;
      recipient: string;
      channel: string;
      attempts: number;
      error: string;
      final: boolean;
      retryInMs: number | null;
    };
    /** A bypass segment has been held longer than `alert.bypassHeldMs` (raises an alert). */
    "alert.bypass_held": { segment: string; holds: string[]; heldMs: number };
    /** Alerts about one thing were folded into a summary (flap suppression). */
    "alert.suppressed": { thing: string; recipient: string; suppressed: number; windowMs: number };
    /** A webhook endpoint answered 410 Gone: nothing more is sent to it until reconfigured. */
    "alert.endpoint_stopped": { channel: string; url: string };
    /** Deliveries that may have been sent already when keepwire was killed are sent again. */
    "alert.resent_after_restart": { count: number; ids: string[] };
    /**
     * A part of the alert section was edited at run time (Alerts page, API): `part` is
     * channels, recipients or rules; `name` what was set or removed. Never carries secrets.
     */
    "alert.config_changed": { part: string; name: string; action: "set" | "removed" };
  }
}

/** Every event kind the alert module publishes (docs, UI). */
export const ALERT_EVENTS = [
  "alert.bypass_held",
  "alert.delivered",
  "alert.failed",
  "alert.suppressed",
  "alert.endpoint_stopped",
  "alert.resent_after_restart",
  "alert.config_changed",
] as const;
