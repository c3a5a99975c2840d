/**
 * Bypass relays: the operations every bypass driver implements (mock, silicom,
 * gpio, tc), in keepwire's normalised vocabulary. Vendor words (Silicom on/off,
 * Intel normal/isolate, relay open/closed) are mapped onto these at the edge.
 * @module
 */

/** Modes a segment's relay (or software switch) can be in. */
export const BYPASS_MODES = ["inline", "bypass", "disconnect", "tap"] as const;

/**
 * A mode: `inline` (traffic goes through the appliance), `bypass` (the two ports
 * are shorted into a wire), `disconnect` (both links dark), `tap` (wire plus a copy
 * to the host; only some cards).
 */
export type BypassMode = typeof BYPASS_MODES[number];

/** The mode a segment reports: a read-back mode, or `unknown` when it cannot be trusted. */
export type SegmentMode = BypassMode | "unknown";

/** The driver kinds. */
export const BYPASS_DRIVER_KINDS = ["mock", "silicom", "gpio", "tc"] as const;

/** One driver kind. */
export type BypassDriverKind = typeof BYPASS_DRIVER_KINDS[number];

/** The three events a card can be told what to do on (provisioning settings). */
export interface BypassPolicies {
  /** Mode while the appliance has no power. */
  powerOff: BypassMode;
  /** Mode from power-up until software takes control ("just-on"). */
  powerUp: BypassMode;
  /** Mode the card falls into when its watchdog expires. */
  watchdogExpiry: BypassMode;
}

/** The policy names. */
export type BypassPolicyName = keyof BypassPolicies;

/** What a driver can do for one policy. */
export interface BypassPolicyCapability {
  /** Modes software can choose (empty when the policy is not settable). */
  settable: BypassMode[];
  /** The mode fixed by the hardware design when not settable, or null when not applicable. */
  fixed: BypassMode | null;
}

/** What a driver (and the card behind it) supports. */
export interface BypassCapabilities {
  /** Modes `setMode` accepts. */
  modes: BypassMode[];
  /** Per policy: settable modes, or the fixed one. */
  policies: Record<BypassPolicyName, BypassPolicyCapability>;
  /** The card has its own watchdog (arm, pet, disarm). */
  watchdog: boolean;
  /** Smallest and largest watchdog timeout the card accepts, in ms (when it has one). */
  watchdogRangeMs?: { min: number; max: number };
  /**
   * Where read-back comes from: `hardware` (the card reports the relay), `kernel`
   * (tc filters and link state), `process` (a GPIO holder process is alive), `memory` (mock).
   */
  readBack: "hardware" | "kernel" | "process" | "memory";
}

/** The card watchdog as read from the driver. */
export interface BypassWatchdogReading {
  /** The watchdog is running (armed and not expired). */
  armed: boolean;
  /** The timeout in ms the card uses (0 when disarmed or unknown). */
  timeoutMs: number;
  /** Time left before expiry in ms, or null when the card cannot tell. */
  remainingMs: number | null;
  /** The watchdog expired (the card switched to its expiry mode). */
  expired: boolean;
}

/** What `open()` found: warnings worth an event (never fatal). */
export interface BypassOpenReport {
  /** Sentences for a person, e.g. "wd_autoreset is 1000 ms: the driver pets for you". */
  warnings: string[];
}

/** Why a driver call failed. */
export type BypassDriverErrorCode =
  | "io" // a file or device could not be read or written
  | "tool" // an external tool failed or is missing
  | "parse" // output or file content did not have the expected form
  | "unsupported" // the card or driver cannot do this
  | "inconsistent" // the state read back is not one of the known modes
  | "timeout" // the operation did not finish in time
  | "fault"; // injected fault (mock)

/** An error from a bypass driver; the message names the driver and what failed. */
export class BypassDriverError extends Error {
  /** Machine-readable cause. */
  readonly code: BypassDriverErrorCode;
  /** Driver kind. */
  readonly driver: BypassDriverKind;
  /** Build one. */
  constructor(driver: BypassDriverKind, code: BypassDriverErrorCode, message: string) {
    super(`${driver}: ${message}`);
    this.name = "BypassDriverError";
    this.driver = driver;
    this.code = code;
  }
}

/**
 * A bypass driver controls one segment (a pair of ports). Every operation reads
 * or writes the hardware; nothing is cached except what the hardware cannot report.
 * Read operations never change state (in particular they never pet a watchdog).
 */
export interface BypassDriver {
  /** Driver kind. */
  readonly kind: BypassDriverKind;
  /** The two ports of the segment. */
  readonly ports: readonly [string, string];
  /**
   * Prepare for control (install missing tc filters, detect tool versions). Never
   * changes the current mode of a segment that is already set up. Idempotent.
   */
  open(): Promise<BypassOpenReport>;
  /** What the driver and card support. */
  capabilities(): Promise<BypassCapabilities>;
  /** Read the current mode back from the hardware. Throws BypassDriverError. */
  readMode(): Promise<BypassMode>;
  /** Switch; resolves when the driver has done its part (read back separately). */
  setMode(mode: BypassMode): Promise<void>;
  /** Read the provisioning policies the card holds (only those it can report). */
  readPolicies(): Promise<Partial<BypassPolicies>>;
  /** Write provisioning policies (EEPROM/NVRAM on real cards: call only when they differ). */
  writePolicies(p: Partial<BypassPolicies>): Promise<void>;
  /** Read the card watchdog. */
  readWatchdog(): Promise<BypassWatchdogReading>;
  /** Arm the card watchdog; returns the timeout the card actually uses. */
  armWatchdog(timeoutMs: number): Promise<number>;
  /** Pet the card watchdog. */
  petWatchdog(): Promise<void>;
  /** Disarm the card watchdog. */
  disarmWatchdog(): Promise<void>;
  /** Release resources (GPIO holder processes: the relay falls back to bypass). */
  close(): Promise<void>;
}

/** A policy capability that is fixed by the design (not settable). */
export function bypassFixedPolicy(mode: BypassMode | null): BypassPolicyCapability {
  return { settable: [], fixed: mode };
}

/** A watchdog reading for drivers without a card watchdog. */
export const BYPASS_NO_WATCHDOG: BypassWatchdogReading = {
  armed: false,
  timeoutMs: 0,
  remainingMs: null,
  expired: false,
};
