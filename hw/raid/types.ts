/**
 * RAID and disk-health driver interfaces: an md source that returns parsed arrays
 * (/proc/mdstat, optionally corrected by /sys/block/mdX/md), and a SMART reader
 * (`smartctl --json`). Names carry a Raid/Md/Smart prefix because hw/mod.ts
 * re-exports every kind's types side by side.
 * @module
 */

/** A member flag exactly as /proc/mdstat prints it: (W)rite-mostly, (J)ournal, (F)aulty, (S)pare, (R)eplacement. */
export type MdMemberFlag = "W" | "J" | "F" | "S" | "R";

/** One member device of an array. */
export interface MdMember {
  /** Block device name as the kernel prints it (`sda1`, `nvme0n1p2`). */
  name: string;
  /** The number in brackets: the superblock descriptor number (not the slot). */
  descNr: number;
  /** Flags in the order printed; letters the parser does not know are kept as printed. */
  flags: string[];
  /** Slot (role) from sysfs `dev-X/slot`; null when a spare or when sysfs was not read. */
  slot: number | null;
  /** Comma-separated words of sysfs `dev-X/state` (`in_sync`, `faulty`, ...); null without sysfs. */
  sysfsState: string[] | null;
}

/** What a sync line describes (`repair` only comes from sysfs: mdstat prints it as `resync`). */
export type MdSyncAction = "resync" | "recovery" | "check" | "repair" | "reshape";

/** Whether a sync runs, waits for another array (DELAYED), waits for write access (PENDING) or runs on a cluster peer (REMOTE). */
export type MdSyncStatus = "running" | "delayed" | "pending" | "remote";

/** A sync/recovery/check/reshape, running or queued. */
export interface MdSync {
  /** Action. */
  action: MdSyncAction;
  /** Running or queued. */
  status: MdSyncStatus;
  /** Percent done as printed (one decimal), null when queued. */
  percent: number | null;
  /** Blocks (KiB) done, null when queued. */
  doneBlocks: number | null;
  /** Blocks (KiB) to do in total, null when queued. */
  totalBlocks: number | null;
  /** Estimated minutes to finish, null when not printed. */
  finishMinutes: number | null;
  /** Speed in KiB/s, null when not printed. */
  speedKiBps: number | null;
}

/** The write-intent bitmap line. */
export interface MdBitmap {
  /** Pages in use. */
  pagesUsed: number;
  /** Pages in total. */
  pagesTotal: number;
  /** Memory used, KiB. */
  memKiB: number;
  /** Bitmap chunk as printed, e.g. `65536KB`. */
  chunk: string;
  /** Chunk size in bytes. */
  chunkBytes: number;
  /** External bitmap file, or null for an internal bitmap. */
  file: string | null;
}

/** Geometry printed on the status line (only what the personality prints). */
export interface MdGeometry {
  /** raid4/5/6: the numeric level after `level`. */
  levelNum: number | null;
  /** Chunk size in KiB (`64k chunk`, `512k chunks`, `512K chunks`). */
  chunkKiB: number | null;
  /** raid4/5/6 layout algorithm. */
  algorithm: number | null;
  /** linear: rounding in KiB. */
  roundingKiB: number | null;
  /** raid10 near-copies. */
  nearCopies: number | null;
  /** raid10 far-copies. */
  farCopies: number | null;
  /** raid10 offset-copies. */
  offsetCopies: number | null;
  /** raid10 devices per set (far layouts). */
  devicesPerSet: number | null;
}

/** One md array as /proc/mdstat (and sysfs, where read) describe it. */
export interface MdArray {
  /** Device name: `md0`, `md127`, `md_d0`. */
  name: string;
  /** `active` (a personality runs) or `inactive`. */
  active: boolean;
  /** Read-only mode, or null when writable. */
  readOnly: "read-only" | "auto-read-only" | null;
  /** Personality (`raid1`, `linear`, ...); null for inactive arrays that print none. */
  level: string | null;
  /** Members in printed order. */
  members: MdMember[];
  /** Size in 1 KiB blocks, null when no status line was printed. */
  blocks: number | null;
  /** Text after `super` (`1.2`, `external:imsm`, `non-persistent`); null for 0.90 (prints nothing). */
  metadata: string | null;
  /** For external metadata: the part after `external:` (`imsm`, `ddf`, `/md127/0`). */
  external: string | null;
  /** For a member of an external container: the container device (`md127`). */
  container: string | null;
  /** For a member of an external container: the subarray index (`0`). */
  subarray: string | null;
  /** Geometry from the status line. */
  geometry: MdGeometry;
  /** n of `[n/m]`, or null when not printed (raid0, linear, inactive, containers). */
  raidDisks: number | null;
  /** m of `[n/m]` (working devices), or null when not printed. */
  workingDisks: number | null;
  /** The `[UU_]` pattern without brackets, or null. */
  pattern: string | null;
  /** Sync in progress or queued, or null. */
  sync: MdSync | null;
  /** Bitmap, or null. */
  bitmap: MdBitmap | null;
  /** Status-line fragments the parser did not recognise, verbatim. */
  extraStatus: string[];
  /** 1-based line number of the array's header line. */
  line: number;
  /** What sysfs said, when it was read (sysfs wins over mdstat where they differ). */
  sysfs: MdSysfsArray | null;
}

/** A line the parser kept but did not understand. */
export interface MdUnknownLine {
  /** 1-based line number. */
  line: number;
  /** The line as it was (without the newline). */
  text: string;
  /** The array whose block the line was in, or null. */
  array: string | null;
}

