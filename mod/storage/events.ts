/**
 * Event kinds the storage module publishes, with their payload types. Where
 * `mdadm --monitor` has a name for the event, the payload carries it as `mdadm`
 * (`storage.array_degraded` is mdadm's `DegradedArray`), so people who know mdadm
 * and scripts written for it can map one to the other.
 * @module
 */
import type {} from "../events/mod.ts";
import type { SmartDiskHealth } from "../../hw/raid/types.ts";
import type { RaidHealth } from "./health.ts";

/** Fields every array event carries. */
export type ArrayEventBase = {
  /** md device name. */
  array: string;
  /** Health after the change. */
  health: RaidHealth;
  /** Personality, or null (inactive). */
  level: string | null;
};

declare module "../events/mod.ts" {
  interface EventMap {
    /** A member became `(F)` (mdadm `Fail`). */
    "storage.member_failed": ArrayEventBase & { device: string; mdadm: "Fail" };
    /** A spare, or a member first seen already failed, became `(F)` (mdadm `FailSpare`). */
    "storage.spare_failed": ArrayEventBase & { device: string; mdadm: "FailSpare" };
    /** Degraded disks went from 0 to more, or an array is first seen degraded (mdadm `DegradedArray`). */
    "storage.array_degraded": ArrayEventBase & { degradedDisks: number; mdadm: "DegradedArray" };
    /** A resync/recovery/check/repair/reshape started running (mdadm `RebuildStarted`). */
    "storage.rebuild_started": ArrayEventBase & {
      action: string;
      progress: number;
      mdadm: "RebuildStarted";
    };
    /** The running sync crossed `step` percent (mdadm `Rebuild20`, `Rebuild40`, ...). */
    "storage.rebuild_progress": ArrayEventBase & {
      action: string;
      progress: number;
      step: number;
      mdadm: string;
    };
    /** The sync stopped; `completed` false when aborted or degraded further (mdadm `RebuildFinished`). */
    "storage.rebuild_finished": ArrayEventBase & {
      action: string;
      completed: boolean;
      mdadm: "RebuildFinished";
    };
    /** Working disks went up; `device` is the former spare when known (mdadm `SpareActive`). */
    "storage.spare_active": ArrayEventBase & { device: string | null; mdadm: "SpareActive" };
    /** Fewer spares than `hardware.raid.expectSpares` (mdadm `SparesMissing`). */
    "storage.spares_missing": ArrayEventBase & {
      expected: number;
      present: number;
      mdadm: "SparesMissing";
    };
    /** An array appeared after the first poll (mdadm `NewArray`). */
    "storage.array_appeared": ArrayEventBase & { mdadm: "NewArray" };
    /** An array is gone (mdadm `DeviceDisappeared`). */
    "storage.array_disappeared": {
      array: string;
      health: null;
      level: string | null;
      from: RaidHealth;
      to: null;
      mdadm: "DeviceDisappeared";
    };
    /** Every change of an array's health (`from` null at first sight of a non-ok array). */
    "storage.array_health_changed": ArrayEventBase & { from: RaidHealth | null; to: RaidHealth };
    /** Every change of a disk's SMART health. */
    "storage.disk_health_changed": {
      disk: string;
      from: SmartDiskHealth | null;
      to: SmartDiskHealth;
      reasons: string[];
    };
    /** md state could not be read (the last good state is kept). */
    "storage.read_failed": { driver: string; error: string };
    /** md state can be read again; `error` is the failure that ended. */
    "storage.read_recovered": { driver: string; error: string };
    /** mdstat has lines the parser does not know (reported once per distinct set). */
    "storage.mdstat_unknown_lines": { array: null; lines: string[] };
  }
}

/** Every event kind the storage module publishes (docs, UI filters). */
export const STORAGE_EVENTS = [
  "storage.member_failed",
  "storage.spare_failed",
  "storage.array_degraded",
  "storage.rebuild_started",
  "storage.rebuild_progress",
  "storage.rebuild_finished",
  "storage.spare_active",
  "storage.spares_missing",
  "storage.array_appeared",
  "storage.array_disappeared",
  "storage.array_health_changed",
  "storage.disk_health_changed",
  "storage.read_failed",
  "storage.read_recovered",
  "storage.mdstat_unknown_lines",
] as const;

/** One storage event kind. */
export type StorageEventKind = typeof STORAGE_EVENTS[number];
