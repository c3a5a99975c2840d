/**
 * The governor's answers as data: GET /api/governor (the snapshot) and its part of
 * /api/status, as zod schemas with the TypeScript types inferred from them.
 * @module
 */
import { z } from "zod";
import { criticalitySchema } from "../supervisor/api.ts";
import { sameType } from "../web/openapi.ts";
import { LEVELS, PRIORITIES, type SignalName, SIGNALS } from "./config.ts";
import type { SignalState, Transition } from "./levels.ts";
import type { AdmissionStats } from "./admission.ts";
import type { Suspension } from "./actions.ts";

const levelSchema = z.lazy(() => z.enum(LEVELS));
const perPriority = z.lazy(() =>
  z.object(
    Object.fromEntries(PRIORITIES.map((p) => [p, z.number()])) as Record<
      typeof PRIORITIES[number],
      z.ZodNumber
    >,
  )
);

/** State of one signal as the level machine sees it. */
export const signalStateSchema = z.lazy(() =>
  z.object({
    name: z.enum(Object.keys(SIGNALS) as [SignalName, ...SignalName[]]),
    unit: z.string(),
    value: z.number().nullable().describe("last value, or null when never reported or stale"),
    updatedAt: z.number().nullable().describe("time of the last report (ms)"),
    level: levelSchema.describe("highest level this value alone asks for"),
    thresholds: z.object({
      elevated: z.number().nullable(),
      overload: z.number().nullable(),
      severe: z.number().nullable(),
    }).nullable().describe("value at or above which each level is wanted; null: signal disabled"),
  })
);

/** One level change. */
export const transitionSchema = z.lazy(() =>
  z.object({
    t: z.number().describe("time (ms) of the sample that caused it"),
    from: levelSchema,
    to: levelSchema,
    reason: z.string(),
  })
);

/** Admission counters of the HTTP middleware. */
export const admissionStatsSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean(),
    level: levelSchema.describe("the level admission applies"),
    fastDemand: z.number().describe("sheddable demand measured by the middleware (cores)"),
    inflight: z.number(),
    sheddableInflight: z.number(),
    delayed: z.number().describe("503s being held (rejectDelayMs)"),
    concurrencyLimit: z.number(),
    algorithm: z.string(),
    budgetFraction: z.number(),
    burstMs: z.number(),
    budgetTokensMs: z.number().describe("credit in the sheddable bucket (negative = debt)"),
    admitted: perPriority,
    rejected: perPriority,
    rejectedBy: z.object({
      level: z.number(),
      concurrency: z.number(),
      budget: z.number(),
      stall: z.number(),
    }),
  })
);

/** GET /api/governor. */
export const governorSnapshotSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean(),
    level: levelSchema,
    since: z.number().describe("when the level was entered (ms)"),
    reason: z.string(),
    signals: z.array(signalStateSchema),
    sources: z.record(z.string(), z.record(z.string(), z.unknown())).describe(
      "raw details of each signal source",
    ),
    suspended: z.array(z.object({
      name: z.string(),
      criticality: criticalitySchema,
      since: z.number(),
      reason: z.string(),
    })).describe("subsystems the governor suspended, and why"),
    degradation: z.object({
      debugSampleRate: z.number().describe("share of debug events kept"),
      uiRefreshMs: z.number(),
      minPriority: z.string().describe("requests below this priority are rejected outright"),
      budgetFraction: z.number(),
      retryAfterS: z.number(),
    }).describe("keepwire's own degradation at this level"),
    admission: admissionStatsSchema,
    transitions: z.array(transitionSchema).describe("the last level changes, oldest first"),
    history: z.array(z.object({ t: z.number(), level: levelSchema, pressure: z.number() }))
      .describe("pressure once a second, last 5 minutes (1 = a signal at its overload threshold)"),
  })
);
/** GET /api/governor. */
export type GovernorSnapshot = z.infer<typeof governorSnapshotSchema>;

/** The governor's part of /api/status. */
export const governorStatusSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean(),
    level: levelSchema,
    since: z.number(),
    reason: z.string(),
    suspended: z.array(z.string()),
  })
);
/** The governor's part of /api/status. */
export type GovernorStatus = z.infer<typeof governorStatusSchema>;

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<SignalState, z.output<typeof signalStateSchema>>((v) => v, (v) => v);
sameType<Transition, z.output<typeof transitionSchema>>((v) => v, (v) => v);
sameType<AdmissionStats, z.output<typeof admissionStatsSchema>>((v) => v, (v) => v);
sameType<Omit<Suspension, "seq">, z.output<typeof governorSnapshotSchema>["suspended"][number]>(
  (v) => v,
  (v) => v,
);
