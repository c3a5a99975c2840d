/**
 * Config schema of the load governor: per-signal thresholds for each level, hold
 * times, hysteresis, sampling, actions per level and HTTP admission control.
 * @module
 */
import { z } from "zod";

/** Governor levels, lowest first. */
export const LEVELS = ["normal", "elevated", "overload", "severe"] as const;
/** One governor level. */
export type Level = typeof LEVELS[number];
/** Levels above normal (the ones with thresholds and enter holds). */
export const RAISED_LEVELS = ["elevated", "overload", "severe"] as const;
/** One level above normal. */
export type RaisedLevel = typeof RAISED_LEVELS[number];

/** Numeric rank of a level (normal = 0). */
export function levelRank(l: Level): number {
  return LEVELS.indexOf(l);
}

/**
 * Request priorities, lowest first (the four request criticalities of the Google SRE
 * book ch. 21 under words that mean nothing else in keepwire):
 *  - `bulk`: shed first (live event stream, background reads);
 *  - `deferrable`: shed after bulk (event lists, metrics);
 *  - `standard`: the default; rejected only at levels whose `minPriority` is above it;
 *  - `vital`: never shed (health, the governor's own status).
 * `bulk` and `deferrable` requests are "sheddable": they share the CPU budget and the
 * adaptive concurrency limit.
 */
export const PRIORITIES = ["bulk", "deferrable", "standard", "vital"] as const;
/** One request priority. */
export type RoutePriority = typeof PRIORITIES[number];

/** Numeric rank of a priority (bulk = 0). */
export function priorityRank(p: RoutePriority): number {
  return PRIORITIES.indexOf(p);
}

/**
 * Every signal the level logic knows, with its unit. The names are the keys of
 * `thresholds` in the config and of `signals` in a replay trace.
 */
export const SIGNALS = {
  eventLoopLagMs: "ms",
  cpuPressure: "%",
  memoryPressure: "%",
  ioPressure: "%",
  cgroupMemory: "%",
  cpuThrottled: "%",
  rssMb: "MiB",
  queueDepth: "items",
  queueAgeMs: "ms",
  inflight: "requests",
  httpLatencyMs: "ms",
  sheddableDemand: "cores",
} as const;
/** One signal name. */
export type SignalName = keyof typeof SIGNALS;
/** Signal names in display order. */
export const SIGNAL_NAMES: SignalName[] = Object.keys(SIGNALS) as SignalName[];
/** Values of some signals (a missing signal is simply absent). */
export type SignalValues = Partial<Record<SignalName, number>>;

/** Thresholds of one signal: the value at or above which each level is wanted (null: never). */
export interface Thresholds {
  /** Value at or above which `elevated` is wanted. */
  elevated: number | null;
  /** Value at or above which `overload` is wanted. */
  overload: number | null;
  /** Value at or above which `severe` is wanted. */
  severe: number | null;
}

function thresholds(elevated: number | null, overload: number | null, severe: number | null) {
  const def: Thresholds = { elevated, overload, severe };
  const n = z.number().min(0).nullable();
  return z.strictObject({
    elevated: n.default(elevated),
    overload: n.default(overload),
    severe: n.default(severe),
  }).refine((t) => {
    const set = [t.elevated, t.overload, t.severe].filter((v): v is number => v !== null);
    return set.every((v, i) => i === 0 || v >= set[i - 1]);
  }, "thresholds must not decrease from elevated to overload to severe")
    .nullable().default(() => ({ ...def }))
    .describe(
      `thresholds (elevated ${elevated}, overload ${overload}, severe ${severe}); null disables the signal`,
    );
}

/** Default thresholds per signal. */
export const DEFAULT_THRESHOLDS: Record<SignalName, Thresholds | null> = {
  eventLoopLagMs: { elevated: 30, overload: 60, severe: 250 },
  cpuPressure: { elevated: 80, overload: null, severe: null },
  memoryPressure: { elevated: 10, overload: 25, severe: 50 },
  ioPressure: { elevated: 50, overload: 90, severe: null },
  cgroupMemory: { elevated: 80, overload: 90, severe: 97 },
  cpuThrottled: { elevated: 25, overload: 50, severe: null },
  rssMb: { elevated: 768, overload: 1024, severe: 1536 },
  queueDepth: { elevated: 1000, overload: 10000, severe: null },
  queueAgeMs: { elevated: 5000, overload: 30000, severe: null },
  inflight: { elevated: 256, overload: 1024, severe: 4096 },
  httpLatencyMs: null,
  sheddableDemand: { elevated: 1, overload: 1.5, severe: null },
};

