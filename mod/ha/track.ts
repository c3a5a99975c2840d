/**
 * What keepwire tells keepalived through its two track files, and why.
 *
 * - `fault` (track_file weight 0): a non-zero value puts the VRRP instance in FAULT.
 *   keepalived leaves MASTER for FAULT with a priority-0 advert, so the peer takes
 *   over after its skew time only (a graceful handover), not after the master-down timer.
 * - `priority` (track_file weight 1): the value is added to the configured priority.
 *
 * The causes are in ONE table, {@link HA_CONDITIONS}: which part of the appliance,
 * which effect (FAULT or a priority penalty). Note that with `preempt` off (the
 * default) a lower priority moves nothing by itself: it only decides the next
 * election. Conditions that must move the address are FAULT conditions.
 * @module
 */
import type { Clock, TimerId } from "../module.ts";
import { type Level, LEVELS } from "../governor/config.ts";
import type { Criticality, SubsystemState } from "../supervisor/api.ts";
import type { SegmentMode } from "../../hw/bypass/types.ts";

/** The governor's highest level (the condition below holds there). */
const TOP_LEVEL: Level = LEVELS[LEVELS.length - 1];

/** A condition keepwire watches and how it acts on keepalived. */
export interface HaCondition {
  /** Stable name (status, metrics, docs). */
  name: string;
  /** The module whose state it reads; its bus events trigger a re-evaluation. */
  source: "supervisor" | "bypass" | "storage" | "governor";
  /** `fault`: keepalived goes to FAULT; `penalty`: the weight is added to the priority. */
  effect: "fault" | "penalty";
  /** Added to the priority while the condition holds (penalty only; negative). */
  weight: number;
  /** For a person. */
  text: string;
}

/** THE table of what lowers this node's priority or forces FAULT. */
export const HA_CONDITIONS: readonly HaCondition[] = [
  {
    name: "essential_failed",
    source: "supervisor",
    effect: "fault",
    weight: 0,
    text: "an essential subsystem is not healthy (application-layer failure)",
  },
  {
    name: "bypass_forced",
    source: "bypass",
    effect: "penalty",
    weight: -60,
    text: "a bypass segment is not inline (traffic passes the appliance by)",
  },
  {
    name: "storage_failed",
    source: "storage",
    effect: "penalty",
    weight: -50,
    text: "storage is not healthy",
  },
  {
    name: "governor_top_level",
    source: "governor",
    effect: "penalty",
    weight: -30,
    text: "the load governor is at its highest level",
  },
];

/** Names of the conditions. */
export type HaConditionName = typeof HA_CONDITIONS[number]["name"];

/** Reads one condition: a short detail while it holds, null while it does not. */
export type ConditionReader = () => string | null;

/** What currently lowers the priority or forces FAULT (status, UI, metrics). */
export interface TrackView {
  /** True when keepalived is told FAULT. */
  fault: boolean;
  /** Why FAULT (empty when not). */
  faultReasons: string[];
  /** Sum of the active penalties (≤ 0). */
  penalty: number;
  /** Active penalties. */
  penalties: { name: string; weight: number; detail: string }[];
  /** Maintenance on. */
  maintenance: boolean;
  /** A handover (`ha failover`) holds FAULT until this clock time, or null. */
  handoverUntil: number | null;
  /** `failover: manual`: FAULT held so this standby does not take over by itself. */
  manualHold: boolean;
  /**
   * The witness's verdict (null without a witness): `fault` (not quorate, witness down:
   * shown as fault) and `hold` (the peer may be active: FAULT shown as standby).
   */
  witness: { fault: string | null; hold: string | null } | null;
  /** Active-active: sets released to the peer now (`ha failover --set`). */
  released: ("a" | "b")[];
}

/** The fault reason of the manual-failover hold. */
export const MANUAL_HOLD = "manual_hold";
/** Prefix of the witness hold's fault reason (`witness_hold: why`). */
export const WITNESS_HOLD = "witness_hold";
/** Prefix of the catch-up hold's fault reason (`catching_up: why`; catch_up.ts). */
export const CATCHING_UP = "catching_up";

