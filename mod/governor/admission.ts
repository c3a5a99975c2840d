/**
 * HTTP admission control: a Hono middleware (usable by vendors on their own
 * routes) that gives every request a priority (`vital`, `standard`, `deferrable`,
 * `bulk`: the SRE book's criticalities, see PRIORITIES) from the route rules, the
 * route's own option, or a header (anyone may lower their own request's priority,
 * only a trusted caller may raise it), and rejects sheddable (bulk and deferrable)
 * work with 503 + Retry-After before any of it runs when
 *  - the level's minimum priority is above it,
 *  - the adaptive concurrency limit of sheddable work is reached, or
 *  - sheddable work has used up its CPU-time budget.
 *
 * The budget is a token bucket in milliseconds of CPU: it fills at `budgetFraction`
 * ms per ms of wall time up to `burstMs`, sheddable work is charged the time it runs,
 * and a sheddable request is admitted only while the bucket is not in debt. A small
 * burst bounds how long sheddable work runs back to back on the event loop — and
 * with it how long an essential request waits behind it — while the fill rate gives
 * sheddable work its share. `vital` routes and `neverShed` paths
 * (`/api/health`) are always admitted.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import {
  type AdmissionConfig,
  type Level,
  levelRank,
  PRIORITIES,
  priorityRank,
  type RoutePriority,
  type RouteRule,
  type Thresholds,
} from "./config.ts";
import { levelOf } from "./levels.ts";
import { type ConcurrencyLimiter, createLimiter } from "./limits.ts";
import type { HttpWindow, HttpWindowProvider } from "./signals/http.ts";

/**
 * Why a request was rejected: below the level's minimum priority, the concurrency
 * limit, the CPU budget in debt, or the event loop stalled (requests queued in front of it).
 */
export type RejectReason = "level" | "concurrency" | "budget" | "stall";

/** Options of one use of the middleware. */
export interface AdmissionRouteOptions {
  /** Priority of every request through this middleware (overrides the rules). */
  priority?: RoutePriority;
  /** Route rules for this middleware (default: the configured rules). */
  routes?: RouteRule[];
  /**
   * How sheddable work is charged to the CPU budget: `wall` (default) charges the
   * time a sheddable request is in flight (exact for CPU-bound handlers), `sync`
   * only the synchronous part of the handler (for handlers that mostly await I/O;
   * the concurrency limit then governs them).
   */
  cost?: "wall" | "sync";
}

/** What the admission controller is built with. */
export interface AdmissionOptions {
  /** Admission config. */
  config: AdmissionConfig;
  /** The governor's current level. */
  level: () => Level;
  /** Monotonic time in ms (performance.now; tests inject a fake meter). */
  meter?: () => number;
  /** Is this caller trusted to raise its priority by header? Default: control socket or trustedAddresses. */
  isTrusted?: (c: Context) => boolean;
  /**
   * Thresholds of `sheddableDemand` (cores). The middleware also measures the demand
   * itself on every sheddable arrival (EWMA, `config.fastDemandTauMs`) and applies the
   * level it asks for at once, without waiting for the governor's next sample and
   * hold: a flood is throttled within milliseconds. Null: off.
   */
  demandThresholds?: Thresholds | null;
  /**
   * How long the event loop has been kept from its timers now (ms; the lag probe's
   * `stallMs`), for `config.stallMs`: a stall means requests are queued in front of the
   * loop that the middleware has not seen yet. Without it the stall rule is off.
   */
  stall?: (now: number) => number;
  /** Current event-loop lag (ms), for `config.lagTargetMs`; without it the target is not applied. */
  lag?: () => number;
  /** Timer for held 503s (the injected clock in tests). */
  setTimeout?: (fn: () => void, ms: number) => unknown;
}

/** Counters for status and metrics. */
export interface AdmissionStats {
  /** Admission enabled. */
  enabled: boolean;
  /** Level admission applies (the governor's, or higher from the fast demand). */
  level: Level;
  /** Sheddable demand measured by the middleware (cores). */
  fastDemand: number;
  /** Requests in flight (all priorities). */
  inflight: number;
  /** Sheddable requests in flight. */
  sheddableInflight: number;
  /** 503s being held (rejectDelayMs). */
  delayed: number;
  /** Current concurrency limit of sheddable work. */
  concurrencyLimit: number;
  /** Limit algorithm. */
  algorithm: string;
  /** Share of wall time sheddable work may use now (level, scaled down by lag at overload). */
  budgetFraction: number;
  /** Credit the budget may save at the current level (ms). */
  burstMs: number;
  /** Credit in the sheddable bucket now (ms; negative = debt). */
  budgetTokensMs: number;
  /** Admitted requests by priority. */
  admitted: Record<RoutePriority, number>;
  /** Rejected requests by priority. */
  rejected: Record<RoutePriority, number>;
  /** Rejected requests by reason. */
  rejectedBy: Record<RejectReason, number>;
}

