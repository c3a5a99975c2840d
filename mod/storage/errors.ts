/**
 * Errors of the storage module.
 * @module
 */
import { KeepwireError } from "../errors.ts";

/** The RAID driver cannot read the md state at start (keepwire does not start without it). */
export class StorageStartError extends KeepwireError {
  /** Build; `driver` is the configured driver's name. */
  constructor(driver: string, cause: unknown) {
    super(
      503,
      "storage_unreadable",
      `storage (driver ${driver}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
