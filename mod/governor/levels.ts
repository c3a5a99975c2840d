/**
 * THE governor level state machine: normal → elevated → overload → critical.
 *
 * Pure: driven only by `update(t, signals)`, so the live governor and the replay
 * of a recorded trace share it exactly. Enter fast (a level is entered once its
 * thresholds have been met continuously for its enter hold, possibly jumping
 * several levels), leave slowly (one step down once every signal has stayed below
 * `hysteresis` × the current level's thresholds for `leaveHoldMs`), so a noisy
 * signal does not flap.
 * @module
 */
import {
  type Level,
  levelRank,
  LEVELS,
  RAISED_LEVELS,
  type RaisedLevel,
  SIGNAL_NAMES,
  type SignalName,
  SIGNALS,
  type SignalValues,
  type Thresholds,
} from "./config.ts";

/** What the level logic needs from the config. */
export interface LevelConfig {
  /** Per-signal thresholds (null: the signal never raises the level). */
  thresholds: Record<SignalName, Thresholds | null>;
  /** Enter hold per level (ms). */
  enterHoldMs: Record<RaisedLevel, number>;
  /** Leave hold per step down (ms). */
  leaveHoldMs: number;
  /** Fraction of a threshold a signal must fall below to leave. */
  hysteresis: number;
  /** A signal not reported for this long stops counting (ms). */
  staleAfterMs: number;
}

/** One level change. */
export interface Transition {
  /** Time (ms) of the sample that caused it. */
  t: number;
  /** Level before. */
  from: Level;
  /** Level after. */
  to: Level;
  /** Why, for a person. */
  reason: string;
}

/** State of one signal as the machine sees it. */
export interface SignalState {
  /** Signal name. */
  name: SignalName;
  /** Unit. */
  unit: string;
  /** Last value, or null when never reported or stale. */
  value: number | null;
  /** Time of the last report, or null. */
  updatedAt: number | null;
  /** Highest level this value alone asks for. */
  level: Level;
  /** Thresholds (null: the signal is disabled). */
  thresholds: Thresholds | null;
}

/** The level a value asks for under some thresholds, each scaled by `scale`. */
export function levelOf(value: number, t: Thresholds | null, scale = 1): Level {
  if (!t) return "normal";
  for (let i = RAISED_LEVELS.length - 1; i >= 0; i--) {
    const thr = t[RAISED_LEVELS[i]];
    if (thr !== null && value >= thr * scale) return RAISED_LEVELS[i];
  }
  return "normal";
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1);
}

/** The level state machine. */
export class LevelMachine {
  #cfg: LevelConfig;
  #level: Level = "normal";
  #since: number;
  #reason = "start";
  #values = new Map<SignalName, { v: number; t: number }>();
  /** Since when the raw level has been at least each raised level, continuously. */
  #aboveSince: Partial<Record<RaisedLevel, number>> = {};
  /** Since when every signal has been below hysteresis × the current level's thresholds. */
  #belowSince: number | undefined;
  #lastT: number | undefined;

  /** Build at time `t0` in `normal`. */
  constructor(cfg: LevelConfig, t0 = 0) {
    this.#cfg = cfg;
    this.#since = t0;
  }

  /** Current level. */
  get level(): Level {
    return this.#level;
  }

  /** When the current level was entered. */
  get since(): number {
    return this.#since;
  }

  /** Why the current level was entered. */
  get reason(): string {
    return this.#reason;
  }

  /** Replace the thresholds and holds (the level is kept). */
  reconfigure(cfg: LevelConfig): void {
    this.#cfg = cfg;
  }

  /** Current fresh values at time `t` (stale ones dropped). */
  #fresh(t: number): Map<SignalName, number> {
    const out = new Map<SignalName, number>();
    for (const [name, { v, t: at }] of this.#values) {
      if (t - at <= this.#cfg.staleAfterMs) out.set(name, v);
    }
    return out;
  }