function thresholdsOf(name: SignalName) {
  const t = DEFAULT_THRESHOLDS[name];
  if (t === null) {
    return z.strictObject({
      elevated: z.number().min(0).nullable().default(null),
      overload: z.number().min(0).nullable().default(null),
      severe: z.number().min(0).nullable().default(null),
    }).nullable().default(null).describe("thresholds; null (default) disables the signal");
  }
  return thresholds(t.elevated, t.overload, t.severe);
}

const thresholdsSchema = z.strictObject(
  Object.fromEntries(SIGNAL_NAMES.map((n) => [n, thresholdsOf(n)])) as {
    [K in SignalName]: ReturnType<typeof thresholdsOf>;
  },
);

/** A value for each level. */
function perLevel<T extends z.ZodType>(
  schema: T,
  def: Record<Level, z.output<T>>,
  what: string,
) {
  type D = z.util.NoUndefined<z.output<T>>;
  return z.strictObject({
    normal: schema.default(def.normal as D),
    elevated: schema.default(def.elevated as D),
    overload: schema.default(def.overload as D),
    severe: schema.default(def.severe as D),
  }).default(() => ({ ...def }) as { [L in Level]: D }).describe(what);
}

const prioritySchema = z.enum(PRIORITIES);

/** A route rule: which priority a path has by default. */
export const routeRuleSchema = z.strictObject({
  path: z.string().regex(/^\/[^\s]*$/, 'a path starting with "/", optionally ending in "*"')
    .describe('exact path, or a prefix ending in "*"'),
  methods: z.array(z.string().regex(/^[A-Z]+$/, "upper-case HTTP method")).optional()
    .describe("only these methods (default: all)"),
  priority: prioritySchema.describe("priority of requests to this path"),
});
/** One route rule. */
export type RouteRule = z.infer<typeof routeRuleSchema>;

/** Default route rules of keepwire's own API (first match wins). */
export const DEFAULT_ROUTES: RouteRule[] = [
  { path: "/api/health", priority: "vital" },
  { path: "/api/governor", priority: "vital" },
  { path: "/api/events/stream", priority: "bulk" },
  { path: "/api/events*", priority: "deferrable" },
  // the charts' polling: background reads, shed before operations
  { path: "/api/history*", priority: "deferrable" },
  { path: "/metrics", priority: "deferrable" },
];

const concurrencySchema = z.strictObject({
  algorithm: z.enum(["gradient", "aimd", "fixed"]).default("gradient").describe(
    "gradient (Netflix Gradient2 on latency), aimd (additive increase, multiplicative decrease), fixed",
  ),
  initial: z.number().int().min(1).default(20).describe(
    "initial limit of sheddable (bulk and deferrable) requests in flight",
  ),
  min: z.number().int().min(1).default(4).describe("lowest limit"),
  max: z.number().int().min(1).default(200).describe("highest limit"),
  smoothing: z.number().gt(0).max(1).default(0.2).describe("gradient: smoothing of limit changes"),
  queueSize: z.number().min(0).default(4).describe("gradient: headroom added to the limit"),
  longWindow: z.number().int().min(2).default(600).describe(
    "gradient: samples in the long latency average",
  ),
  shortWindow: z.number().int().min(1).default(10).describe(
    "gradient: samples in the short latency average",
  ),
  latencyTargetMs: z.number().positive().default(250).describe(
    "aimd: latency above which the limit is cut",
  ),
  backoff: z.number().gt(0).lt(1).default(0.9).describe("aimd: factor the limit is cut by"),
}).refine((c) => c.min <= c.initial && c.initial <= c.max, "need min <= initial <= max");

const admissionSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("false: admit everything (still counted)"),
  burstMs: perLevel(
    z.number().min(0).max(10_000),
    {
      normal: 5,
      elevated: 5,
      overload: 1,
      severe: 1,
    },
    "credit (ms of CPU) the sheddable budget may save, per level: a small burst bounds how long sheddable work runs back to back, a larger one tolerates bursts",
  ),
  budgetFraction: perLevel(z.number().gt(0).max(1), {
    normal: 0.9,
    elevated: 0.9,
    overload: 0.65,
    severe: 0.3,
  }, "share of wall time sheddable work may use (the budget's fill rate), per level"),
  rejectDelayMs: perLevel(
    z.number().int().min(0).max(10_000),
    {
      normal: 0,
      elevated: 0,
      overload: 50,
      severe: 100,
    },
    "hold a 503 this long before sending it, per level (no work is done meanwhile): clients that retry at once, ignoring Retry-After, are paced, so a retry storm cannot fill the event loop with rejections",
  ),
  maxDelayed: z.number().int().min(0).default(1024).describe(
    "at most this many 503s are held at once; beyond, they are sent at once",
  ),
  lagTargetMs: z.number().positive().nullable().default(null).describe(
    "at overload and above, the budget's fill rate is scaled by lagTargetMs / event-loop lag when the lag is higher (CoDel-like: a retry storm that keeps the loop busy with rejections leaves less room for sheddable work); null: off",
  ),
  fastDemandTauMs: z.number().min(1).max(10_000).default(250).describe(
    "time constant of the demand the middleware measures itself; the level thresholds.sheddableDemand asks for applies to admission at once",
  ),
  stallMs: z.number().positive().nullable().default(60).describe(
    "an event-loop stall this long (ms, the lag probe's timer overdue) means requests are queued in front of the loop that the middleware has not seen yet: admission applies overload at once, without waiting for the demand it measures or the governor; above the longest run of sheddable work the normal budget allows (burstMs / (1 - budgetFraction) plus one request); null: off",
  ),
  stallHoldMs: z.number().int().min(0).max(60_000).default(250).describe(
    "after a stall of stallMs, admission keeps overload this long (the measured demand takes over while a flood lasts)",
  ),
  deferrableHeadroom: z.number().min(0).max(1).default(0.5).describe(
    "deferrable requests may also use this share of the headroom left above budgetFraction",
  ),
  minPriority: perLevel(prioritySchema, {
    normal: "bulk",
    elevated: "bulk",
    overload: "bulk",
    severe: "deferrable",
  }, "requests below this priority are rejected outright, per level"),
  retryAfterS: perLevel(z.number().int().min(1).max(3600), {
    normal: 1,
    elevated: 1,
    overload: 2,
    severe: 5,
  }, "Retry-After seconds of a 503, per level"),
  concurrency: concurrencySchema.default(() => concurrencySchema.parse({}, { jitless: true }))
    .describe(
      "requests served at once, per priority",
    ),
  defaultPriority: prioritySchema.default("standard").describe(
    "priority of a route no rule matches",
  ),
  routes: z.array(routeRuleSchema).default(() => DEFAULT_ROUTES.map((r) => ({ ...r }))).describe(
    "route rules, first match wins",
  ),
  neverShed: z.array(z.string().regex(/^\//)).default(["/api/health"]).describe(
    "paths always admitted whatever the rules say",
  ),
  trustedHeader: z.string().regex(/^[a-z0-9-]+$/, "lower-case header name").default(
    "x-keepwire-priority",
  ).describe(
    "header that sets a request's priority: anyone may lower their own, only trusted callers raise it",
  ),
  trustedAddresses: z.array(z.string()).default([]).describe(
    "peer IPs whose header is trusted (the local control socket always is)",
  ),
});

const levelSchema = z.enum(LEVELS);

