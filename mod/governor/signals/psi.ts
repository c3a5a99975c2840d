/**
 * Linux pressure stall information (/proc/pressure/cpu|memory|io, or a cgroup's
 * *.pressure files). The signal is the share of wall time with `some` stall since
 * the previous sample, from the delta of the cumulative `total` (µs): fast enough
 * to switch levels; `avg10` is used for the first sample and shown as detail.
 * Signals: `cpuPressure`, `memoryPressure`, `ioPressure` (percent).
 * @module
 */
import { z } from "zod";
import type { SignalName, SignalValues } from "../config.ts";
import { type ReadText, readTextOrNull, type SignalSource } from "./types.ts";

/** One PSI line (`some` or `full`). */
export interface PsiLine {
  /** Average share of stalled time over 10 s (%). */
  avg10: number;
  /** Over 60 s (%). */
  avg60: number;
  /** Over 300 s (%). */
  avg300: number;
  /** Cumulative stalled time (µs). */
  total: number;
}

/** A parsed pressure file. */
export interface PsiRecord {
  /** Some tasks stalled. */
  some: PsiLine;
  /** All non-idle tasks stalled (memory, io; the kernel reports zeros for cpu). */
  full?: PsiLine;
}

const lineSchema = z.lazy(() =>
  z.object({
    avg10: z.number().min(0),
    avg60: z.number().min(0),
    avg300: z.number().min(0),
    total: z.number().int().min(0),
  })
);

/** Parse a pressure file; returns null when it has no valid `some` line. */
export function parsePsi(text: string): PsiRecord | null {
  const out: Partial<PsiRecord> = {};
  for (const raw of text.split("\n")) {
    const m = /^(some|full)\s+(.*)$/.exec(raw.trim());
    if (!m) continue;
    const fields: Record<string, number> = {};
    for (const kv of m[2].split(/\s+/)) {
      const eq = kv.indexOf("=");
      if (eq > 0) fields[kv.slice(0, eq)] = Number(kv.slice(eq + 1));
    }
    const r = lineSchema.safeParse(fields);
    if (r.success) out[m[1] as "some" | "full"] = r.data;
  }
  return out.some ? (out as PsiRecord) : null;
}

/** Options of the PSI source. */
export interface PsiSourceOptions {
  /** Directory holding `cpu`, `memory`, `io` (default /proc/pressure). */
  root?: string;
  /** File names inside root (a cgroup uses cpu.pressure, ...). */
  files?: { cpu: string; memory: string; io: string };
  /** File reader (tests pass recorded files). */
  read?: ReadText;
}

const RESOURCES = [
  ["cpu", "cpuPressure"],
  ["memory", "memoryPressure"],
  ["io", "ioPressure"],
] as const satisfies readonly (readonly [string, SignalName])[];

/** The PSI source. */
export class PsiSource implements SignalSource {
  /** Source name. */
  readonly name = "psi";
  #root: string;
  #files: { cpu: string; memory: string; io: string };
  #read: ReadText;
  #prev = new Map<string, { total: number; t: number }>();
  #last: Record<string, PsiRecord | null> = {};

  /** Build. */
  constructor(o: PsiSourceOptions = {}) {
    this.#root = o.root ?? "/proc/pressure";
    this.#files = o.files ?? { cpu: "cpu", memory: "memory", io: "io" };
    this.#read = o.read ?? readTextOrNull;
  }

  /** Stall share (%) since the previous sample, per resource. */
  sample(now: number): SignalValues {
    const out: SignalValues = {};
    for (const [res, signal] of RESOURCES) {
      const text = this.#read(`${this.#root}/${this.#files[res]}`);
      const rec = text === null ? null : parsePsi(text);
      this.#last[res] = rec;
      if (!rec) continue;
      const prev = this.#prev.get(res);
      this.#prev.set(res, { total: rec.some.total, t: now });
      if (prev && now > prev.t && rec.some.total >= prev.total) {
        const pct = (rec.some.total - prev.total) / ((now - prev.t) * 1000) * 100;
        out[signal] = Math.round(Math.min(100, pct) * 100) / 100;
      } else {
        out[signal] = rec.some.avg10;
      }
    }
    return out;
  }

  /** The last parsed files. */
  detail(): Record<string, unknown> {
    return { root: this.#root, ...this.#last };
  }
}
