/**
 * The load governor module: samples pressure signals, runs the level state
 * machine, applies the actions of each level (suspend subsystems by
 * criticality, sample debug events, slow the UI live refresh, shed
 * non-essential HTTP work through the admission middleware), and shows all of
 * it at GET /api/governor, in `/metrics` lines and as `governor.level_changed`
 * events.
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { Module, ModuleContext, PartHealth } from "../module.ts";
import type { Severity } from "../events/mod.ts";
import type { SupervisorApi } from "../supervisor/api.ts";
import type { MetricFamily } from "../web/metrics.ts";
import type { HistorySample } from "../history/types.ts";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";
import {
  type GovernorSnapshot,
  governorSnapshotSchema,
  type GovernorStatus,
  governorStatusSchema,
} from "./status.ts";
import {
  type GovernorConfig,
  type Level,
  levelRank,
  LEVELS,
  PRIORITIES,
  RAISED_LEVELS,
  type SignalValues,
} from "./config.ts";
import { LevelMachine, type Transition } from "./levels.ts";
import { Actions } from "./actions.ts";
import {
  AdmissionController,
  type AdmissionController as AdmissionControllerT,
  type AdmissionRouteOptions,
} from "./admission.ts";
import { levelConfigOf, traceLine } from "./replay.ts";
import { TraceFileError } from "./errors.ts";
import "./events.ts";
import {
  CgroupSource,
  HttpSource,
  LagProbe,
  PsiSource,
  QueueSource,
  RssSource,
  type SignalSource,
} from "./signals/mod.ts";

export {
  type GovernorConfig,
  governorConfigSchema,
  type Level,
  LEVELS,
  PRIORITIES,
  type RoutePriority,
  type SignalName,
  SIGNALS,
} from "./config.ts";
export { AdmissionController, type AdmissionRouteOptions } from "./admission.ts";
export { LevelMachine, type Transition } from "./levels.ts";
export { parseTrace, replay } from "./replay.ts";
export { TraceError, TraceFileError } from "./errors.ts";
export { GOVERNOR_EVENTS } from "./events.ts";
export type { GovernorSnapshot, GovernorStatus } from "./status.ts";

/** What the governor may be given besides its context. */
export interface GovernorDeps {
  /** The supervisor (suspend/resume, queue reports); without it nothing is suspended. */
  supervisor?: SupervisorApi;
  /** Replace the built-in signal sources (tests, vendors with their own signals). */
  sources?: SignalSource[];
  /** Extra sources added to the built-in ones. */
  extraSources?: SignalSource[];
  /** Monotonic time in ms for the lag probe and the admission CPU meter (default performance.now). */
  meter?: () => number;
}

statusDoc("governor", governorStatusSchema);
apiDoc("GET", "/api/governor", {
  operationId: "getGovernor",
  summary: "load governor: level, each signal's value and thresholds, what is suspended and why",
  response: governorSnapshotSchema,
});

const SEVERITY_OF: Record<Level, Severity> = {
  normal: "notice",
  elevated: "notice",
  overload: "warning",
  severe: "error",
};

/** The governor module. */
export class GovernorModule implements Module {
  /** Module name. */
  readonly name = "governor";
  #ctx: ModuleContext;
  #cfg: GovernorConfig;
  #deps: GovernorDeps;
  #machine: LevelMachine;
  #actions: Actions;
  #admission: AdmissionController;
  #sources: SignalSource[];
  #queues: QueueSource | undefined;
  #lagProbe: LagProbe | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #history: { t: number; level: Level; pressure: number }[] = [];
  #unsubQueue: (() => void) | undefined;
  #transitions: Transition[] = [];
  #changes: Record<Level, number> = { normal: 0, elevated: 0, overload: 0, severe: 0 };
  #lastReconcile = -Infinity;
  #trace: Deno.FsFile | undefined;
  #sourceErrors: Record<string, string> = {};
  #started = false;

