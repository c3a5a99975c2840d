/**
 * What the governor does at each level:
 *  - suspends subsystems by criticality (`optional` from `suspendOptionalAt`,
 *    `important` from `suspendImportantAt`, `essential` never) through the
 *    supervisor, and resumes them in reverse order when the level falls;
 *  - degrades keepwire itself: debug events are sampled (EventBus.setSampler),
 *    the UI live-refresh interval grows (a value other code reads).
 * Shedding of non-essential API routes is the admission middleware's part.
 * @module
 */
import type { EventBus, EventInput } from "../events/mod.ts";
import type { Criticality, SubsystemInfo, SupervisorApi } from "../supervisor/api.ts";
import { type GovernorConfig, type Level, levelRank } from "./config.ts";
import "./events.ts";

/** The actions part of the governor config. */
export type ActionsConfig = GovernorConfig["actions"];

/** One subsystem the governor has suspended. */
export interface Suspension {
  /** Subsystem name. */
  name: string;
  /** Its criticality. */
  criticality: Criticality;
  /** When it was suspended (ms). */
  since: number;
  /** Why. */
  reason: string;
  /** Suspension order (resumed highest first). */
  seq: number;
}

/** The criticalities the governor suspends at a level (never `essential`). */
export function suspendedCriticalities(level: Level, cfg: ActionsConfig): Criticality[] {
  const out: Criticality[] = [];
  if (levelRank(level) >= levelRank(cfg.suspendOptionalAt)) out.push("optional");
  if (levelRank(level) >= levelRank(cfg.suspendImportantAt)) out.push("important");
  return out;
}

/** States in which a subsystem is not suspended by the governor. */
const NOT_SUSPENDABLE = new Set(["stopped", "failed", "suspended"]);

/**
 * Plan (pure): which subsystems to suspend (optional first, then important, in
 * list order) and which of ours to resume (reverse order of suspension).
 */
export function planSuspensions(
  level: Level,
  cfg: ActionsConfig,
  list: readonly SubsystemInfo[],
  ours: ReadonlyMap<string, Suspension>,
): { suspend: SubsystemInfo[]; resume: Suspension[] } {
  const due = cfg.suspend ? suspendedCriticalities(level, cfg) : [];
  const byName = new Map(list.map((s) => [s.name, s]));
  const suspend: SubsystemInfo[] = [];
  for (const crit of ["optional", "important"] as const) {
    if (!due.includes(crit)) continue;
    for (const s of list) {
      if (s.criticality !== crit || ours.has(s.name) || NOT_SUSPENDABLE.has(s.state)) continue;
      suspend.push(s);
    }
  }
  const resume = [...ours.values()]
    .filter((o) => byName.has(o.name) && !due.includes(byName.get(o.name)!.criticality))
    .sort((a, b) => b.seq - a.seq);
  return { suspend, resume };
}

/** Options of the actions. */
export interface ActionsOptions {
  /** Actions config. */
  config: ActionsConfig;
  /** The supervisor, when one runs. */
  supervisor?: SupervisorApi;
  /** The event bus (sampler, action events). */
  bus: EventBus;
  /** Clock (ms). */
  now: () => number;
  /** A failed suspend/resume is retried after this long (ms). */
  retryAfterMs?: number;
}

/** The governor's actions. */
export class Actions {
  #o: ActionsOptions;
  #ours = new Map<string, Suspension>();
  #seq = 0;
  #level: Level = "normal";
  #chain: Promise<void> = Promise.resolve();
  #pending = false;
  #failedAt = new Map<string, number>();
  #sampleAcc = 0;
  #sampledOut = 0;
  /** Subsystems the supervisor listed as suspended at the last reconcile (by anyone). */
  #seenSuspended = new Set<string>();

  /** Build. */
  constructor(o: ActionsOptions) {
    this.#o = o;
  }

