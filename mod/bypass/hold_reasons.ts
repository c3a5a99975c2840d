/**
 * The hold-reason contract between the bypass module and everyone who takes or
 * releases holds (supervisor, updater, runtime, web UI, CLI, docs). This file
 * imports nothing, so any of them can import it without an import circle.
 *
 * Reasons keepwire's own components use are reserved: an operator cannot take a
 * hold under one of them (it would be released by a component that did not expect
 * it), but can release any of them. Every other reason is free text the operator
 * chose (`waiting for the ISP`, `manual`, ...).
 * @module
 */

/** The reasons keepwire's components hold segments with. */
export const HOLD_REASONS = {
  /**
   * Taken by the bypass module just before keepwire stops (config `onStop: bypass`);
   * released by the next start once every essential subsystem is ready.
   */
  shutdown: "shutdown",
  /** Taken by the updater before it activates a new image; released after commit or rollback. */
  update: "update",
  /**
   * Taken by the bypass module when a card watchdog expired (`onExpiry: hold`);
   * released by an operator.
   */
  watchdog: "watchdog",
  /**
   * The operator's manual mode (`set SEG bypass|disconnect` takes it, `set SEG inline`
   * drops it). Not reserved: a hold named `manual` is the operator's own.
   */
  manual: "manual",
  /**
   * The conventional value of config `hardware.bypass.holdAtStart`: taken at start,
   * released by the bypass module once every essential subsystem is ready.
   */
  startup: "startup",
} as const;

/** A reason keepwire's components use. */
export type HoldReason = typeof HOLD_REASONS[keyof typeof HOLD_REASONS];

/**
 * Prefix of the supervisor's escalation holds: `supervisor:<subsystem>` (action
 * `bypass-hold`), released by the supervisor once that subsystem is ready again.
 */
export const SUPERVISOR_HOLD_PREFIX = "supervisor:";

/** The hold the supervisor takes when subsystem `name` escalates to `bypass-hold`. */
export function supervisorHoldReason(name: string): string {
  return `${SUPERVISOR_HOLD_PREFIX}${name}`;
}

/** Reasons an operator may not take a hold under (they may still release them). */
export const RESERVED_HOLD_REASONS: readonly string[] = [
  HOLD_REASONS.shutdown,
  HOLD_REASONS.update,
  HOLD_REASONS.watchdog,
  HOLD_REASONS.startup,
];

/** Longest hold reason, in characters. */
export const HOLD_REASON_MAX = 120;

/** Is this reason one keepwire's components use (reserved names and `supervisor:` holds)? */
export function isReservedHoldReason(reason: string): boolean {
  return RESERVED_HOLD_REASONS.includes(reason) || reason.startsWith(SUPERVISOR_HOLD_PREFIX);
}

/**
 * What is wrong with a hold reason as text, or null when it is fine: not empty, no
 * surrounding spaces, printable (no control or invisible format characters), at most
 * {@link HOLD_REASON_MAX} characters. Any held reason passes (so it can be released).
 */
export function holdReasonProblem(reason: string): string | null {
  if (reason.length === 0) return "must not be empty";
  if ([...reason].length > HOLD_REASON_MAX) return `at most ${HOLD_REASON_MAX} characters`;
  if (reason.trim() !== reason) return "no leading or trailing spaces";
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(reason)) {
    return "printable characters only (no control characters or line breaks)";
  }
  return null;
}

/**
 * What is wrong with a reason an operator wants to take a hold under, or null:
 * {@link holdReasonProblem}, and not a reserved reason.
 */
export function operatorHoldReasonProblem(reason: string): string | null {
  const p = holdReasonProblem(reason);
  if (p) return p;
  if (isReservedHoldReason(reason)) {
    return `"${reason}" is reserved for keepwire's own holds (${
      RESERVED_HOLD_REASONS.join(", ")
    }, ${SUPERVISOR_HOLD_PREFIX}<subsystem>); choose another reason`;
  }
  return null;
}
