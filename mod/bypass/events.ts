/**
 * Event kinds of the bypass module and their payloads. Every kind that concerns
 * one segment carries `segment`. Severities are chosen by the publisher (noted
 * per kind).
 * @module
 */
import type { EventMap, Severity } from "../events/mod.ts";
import type { BypassMode, BypassPolicies, SegmentMode } from "../../hw/bypass/types.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /** The driver answered at start: the mode it reads, the holds loaded (info). */
    "bypass.segment_found": {
      segment: string;
      mode: BypassMode;
      driver: string;
      holds: string[];
    };
    /** The driver has something to say that is not fatal (warning). */
    "bypass.driver_warning": { segment: string; warning: string; driver?: string };
    /** Provisioning policies differ from the card and `provision` is false (warning). */
    "bypass.policies_differ": {
      segment: string;
      wanted: Partial<BypassPolicies>;
      card: Record<string, BypassMode | null>;
    };
    /** Provisioning policies that differed were written (notice). */
    "bypass.policies_written": {
      segment: string;
      written: Partial<BypassPolicies>;
      previous: Record<string, BypassMode | null>;
    };
    /** A hold was taken (count +1) or the manual hold changed mode (notice). */
    "bypass.hold_added": {
      segment: string;
      reason: string;
      count: number;
      by: string;
      mode: BypassMode;
      holds: string[];
    };
    /** A hold was released (count -1, or dropped when forced) (notice). */
    "bypass.hold_released": {
      segment: string;
      reason: string;
      remaining: number;
      by: string;
      forced: boolean;
      holds: string[];
    };
    /** The relay reads back a new mode after a switch (notice inline, warning otherwise). */
    "bypass.mode_changed": {
      segment: string;
      from: SegmentMode;
      to: BypassMode;
      holds: string[];
      ms: number;
      recovered?: boolean;
    };
    /** The relay changed mode behind keepwire's back; it is switched back (warning). */
    "bypass.mode_drift": { segment: string; expected: SegmentMode; observed: BypassMode };
    /** A switch or read failed; the segment is `unknown` and retried (error, critical from the 3rd). */
    "bypass.switch_failed": {
      segment: string;
      wanted: BypassMode;
      readBack: BypassMode | null;
      error: string;
      attempt: number;
      retryInMs: number | null;
    };
    /** A config problem found only on a retry (the driver was unreachable at start) (critical). */
    "bypass.config_error": { segment: string; error: string };
    /** A poll of a segment threw (warning). */
    "bypass.poll_failed": { segment: string; error: string };
    /** The card watchdog was armed before going inline (info). */
    "bypass.watchdog_armed": {
      segment: string;
      timeoutMs: number;
      effectiveMs: number;
      petBy: "supervisor" | "module";
    };
    /** The card watchdog was disarmed after a switch to a held mode (info). */
    "bypass.watchdog_disarmed": { segment: string; mode: BypassMode };
    /** The card watchdog expired: the card went to its expiry mode (critical). */
    "bypass.watchdog_expired": {
      segment: string;
      expiryMode: BypassMode;
      onExpiry: "hold" | "rearm";
      timeoutMs: number | null;
      lastPetAt: string | null;
    };
    /** Arming or disarming the card watchdog failed (error; once per streak for arm). */
    "bypass.watchdog_failed": { segment: string; action: "arm" | "disarm"; error: string };
    /** Petting the card watchdog failed (error; once per streak). */
    "bypass.watchdog_pet_failed": { segment: string; error: string };
    /** Holds in the store for segments no longer configured (warning). */
    "bypass.orphan_holds": { segments: string[]; note: string };
    /** A stored hold row that did not validate (warning; the row is kept). */
    "bypass.hold_invalid": { segment: string; reason: string; problem: string; note: string };
    /**
     * Every essential subsystem is ready after start: the `shutdown` hold of the
     * previous stop and the `holdAtStart` hold were released (info).
     */
    "bypass.start_holds_released": { released: string[]; afterMs: number };
    /** Releasing a start hold on readiness failed (error). */
    "bypass.release_failed": { reason: string; error: string };
  }
}

/** Every kind the bypass module publishes (docs, UI). */
export const BYPASS_EVENTS = [
  "bypass.segment_found",
  "bypass.driver_warning",
  "bypass.policies_differ",
  "bypass.policies_written",
  "bypass.hold_added",
  "bypass.hold_released",
  "bypass.mode_changed",
  "bypass.mode_drift",
  "bypass.switch_failed",
  "bypass.config_error",
  "bypass.poll_failed",
  "bypass.watchdog_armed",
  "bypass.watchdog_disarmed",
  "bypass.watchdog_expired",
  "bypass.watchdog_failed",
  "bypass.watchdog_pet_failed",
  "bypass.orphan_holds",
  "bypass.hold_invalid",
  "bypass.start_holds_released",
  "bypass.release_failed",
] as const;

/** A bypass event kind. */
export type BypassEventKind = typeof BYPASS_EVENTS[number];

/** The bypass kinds that concern one segment (their payload carries `segment`). */
export type SegmentEventKind = {
  [K in BypassEventKind]: EventMap[K] extends { segment: string } ? K
    : never;
}[BypassEventKind];

/** How a segment and its parts publish: the module adds `module` and `segment`. */
export type SegmentPublish = <K extends SegmentEventKind>(
  kind: K,
  payload: Omit<EventMap[K], "segment">,
  severity?: Severity,
) => void;

// Every declared `bypass.*` kind is in BYPASS_EVENTS (a compile error otherwise).
const _everyKindListed: [
  Exclude<Extract<keyof EventMap, `bypass.${string}`>, BypassEventKind>,
] extends [never] ? true : false = true;