/** The `governor` section. */
export const governorConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("false: no sampling, no actions, admit everything"),
  sampleIntervalMs: z.number().int().min(10).max(60_000).default(100).describe(
    "how often the signals are sampled and the level recomputed",
  ),
  staleAfterMs: z.number().int().min(100).default(5000).describe(
    "a signal not reported for this long stops counting",
  ),
  enterHoldMs: z.strictObject({
    elevated: z.number().int().min(0).default(500),
    overload: z.number().int().min(0).default(200),
    severe: z.number().int().min(0).default(200),
  }).default({ elevated: 500, overload: 200, severe: 200 }).describe(
    "a level is entered when its thresholds are exceeded for this long (enter fast)",
  ),
  leaveHoldMs: z.number().int().min(0).default(5000).describe(
    "a level is left, one step at a time, when every signal stays below hysteresis x its threshold for this long",
  ),
  hysteresis: z.number().gt(0).max(1).default(0.8).describe(
    "to leave a level, signals must fall below this fraction of its thresholds",
  ),
  thresholds: thresholdsSchema.default(() => thresholdsSchema.parse({}, { jitless: true }))
    .describe(
      "per signal, the value that raises each level",
    ),
  signals: z.strictObject({
    lag: z.strictObject({
      enabled: z.boolean().default(true).describe("sample this signal"),
      probeIntervalMs: z.number().int().min(1).max(1000).default(10).describe(
        "timer-drift probe interval",
      ),
      alpha: z.number().gt(0).max(1).default(0.3).describe("EWMA weight of a new drift sample"),
    }).default({ enabled: true, probeIntervalMs: 10, alpha: 0.3 }).describe(
      "event-loop lag of keepwire itself (timer drift)",
    ),
    psi: z.strictObject({
      enabled: z.boolean().default(true).describe("sample this signal"),
      root: z.string().default("/proc/pressure").describe("directory with cpu, memory, io"),
    }).default({ enabled: true, root: "/proc/pressure" }).describe(
      "Linux pressure stall information: CPU, memory and I/O pressure of the box",
    ),
    cgroup: z.strictObject({
      enabled: z.boolean().default(true).describe("sample this signal"),
      root: z.string().default("/sys/fs/cgroup").describe(
        "cgroup v2 directory with memory.current, memory.max, cpu.stat",
      ),
    }).default({ enabled: true, root: "/sys/fs/cgroup" }).describe(
      "keepwire's cgroup: memory use against its limit, CPU throttling",
    ),
    rss: z.strictObject({
      enabled: z.boolean().default(true).describe("sample this signal"),
    }).default({ enabled: true }).describe("keepwire's resident memory"),
    queues: z.strictObject({
      enabled: z.boolean().default(true).describe("sample this signal"),
      staleAfterMs: z.number().int().min(100).default(10_000).describe(
        "a subsystem's queue report older than this is ignored",
      ),
    }).default({ enabled: true, staleAfterMs: 10_000 }).describe(
      "queue age reported by subsystems through the SDK (suspended ones are not counted)",
    ),
    http: z.strictObject({
      enabled: z.boolean().default(true).describe("sample this signal"),
      alpha: z.number().gt(0).max(1).default(0.5).describe("EWMA weight of a new sample"),
    }).default({ enabled: true, alpha: 0.5 }).describe("HTTP request latency of the API"),
  }).default(() => ({
    lag: { enabled: true, probeIntervalMs: 10, alpha: 0.3 },
    psi: { enabled: true, root: "/proc/pressure" },
    cgroup: { enabled: true, root: "/sys/fs/cgroup" },
    rss: { enabled: true },
    queues: { enabled: true, staleAfterMs: 10_000 },
    http: { enabled: true, alpha: 0.5 },
  })).describe("the pressure signals sampled (docs/governor.md: units and thresholds)"),
  actions: z.strictObject({
    suspend: z.boolean().default(true).describe(
      "suspend subsystems by their criticality (optional, important; never essential)",
    ),
    suspendOptionalAt: levelSchema.default("elevated").describe(
      "level at which optional subsystems are suspended",
    ),
    suspendImportantAt: levelSchema.default("overload").describe(
      "level at which important subsystems are suspended",
    ),
    debugSampleRate: perLevel(z.number().min(0).max(1), {
      normal: 1,
      elevated: 0.1,
      overload: 0.01,
      severe: 0,
    }, "share of debug events kept, per level"),
    uiRefreshMs: perLevel(z.number().int().min(100), {
      normal: 1000,
      elevated: 3000,
      overload: 10_000,
      severe: 30_000,
    }, "UI live-refresh interval, per level"),
  }).default(() => ({
    suspend: true,
    suspendOptionalAt: "elevated" as const,
    suspendImportantAt: "overload" as const,
    debugSampleRate: { normal: 1, elevated: 0.1, overload: 0.01, severe: 0 },
    uiRefreshMs: { normal: 1000, elevated: 3000, overload: 10_000, severe: 30_000 },
  })).describe("what the governor does at each level"),
  admission: admissionSchema.default(() => admissionSchema.parse({}, { jitless: true })).describe(
    "admission control of HTTP requests by priority",
  ),
  traceFile: z.string().min(1).optional().describe(
    "append one JSON line of signals per sample here (a trace for `keepwire governor replay`)",
  ),
});

