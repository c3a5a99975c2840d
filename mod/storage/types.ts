/** Types shared by the storage module and its routes (a file of its own: no import circle). */
import type { DiskStatus, RaidArrayStatus } from "./health.ts";

/** What GET /api/storage returns. */
export interface StorageView {
  /** Arrays in the order the kernel lists them. */
  arrays: RaidArrayStatus[];
  /** Watched disks. */
  disks: DiskStatus[];
  /** Time of the last successful md read (ms since epoch), or null. */
  updatedAt: number | null;
  /** Why the last md read failed, or null. */
  error: string | null;
}
