/**
 * Event kinds of the updater and their payloads (severity chosen by the
 * publisher, noted per kind). `update.rolled_back` and `update.gate_failed`
 * are the alerts of a failed update.
 * @module
 */
import type {} from "../events/mod.ts";
import type { UpdateState } from "./state.ts";

/** One image written by an install. */
type InstalledImage = { slotClass: string; device: string; size: number; sha256: string };

declare module "../events/mod.ts" {
  interface EventMap {
    /** A verified bundle starts being written into `target` (info). */
    "update.install_started": {
      source: string;
      version: string;
      target: string;
      booted: string;
      bytes: number;
      keyId: string;
    };
    /** Every 5 % of the payload written (debug). */
    "update.install_progress": {
      percent: number;
      bytes: number;
      total: number;
      target?: string;
    };
    /** Install done: written, verified, recorded, primary (info). */
    "update.installed": {
      target: string;
      booted: string;
      version: string;
      keyId: string;
      images: InstalledImage[];
      bytes: number;
      durationMs: number;
    };
    /** Refused before anything was written (error). */
    "update.install_rejected": { source: string; code: string; error: string };
    /** Failed while writing; the target stays marked bad (error). */
    "update.install_failed": {
      source: string;
      version: string;
      target: string;
      code: string;
      error: string;
    };
    /** Activation begins: hold placed, the switch follows (notice). */
    "update.activating": { target: string; from: string; version: string | null; mode: string };
    /** The `update` bypass hold was taken on every segment (info). */
    "update.hold_placed": { segments: "all" };
    /** The `update` bypass hold was released after a passed gate (info). */
    "update.hold_released": { slot: string };
    /** About to reboot or exit for the launcher (notice). */
    "update.switching": { mode: "reboot" | "restart"; reason: string };
    /** The new slot started on trial (notice). */
    "update.trying": { slot: string; version: string | null; from: string | null };
    /** A slot was marked good: by the health gate (`gateMs`) or by a command (`by`) (info). */
    "update.marked_good": { slot: string; gateMs?: number; by?: "command" };
    /** A slot was marked bad by a command (warning). */
    "update.marked_bad": { slot: string; by: "command" };
    /** The new slot passed its gate: the update is committed (notice). */
    "update.committed": { slot: string; version: string | null };
    /** The slot on trial did not pass its gate in time: marked bad, switching back (critical). */
    "update.gate_failed": {
      slot: string;
      version: string | null;
      reason: string;
      fallback: string | null;
    };
    /** The old slot took over again; the new one is marked bad (critical). */
    "update.rolled_back": {
      failed: string;
      version: string | null;
      running: string;
      reason: string;
      bypassHeld: boolean;
    };
    /** A slot not on trial stays unhealthy past the timeout; no fallback (error, once). */
    "update.unhealthy": { slot: string; afterMs: number; note: string };
    /** The update state changed (state.ts) (info). */
    "update.transition": {
      from: UpdateState;
      to: UpdateState;
      target: string | null;
      version: string | null;
      detail: string | null;
    };
    /** Anything else that went wrong (error). */
    "update.error": { error: string };
  }
}

/** Every event kind of the updater. */
export const UPDATE_EVENTS = [
  "update.install_started",
  "update.install_progress",
  "update.installed",
  "update.install_rejected",
  "update.install_failed",
  "update.activating",
  "update.hold_placed",
  "update.hold_released",
  "update.switching",
  "update.trying",
  "update.marked_good",
  "update.marked_bad",
  "update.committed",
  "update.gate_failed",
  "update.rolled_back",
  "update.unhealthy",
  "update.transition",
  "update.error",
] as const;

/** An event kind of the updater. */
export type UpdateEventKind = typeof UPDATE_EVENTS[number];
