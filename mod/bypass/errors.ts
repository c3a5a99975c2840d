/**
 * Errors of the bypass module. Each carries its HTTP status and a stable code, so
 * the routes just throw and the web app's `onError` answers
 * `{"error":{code,message,fields?}}` with that status.
 *
 * | class                        | status | code                  |
 * | ---------------------------- | ------ | --------------------- |
 * | BypassInputError             | 400    | `bad_request`         |
 * | BypassUnknownSegmentError    | 404    | `segment_not_found`   |
 * | BypassHeldError              | 409    | `held`                |
 * | BypassSwitchError            | 502    | `switch_failed`       |
 * | BypassSegmentConfigError     | 500    | `segment_config`      |
 * @module
 */
import { KeepwireError } from "../errors.ts";

/** A request the module cannot take: a mode the card cannot do, a bad hold reason. */
export class BypassInputError extends KeepwireError {
  /** Build one; `fields` names the request fields at fault. */
  constructor(message: string, fields?: Record<string, string>) {
    super(400, "bad_request", message, { fields });
  }
}

/** A segment name that is not configured. */
export class BypassUnknownSegmentError extends KeepwireError {
  /** The name asked for. */
  readonly segment: string;
  /** Build one. */
  constructor(name: string, known: string[]) {
    super(
      404,
      "segment_not_found",
      `no bypass segment "${name}" (segments: ${known.join(", ") || "none"})`,
    );
    this.segment = name;
  }
}

/** A hold as the held error names it. */
export interface HeldBy {
  /** Reason. */
  reason: string;
  /** Count. */
  count: number;
  /** Who took it last. */
  by: string;
}

function shellWord(s: string): string {
  return /^[\w.:@\/-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `set inline` while holds other than `manual` keep the segment out of inline. */
export class BypassHeldError extends KeepwireError {
  /** The reasons of the holds in the way. */
  readonly holds: string[];
  /** Build one; `holds` is not empty. */
  constructor(segment: string, holds: HeldBy[]) {
    super(
      409,
      "held",
      `segment ${segment} is held by ${
        holds.map((h) => `${h.reason} (x${h.count}, by ${h.by})`).join(", ")
      }; release those holds first (keepwire bypass release ${segment} --reason ${
        shellWord(holds[0].reason)
      })`,
    );
    this.holds = holds.map((h) => h.reason);
  }
}

/** What one failed switch reports. */
export interface FailedSwitch {
  /** Segment name. */
  segment: string;
  /** Wanted mode. */
  wanted: string;
  /** Error text. */
  error?: string;
}

/** One or more relays did not read back the wanted mode (the hold stays recorded). */
export class BypassSwitchError extends KeepwireError {
  /** The failed switches. */
  readonly failures: FailedSwitch[];
  /** Build one. */
  constructor(failures: FailedSwitch[]) {
    super(
      502,
      "switch_failed",
      failures.map((f) =>
        `segment ${f.segment} did not reach ${f.wanted}: ${f.error ?? "unknown error"}`
      ).join("; ") + " (the hold is recorded; the switch is retried; mode reported unknown)",
    );
    this.failures = failures;
  }
}

/** The config asks for something the driver or card cannot do (fatal at start). */
export class BypassSegmentConfigError extends KeepwireError {
  /** Build for a segment and config field. */
  constructor(segment: string, driver: string, field: string, message: string) {
    super(
      500,
      "segment_config",
      `segment "${segment}" (driver ${driver}): ${field}: ${message}`,
      { fields: { [field]: message } },
    );
  }
}
