/**
 * One keepwire per data directory: an exclusive advisory lock (flock) on
 * `DATA/keepwire.lock`, taken before anything in the directory is touched and held
 * until the runtime has stopped. The file holds the owner's pid so a refused second
 * run can name it. The kernel drops the lock when the holder dies (even by kill -9),
 * so a stale file never blocks a start; the file itself is never removed (removing
 * it would let two processes lock two different files).
 * @module
 */
import { join } from "node:path";
import { KeepwireError } from "./errors.ts";

/** File name of the lock inside the data directory. */
export const LOCK_FILE = "keepwire.lock";

/** Another process holds the data directory. */
export class DataDirLockedError extends KeepwireError {
  /** The holder's pid, when it could be read. */
  readonly holder: number | null;
  /** Build for a data directory and its holder. */
  constructor(dataDir: string, holder: number | null) {
    super(
      409,
      "data_dir_locked",
      `data directory ${dataDir} is in use by ${
        holder ? `keepwire pid ${holder}` : "another keepwire process"
      } (lock ${join(dataDir, LOCK_FILE)}); stop it first or use another --data`,
    );
    this.holder = holder;
  }
}

/** A held data-directory lock. */
export class DataDirLock {
  readonly #file: Deno.FsFile;
  /** Path of the lock file. */
  readonly path: string;

  private constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.path = path;
  }

  /**
   * Take the lock or throw {@link DataDirLockedError} at once (never waits). The
   * directory must exist.
   */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    const path = join(dataDir, LOCK_FILE);
    // no truncate: the holder's pid must stay readable for the one refused
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    let locked = false;
    try {
      locked = await file.tryLock(true);
    } catch (e) {
      file.close();
      throw e;
    }
    if (!locked) {
      file.close();
      throw new DataDirLockedError(dataDir, await readHolder(path));
    }
    try {
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    } catch (e) {
      file.close();
      throw e;
    }
    return new DataDirLock(file, path);
  }

  /** Release the lock (idempotent). The file stays. */
  release(): void {
    try {
      this.#file.close(); // closing the descriptor drops the flock
    } catch {
      // already closed
    }
  }
}

/** The pid written in a lock file, or null. */
async function readHolder(path: string): Promise<number | null> {
  try {
    const text = (await Deno.readTextFile(path)).slice(0, 32).trim();
    const pid = Number(text);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
