/**
 * Types of the bypass module's surface (holds, status, the API other modules,
 * the routes and the CLI use) and the zod schemas of hold reasons. Kept apart
 * from mod.ts so the routes and the parts of a segment import them without a
 * circle.
 * @module
 */
import { z } from "zod";
import { sameType } from "../web/openapi.ts";
import type { Module, PartHealth } from "../module.ts";
import {
  BYPASS_MODES,
  type BypassCapabilities,
  type BypassDriver,
  type BypassMode,
} from "../../hw/bypass/types.ts";
import { holdReasonProblem, operatorHoldReasonProblem } from "./hold_reasons.ts";

/** Any hold reason (what can be held can be released): printable text, at most 120 characters. */
export const holdReasonSchema: z.ZodType<string> = z.lazy(() =>
  z.string().superRefine((r, ctx) => {
    const p = holdReasonProblem(r);
    if (p) ctx.addIssue({ code: "custom", message: p });
  })
);

/** A reason an operator takes a hold under: free text, not a reserved reason. */
export const operatorHoldReasonSchema: z.ZodType<string> = z.lazy(() =>
  z.string().superRefine((r, ctx) => {
    const p = operatorHoldReasonProblem(r);
    if (p) ctx.addIssue({ code: "custom", message: p });
  })
);

/** One named hold on a segment. */
export interface BypassHold {
  /** Reason, e.g. `update` (see hold_reasons.ts) or an operator's free text. */
  reason: string;
  /** How many times it was taken and not yet released (>= 1). */
  count: number;
  /** The mode it asks for (bypass, or disconnect / tap). */
  mode: BypassMode;
  /** Who took it last (`cli`, `api`, `supervisor`, `updater`, `card-watchdog`, ...). */
  by: string;
  /** When it was first taken (ms since the epoch). */
  since: number;
}

/** Where holds are persisted (the module backs it with the store). */
export interface SegmentHoldStore {
  /** Holds of a segment. */
  load(segment: string): BypassHold[];
  /** Insert or update a hold. */
  put(segment: string, hold: BypassHold): void;
  /** Delete a hold. */
  remove(segment: string, reason: string): void;
}

const bypassModeSchema = z.lazy(() => z.enum(BYPASS_MODES));

const policyCapabilitySchema = z.lazy(() =>
  z.object({
    settable: z.array(bypassModeSchema).describe("modes software can choose"),
    fixed: bypassModeSchema.nullable().describe("the mode fixed by the hardware, or null"),
  })
);

/** What a driver (and the card behind it) supports, as the API shows it. */
export const bypassCapabilitiesSchema = z.lazy(() =>
  z.object({
    modes: z.array(bypassModeSchema),
    policies: z.object({
      powerOff: policyCapabilitySchema,
      powerUp: policyCapabilitySchema,
      watchdogExpiry: policyCapabilitySchema,
    }),
    watchdog: z.boolean().describe("the card has its own watchdog"),
    watchdogRangeMs: z.object({ min: z.number(), max: z.number() }).optional(),
    readBack: z.enum(["hardware", "kernel", "process", "memory"]),
  })
);

/** The card watchdog as a segment reports it. */
export const segmentWatchdogStatusSchema = z.lazy(() =>
  z.object({
    supported: z.boolean().describe("the driver/card has a watchdog"),
    timeoutMs: z.number().describe("configured timeout (0 = not used)"),
    effectiveMs: z.number().nullable().describe("timeout the card uses (after rounding)"),
    armed: z.boolean(),
    expired: z.boolean().describe("expired: the card went to its expiry mode"),
    remainingMs: z.number().nullable().describe("time left at the last reading"),
    petBy: z.enum(["supervisor", "module"]),
    pets: z.number().describe("pets since start"),
    lastPetAt: z.string().nullable().describe("last successful pet (ISO time)"),
  })
);
/** The card watchdog as a segment reports it. */
export type SegmentWatchdogStatus = z.infer<typeof segmentWatchdogStatusSchema>;

/** A hold as the API shows it. */
export const segmentHoldStatusSchema = z.lazy(() =>
  z.object({
    reason: z.string(),
    count: z.number().describe("times taken and not yet released"),
    mode: bypassModeSchema.describe("the mode it asks for"),
    by: z.string().describe("who took it last"),
    since: z.string().describe("first taken (ISO time)"),
  })
);
/** A hold as the API shows it. */
export type SegmentHoldStatus = z.infer<typeof segmentHoldStatusSchema>;