/**
 * True when keepalived is held in FAULT only to keep this node from taking over (the
 * manual hold, the witness hold, the catch-up hold): such a node is a standby, not a
 * fault (its replication channels stay standbys).
 */
export function onlyHeld(v: TrackView): boolean {
  return v.faultReasons.length > 0 &&
    v.faultReasons.every((r) =>
      r === MANUAL_HOLD || r.startsWith(`${WITNESS_HOLD}:`) || r.startsWith(`${CATCHING_UP}:`)
    );
}

/** The values written to the two track files. */
export interface TrackValues {
  /** 0 or 1. */
  fault: number;
  /** ≤ 0. */
  priority: number;
  /** Active-active: 1 while a set is released to the peer (`ha failover --set`). */
  release?: { a: number; b: number };
}

/**
 * Combines conditions, maintenance and a handover into the track-file values and
 * calls `write` whenever they change. Time is injected (the handover expires on the clock).
 */
export class TrackControl {
  #clock: Clock;
  #readers: Partial<Record<string, ConditionReader>>;
  #write: (v: TrackValues, view: TrackView) => void;
  #maintenance = false;
  #manualHold = false;
  #holds = new Map<string, string>();
  #released = new Map<"a" | "b", TimerId>();
  #sets: boolean;
  #witness: TrackView["witness"] = null;
  #handoverUntil: number | null = null;
  #handoverTimer: TimerId | undefined;
  #last: TrackValues | null = null;
  #view: TrackView;

  /**
   * `readers` maps condition names of {@link HA_CONDITIONS} to readers; a condition
   * without a reader never holds (that part is not in this build).
   */
  constructor(opts: {
    clock: Clock;
    readers: Partial<Record<string, ConditionReader>>;
    write: (v: TrackValues, view: TrackView) => void;
    /** Active-active: the values carry the per-set release flags. */
    sets?: boolean;
  }) {
    this.#sets = opts.sets ?? false;
    this.#clock = opts.clock;
    this.#readers = opts.readers;
    this.#write = opts.write;
    this.#view = this.#compute();
  }

  /** The current view (as of the last evaluation). */
  get view(): TrackView {
    return this.#view;
  }

  /** Maintenance flag (persisted by the module). */
  setMaintenance(on: boolean): void {
    this.#maintenance = on;
    this.evaluate();
  }

  /** The manual-failover hold (the module decides when it applies). */
  setManualHold(on: boolean): void {
    if (this.#manualHold === on) return;
    this.#manualHold = on;
    this.evaluate();
  }

  /**
   * Hold FAULT for a named reason (e.g. yielding a dual active), or lift it (`reason`
   * null). The reason text is shown in `faultReasons`.
   */
  setHold(name: string, reason: string | null): void {
    if ((this.#holds.get(name) ?? null) === reason) return;
    if (reason === null) this.#holds.delete(name);
    else this.#holds.set(name, reason);
    this.evaluate();
  }

  /** The witness's verdict (null: no witness). */
  setWitness(w: TrackView["witness"]): void {
    const cur = this.#witness;
    if (cur?.fault === w?.fault && cur?.hold === w?.hold && (cur === null) === (w === null)) return;
    this.#witness = w;
    this.evaluate();
  }

  /** Active-active: put one set's instance in FAULT for `ms` so the peer takes it over. */
  release(set: "a" | "b", ms: number): void {
    const prev = this.#released.get(set);
    if (prev !== undefined) this.#clock.clearTimeout(prev);
    this.#released.set(
      set,
      this.#clock.setTimeout(() => {
        this.#released.delete(set);
        this.evaluate();
      }, ms),
    );
    this.evaluate();
  }

