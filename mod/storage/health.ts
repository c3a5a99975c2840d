/**
 * Health of an md array (`ok | degraded | rebuilding | failed | inactive`) and the
 * per-array JSON shape shared by `keepwire raid status --json` and GET /api/storage.
 * Pure functions over parsed arrays.
 * @module
 */
import { z } from "zod";
import type { MdArray, SmartDiskHealth, SmartReport } from "../../hw/raid/types.ts";

/** Health of one array. */
export const raidHealthSchema = z.lazy(() =>
  z.enum(["ok", "degraded", "rebuilding", "failed", "inactive"])
);
/** Health of one array. */
export type RaidHealth = z.infer<typeof raidHealthSchema>;

/** All health values, best first. */
export const RAID_HEALTHS: readonly RaidHealth[] = [
  "ok",
  "rebuilding",
  "degraded",
  "inactive",
  "failed",
];

/** A sync in the status shape. */
export const raidSyncStatusSchema = z.lazy(() =>
  z.object({
    action: z.string().describe("resync | recovery | check | repair | reshape"),
    progress: z.number().describe("0..1; 0 while queued (DELAYED/PENDING/REMOTE)"),
    finishSeconds: z.number().nullable().describe("estimated seconds to finish"),
    speedKiBps: z.number().nullable().describe("KiB/s; null while queued or not printed"),
  })
);
/** A sync in the status shape. */
export type RaidSyncStatus = z.infer<typeof raidSyncStatusSchema>;

/** One member in the status shape. */
export const raidMemberStatusSchema = z.lazy(() =>
  z.object({
    name: z.string().describe("device name"),
    index: z.number().describe("the number in brackets (superblock descriptor number)"),
    flags: z.array(z.string()).describe(
      "flags as mdstat prints them: F faulty, S spare, W write-mostly, R replacement, J journal",
    ),
  })
);
/** One member in the status shape. */
export type RaidMemberStatus = z.infer<typeof raidMemberStatusSchema>;

/** One array as `raid status --json` and GET /api/storage show it. */
export const raidArrayStatusSchema = z.lazy(() =>
  z.object({
    name: z.string().describe("md device name"),
    level: z.string().nullable().describe("personality, or null for an inactive array"),
    active: z.boolean().describe("a personality runs"),
    readOnly: z.boolean().describe("read-only or auto-read-only"),
    health: raidHealthSchema,
    raidDisks: z.number().describe(
      "n of [n/m]; without it (raid0, linear, inactive) the members that are not spares or journal",
    ),
    activeDisks: z.number().describe("working (in-sync) devices; 0 for an inactive array"),
    degradedDisks: z.number().describe("raidDisks - activeDisks (0 for an inactive array)"),
    failed: z.array(z.string()).describe("members flagged (F)"),
    spares: z.array(z.string()).describe("members flagged (S) and not (F)"),
    replacements: z.array(z.string()).describe("members flagged (R) and not (F)"),
    writeMostly: z.array(z.string()).describe("members flagged (W)"),
    members: z.array(raidMemberStatusSchema).describe("members in printed order"),
    sync: raidSyncStatusSchema.nullable().describe("running or queued sync"),
  })
);
/** One array as `raid status --json` and GET /api/storage show it. */
export type RaidArrayStatus = z.infer<typeof raidArrayStatusSchema>;

/** Disk health in the API shape. */
export const diskStatusSchema = z.lazy(() =>
  z.object({
    device: z.string().describe("device path"),
    health: z.enum(["ok", "warning", "failing", "unknown"]) satisfies z.ZodType<SmartDiskHealth>,
    reasons: z.array(z.string()).describe("why not ok"),
    model: z.string().nullable(),
    serial: z.string().nullable(),
    protocol: z.string().nullable().describe("ATA, NVMe, SCSI"),
    passed: z.boolean().nullable().describe("smart_status.passed"),
    temperatureC: z.number().nullable(),
    powerOnHours: z.number().nullable(),
    reallocatedSectors: z.number().nullable().describe("ATA 5"),
    pendingSectors: z.number().nullable().describe("ATA 197"),
    uncorrectableSectors: z.number().nullable().describe("ATA 198"),
    nvmeCriticalWarning: z.number().nullable(),
    nvmeMediaErrors: z.number().nullable(),
    exitStatus: z.number().nullable().describe("smartctl exit status; null when it could not run"),
    updatedAt: z.number().nullable().describe("when read (ms since epoch)"),
    error: z.string().nullable().describe("why smartctl could not be run"),
  })
);
/** Disk health in the API shape. */
export type DiskStatus = z.infer<typeof diskStatusSchema>;

