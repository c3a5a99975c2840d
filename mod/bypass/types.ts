/**
 * Types of the bypass module's surface (holds, status, the API other modules,
 * the routes and the CLI use) and the zod schemas of hold reasons. Kept apart
 * from mod.ts so the routes and the parts of a segment import them without a
 * circle.
 * @module
 */
import { z } from "zod";
import type { Module, PartHealth } from "../module.ts";
import type {
  BypassCapabilities,
  BypassDriver,
  BypassMode,
  SegmentMode,
} from "../../hw/bypass/types.ts";
import { holdReasonProblem, operatorHoldReasonProblem } from "./hold_reasons.ts";

/** Any hold reason (what can be held can be released): printable text, at most 120 characters. */
export const holdReasonSchema: z.ZodType<string> = z.string().superRefine((r, ctx) => {
  const p = holdReasonProblem(r);
  if (p) ctx.addIssue({ code: "custom", message: p });
});

/** A reason an operator takes a hold under: free text, not a reserved reason. */
export const operatorHoldReasonSchema: z.ZodType<string> = z.string().superRefine((r, ctx) => {
  const p = operatorHoldReasonProblem(r);
  if (p) ctx.addIssue({ code: "custom", message: p });
});

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

/** The card watchdog as a segment reports it. */
export interface SegmentWatchdogStatus {
  /** The driver/card has a watchdog. */
  supported: boolean;
  /** Configured timeout (0 = not used). */
  timeoutMs: number;
  /** Timeout the card actually uses (after rounding), or null. */
  effectiveMs: number | null;
  /** Armed now. */
  armed: boolean;
  /** Expired (the card went to its expiry mode). */
  expired: boolean;
  /** Time left at the last reading, or null. */
  remainingMs: number | null;
  /** Who pets it. */
  petBy: "supervisor" | "module";
  /** Pets since start. */
  pets: number;
  /** Last successful pet (ISO time), or null. */
  lastPetAt: string | null;
}

/** A hold as the API shows it. */
export interface SegmentHoldStatus {
  /** Reason. */
  reason: string;
  /** Count. */
  count: number;
  /** Mode it asks for. */
  mode: BypassMode;
  /** Who took it last. */
  by: string;
  /** First taken (ISO time). */
  since: string;
}

/** Status of one segment (GET /api/bypass, `keepwire bypass status --json`). */
export interface SegmentStatus {
  /** Segment name. */
  name: string;
  /** The two ports. */
  ports: [string, string];
  /** Driver kind. */
  driver: string;
  /** Mode read back from the driver, or `unknown` while it cannot be trusted. */
  mode: SegmentMode;
  /** Mode the holds ask for. */
  desired: BypassMode;
  /** Last mode the driver reported (even while `mode` is unknown), or null. */
  readBack: BypassMode | null;
  /** Active holds, oldest first. */
  holds: SegmentHoldStatus[];
  /** The card watchdog. */
  watchdog: SegmentWatchdogStatus;
  /** Driver capabilities (null until the driver answered). */
  capabilities: BypassCapabilities | null;
  /** A switch is running. */
  switching: boolean;
  /** Failed attempts in a row (0 when healthy). */
  failures: number;
  /** Last error, or null. */
  lastError: string | null;
  /** Duration of the last successful switch (ms), or null. */
  lastSwitchMs: number | null;
  /** Time of the last mode change (ISO), or null. */
  lastChangeAt: string | null;
  /** Free text from the config. */
  description?: string;
}

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
export interface ReleaseResult {
  /** Segment name. */
  segment: string;
  /** The segment had the hold. */
  released: boolean;
  /** Count left (0 when gone). */
  remaining: number;
}

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