const REJECT_BODY = JSON.stringify({
  error: { code: "overloaded", message: "the appliance is overloaded; retry later" },
});
const MAX_CACHE = 2048;
const MAX_COST_KEYS = 512;

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** Does a rule's path pattern match a path? (`/a*` is a prefix, else exact.) */
export function pathMatches(pattern: string, path: string): boolean {
  return pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : path === pattern;
}

/** The priority the first matching rule gives, or `fallback`. */
export function classify(
  rules: readonly RouteRule[],
  method: string,
  path: string,
  fallback: RoutePriority,
): RoutePriority {
  for (const r of rules) {
    if (r.methods && !r.methods.includes(method)) continue;
    if (pathMatches(r.path, path)) return r.priority;
  }
  return fallback;
}

function isPriority(s: string): s is RoutePriority {
  return (PRIORITIES as readonly string[]).includes(s);
}

/** Default trust: the local control socket, or a peer IP listed in trustedAddresses. */
function defaultTrust(trusted: ReadonlySet<string>): (c: Context) => boolean {
  return (c) => {
    const env = c.env as { trusted?: unknown; remote?: { hostname?: unknown } } | undefined;
    if (env?.trusted === true) return true;
    const host = env?.remote?.hostname;
    return typeof host === "string" && trusted.has(host);
  };
}

/** The admission controller: shared state behind every use of its middleware. */
export class AdmissionController implements HttpWindowProvider {
  #cfg: AdmissionConfig;
  #level: () => Level;
  #meter: () => number;
  #isTrusted: (c: Context) => boolean;
  #limiter: ConcurrencyLimiter;
  #neverShed: Set<string>;
  #cache = new Map<string, RoutePriority>();

  #inflight = 0;
  #shedInflight = 0;
  /** Sheddable requests in flight that are charged by wall time. */
  #wallInflight = 0;
  /** Busy time of in-flight wall-charged requests is charged up to here. */
  #chargedTo = 0;
  /** Token buckets (ms of credit): [0] bulk, [1] deferrable. */
  #tokens: [number, number];
  #filledAt: number | undefined;
  #costEwma = new Map<string, number>();
  #costGlobal: number | undefined;

  #demandThresholds: Thresholds | null;
  #stall: ((now: number) => number) | undefined;
  /** Overload applies until then after a stall of `stallMs` (ms on the meter). */
  #stallUntil = -Infinity;
  /** The last look found the loop stalled (at least `stallMs`). */
  #stalled = false;
  #lag: (() => number) | undefined;
  #setTimeout: (fn: () => void, ms: number) => unknown;
  /** Decaying sum of the estimated cost of arriving sheddable requests (ms). */
  #demandAcc = 0;
  #demandAt = 0;

  #admitted = zeroes(PRIORITIES);
  #rejected = zeroes(PRIORITIES);
  #rejectedBy = zeroes(["level", "concurrency", "budget", "stall"] as const);
  #delayed = 0;
  #win: HttpWindow = { inflight: 0, completed: 0, latencySumMs: 0, sheddableCostMs: 0 };

  /** Build. */
  constructor(o: AdmissionOptions) {
    this.#cfg = o.config;
    this.#level = o.level;
    this.#meter = o.meter ?? (() => performance.now());
    this.#isTrusted = o.isTrusted ?? defaultTrust(new Set(o.config.trustedAddresses));
    this.#limiter = createLimiter(o.config.concurrency);
    this.#neverShed = new Set(o.config.neverShed);
    this.#tokens = [o.config.burstMs.normal, o.config.burstMs.normal];
    this.#demandThresholds = o.demandThresholds ?? null;
    this.#lag = o.lag;
    this.#stall = o.stall;
    this.#setTimeout = o.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
  }

  /** Sheddable demand measured by the middleware itself (cores, EWMA). */
  fastDemand(now: number = this.#meter()): number {
    const tau = this.#cfg.fastDemandTauMs;
    return this.#demandAcc * Math.exp(-Math.max(0, now - this.#demandAt) / tau) / tau;
  }