  /** Build from the context (nothing runs until start). */
  constructor(ctx: ModuleContext, deps: GovernorDeps = {}) {
    this.#ctx = ctx;
    this.#cfg = ctx.config.governor;
    this.#deps = deps;
    const now = ctx.clock.now();
    this.#machine = new LevelMachine(levelConfigOf(this.#cfg), now);
    this.#actions = new Actions({
      config: this.#cfg.actions,
      supervisor: deps.supervisor,
      bus: ctx.bus,
      now: () => ctx.clock.now(),
    });
    const admissionCfg = this.#cfg.enabled
      ? this.#cfg.admission
      : { ...this.#cfg.admission, enabled: false };
    this.#admission = new AdmissionController({
      config: admissionCfg,
      level: () => this.#machine.level,
      meter: deps.meter,
      demandThresholds: this.#cfg.thresholds.sheddableDemand,
      lag: () => this.#lagProbe?.lagMs ?? 0,
      stall: (now) => this.#lagProbe?.stallMs(now) ?? 0,
      setTimeout: (fn, ms) => ctx.clock.setTimeout(fn, ms),
    });
    this.#sources = deps.sources ?? this.#builtinSources();
    if (deps.extraSources) this.#sources.push(...deps.extraSources);
  }

  #builtinSources(): SignalSource[] {
    const s = this.#cfg.signals;
    const clock = this.#ctx.clock;
    const out: SignalSource[] = [];
    if (s.lag.enabled) {
      this.#lagProbe = new LagProbe({
        intervalMs: s.lag.probeIntervalMs,
        alpha: s.lag.alpha,
        now: this.#deps.meter ?? (() => performance.now()),
      });
      out.push(this.#lagProbe);
    }
    if (s.psi.enabled) out.push(new PsiSource({ root: s.psi.root }));
    if (s.cgroup.enabled) out.push(new CgroupSource({ root: s.cgroup.root }));
    if (s.rss.enabled) out.push(new RssSource());
    if (s.queues.enabled) {
      this.#queues = new QueueSource({
        staleAfterMs: s.queues.staleAfterMs,
        now: () => clock.now(),
        suspended: (name) => this.#actions.isSuspended(name),
      });
      out.push(this.#queues);
    }
    if (s.http.enabled) out.push(new HttpSource(this.#admission, { alpha: s.http.alpha }));
    return out;
  }

  /** Current level. */
  get level(): Level {
    return this.#machine.level;
  }

  /** UI live-refresh interval (ms) at the current level; other code reads it. */
  uiRefreshMs(): number {
    return this.#actions.uiRefreshMs;
  }

  /** How much slower than at `normal` the UI live refresh should be now (ms; 0 at normal). */
  uiThrottleMs(): number {
    return Math.max(0, this.#actions.uiRefreshMs - this.#cfg.actions.uiRefreshMs.normal);
  }

  /** Share of debug events kept at the current level. */
  debugSampleRate(): number {
    return this.#actions.debugSampleRate;
  }

  /** The admission controller (shared by every use of `admission()`). */
  get admissionController(): AdmissionControllerT {
    return this.#admission;
  }

  /** The admission middleware (for keepwire's app and vendors' routes). */
  admission(opts: AdmissionRouteOptions = {}): MiddlewareHandler {
    return this.#admission.middleware(opts);
  }

  /** Start sampling and acting. */
  start(): Promise<void> {
    if (this.#started || !this.#cfg.enabled) return Promise.resolve();
    this.#started = true;
    if (this.#queues && this.#deps.supervisor) {
      const q = this.#queues;
      this.#unsubQueue = this.#deps.supervisor.onQueueReport((name, depth, age) =>
        q.report(name, depth, age)
      );
    }
    if (this.#cfg.traceFile) {
      try {
        this.#trace = Deno.openSync(this.#cfg.traceFile, {
          append: true,
          create: true,
          write: true,
        });
      } catch (e) {
        this.#started = false;
        this.#unsubQueue?.();
        throw new TraceFileError(this.#cfg.traceFile, e);
      }
    }
    for (const s of this.#sources) s.start?.();
    this.#timer = this.#ctx.clock.setInterval(() => this.tick(), this.#cfg.sampleIntervalMs);
    this.#actions.setLevel(this.#machine.level);
    return Promise.resolve();
  }

  /** Stop sampling; resume what the governor suspended; drop the event sampler. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    if (this.#timer !== undefined) this.#ctx.clock.clearInterval(this.#timer);
    this.#timer = undefined;
    for (const s of this.#sources) s.stop?.();
    this.#unsubQueue?.();
    this.#unsubQueue = undefined;
    this.#ctx.bus.setSampler(undefined);
    try {
      this.#trace?.close();
    } catch { /* closed */ }
    this.#trace = undefined;
    await this.#actions.resumeAll("governor stopping");
  }

  /** Sample every source once, run the level logic and act. Returns the transition, if any. */
  tick(): Transition | null {
    const now = this.#ctx.clock.now();
    const values: SignalValues = {};
    for (const s of this.#sources) {
      try {
        Object.assign(values, s.sample(now));
        delete this.#sourceErrors[s.name];
      } catch (e) {
        this.#sourceErrors[s.name] = e instanceof Error ? e.message : String(e);
      }
    }
    if (this.#trace) {
      try {
        this.#trace.writeSync(new TextEncoder().encode(traceLine(now, values) + "\n"));
      } catch { /* the trace is best effort */ }
    }
    const tr = this.#machine.update(now, values);
    this.#recordPressure(now);
    if (tr) {
      this.#transitions.push(tr);
      if (this.#transitions.length > 20) this.#transitions.shift();
      this.#changes[tr.to]++;
      this.#actions.setLevel(tr.to);
      const up = levelRank(tr.to) > levelRank(tr.from);
      this.#ctx.bus.publish({
        module: "governor",
        kind: "governor.level_changed",
        severity: up ? SEVERITY_OF[tr.to] : "notice",
        payload: { from: tr.from, to: tr.to, reason: tr.reason, signals: values },
      });
    }
    if (tr || now - this.#lastReconcile >= 1000) {
      this.#lastReconcile = now;
      void this.#actions.reconcile(tr?.reason ?? this.#machine.reason);
    }
    return tr;
  }

  /** Resolves when the pending suspend/resume work is done (tests). */
  settled(): Promise<void> {
    return this.#actions.reconcile(this.#machine.reason);
  }

  /**
   * Pressure now: the highest value/threshold ratio of any signal against its
   * overload threshold (1 = at overload), capped at 2. Kept once a second (last 5
   * minutes) for GET /api/governor and the metric history's `governor.pressure`.
   */
  #recordPressure(now: number): void {
    if (now - (this.#history.at(-1)?.t ?? -Infinity) < 1000) return;
    let p = 0;
    for (const s of this.#machine.signals(now)) {
      const th = s.thresholds?.overload ?? s.thresholds?.severe ?? null;
      if (s.value === null || !th) continue;
      p = Math.max(p, s.value / th);
    }
    this.#history.push({ t: now, level: this.#machine.level, pressure: Math.min(2, p) });
    if (this.#history.length > 300) this.#history.shift();
  }

  /** The snapshot GET /api/governor returns. */
  snapshot(): GovernorSnapshot {
    const now = this.#ctx.clock.now();
    const level = this.#machine.level;
    const sources: GovernorSnapshot["sources"] = {};
    for (const s of this.#sources) {
      sources[s.name] = {
        ...(s.detail?.() ?? {}),
        ...(this.#sourceErrors[s.name] ? { error: this.#sourceErrors[s.name] } : {}),
      };
    }
    const a = this.#cfg.admission;
    return {
      enabled: this.#cfg.enabled,
      level,
      since: this.#machine.since,
      reason: this.#machine.reason,
      signals: this.#machine.signals(now),
      sources,
      suspended: this.#actions.suspended().map(({ seq: _seq, ...rest }) => rest),
      degradation: {
        debugSampleRate: this.#actions.debugSampleRate,
        uiRefreshMs: this.#actions.uiRefreshMs,
        minPriority: a.minPriority[level],
        budgetFraction: a.budgetFraction[level],
        retryAfterS: a.retryAfterS[level],
      },
      admission: this.#admission.stats(),
      transitions: [...this.#transitions],
      history: [...this.#history],
    };
  }

  /** Routes under /api: GET /governor. */
  routes(): Hono {
    const app = new Hono();
    app.get("/governor", (c) => answer(c, governorSnapshotSchema, this.snapshot()));
    return app;
  }

  /** Metric families `governor_*` for /metrics (the web adds the `keepwire_` prefix, HELP and TYPE). */
  metrics(): MetricFamily[] {
    const snap = this.snapshot();
    const ad = snap.admission;
    const fam = (
      name: string,
      type: "gauge" | "counter",
      help: string,
      samples: MetricFamily["samples"],
    ): MetricFamily => ({ name: `governor_${name}`, type, help, samples });
    return [
      fam("level", "gauge", "governor level: 0 normal, 1 elevated, 2 overload, 3 severe", [
        { value: levelRank(snap.level) },
      ]),
      fam(
        "level_changes_total",
        "counter",
        "level changes, by the level entered",
        LEVELS.map((l) => ({ labels: { to: l }, value: this.#changes[l] })),
      ),
      fam(
        "signal",
        "gauge",
        "current value of each pressure signal (units in docs/governor.md)",
        snap.signals.filter((s) => s.value !== null).map((s) => ({
          labels: { signal: s.name },
          value: s.value!,
        })),
      ),
      fam(
        "signal_threshold",
        "gauge",
        "threshold of each signal for each level",
        snap.signals.flatMap((s) =>
          RAISED_LEVELS.flatMap((l) => {
            const v = s.thresholds?.[l];
            return v === null || v === undefined
              ? []
              : [{ labels: { signal: s.name, level: l }, value: v }];
          })
        ),
      ),
      fam(
        "suspended",
        "gauge",
        "subsystems suspended by the governor (1 each)",
        snap.suspended.map((s) => ({
          labels: { subsystem: s.name, criticality: s.criticality },
          value: 1,
        })),
      ),
      fam("http_inflight", "gauge", "HTTP requests in flight", [{ value: ad.inflight }]),
      fam(
        "http_admitted_total",
        "counter",
        "HTTP requests admitted, by priority",
        PRIORITIES.map((p) => ({ labels: { priority: p }, value: ad.admitted[p] })),
      ),
      fam(
        "http_rejected_total",
        "counter",
        "HTTP requests rejected with 503, by priority",
        PRIORITIES.map((p) => ({ labels: { priority: p }, value: ad.rejected[p] })),
      ),
      fam(
        "http_rejected_reason_total",
        "counter",
        "HTTP requests rejected with 503, by reason (level, concurrency, budget, stall)",
        Object.entries(ad.rejectedBy).map(([reason, n]) => ({ labels: { reason }, value: n })),
      ),
      fam(
        "concurrency_limit",
        "gauge",
        "adaptive concurrency limit of sheddable (bulk and deferrable) requests",
        [
          { value: ad.concurrencyLimit },
        ],
      ),
      fam(
        "budget_fraction",
        "gauge",
        "share of each budget window sheddable work may use at the current level",
        [{ value: ad.budgetFraction }],
      ),
      fam(
        "debug_events_sampled_out_total",
        "counter",
        "debug events dropped by the governor's sampler",
        [{ value: this.#actions.sampledOut }],
      ),
      fam("ui_refresh_seconds", "gauge", "UI live-refresh interval at the current level", [
        { value: snap.degradation.uiRefreshMs / 1000 },
      ]),
    ];
  }

  /**
   * Series for the metric history: each signal with a value (in its unit, its level
   * thresholds as lines), the pressure (1 = a signal at its overload threshold) and the
   * level (0 normal .. 3 severe). Nothing while the governor is off.
   */
  history(): HistorySample[] {
    if (!this.#started) return [];
    const now = this.#ctx.clock.now();
    const out: HistorySample[] = [];
    for (const s of this.#machine.signals(now)) {
      if (s.value === null) continue;
      const thresholds: Record<string, number> = {};
      for (const l of RAISED_LEVELS) {
        const v = s.thresholds?.[l];
        if (v !== null && v !== undefined) thresholds[l] = v;
      }
      out.push({
        series: `governor.signal.${s.name}`,
        value: s.value,
        unit: s.unit,
        label: s.name,
        thresholds,
      });
    }
    const p = this.#history.at(-1);
    if (p) {
      out.push({
        series: "governor.pressure",
        value: p.pressure,
        unit: "× overload",
        label: "pressure",
        thresholds: { overload: 1 },
      });
    }
    out.push({
      series: "governor.level",
      value: levelRank(this.#machine.level),
      unit: "level",
      label: "level (0 normal, 1 elevated, 2 overload, 3 severe)",
    });
    return out;
  }

  /** Health: the governor works; the detail says the level. Not essential. */
  health(): PartHealth {
    const n = this.#actions.suspended().length;
    return {
      ok: true,
      essential: false,
      detail: this.#cfg.enabled
        ? `level ${this.#machine.level}${n ? `, ${n} subsystem(s) suspended` : ""}`
        : "disabled",
    };
  }

  /** Status for /api/status. */
  status(): GovernorStatus {
    return {
      enabled: this.#cfg.enabled,
      level: this.#machine.level,
      since: this.#machine.since,
      reason: this.#machine.reason,
      suspended: this.#actions.suspended().map((s) => s.name),
    };
  }
}

/** Build the governor module. */
export function createGovernorModule(
  ctx: ModuleContext,
  deps: { supervisor?: SupervisorApi } & GovernorDeps = {},
): GovernorModule {
  return new GovernorModule(ctx, deps);
}