/** Disk status from a SMART report. */
export function diskStatusOf(r: SmartReport, time: number): DiskStatus {
  return {
    device: r.device,
    health: r.health,
    reasons: r.reasons,
    model: r.model,
    serial: r.serial,
    protocol: r.protocol,
    passed: r.passed,
    temperatureC: r.temperatureC,
    powerOnHours: r.powerOnHours,
    reallocatedSectors: r.reallocatedSectors,
    pendingSectors: r.pendingSectors,
    uncorrectableSectors: r.uncorrectableSectors,
    nvmeCriticalWarning: r.nvmeCriticalWarning,
    nvmeMediaErrors: r.nvmeMediaErrors,
    exitStatus: r.exitStatus,
    updatedAt: time,
    error: null,
  };
}

/** Disk status when smartctl could not run at all. */
export function diskErrorStatus(device: string, error: string, time: number): DiskStatus {
  return {
    device,
    health: "unknown",
    reasons: [error],
    model: null,
    serial: null,
    protocol: null,
    passed: null,
    temperatureC: null,
    powerOnHours: null,
    reallocatedSectors: null,
    pendingSectors: null,
    uncorrectableSectors: null,
    nvmeCriticalWarning: null,
    nvmeMediaErrors: null,
    exitStatus: null,
    updatedAt: time,
    error,
  };
}

const has = (flags: readonly string[], f: string): boolean => flags.includes(f);