/** Status of one segment (GET /api/bypass, `keepwire bypass status --json`). */
export const segmentStatusSchema = z.lazy(() =>
  z.object({
    name: z.string(),
    ports: z.tuple([z.string(), z.string()]),
    driver: z.string().describe("driver kind"),
    mode: z.enum([...BYPASS_MODES, "unknown"]).describe(
      "mode read back from the driver, or unknown while it cannot be trusted",
    ),
    desired: bypassModeSchema.describe("mode the holds ask for"),
    readBack: bypassModeSchema.nullable().describe("last mode the driver reported"),
    holds: z.array(segmentHoldStatusSchema).describe("active holds, oldest first"),
    watchdog: segmentWatchdogStatusSchema,
    capabilities: bypassCapabilitiesSchema.nullable().describe("null until the driver answered"),
    switching: z.boolean().describe("a switch is running"),
    failures: z.number().describe("failed attempts in a row"),
    lastError: z.string().nullable(),
    lastSwitchMs: z.number().nullable().describe("duration of the last successful switch"),
    lastChangeAt: z.string().nullable().describe("time of the last mode change (ISO)"),
    description: z.string().optional(),
  })
);
/** Status of one segment (GET /api/bypass, `keepwire bypass status --json`). */
export type SegmentStatus = z.infer<typeof segmentStatusSchema>;

/** Outcome of one switch attempt. */
export interface SwitchOutcome {
  /** The read-back matched the wanted mode. */
  ok: boolean;
  /** Segment name. */
  segment: string;
  /** Wanted mode. */
  wanted: BypassMode;
  /** Error text when not ok. */
  error?: string;
}

/** Modes `set` accepts. */
export type BypassSetMode = "inline" | "bypass" | "disconnect";

/** What one release did on one segment. */
export const releaseResultSchema = z.lazy(() =>
  z.object({
    segment: z.string(),
    released: z.boolean().describe("the segment had the hold"),
    remaining: z.number().describe("count left (0 when gone)"),
  })
);
/** What one release did on one segment. */
export type ReleaseResult = z.infer<typeof releaseResultSchema>;

/** What other modules (supervisor, updater), the web and the CLI call on the bypass module. */
export interface BypassApi {
  /** Status of every segment. */
  segments(): SegmentStatus[];
  /**
   * Take a named hold on one segment or `all` (count +1) and switch. Resolves once
   * the relays read back the wanted mode; rejects with BypassSwitchError when one
   * did not (the hold stays recorded and the switch is retried).
   */
  hold(target: string | "all", reason: string, by?: string): Promise<void>;
  /** Release a named hold (count -1) and switch; releasing a hold that is not there does nothing. */
  release(target: string | "all", reason: string): Promise<void>;
  /** Manual mode: a `manual` hold (bypass, disconnect) or its release (inline). */
  set(segment: string, mode: BypassSetMode, by?: string): Promise<void>;
  /** Pet every armed card watchdog (the supervisor calls this while healthy). */
  petWatchdogs(): Promise<void>;
  /** Health: not ok while a segment is `unknown`. */
  health(): PartHealth;
}

/** What the routes (and so the CLI and the UI) call: the API plus operator holds. */
export interface BypassRoutesApi extends BypassApi {
  /** Status of one segment (throws BypassUnknownSegmentError). */
  segment(name: string): SegmentStatus;
  /**
   * A hold an operator takes: like `hold`, but the reason must not be one of
   * keepwire's own (hold_reasons.ts, and the configured `holdAtStart`); throws
   * BypassInputError otherwise.
   */
  holdByOperator(target: string | "all", reason: string, by: string): Promise<void>;
  /** Release with options: `force` drops the hold whatever its count. */
  releaseWith(
    target: string | "all",
    reason: string,
    opts?: { by?: string; force?: boolean },
  ): Promise<ReleaseResult[]>;
}

/** The bypass module: a Module that is also the API. */
export interface BypassModule extends Module, BypassRoutesApi {
  /** Module name. */
  readonly name: "bypass";
  /** Health: not ok while a segment is `unknown`. */
  health(): PartHealth;
  /**
   * Before any module stops: with config `onStop: bypass`, put the `shutdown` hold
   * on every segment (once, not counted up), so the wire carries traffic while the
   * subsystems stop and until the next start is ready.
   */
  prepareStop(): Promise<void>;
  /** Poll every segment now (tests; the module polls every pollMs). */
  pollNow(): Promise<void>;
  /** The driver of a segment (tests, bench). */
  driverOf(name: string): BypassDriver;
}

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<BypassCapabilities, z.output<typeof bypassCapabilitiesSchema>>((v) => v, (v) => v);
