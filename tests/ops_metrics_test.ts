// The metric families of each part, from the status they are built on: exactly one
// state per state-set, the numbers that matter when something is wrong.
import { assertEquals } from "./helpers/assert.ts";
import { supervisorMetrics } from "../mod/supervisor/metrics.ts";
import { bypassMetrics } from "../mod/bypass/metrics.ts";
import { storageMetrics } from "../mod/storage/metrics.ts";
import { updateMetrics } from "../mod/update/metrics.ts";
import type { MetricFamily } from "../mod/web/metrics.ts";
import type { SubsystemInfo } from "../mod/supervisor/api.ts";
import type { SegmentStatus } from "../mod/bypass/types.ts";
import type { DiskStatus, RaidArrayStatus } from "../mod/storage/health.ts";
import type { UpdateStatusView } from "../mod/update/service.ts";

function fam(fams: MetricFamily[], name: string): MetricFamily {
  const f = fams.find((x) => x.name === name);
  if (!f) throw new Error(`no family ${name}`);
  return f;
}
/** The label value of the samples that are 1. */
function ones(f: MetricFamily, label: string): string[] {
  return f.samples.filter((s) => s.value === 1).map((s) => s.labels![label]);
}

Deno.test("supervisor metrics: state set, restarts, last restart time", () => {
  const info = (name: string, state: SubsystemInfo["state"], restarts: number): SubsystemInfo => ({
    name,
    kind: "worker",
    state,
    criticality: "important",
    pid: null,
    restarts,
    lastHeartbeatMs: null,
    lastFailure: null,
  });
  const f = supervisorMetrics(
    [info("a", "failed", 5), info("b", "ready", 0)],
    new Map([["a", 90_000]]),
  );
  assertEquals(ones(fam(f, "subsystem_state"), "state"), ["failed", "ready"]);
  assertEquals(fam(f, "subsystem_restarts_total").samples.map((s) => s.value), [5, 0]);
  assertEquals(fam(f, "subsystem_last_restart_timestamp_seconds").samples.map((s) => s.value), [
    90,
    0,
  ]);
});

Deno.test("bypass metrics: the read-back mode (unknown when untrusted) and holds", () => {
  const seg = (name: string, mode: SegmentStatus["mode"], holds: number) =>
    ({
      name,
      driver: "mock",
      mode,
      failures: 2,
      holds: Array.from({ length: holds }, (_, i) => ({ reason: `r${i}`, count: 3 })),
    }) as unknown as SegmentStatus;
  const f = bypassMetrics([seg("s0", "bypass", 2), seg("s1", "unknown", 0)]);
  assertEquals(ones(fam(f, "bypass_segment_mode"), "mode"), ["bypass", "unknown"]);
  assertEquals(fam(f, "bypass_holds").samples.map((s) => s.value), [2, 0]);
});

Deno.test("storage metrics: degraded and rebuilding arrays, failing disks, temperatures", () => {
  const arr = (name: string, health: RaidArrayStatus["health"], extra: Partial<RaidArrayStatus>) =>
    ({
      name,
      level: "raid1",
      health,
      degradedDisks: 0,
      failed: [],
      sync: null,
      ...extra,
    }) as unknown as RaidArrayStatus;
  const disk = (device: string, health: DiskStatus["health"], t: number | null) =>
    ({ device, health, temperatureC: t }) as unknown as DiskStatus;
  const f = storageMetrics(
    [
      arr("md0", "degraded", { degradedDisks: 1, failed: ["sdb1"] }),
      arr("md1", "rebuilding", {
        degradedDisks: 1,
        sync: { action: "recovery", progress: 0.42, finishSeconds: 60, speedKiBps: 1000 },
      }),
    ],
    [disk("/dev/sda", "ok", 34), disk("/dev/sdb", "failing", null)],
  );
  assertEquals(ones(fam(f, "raid_array_health"), "health"), ["degraded", "rebuilding"]);
  assertEquals(fam(f, "raid_array_degraded_members").samples.map((s) => s.value), [1, 1]);
  assertEquals(fam(f, "raid_array_failed_members").samples.map((s) => s.value), [1, 0]);
  assertEquals(
    fam(f, "raid_array_sync_progress_ratio").samples.map((s) => [s.labels!.action, s.value]),
    [["idle", 1], ["recovery", 0.42]],
  );
  assertEquals(ones(fam(f, "disk_smart_health"), "health"), ["ok", "failing"]);
  assertEquals(fam(f, "disk_temperature_celsius").samples, [
    { labels: { device: "/dev/sda" }, value: 34 },
  ]);
});

Deno.test("update metrics: slot states, next boot, booted slot and version", () => {
  const slot = (bootname: string, state: string, booted: boolean, version: string | null) => ({
    slotClass: "rootfs",
    bootname,
    device: "/dev/x",
    state,
    status: null,
    version,
    sha256: null,
    installedAt: null,
    booted,
    primary: !booted,
  });
  const view = {
    slots: [slot("A", "good", true, null), slot("B", "trying", false, "2.0.0")],
  } as unknown as UpdateStatusView;
  const f = updateMetrics(view, true, "1.0.0");
  assertEquals(ones(fam(f, "update_slot_state"), "state"), ["good", "trying"]);
  assertEquals(ones(fam(f, "update_slot_primary"), "slot"), ["B"]);
  assertEquals(fam(f, "update_booted_info").samples, [
    { labels: { slot: "A", version: "1.0.0" }, value: 1 },
  ]);
  assertEquals(fam(f, "update_installing").samples[0].value, 1);
  assertEquals(fam(updateMetrics(null, false, "1"), "update_booted_info").samples, []);
});
