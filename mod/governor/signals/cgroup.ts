/**
 * cgroup v2 limits of keepwire's own cgroup: memory.current against memory.max
 * (`max` = no limit, no signal, as Envoy's cgroup monitor does) and CPU
 * throttling from cpu.stat (share of wall time throttled since the previous
 * sample). Signals: `cgroupMemory`, `cpuThrottled` (percent).
 * @module
 */
import type { SignalValues } from "../config.ts";
import { type ReadText, readTextOrNull, type SignalSource } from "./types.ts";

/** Parse memory.max: bytes, or null for `max` or garbage. */
export function parseMemoryMax(text: string): number | null {
  const s = text.trim();
  if (!/^\d+$/.test(s)) return null;
  const n = Number(s);
  return n > 0 ? n : null;
}

/** Parse cpu.stat into its counters (`usage_usec`, `nr_periods`, `nr_throttled`, `throttled_usec`, ...). */
export function parseCpuStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\s+(\d+)$/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Options of the cgroup source. */
export interface CgroupSourceOptions {
  /** The cgroup directory (default /sys/fs/cgroup). */
  root?: string;
  /** File reader (tests pass recorded files). */
  read?: ReadText;
}

/** The cgroup v2 source. */
export class CgroupSource implements SignalSource {
  /** Source name. */
  readonly name = "cgroup";
  #root: string;
  #read: ReadText;
  #prev: { throttledUsec: number; periods: number; throttled: number; t: number } | undefined;
  #detail: Record<string, unknown> = {};
  /** When every file was missing (cgroup v1, no cgroup): look again only after this. */
  #absentUntil = -Infinity;

  /** Build. */
  constructor(o: CgroupSourceOptions = {}) {
    this.#root = o.root ?? "/sys/fs/cgroup";
    this.#read = o.read ?? readTextOrNull;
  }

  /** Memory use against the limit, and CPU throttling since the last sample. */
  sample(now: number): SignalValues {
    const out: SignalValues = {};
    if (now < this.#absentUntil) return out;
    const cur = this.#read(`${this.#root}/memory.current`);
    const max = this.#read(`${this.#root}/memory.max`);
    const current = cur !== null && /^\d+$/.test(cur.trim()) ? Number(cur.trim()) : null;
    const limit = max === null ? null : parseMemoryMax(max);
    if (current !== null && limit !== null) {
      out.cgroupMemory = Math.round(current / limit * 10000) / 100;
    }
    const statText = this.#read(`${this.#root}/cpu.stat`);
    if (cur === null && max === null && statText === null) {
      // No cgroup v2 here: failed reads cost, so look again in 10 s.
      this.#absentUntil = now + 10_000;
      this.#detail = { root: this.#root, absent: true };
      return out;
    }
    const stat = statText === null ? {} : parseCpuStat(statText);
    const throttledUsec = stat.throttled_usec;
    if (throttledUsec !== undefined) {
      const cur2 = {
        throttledUsec,
        periods: stat.nr_periods ?? 0,
        throttled: stat.nr_throttled ?? 0,
        t: now,
      };
      const prev = this.#prev;
      this.#prev = cur2;
      if (prev && now > prev.t && throttledUsec >= prev.throttledUsec) {
        const pct = (throttledUsec - prev.throttledUsec) / ((now - prev.t) * 1000) * 100;
        out.cpuThrottled = Math.round(Math.min(100, pct) * 100) / 100;
        const dp = cur2.periods - prev.periods;
        this.#detail.throttledPeriodsPct = dp > 0
          ? Math.round((cur2.throttled - prev.throttled) / dp * 10000) / 100
          : 0;
      }
    }
    this.#detail = {
      ...this.#detail,
      root: this.#root,
      memoryCurrent: current,
      memoryMax: limit,
      cpuStat: statText === null ? null : stat,
    };
    return out;
  }

  /** Last raw readings. */
  detail(): Record<string, unknown> {
    return this.#detail;
  }
}
