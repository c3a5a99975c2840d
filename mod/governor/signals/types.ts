/**
 * What every signal source implements, and the file reader they share. In a file of
 * its own so the sources and `mod.ts` (which re-exports them) do not import each other.
 * @module
 */
import type { SignalValues } from "../config.ts";
import { READ_LIMITS, readTextFileBoundedSync } from "../../fs.ts";

/** A source of signal values, sampled by the governor every sample interval. */
export interface SignalSource {
  /** Short name (`lag`, `psi`, `cgroup`, `rss`, `queues`, `http`). */
  readonly name: string;
  /** Values at time `now` (ms); a signal it cannot read right now is left out. */
  sample(now: number): SignalValues;
  /** Extra detail for GET /api/governor. */
  detail?(): Record<string, unknown>;
  /** Start background work (timers). */
  start?(): void;
  /** Stop background work. */
  stop?(): void;
}

/** Reads a text file; returns null when it does not exist or cannot be read. */
export type ReadText = (path: string) => string | null;

/** The real file reader. */
export function readTextOrNull(path: string): string | null {
  try {
    return readTextFileBoundedSync(path, READ_LIMITS.procfs, "procfs file");
  } catch {
    return null;
  }
}