/** The validated `governor` section. */
export type GovernorConfig = z.infer<typeof governorConfigSchema>;
/** The admission part of the governor config. */
export type AdmissionConfig = GovernorConfig["admission"];
/** The concurrency-limit part of the admission config. */
export type ConcurrencyConfig = AdmissionConfig["concurrency"];

/** The default governor config. */
export function defaultGovernorConfig(): GovernorConfig {
  return governorConfigSchema.parse({});
}

/** Level words renamed: the highest level was `critical` (a word events and subsystems also use). */
const LEVEL_RENAMES: Record<string, string> = { critical: "severe" };
/** Route priorities renamed from the SRE book's criticality words. */
export const PRIORITY_RENAMES: Record<string, RoutePriority> = {
  "sheddable": "bulk",
  "sheddable-plus": "deferrable",
  "critical": "standard",
  "critical-plus": "vital",
};
/** `admission` keys renamed. */
const ADMISSION_RENAMES: Record<string, string> = {
  minCriticality: "minPriority",
  defaultCriticality: "defaultPriority",
  plusHeadroom: "deferrableHeadroom",
};

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function priorityNote(v: unknown): string {
  if (typeof v === "string" && v in PRIORITY_RENAMES) {
    return ` ("${v}" is now "${PRIORITY_RENAMES[v]}")`;
  }
  return "";
}

/**
 * Keys of a `governor` section (raw input, before validation) that older keepwire
 * versions used, one `path: ...` line each naming the new key, so an old config fails
 * with the fix in the message rather than a bare "unknown field".
 */
export function renamedGovernorKeys(section: unknown, at = "governor"): string[] {
  if (!isObj(section)) return [];
  const out: string[] = [];
  const levelKeys = (obj: unknown, path: string) => {
    if (!isObj(obj)) return;
    for (const [old, now] of Object.entries(LEVEL_RENAMES)) {
      if (old in obj) out.push(`${path}.${old}: renamed to "${now}" (level ${old} is now ${now})`);
    }
  };
  if (isObj(section.thresholds)) {
    for (const [sig, t] of Object.entries(section.thresholds)) {
      levelKeys(t, `${at}.thresholds.${sig}`);
    }
  }
  levelKeys(section.enterHoldMs, `${at}.enterHoldMs`);
  if (isObj(section.actions)) {
    for (const k of ["debugSampleRate", "uiRefreshMs"]) {
      levelKeys(section.actions[k], `${at}.actions.${k}`);
    }
    for (const k of ["suspendOptionalAt", "suspendImportantAt"]) {
      const v = section.actions[k];
      if (typeof v === "string" && v in LEVEL_RENAMES) {
        out.push(`${at}.actions.${k}: level "${v}" is now "${LEVEL_RENAMES[v]}"`);
      }
    }
  }
  const a = section.admission;
  if (isObj(a)) {
    for (
      const k of [
        "burstMs",
        "budgetFraction",
        "rejectDelayMs",
        "retryAfterS",
        "minCriticality",
        "minPriority",
      ]
    ) {
      levelKeys(a[k], `${at}.admission.${k}`);
    }
    for (const [old, now] of Object.entries(ADMISSION_RENAMES)) {
      if (!(old in a)) continue;
      const v = a[old];
      const values = isObj(v)
        ? [...new Set(Object.values(v).map(priorityNote).filter(Boolean))].join("")
        : priorityNote(v);
      out.push(`${at}.admission.${old}: renamed to "${now}"${values}`);
    }
    for (const k of ["minPriority"]) {
      if (!isObj(a[k])) continue;
      for (const [lvl, v] of Object.entries(a[k])) {
        const note = priorityNote(v);
        if (note) out.push(`${at}.admission.${k}.${lvl}: unknown priority${note}`);
      }
    }
    if (typeof a.defaultPriority === "string" && priorityNote(a.defaultPriority)) {
      out.push(
        `${at}.admission.defaultPriority: unknown priority${priorityNote(a.defaultPriority)}`,
      );
    }
    if (Array.isArray(a.routes)) {
      a.routes.forEach((r, i) => {
        if (!isObj(r)) return;
        if ("criticality" in r) {
          out.push(
            `${at}.admission.routes[${i}].criticality: renamed to "priority"${
              priorityNote(r.criticality)
            }`,
          );
        }
        const note = priorityNote(r.priority);
        if (note) out.push(`${at}.admission.routes[${i}].priority: unknown priority${note}`);
      });
    }
  }
  return out;
}