/** Disk counts of an array: raidDisks, activeDisks, degradedDisks. */
export function diskCounts(
  a: MdArray,
): { raidDisks: number; activeDisks: number; degradedDisks: number } {
  if (!a.active) {
    const listed = a.members.filter((m) => !has(m.flags, "S") && !has(m.flags, "J")).length;
    return { raidDisks: a.raidDisks ?? listed, activeDisks: 0, degradedDisks: 0 };
  }
  if (a.raidDisks !== null && a.workingDisks !== null) {
    return {
      raidDisks: a.raidDisks,
      activeDisks: a.workingDisks,
      degradedDisks: Math.max(0, a.raidDisks - a.workingDisks),
    };
  }
  // raid0 / linear / container members: no [n/m]; every non-spare member holds data.
  const data = a.members.filter((m) =>
    !has(m.flags, "S") && !has(m.flags, "J") && !has(m.flags, "R")
  );
  const working = data.filter((m) => !has(m.flags, "F")).length;
  let degraded = data.length - working;
  if (a.sysfs?.degraded != null && a.sysfs.degraded > degraded) degraded = a.sysfs.degraded;
  return { raidDisks: data.length, activeDisks: working, degradedDisks: degraded };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Has the array lost data (more members missing than its level tolerates)? */
export function dataLost(a: MdArray, counts = diskCounts(a)): boolean {
  const { raidDisks, activeDisks, degradedDisks } = counts;
  if (degradedDisks === 0) return false;
  const level = a.level ?? "";
  switch (level) {
    case "raid1":
    case "multipath":
      return activeDisks === 0;
    case "raid4":
    case "raid5":
      return degradedDisks > 1;
    case "raid6":
      return degradedDisks > 2;
    case "raid0":
    case "linear":
      return true;
    case "raid10": {
      const g = a.geometry;
      const near = g.nearCopies ?? 1;
      const far = Math.max(g.farCopies ?? 1, g.offsetCopies ?? 1);
      const copies = near * far > 1 ? near * far : 2;
      if (a.pattern === null || a.pattern.length !== raidDisks) return activeDisks === 0;
      // Near layout: copies of a chunk sit on `near` consecutive devices starting at a
      // multiple of gcd(near, n). Far/offset: on consecutive devices from any start.
      const step = far > 1 ? 1 : gcd(near > 1 ? near : copies, raidDisks);
      for (let start = 0; start < raidDisks; start += step) {
        let all = true;
        for (let k = 0; k < copies && all; k++) {
          if (a.pattern[(start + k) % raidDisks] === "U") all = false;
        }
        if (all) return true;
      }
      return false;
    }
    default:
      return activeDisks === 0 && raidDisks > 0;
  }
}

/**
 * Health of an array:
 * - `inactive`: no personality runs (stopped half-assembled, or an external-metadata container);
 * - `failed`: more members missing than the level tolerates, or sysfs says `broken`;
 * - `rebuilding`: a recovery runs (onto a spare or a replacement), or a reshape of a
 *   degraded array runs (the new slot fills as it goes);
 * - `degraded`: members missing and nothing rebuilding (queued DELAYED counts as not yet);
 * - `ok`: otherwise, including resync/check/repair of a complete array and failed
 *   spares still listed.
 */
export function arrayHealth(a: MdArray, counts = diskCounts(a)): RaidHealth {
  if (!a.active) return "inactive";
  if (a.sysfs?.arrayState === "broken") return "failed";
  const running = a.sync?.status === "running" ? a.sync.action : null;
  if (counts.degradedDisks === 0) return running === "recovery" ? "rebuilding" : "ok";
  if (dataLost(a, counts)) return "failed";
  if (running === "recovery" || running === "reshape") return "rebuilding";
  return "degraded";
}

/** The status shape of one array. */
export function arrayStatus(a: MdArray): RaidArrayStatus {
  const counts = diskCounts(a);
  const names = (pred: (f: string[]) => boolean) =>
    a.members.filter((m) => pred(m.flags)).map((m) => m.name);
  let sync: RaidSyncStatus | null = null;
  if (a.sync) {
    const s = a.sync;
    let progress = 0;
    if (s.status === "running") {
      if (s.doneBlocks !== null && s.totalBlocks) {
        progress = Math.round((s.doneBlocks / s.totalBlocks) * 10_000) / 10_000;
      } else if (s.percent !== null) progress = s.percent / 100;
    }
    sync = {
      action: s.action,
      progress: Math.min(1, Math.max(0, progress)),
      finishSeconds: s.status === "running" && s.finishMinutes !== null
        ? Math.round(s.finishMinutes * 60)
        : null,
      speedKiBps: s.status === "running" ? s.speedKiBps : null,
    };
  }
  return {
    name: a.name,
    level: a.level,
    active: a.active,
    readOnly: a.readOnly !== null,
    health: arrayHealth(a, counts),
    raidDisks: counts.raidDisks,
    activeDisks: counts.activeDisks,
    degradedDisks: counts.degradedDisks,
    failed: names((f) => has(f, "F")),
    spares: names((f) => has(f, "S") && !has(f, "F")),
    replacements: names((f) => has(f, "R") && !has(f, "F")),
    writeMostly: names((f) => has(f, "W")),
    members: a.members.map((m) => ({ name: m.name, index: m.descNr, flags: [...m.flags] })),
    sync,
  };
}

/**
 * One line per array for people (`raid status` without --json). `a`, when given,
 * adds what only the parsed mdstat knows (the [UU_] pattern, DELAYED vs PENDING).
 */
export function formatArrayLine(s: RaidArrayStatus, a?: MdArray): string {
  const parts = [
    s.name,
    s.level ?? "-",
    s.health.toUpperCase(),
    s.active ? `${s.activeDisks}/${s.raidDisks} disks` : "inactive",
  ];
  if (a?.pattern) parts.push(`[${a.pattern}]`);
  if (a?.readOnly) parts.push(a.readOnly);
  else if (s.readOnly) parts.push("read-only");
  if (s.sync) {
    const x = s.sync;
    const queued = a?.sync && a.sync.status !== "running" ? a.sync.status : null;
    if (queued) parts.push(`${x.action}=${queued.toUpperCase()}`);
    else if (x.finishSeconds === null && x.speedKiBps === null && x.progress === 0) {
      parts.push(`${x.action} queued`);
    } else {
      const pct = (a?.sync?.percent ?? x.progress * 100).toFixed(1);
      const speed = x.speedKiBps !== null ? ` ${x.speedKiBps} KiB/s` : "";
      const eta = x.finishSeconds !== null ? ` ETA ${formatDuration(x.finishSeconds)}` : "";
      parts.push(`${x.action} ${pct}%${speed}${eta}`);
    }
  }
  if (s.failed.length) parts.push(`failed: ${s.failed.join(",")}`);
  if (s.spares.length) parts.push(`spares: ${s.spares.join(",")}`);
  if (s.replacements.length) parts.push(`replacing: ${s.replacements.join(",")}`);
  if (s.writeMostly.length) parts.push(`write-mostly: ${s.writeMostly.join(",")}`);
  return parts.join("  ");
}

function formatDuration(sec: number): string {
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