  /** Subsystems suspended by the governor, in suspension order. */
  suspended(): Suspension[] {
    return [...this.#ours.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Is the subsystem suspended (by the governor now, or in any way at the last look)? */
  isSuspended(name: string): boolean {
    return this.#ours.has(name) || this.#seenSuspended.has(name);
  }

  /** Share of debug events kept at the current level. */
  get debugSampleRate(): number {
    return this.#o.config.debugSampleRate[this.#level];
  }

  /** UI live-refresh interval (ms) at the current level. */
  get uiRefreshMs(): number {
    return this.#o.config.uiRefreshMs[this.#level];
  }

  /** Debug events dropped by the sampler so far. */
  get sampledOut(): number {
    return this.#sampledOut;
  }

  /** Apply keepwire's own degradation for a level (synchronous). */
  setLevel(level: Level): void {
    this.#level = level;
    const rate = this.debugSampleRate;
    if (rate >= 1) {
      this.#o.bus.setSampler(undefined);
      return;
    }
    this.#sampleAcc = 0;
    this.#o.bus.setSampler((e: EventInput) => {
      if (e.severity !== "debug") return true;
      // Deterministic sampling: keep `rate` of the debug events, evenly spread.
      this.#sampleAcc += rate;
      if (this.#sampleAcc >= 1 - 1e-9) {
        this.#sampleAcc -= 1;
        return true;
      }
      this.#sampledOut++;
      return false;
    });
  }

  /**
   * Bring the subsystems in line with the current level. Runs are serialized;
   * a call while one runs schedules exactly one more. Resolves when done.
   */
  reconcile(reason: string): Promise<void> {
    if (this.#pending) return this.#chain;
    this.#pending = true;
    this.#chain = this.#chain.then(async () => {
      this.#pending = false;
      await this.#run(reason);
    });
    return this.#chain;
  }

  async #run(reason: string): Promise<void> {
    const sup = this.#o.supervisor;
    if (!sup) return;
    let list: SubsystemInfo[];
    try {
      list = sup.list();
    } catch (e) {
      this.#fail("list", "", e);
      return;
    }
    for (const name of [...this.#ours.keys()]) {
      if (!list.some((s) => s.name === name)) this.#ours.delete(name);
    }
    this.#seenSuspended = new Set(list.filter((s) => s.state === "suspended").map((s) => s.name));
    const level = this.#level;
    const plan = planSuspensions(level, this.#o.config, list, this.#ours);
    const now = this.#o.now();
    const retry = this.#o.retryAfterMs ?? 5000;
    for (const r of plan.resume) {
      if (now - (this.#failedAt.get(r.name) ?? -Infinity) < retry) continue;
      try {
        await sup.resume(r.name, `governor level ${level}: ${reason}`);
        this.#ours.delete(r.name);
        this.#seenSuspended.delete(r.name);
        this.#failedAt.delete(r.name);
      } catch (e) {
        this.#failedAt.set(r.name, now);
        this.#fail("resume", r.name, e);
      }
    }
    for (const s of plan.suspend) {
      if (s.criticality === "essential") continue; // belt and braces: never
      if (now - (this.#failedAt.get(s.name) ?? -Infinity) < retry) continue;
      const why = `governor level ${level}: ${reason}`;
      try {
        await sup.suspend(s.name, why);
        this.#ours.set(s.name, {
          name: s.name,
          criticality: s.criticality,
          since: this.#o.now(),
          reason: why,
          seq: ++this.#seq,
        });
        this.#failedAt.delete(s.name);
      } catch (e) {
        this.#failedAt.set(s.name, now);
        this.#fail("suspend", s.name, e);
      }
    }
  }

  /** Resume everything the governor suspended (on stop), newest first. */
  async resumeAll(reason: string): Promise<void> {
    await this.#chain;
    const sup = this.#o.supervisor;
    if (!sup) return;
    for (const r of this.suspended().reverse()) {
      try {
        await sup.resume(r.name, reason);
      } catch (e) {
        this.#fail("resume", r.name, e);
      }
      this.#ours.delete(r.name);
    }
  }

  #fail(action: "list" | "suspend" | "resume", name: string, e: unknown): void {
    this.#o.bus.publish({
      module: "governor",
      kind: "governor.action_failed",
      severity: "warning",
      payload: { action, subsystem: name, error: e instanceof Error ? e.message : String(e) },
    });
  }
}
