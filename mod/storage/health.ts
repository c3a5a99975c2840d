/**
 * Health of an md array (`ok | degraded | rebuilding | failed | inactive`) and the
 * per-array JSON shape shared by `keepwire raid status --json` and GET /api/storage.
 * Pure functions over parsed arrays.
 * @module
 */
import type { MdArray, SmartDiskHealth, SmartReport } from "../../hw/raid/types.ts";

/** Health of one array. */
export type RaidHealth = "ok" | "degraded" | "rebuilding" | "failed" | "inactive";

/** All health values, best first. */
export const RAID_HEALTHS: readonly RaidHealth[] = [
  "ok",
  "rebuilding",
  "degraded",
  "inactive",
  "failed",
];

/** A sync in the status shape. */
export interface RaidSyncStatus {
  /** resync | recovery | check | repair | reshape. */
  action: string;
  /** 0..1; 0 while queued (DELAYED/PENDING/REMOTE). */
  progress: number;
  /** Estimated seconds to finish; null while queued or when not printed. */
  finishSeconds: number | null;
  /** KiB/s; null while queued or when not printed. */
  speedKiBps: number | null;
}

/** One member in the status shape. */
export interface RaidMemberStatus {
  /** Device name. */
  name: string;
  /** The number in brackets (superblock descriptor number). */
  index: number;
  /** Flags as mdstat prints them: F S W R J. */
  flags: string[];
}

/** One array as `raid status --json` and GET /api/storage show it. */
export interface RaidArrayStatus {
  /** md device name. */
  name: string;
  /** Personality, or null for an inactive array that prints none. */
  level: string | null;
  /** A personality runs. */
  active: boolean;
  /** read-only or auto-read-only. */
  readOnly: boolean;
  /** Health. */
  health: RaidHealth;
  /** n of [n/m]; without [n/m] (raid0, linear, inactive) the members that are not spares or journal. */
  raidDisks: number;
  /** Working (in-sync) devices; 0 for an inactive array. */
  activeDisks: number;
  /** raidDisks - activeDisks for active arrays; 0 for an inactive array. */
  degradedDisks: number;
  /** Members flagged (F). */
  failed: string[];
  /** Members flagged (S) and not (F). */
  spares: string[];
  /** Members flagged (R) and not (F). */
  replacements: string[];
  /** Members flagged (W). */
  writeMostly: string[];
  /** Members in printed order. */
  members: RaidMemberStatus[];
  /** Running or queued sync, or null. */
  sync: RaidSyncStatus | null;
}

/** Disk health in the API shape. */
export interface DiskStatus {
  /** Device path. */
  device: string;
  /** ok | warning | failing | unknown. */
  health: SmartDiskHealth;
  /** Why not ok. */
  reasons: string[];
  /** Model. */
  model: string | null;
  /** Serial. */
  serial: string | null;
  /** ATA, NVMe, SCSI. */
  protocol: string | null;
  /** smart_status.passed. */
  passed: boolean | null;
  /** °C. */
  temperatureC: number | null;
  /** Hours. */
  powerOnHours: number | null;
  /** ATA 5. */
  reallocatedSectors: number | null;
  /** ATA 197. */
  pendingSectors: number | null;
  /** ATA 198. */
  uncorrectableSectors: number | null;
  /** NVMe critical_warning. */
  nvmeCriticalWarning: number | null;
  /** NVMe media_errors. */
  nvmeMediaErrors: number | null;
  /** smartctl exit status, or null when smartctl could not run. */
  exitStatus: number | null;
  /** When read (ms since epoch), or null before the first read. */
  updatedAt: number | null;
  /** Why smartctl could not be run, or null. */
  error: string | null;
}

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
