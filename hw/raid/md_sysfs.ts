/**
 * Reader of /sys/block/mdX/md/ (array_state, level, raid_disks, degraded,
 * sync_action, sync_completed, sync_speed, metadata_version, dev-X/{slot,state,errors})
 * with an injectable root, and the merge rule: where sysfs and mdstat differ,
 * sysfs wins (e.g. a queued check prints `resync=DELAYED` in mdstat while
 * sync_action says `check`).
 * @module
 */
import { join } from "node:path";
import { READ_LIMITS, readTextFileBounded } from "../../mod/fs.ts";
import type { MdArray, MdSync, MdSyncAction, MdSysfsArray, MdSysfsDevice } from "./types.ts";

async function readAttr(dir: string, name: string): Promise<string | null> {
  try {
    return (await readTextFileBounded(join(dir, name), READ_LIMITS.mdstat, "sysfs attribute"))
      .trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      return null;
    }
    // Some attributes return EINVAL/EBUSY on read in odd states: treat as absent.
    if (e instanceof Error && /os error (16|22)\b/.test(e.message)) return null;
    throw e;
  }
}

function intOrNull(s: string | null): number | null {
  if (s === null) return null;
  const m = /^(\d+)/.exec(s);
  return m ? Number(m[1]) : null;
}

/** Parse a `sync_completed` value: `none`, `delayed`, or `DONE / TOTAL` (sectors). */
export function parseSyncCompleted(s: string | null): MdSysfsArray["syncCompleted"] {
  if (s === null) return null;
  if (s === "none" || s === "delayed") return s;
  const m = /^(\d+)\s*\/\s*(\d+)$/.exec(s);
  return m ? { done: Number(m[1]), total: Number(m[2]) } : null;
}

/**
 * Read /sys/block/NAME/md under `root` (default /sys/block). Returns null when the
 * array has no md directory there (sysfs absent, or the array vanished).
 */
export async function readMdSysfs(name: string, root = "/sys/block"): Promise<MdSysfsArray | null> {
  const dir = join(root, name, "md");
  try {
    if (!(await Deno.stat(dir)).isDirectory) return null;
  } catch {
    return null;
  }
  const [arrayState, level, raidDisks, degraded, syncAction, syncCompleted, syncSpeed, meta] =
    await Promise.all([
      readAttr(dir, "array_state"),
      readAttr(dir, "level"),
      readAttr(dir, "raid_disks"),
      readAttr(dir, "degraded"),
      readAttr(dir, "sync_action"),
      readAttr(dir, "sync_completed"),
      readAttr(dir, "sync_speed"),
      readAttr(dir, "metadata_version"),
    ]);
  const devices: MdSysfsDevice[] = [];
  const entries: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith("dev-") && (e.isDirectory || e.isSymlink)) entries.push(e.name);
  }
  entries.sort();
  for (const e of entries) {
    const d = join(dir, e);
    const [slot, state, errors] = await Promise.all([
      readAttr(d, "slot"),
      readAttr(d, "state"),
      readAttr(d, "errors"),
    ]);
    devices.push({
      name: e.slice(4),
      slot: slot === null || slot === "none" ? null : intOrNull(slot),
      state: state ? state.split(",").map((s) => s.trim()).filter((s) => s !== "") : [],
      errors: intOrNull(errors),
    });
  }
  return {
    arrayState,
    level: level === "" ? null : level,
    raidDisks: intOrNull(raidDisks),
    degraded: intOrNull(degraded),
    syncAction,
    syncCompleted: parseSyncCompleted(syncCompleted),
    syncSpeed: intOrNull(syncSpeed),
    metadataVersion: meta,
    devices,
  };
}

const SYSFS_ACTIONS: Record<string, MdSyncAction> = {
  resync: "resync",
  recover: "recovery",
  check: "check",
  repair: "repair",
  reshape: "reshape",
};

/**
 * Apply what sysfs says to an array parsed from mdstat, in place, and return it.
 * Sysfs wins for: active/read-only (array_state), level, raid_disks, degraded
 * (working = raid_disks - degraded), the sync action and progress, and member
 * flags F/S/W/R/J (from dev-X/state and slot). Members sysfs lists that mdstat
 * did not (a race between the two reads) are left out; flags of members sysfs
 * does not list stay as mdstat printed them.
 */
export function mergeSysfs(a: MdArray, s: MdSysfsArray): MdArray {
  a.sysfs = s;
  const st = s.arrayState;
  if (st !== null && st !== "") {
    if (st === "inactive" || st === "clear") a.active = false;
    else a.active = true;
    if (st === "readonly") a.readOnly = "read-only";
    else if (st === "read-auto") a.readOnly = "auto-read-only";
    else if (a.active) a.readOnly = null;
  }
  if (s.level !== null && s.level !== "container") a.level = s.level;
  if (a.active && s.raidDisks !== null && s.raidDisks > 0 && a.raidDisks !== null) {
    a.raidDisks = s.raidDisks;
  }
  if (a.active && s.degraded !== null && a.raidDisks !== null) {
    a.workingDisks = Math.max(0, a.raidDisks - s.degraded);
  }
  a.sync = mergeSync(a.sync, s);
  const byName = new Map(s.devices.map((d) => [d.name, d]));
  for (const m of a.members) {
    const d = byName.get(m.name);
    if (!d) continue;
    m.slot = d.slot;
    m.sysfsState = d.state;
    const has = (w: string) => d.state.includes(w);
    const flags: string[] = [];
    if (has("write_mostly") || has("writemostly")) flags.push("W");
    if (has("journal")) flags.push("J");
    if (has("faulty")) flags.push("F");
    else {
      if (d.slot === null && !has("journal")) flags.push("S");
      if (has("replacement")) flags.push("R");
    }
    // Letters the kernel may add later and sysfs does not describe are kept.
    for (const f of m.flags) if (!"WJFSR".includes(f) && !flags.includes(f)) flags.push(f);
    m.flags = flags;
  }
  return a;
}

function mergeSync(mdstat: MdSync | null, s: MdSysfsArray): MdSync | null {
  const raw = s.syncAction;
  if (raw === null) return mdstat;
  const action = SYSFS_ACTIONS[raw];
  if (!action) {
    // idle / frozen: nothing runs. mdstat's PENDING (read-only array waiting for a
    // write) and REMOTE (cluster peer) are not contradicted by an idle sync_action.
    if (mdstat && (mdstat.status === "pending" || mdstat.status === "remote")) return mdstat;
    return null;
  }
  const c = s.syncCompleted;
  if (c === "delayed" || (mdstat && mdstat.status === "delayed" && (c === null || c === "none"))) {
    return {
      action,
      status: "delayed",
      percent: null,
      doneBlocks: null,
      totalBlocks: null,
      finishMinutes: null,
      speedKiBps: null,
    };
  }
  if (c !== null && typeof c === "object") {
    const percent = c.total > 0 ? Math.floor((c.done / c.total) * 1000) / 10 : 0;
    return {
      action,
      status: "running",
      percent,
      doneBlocks: Math.floor(c.done / 2),
      totalBlocks: Math.floor(c.total / 2),
      finishMinutes: mdstat?.status === "running" ? mdstat.finishMinutes : null,
      speedKiBps: s.syncSpeed ?? mdstat?.speedKiBps ?? null,
    };
  }
  if (mdstat) return { ...mdstat, action };
  // sync_action names an action but nothing has started yet (sync_completed none).
  return {
    action,
    status: "delayed",
    percent: null,
    doneBlocks: null,
    totalBlocks: null,
    finishMinutes: null,
    speedKiBps: null,
  };
}
