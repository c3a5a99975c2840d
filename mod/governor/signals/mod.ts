/**
 * Pluggable pressure signals: each source is one small file that turns some
 * input (timer drift, /proc, cgroup files, SDK reports, HTTP counters) into
 * values of the named signals the level logic compares with thresholds.
 * @module
 */

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

export { type ReadText, readTextOrNull, type SignalSource } from "./types.ts";