  /** Hold FAULT for `ms` so the peer takes over (graceful handover). */
  handover(ms: number): void {
    if (this.#handoverTimer !== undefined) this.#clock.clearTimeout(this.#handoverTimer);
    this.#handoverUntil = this.#clock.now() + ms;
    this.#handoverTimer = this.#clock.setTimeout(() => {
      this.#handoverTimer = undefined;
      this.#handoverUntil = null;
      this.evaluate();
    }, ms);
    this.evaluate();
  }

  /** Re-read every condition; writes the files when the values changed. */
  evaluate(): TrackView {
    this.#view = this.#compute();
    const v: TrackValues = {
      fault: this.#view.fault ? 1 : 0,
      priority: this.#view.penalty,
      ...(this.#sets
        ? { release: { a: this.#released.has("a") ? 1 : 0, b: this.#released.has("b") ? 1 : 0 } }
        : {}),
    };
    const l = this.#last;
    if (
      !l || l.fault !== v.fault || l.priority !== v.priority ||
      l.release?.a !== v.release?.a || l.release?.b !== v.release?.b
    ) {
      this.#write(v, this.#view);
      this.#last = v;
    }
    return this.#view;
  }

  /** Forget what was written (keepalived restarted with fresh files): the next evaluate writes. */
  resetWritten(): void {
    this.#last = null;
  }

  /** Cancel the handover timer. */
  close(): void {
    if (this.#handoverTimer !== undefined) this.#clock.clearTimeout(this.#handoverTimer);
    this.#handoverTimer = undefined;
    for (const t of this.#released.values()) this.#clock.clearTimeout(t);
    this.#released.clear();
  }

  #compute(): TrackView {
    const faultReasons: string[] = [];
    const penalties: TrackView["penalties"] = [];
    if (this.#maintenance) faultReasons.push("maintenance");
    if (this.#handoverUntil !== null) faultReasons.push("handover");
    if (this.#manualHold) faultReasons.push(MANUAL_HOLD);
    faultReasons.push(...this.#holds.values());
    if (this.#witness?.fault) faultReasons.push(this.#witness.fault);
    if (this.#witness?.hold) faultReasons.push(`${WITNESS_HOLD}: ${this.#witness.hold}`);
    for (const c of HA_CONDITIONS) {
      const read = this.#readers[c.name];
      let detail: string | null;
      try {
        detail = read ? read() : null;
      } catch (e) {
        // a reader that throws cannot vouch for its part: count it as holding
        detail = `cannot read: ${(e as Error).message}`;
      }
      if (detail === null) continue;
      if (c.effect === "fault") faultReasons.push(`${c.name}: ${detail}`);
      else penalties.push({ name: c.name, weight: c.weight, detail });
    }
    return {
      fault: faultReasons.length > 0,
      faultReasons,
      penalty: penalties.reduce((s, p) => s + p.weight, 0),
      penalties,
      maintenance: this.#maintenance,
      handoverUntil: this.#handoverUntil,
      manualHold: this.#manualHold,
      witness: this.#witness ? { ...this.#witness } : null,
      released: [...this.#released.keys()].sort(),
    };
  }
}

/**
 * The parts of other modules the conditions read: structural, with the other modules'
 * own types for the words compared (a renamed state or level breaks the build).
 */
export interface HaSources {
  /** The supervisor: its subsystems with criticality and state. */
  supervisor?: { list(): { name: string; criticality: Criticality; state: SubsystemState }[] };
  /** The bypass module: its segments and their modes. */
  bypass?: { segments(): { name: string; mode: SegmentMode }[] };
  /** The storage module's health. */
  storage?: { health?(): { ok: boolean; detail?: string } };
  /** The governor's level (typed: a renamed level breaks the build, not the condition). */
  governor?: { readonly level: Level };
}

/** The readers of {@link HA_CONDITIONS} over the runtime's modules. */
export function haReaders(s: HaSources): Record<HaConditionName, ConditionReader> {
  return {
    essential_failed: () => {
      const bad =
        s.supervisor?.list().filter((x) => x.criticality === "essential" && x.state !== "ready") ??
          [];
      return bad.length ? bad.map((x) => `${x.name} ${x.state}`).join(", ") : null;
    },
    bypass_forced: () => {
      const off = s.bypass?.segments().filter((x) => x.mode !== "inline") ?? [];
      return off.length ? off.map((x) => `${x.name} ${x.mode}`).join(", ") : null;
    },
    storage_failed: () => {
      const h = s.storage?.health?.();
      return h && !h.ok ? h.detail ?? "not healthy" : null;
    },
    governor_top_level: () => s.governor?.level === TOP_LEVEL ? TOP_LEVEL : null,
  };
}
