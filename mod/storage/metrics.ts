/** Metric families of storage: RAID array health, degraded members, sync; SMART per disk. */
import { type MetricFamily, stateSet } from "../web/metrics.ts";
import { type DiskStatus, RAID_HEALTHS, type RaidArrayStatus } from "./health.ts";

/** SMART verdicts of the state-set metric. */
const DISK_HEALTHS = ["ok", "warning", "failing", "unknown"] as const;

/** `raid_*` and `disk_*` families from the last md and SMART reads. */
export function storageMetrics(arrays: RaidArrayStatus[], disks: DiskStatus[]): MetricFamily[] {
  return [
    {
      name: "raid_array_health",
      help:
        "1 for each array's health (ok, rebuilding, degraded, inactive, failed), 0 for the others",
      type: "gauge",
      samples: stateSet(
        arrays,
        RAID_HEALTHS,
        (a) => a.health,
        (a) => ({ array: a.name, level: a.level ?? "" }),
        "health",
      ),
    },
    {
      name: "raid_array_degraded_members",
      help: "members each array is missing (md's degraded count)",
      type: "gauge",
      samples: arrays.map((a) => ({ labels: { array: a.name }, value: a.degradedDisks })),
    },
    {
      name: "raid_array_failed_members",
      help: "members md marks faulty (F) in each array",
      type: "gauge",
      samples: arrays.map((a) => ({ labels: { array: a.name }, value: a.failed.length })),
    },
    {
      name: "raid_array_sync_progress_ratio",
      help: "progress of each array's resync/recovery/check (0..1; 1 when none runs)",
      type: "gauge",
      samples: arrays.map((a) => ({
        labels: { array: a.name, action: a.sync?.action ?? "idle" },
        value: a.sync ? a.sync.progress : 1,
      })),
    },
    {
      name: "disk_smart_health",
      help: "1 for each disk's SMART verdict (ok, warning, failing, unknown), 0 for the others",
      type: "gauge",
      samples: stateSet(
        disks,
        DISK_HEALTHS,
        (d) => d.health,
        (d) => ({ device: d.device }),
        "health",
      ),
    },
    {
      name: "disk_temperature_celsius",
      help: "each disk's temperature as SMART last reported it (absent when unknown)",
      type: "gauge",
      samples: disks.filter((d) => d.temperatureC !== null).map((d) => ({
        labels: { device: d.device },
        value: d.temperatureC!,
      })),
    },
  ];
}