/** A parsed /proc/mdstat. */
export interface Mdstat {
  /** Personalities registered in the kernel. */
  personalities: string[];
  /** Arrays in printed order. */
  arrays: MdArray[];
  /** Devices on the `unused devices:` line (empty for `<none>`). */
  unusedDevices: string[];
  /** False when the `unused devices:` line is missing (a truncated capture). */
  complete: boolean;
  /** Lines kept but not understood (never fatal). */
  unknown: MdUnknownLine[];
}

/** One `dev-X` directory under /sys/block/mdX/md/. */
export interface MdSysfsDevice {
  /** Device name (`sda1` from `dev-sda1`). */
  name: string;
  /** `slot`: number, or null for `none`. */
  slot: number | null;
  /** `state` words. */
  state: string[];
  /** `errors`, or null when absent. */
  errors: number | null;
}

/** What /sys/block/mdX/md/ says about one array. */
export interface MdSysfsArray {
  /** `array_state`: clear, inactive, suspended, readonly, read-auto, clean, active, write-pending, active-idle, broken. */
  arrayState: string | null;
  /** `level` (empty for inactive arrays → null). */
  level: string | null;
  /** `raid_disks` (first number; `11 (10)` during reshape gives 11). */
  raidDisks: number | null;
  /** `degraded`: number of missing devices. */
  degraded: number | null;
  /** `sync_action`: idle, resync, recover, check, repair, reshape, frozen. */
  syncAction: string | null;
  /** `sync_completed`: `none`, `delayed`, or done/total in sectors. */
  syncCompleted: "none" | "delayed" | { done: number; total: number } | null;
  /** `sync_speed` in KiB/s. */
  syncSpeed: number | null;
  /** `metadata_version`. */
  metadataVersion: string | null;
  /** Member devices. */
  devices: MdSysfsDevice[];
}

/** What an md source returns on each read. */
export interface MdSnapshot {
  /** The parsed mdstat, arrays already corrected by sysfs where sysfs was read. */
  mdstat: Mdstat;
  /** When it was read (clock milliseconds). */
  time: number;
}

/** A source of md array state: the real kernel (mdstat + sysfs) or a mock. */
export interface MdSource {
  /** Driver name (`md`, `mock`). */
  readonly driver: string;
  /** Read the current state; throws a clear error when it cannot. */
  read(): Promise<MdSnapshot>;
}

/** Disk health derived from SMART: `unknown` when the device gives no SMART data (normal for virtual disks). */
export type SmartDiskHealth = "ok" | "warning" | "failing" | "unknown";

/** The meaning of smartctl's exit status bits (smartctl(8) EXIT STATUS). */
export interface SmartExitBits {
  /** Bit 0: command line did not parse. */
  commandLineError: boolean;
  /** Bit 1: device open failed (or in standby with -n). */
  deviceOpenFailed: boolean;
  /** Bit 2: a SMART or ATA command to the disk failed, or a checksum error. */
  smartCommandFailed: boolean;
  /** Bit 3: SMART status says DISK FAILING. */
  diskFailing: boolean;
  /** Bit 4: prefail attributes at or below threshold. */
  prefailBelowThreshold: boolean;
  /** Bit 5: some attribute was at or below threshold in the past. */
  pastBelowThreshold: boolean;
  /** Bit 6: the device error log has records. */
  errorLogHasErrors: boolean;
  /** Bit 7: the self-test log has errors. */
  selfTestErrors: boolean;
}

/** What `smartctl --json -a DEVICE` told about one disk. */
export interface SmartReport {
  /** Device path as asked (`/dev/sda`). */
  device: string;
  /** `device.protocol`: ATA, NVMe, SCSI, or null. */
  protocol: string | null;
  /** Model name, or null. */
  model: string | null;
  /** Serial number, or null. */
  serial: string | null;
  /** `smart_status.passed`, null when not reported. */
  passed: boolean | null;
  /** Current temperature °C, or null. */
  temperatureC: number | null;
  /** Power-on hours, or null. */
  powerOnHours: number | null;
  /** ATA attribute 5 raw value (SCSI: the grown defect list), or null. */
  reallocatedSectors: number | null;
  /** ATA attribute 197 raw value, or null. */
  pendingSectors: number | null;
  /** ATA attribute 198 raw value, or null. */
  uncorrectableSectors: number | null;
  /** ATA attributes whose `when_failed` is set (`5:Reallocated_Sector_Ct:now`). */
  failedAttributes: string[];
  /** NVMe critical_warning bitmap, or null. */
  nvmeCriticalWarning: number | null;
  /** NVMe media_errors, or null. */
  nvmeMediaErrors: number | null;
  /** NVMe percentage_used, or null. */
  nvmePercentageUsed: number | null;
  /** smartctl exit status (bitmask). */
  exitStatus: number;
  /** Decoded exit status bits. */
  exitBits: SmartExitBits;
  /** smartctl messages (`severity: text`). */
  messages: string[];
  /** Classification. */
  health: SmartDiskHealth;
  /** Why the classification is not `ok` (one short phrase each). */
  reasons: string[];
}

/** Reads SMART data of one disk. */
export interface SmartReader {
  /** Read; never throws for a disk without SMART (that is `unknown`), throws when smartctl cannot run at all. */
  read(device: string): Promise<SmartReport>;
}

/** A RAID driver: the md source plus the SMART reader and the disks to watch. */
export interface RaidDriver {
  /** Driver name (`md`, `mock`). */
  readonly name: string;
  /** md state. */
  readonly md: MdSource;
  /** SMART. */
  readonly smart: SmartReader;
  /** Disks to read SMART from. */
  readonly disks: string[];
}