  #arrive(cost: number, now: number): void {
    const tau = this.#cfg.fastDemandTauMs;
    this.#demandAcc = this.#demandAcc * Math.exp(-Math.max(0, now - this.#demandAt) / tau) + cost;
    this.#demandAt = now;
  }

  /**
   * The level admission applies: the governor's, or higher when the fast demand asks for
   * it, or at least overload for `stallHoldMs` after an event-loop stall of `stallMs`.
   */
  level(now: number = this.#meter()): Level {
    const base = this.#level();
    let fast: Level = "normal";
    // Only floods (overload and up) are acted on at once; `elevated` (at capacity) waits
    // for the governor's hold, so bursts below capacity are not shed.
    if (this.#demandThresholds) fast = levelOf(this.fastDemand(now), this.#demandThresholds);
    // The demand counts arrivals when the middleware takes them. At the start of a flood
    // the loop runs admitted sheddable work back to back (the normal budget allows 90%)
    // and the arrivals queue in front of it unseen, essential ones among them: the demand
    // climbs only as fast as the loop gets to them. The stall shows that queue at once.
    const stallMs = this.#cfg.stallMs;
    this.#stalled = false;
    if (stallMs !== null && this.#stall) {
      if (this.#stall(now) >= stallMs) {
        this.#stalled = true;
        this.#stallUntil = now + this.#cfg.stallHoldMs;
      }
      if (now < this.#stallUntil && levelRank(fast) < 2) fast = "overload";
    }
    return levelRank(fast) > levelRank(base) && levelRank(fast) >= 2 ? fast : base;
  }

  /** The concurrency limiter (status, tests). */
  get limiter(): ConcurrencyLimiter {
    return this.#limiter;
  }

  /** Priority of a request from rules, route option and header. */
  priorityOf(c: Context, opts: AdmissionRouteOptions = {}): RoutePriority {
    const path = c.req.path;
    let prio: RoutePriority;
    if (opts.priority) prio = opts.priority;
    else if (opts.routes) {
      prio = classify(opts.routes, c.req.method, path, this.#cfg.defaultPriority);
    } else {
      const key = c.req.method + " " + path;
      const hit = this.#cache.get(key);
      if (hit) prio = hit;
      else {
        prio = classify(this.#cfg.routes, c.req.method, path, this.#cfg.defaultPriority);
        if (this.#cache.size >= MAX_CACHE) this.#cache.clear();
        this.#cache.set(key, prio);
      }
    }
    const h = c.req.header(this.#cfg.trustedHeader);
    if (h !== undefined) {
      const want = h.trim().toLowerCase();
      // Anyone may lower the priority of their own request; only trusted callers may raise it.
      if (
        isPriority(want) &&
        (priorityRank(want) <= priorityRank(prio) || this.#isTrusted(c))
      ) prio = want;
    }
    return prio;
  }

  /** Fill rates of the two buckets at a level (ms of CPU per ms). */
  #rates(level: Level): [number, number] {
    let f = this.#cfg.budgetFraction[level];
    let plus = f + (1 - f) * this.#cfg.deferrableHeadroom;
    const target = this.#cfg.lagTargetMs;
    if (target !== null && this.#lag && levelRank(level) >= 2) {
      const scale = Math.max(0.1, Math.min(1, target / Math.max(this.#lag(), 1e-3)));
      f *= scale;
      plus *= scale;
    }
    return [f, plus];
  }

  /** Bring the buckets up to `now`: charge running sheddable work, add the fill. */
  #settle(now: number, level: Level): void {
    if (this.#wallInflight > 0 && now > this.#chargedTo) {
      this.#charge(now - this.#chargedTo);
      this.#chargedTo = now;
    }
    if (this.#filledAt === undefined) this.#filledAt = now;
    const dt = now - this.#filledAt;
    if (dt <= 0) return;
    this.#filledAt = now;
    const cap = this.#cfg.burstMs[level];
    const [r0, r1] = this.#rates(level);
    this.#tokens[0] = Math.min(cap, this.#tokens[0] + dt * r0);
    this.#tokens[1] = Math.min(cap, this.#tokens[1] + dt * r1);
  }

  #charge(ms: number): void {
    this.#tokens[0] -= ms;
    this.#tokens[1] -= ms;
  }

  /**
   * Decide on one request: null to admit, or why not. Pure bookkeeping-free
   * check; `middleware` does the accounting.
   */
  decide(prio: RoutePriority, path: string, now: number): RejectReason | null {
    if (!this.#cfg.enabled || prio === "vital" || this.#neverShed.has(path)) return null;
    const level = this.level(now);
    if (priorityRank(prio) < priorityRank(this.#cfg.minPriority[level])) return "level";
    if (prio === "standard") return null;
    if (this.#shedInflight >= this.#limiter.limit) return "concurrency";
    this.#settle(now, level);
    // While the loop is stalled the queue in front of it is drained first: a fixed share
    // of wall time for sheddable work may leave too little to even reject the rest.
    if (this.#stalled) return "stall";
    if (this.#tokens[prio === "deferrable" ? 1 : 0] < 0) return "budget";
    return null;
  }

  #estimate(key: string): number {
    return this.#costEwma.get(key) ?? this.#costGlobal ?? 1;
  }

  #learn(key: string, cost: number): void {
    const prev = this.#costEwma.get(key);
    if (prev === undefined && this.#costEwma.size >= MAX_COST_KEYS) this.#costEwma.clear();
    this.#costEwma.set(key, prev === undefined ? cost : 0.2 * cost + 0.8 * prev);
    this.#costGlobal = this.#costGlobal === undefined ? cost : 0.2 * cost + 0.8 * this.#costGlobal;
  }

  /** The 503 answer. */
  #reject(level: Level, reason: RejectReason): Response | Promise<Response> {
    const delay = this.#cfg.rejectDelayMs[level];
    if (delay > 0 && this.#delayed < this.#cfg.maxDelayed) {
      // Pace clients that retry at once: the 503 leaves after `delay`, nothing runs meanwhile.
      this.#delayed++;
      return new Promise((resolve) => {
        this.#setTimeout(() => {
          this.#delayed--;
          resolve(this.#response(level, reason));
        }, delay);
      });
    }
    return this.#response(level, reason);
  }

  #response(level: Level, reason: RejectReason): Response {
    return new Response(REJECT_BODY, {
      status: 503,
      headers: {
        "content-type": "application/json",
        "retry-after": String(this.#cfg.retryAfterS[level]),
        "x-keepwire-reject-reason": reason,
      },
    });
  }

  /** The Hono middleware. */
  middleware(opts: AdmissionRouteOptions = {}): MiddlewareHandler {
    const syncCost = opts.cost === "sync";
    return async (c, next) => {
      const prio = this.priorityOf(c, opts);
      const path = c.req.path;
      const start = this.#meter();
      const sheddable = prio === "bulk" || prio === "deferrable";
      if (sheddable) {
        const est = this.#estimate(path);
        this.#win.sheddableCostMs += est;
        this.#arrive(est, start);
      }
      const why = this.decide(prio, path, start);
      if (why !== null) {
        this.#rejected[prio]++;
        this.#rejectedBy[why]++;
        return await this.#reject(this.level(start), why);
      }
      this.#admitted[prio]++;
      this.#inflight++;
      const shedInflightAtStart = sheddable ? ++this.#shedInflight : 0;
      if (sheddable && !syncCost && this.#wallInflight++ === 0) this.#chargedTo = start;
      let syncEnd = start;
      try {
        const p = next();
        syncEnd = this.#meter();
        await p;
      } finally {
        const end = this.#meter();
        this.#inflight--;
        this.#win.completed++;
        this.#win.latencySumMs += end - start;
        if (sheddable) {
          this.#shedInflight--;
          if (syncCost) {
            this.#charge(syncEnd - start);
            this.#learn(path, syncEnd - start);
          } else {
            // Charge the busy time up to now (overlapping requests count once).
            if (end > this.#chargedTo) {
              this.#charge(end - this.#chargedTo);
              this.#chargedTo = end;
            }
            this.#wallInflight--;
            this.#learn(path, end - start);
          }
          this.#limiter.onSample(end - start, shedInflightAtStart);
        }
      }
    };
  }

  /** Take and reset the window counters (the HTTP signal source reads these). */
  takeWindow(): HttpWindow {
    const w = { ...this.#win, inflight: this.#inflight };
    this.#win = { inflight: 0, completed: 0, latencySumMs: 0, sheddableCostMs: 0 };
    return w;
  }

  /** Counters for status and metrics. */
  stats(): AdmissionStats {
    const now = this.#meter();
    const level = this.level(now);
    return {
      enabled: this.#cfg.enabled,
      level,
      fastDemand: Math.round(this.fastDemand(now) * 1000) / 1000,
      inflight: this.#inflight,
      sheddableInflight: this.#shedInflight,
      delayed: this.#delayed,
      concurrencyLimit: this.#limiter.limit,
      algorithm: this.#limiter.algorithm,
      budgetFraction: Math.round(this.#rates(level)[0] * 1000) / 1000,
      burstMs: this.#cfg.burstMs[level],
      budgetTokensMs: (this.#settle(now, level), Math.round(this.#tokens[0] * 100) / 100),
      admitted: { ...this.#admitted },
      rejected: { ...this.#rejected },
      rejectedBy: { ...this.#rejectedBy },
    };
  }
}
