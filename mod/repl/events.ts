/**
 * The replication engine's event kinds and payloads (merged into the bus's EventMap).
 * @module
 */
import type {} from "../events/mod.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /** A frame arrived whose seq is not the next one: the standby asks for a resync. */
    "repl.gap": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      expected: number;
      got: number;
      epoch: number;
    };
    /** A frame or snapshot was refused (nothing of it applied). */
    "repl.refused": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      reason: string;
      message: string;
      epoch: number;
      seq: number;
      resync: boolean;
    };
    /** The standby started installing a snapshot from the primary. */
    "repl.resync_started": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      epoch: number;
      seq: number;
      bytes: number;
    };
    /** Snapshot bytes received so far. */
    "repl.resync_progress": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      bytes: number;
      total: number;
      percent: number;
    };
    /** The snapshot is installed: the standby is at `epoch`/`seq`. */
    "repl.resync_finished": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      epoch: number;
      seq: number;
      bytes: number;
      ms: number;
      tables: number;
    };
    /** A returning ex-primary set its unreplicated tail aside in `file` (never merged). */
    "repl.tail_saved": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      file: string;
      frames: number;
      fromSeq: number;
      toSeq: number;
      epoch: number;
    };
    /** The primary lost the standby (send failed or timed out). */
    "repl.standby_lost": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      reason: string;
      acked: number;
      pending: number;
    };
    /** The standby answers again. */
    "repl.standby_back": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      acked: number;
      downMs: number;
    };
    /** This node became the primary of a new epoch. */
    "repl.promoted": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      epoch: number;
      startSeq: number;
    };
    /** The primary sent a full snapshot to the standby. */
    "repl.snapshot_sent": {
      pairId: string;
      /** The channel (client set; `a` unless active-active). */
      channel?: string;
      epoch: number;
      seq: number;
      bytes: number;
      ms: number;
    };
  }
}

/** Every kind this module declares (docs, UI). */
export const REPL_EVENTS = [
  "repl.gap",
  "repl.refused",
  "repl.resync_started",
  "repl.resync_progress",
  "repl.resync_finished",
  "repl.tail_saved",
  "repl.standby_lost",
  "repl.standby_back",
  "repl.promoted",
  "repl.snapshot_sent",
] as const;