  /**
   * Feed one sample at time `t` (ms, non-decreasing). Signals missing from the
   * sample keep their last value until it is stale. Returns the transition this
   * sample caused, or null.
   */
  update(t: number, signals: SignalValues): Transition | null {
    if (this.#lastT !== undefined && t < this.#lastT) t = this.#lastT;
    this.#lastT = t;
    for (const name of SIGNAL_NAMES) {
      const v = signals[name];
      if (v !== undefined && Number.isFinite(v)) this.#values.set(name, { v, t });
    }
    const fresh = this.#fresh(t);

    // Raw level: the highest level any signal asks for, and who asks.
    let raw: Level = "normal";
    let worst: { name: SignalName; v: number; ratio: number } | undefined;
    for (const [name, v] of fresh) {
      const th = this.#cfg.thresholds[name];
      const l = levelOf(v, th);
      if (l === "normal") continue;
      const ratio = v / Math.max(th![l as RaisedLevel] ?? 1, 1e-9);
      if (levelRank(l) > levelRank(raw) || (l === raw && worst && ratio > worst.ratio)) {
        raw = l;
        worst = { name, v, ratio };
      }
    }
    for (const l of RAISED_LEVELS) {
      if (levelRank(raw) >= levelRank(l)) this.#aboveSince[l] ??= t;
      else delete this.#aboveSince[l];
    }

    // Enter fast: the highest level above the current one whose hold is met.
    for (let i = RAISED_LEVELS.length - 1; i >= 0; i--) {
      const l = RAISED_LEVELS[i];
      if (levelRank(l) <= levelRank(this.#level)) break;
      const since = this.#aboveSince[l];
      if (since === undefined || t - since < this.#cfg.enterHoldMs[l]) continue;
      const w = this.#worstFor(fresh, l) ?? worst!;
      const th = this.#cfg.thresholds[w.name]![l]!;
      return this.#go(
        t,
        l,
        `${w.name} ${fmt(w.v)} >= ${fmt(th)} (${l}) for ${t - since} ms`,
      );
    }

    // Leave slowly: every signal below hysteresis x the current level's thresholds.
    if (this.#level === "normal") {
      this.#belowSince = undefined;
      return null;
    }
    const h = this.#cfg.hysteresis;
    let holding: SignalName | undefined;
    for (const [name, v] of fresh) {
      if (levelRank(levelOf(v, this.#cfg.thresholds[name], h)) >= levelRank(this.#level)) {
        holding = name;
        break;
      }
    }
    if (holding !== undefined) {
      this.#belowSince = undefined;
      return null;
    }
    this.#belowSince ??= t;
    if (t - this.#belowSince < this.#cfg.leaveHoldMs) return null;
    const to = LEVELS[levelRank(this.#level) - 1];
    const held = t - this.#belowSince;
    return this.#go(
      t,
      to,
      `all signals below ${Math.round(h * 100)}% of ${this.#level} thresholds for ${held} ms`,
    );
  }

  /** The signal with the highest value/threshold ratio at level `l`. */
  #worstFor(
    fresh: Map<SignalName, number>,
    l: RaisedLevel,
  ): { name: SignalName; v: number } | undefined {
    let best: { name: SignalName; v: number; r: number } | undefined;
    for (const [name, v] of fresh) {
      const thr = this.#cfg.thresholds[name]?.[l];
      if (thr === null || thr === undefined || v < thr) continue;
      const r = v / Math.max(thr, 1e-9);
      if (!best || r > best.r) best = { name, v, r };
    }
    return best;
  }

  #go(t: number, to: Level, reason: string): Transition {
    const tr: Transition = { t, from: this.#level, to, reason };
    this.#level = to;
    this.#since = t;
    this.#reason = reason;
    // After a step down the next step needs a fresh leave hold; after a step up none runs.
    this.#belowSince = to !== "normal" && levelRank(to) < levelRank(tr.from) ? t : undefined;
    return tr;
  }

  /** Every signal's value, level and thresholds at time `t`. */
  signals(t: number): SignalState[] {
    return SIGNAL_NAMES.map((name) => {
      const rec = this.#values.get(name);
      const fresh = rec !== undefined && t - rec.t <= this.#cfg.staleAfterMs;
      const th = this.#cfg.thresholds[name];
      return {
        name,
        unit: SIGNALS[name],
        value: fresh ? rec.v : null,
        updatedAt: rec?.t ?? null,
        level: fresh ? levelOf(rec.v, th) : "normal",
        thresholds: th,
      };
    });
  }
}
