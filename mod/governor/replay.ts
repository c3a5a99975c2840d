/**
 * Replay of a recorded signal trace through the same level logic the live
 * governor runs, on simulated time. A trace is JSON Lines, one sample a line:
 * `{"t": ms, "signals": {"eventLoopLagMs": 3.1, "cpuPressure": 12, ...}}`;
 * missing signals keep their last value until stale; blank lines are skipped.
 * @module
 */
import { z } from "zod";
import { formatIssues } from "../config/mod.ts";
import { type GovernorConfig, SIGNAL_NAMES, type SignalName, type SignalValues } from "./config.ts";
import { type LevelConfig, LevelMachine, type Transition } from "./levels.ts";
import { TraceError } from "./errors.ts";

export { TraceError } from "./errors.ts";

const signalsSchema = z.lazy(() =>
  z.strictObject(
    Object.fromEntries(SIGNAL_NAMES.map((n) => [n, z.number().finite().optional()])) as {
      [K in SignalName]: z.ZodOptional<z.ZodNumber>;
    },
  )
);

/** One line of a trace. */
export const traceLineSchema = z.lazy(() =>
  z.strictObject({
    t: z.number().finite().min(0).describe("time in ms"),
    signals: signalsSchema.default({}),
  })
);

/** One sample of a trace. */
export interface TraceSample {
  /** Time (ms). */
  t: number;
  /** Signal values. */
  signals: SignalValues;
}

/** Parse a trace; throws TraceError naming the first bad line. */
export function parseTrace(text: string): TraceSample[] {
  const out: TraceSample[] = [];
  const lines = text.split("\n");
  let lastT = -Infinity;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new TraceError(i + 1, `not JSON (${(e as Error).message})`);
    }
    const r = traceLineSchema.safeParse(v, { reportInput: true });
    if (!r.success) throw new TraceError(i + 1, formatIssues(r.error.issues).join("; "));
    if (r.data.t < lastT) {
      throw new TraceError(i + 1, `t ${r.data.t} is before the previous line's ${lastT}`);
    }
    lastT = r.data.t;
    const signals: SignalValues = {};
    for (const [k, val] of Object.entries(r.data.signals)) {
      if (val !== undefined) signals[k as SignalName] = val;
    }
    out.push({ t: r.data.t, signals });
  }
  return out;
}

/** The level logic's config from the governor config. */
export function levelConfigOf(g: GovernorConfig): LevelConfig {
  return {
    thresholds: g.thresholds,
    enterHoldMs: g.enterHoldMs,
    leaveHoldMs: g.leaveHoldMs,
    hysteresis: g.hysteresis,
    staleAfterMs: g.staleAfterMs,
  };
}

/** Replay samples through a fresh level machine; returns every transition. */
export function replay(samples: readonly TraceSample[], g: GovernorConfig): Transition[] {
  const out: Transition[] = [];
  if (samples.length === 0) return out;
  const m = new LevelMachine(levelConfigOf(g), samples[0].t);
  for (const s of samples) {
    const tr = m.update(s.t, s.signals);
    if (tr) out.push(tr);
  }
  return out;
}

/** Serialise one sample as a trace line. */
export function traceLine(t: number, signals: SignalValues): string {
  return JSON.stringify({ t, signals });
}
