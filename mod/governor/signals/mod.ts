/**
 * Pluggable pressure signals: each source is one small file that turns some
 * input (timer drift, /proc, cgroup files, SDK reports, HTTP counters) into
 * values of the named signals the level logic compares with thresholds.
 * @module
 */
import type { SignalValues } from "../config.ts";

export { LagProbe, type LagProbeOptions } from "./lag.ts";
export { parsePsi, type PsiLine, type PsiRecord, PsiSource, type PsiSourceOptions } from "./psi.ts";
export { CgroupSource, type CgroupSourceOptions, parseCpuStat, parseMemoryMax } from "./cgroup.ts";
export { RssSource, type RssSourceOptions } from "./rss.ts";
export { QueueSource, type QueueSourceOptions } from "./queue.ts";
export {
  HttpSource,
  type HttpSourceOptions,
  type HttpWindow,
  type HttpWindowProvider,
} from "./http.ts";

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
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}
