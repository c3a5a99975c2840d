/**
 * Hardware watchdog: a timer in hardware (or the kernel) that resets the box
 * unless it is petted in time. Opening starts it; closing with the magic 'V'
 * (orderly stop only) stops it; closing without it leaves it running, so a
 * crashed or hung keepwire is followed by a reset.
 * @module
 */

/** Drivers that implement {@link HardwareWatchdog}. */
export type WatchdogDriverName = "none" | "mock" | "dev";

/** What went wrong in a watchdog operation. */
export type WatchdogErrorCode =
  | "missing" // no device / no driver behind it
  | "busy" // another process owns the (single-open) device
  | "permission" // no right to open it
  | "unsupported" // the driver cannot do this (e.g. set its timeout)
  | "invalid" // bad argument (timeout out of range, already open)
  | "not-open" // pet/setTimeout before open
  | "io" // write/ioctl failed
  | "injected"; // a fault injected into the mock

/** Error of a watchdog driver; `code` says what kind, the message what exactly. */
export class WatchdogError extends Error {
  /** Kind of failure. */
  readonly code: WatchdogErrorCode;
  /** The device, when there is one. */
  readonly device: string | null;
  /** Build with code, message and device. */
  constructor(
    code: WatchdogErrorCode,
    message: string,
    device: string | null = null,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "WatchdogError";
    this.code = code;
    this.device = device;
  }
}

/** How to close. */
export interface WatchdogCloseOptions {
  /** Write the magic 'V' first so the watchdog stops: ONLY on an orderly stop. */
  magic: boolean;
}

/** Snapshot of a watchdog for status pages. */
export interface WatchdogInfo {
  /** Driver. */
  driver: WatchdogDriverName;
  /** Device path (dev driver). */
  device: string | null;
  /** Open (and so running) now. */
  open: boolean;
  /** Driver identity (WDIOC_GETSUPPORT or sysfs), when known. */
  identity: string | null;
  /** The timeout in effect, in seconds, as the driver reports it. */
  timeoutSec: number | null;
  /** How the timeout was set or read: ioctl, sysfs, mock, or null when unknown. */
  timeoutSource: "ioctl" | "sysfs" | "mock" | null;
  /** Whether the driver supports magic close (null: unknown). */
  magicClose: boolean | null;
  /** Whether the driver can never be stopped once started (null: unknown). */
  nowayout: boolean | null;
  /** Whether the last reboot was caused by this watchdog (WDIOF_CARDRESET), when known. */
  lastResetByWatchdog: boolean | null;
  /** Pets since open. */
  pets: number;
  /** Time of the last pet (ms since epoch), or null. */
  lastPetAt: number | null;
  /** A note about a limitation (e.g. timeout not settable), or null. */
  warning: string | null;
}

/** A hardware watchdog device. */
export interface HardwareWatchdog {
  /** Driver name. */
  readonly driver: WatchdogDriverName;
  /** Open (starts the watchdog) and apply the configured timeout. */
  open(): Promise<void>;
  /** Pet (keepalive): restart the countdown. */
  pet(): Promise<void>;
  /** Set the timeout where the driver allows; returns the timeout now in effect (granularity). */
  setTimeout(sec: number): Promise<number>;
  /** Close; `{magic: true}` stops the watchdog (orderly stop), `{magic: false}` leaves it running. */
  close(opts: WatchdogCloseOptions): Promise<void>;
  /** Current state. */
  info(): WatchdogInfo;
}

/** Validate a timeout in whole seconds (1..65535); throws `invalid`. */
export function assertWatchdogTimeout(sec: number, device: string | null = null): void {
  if (!Number.isInteger(sec) || sec < 1 || sec > 65535) {
    throw new WatchdogError(
      "invalid",
      `watchdog timeout must be a whole number of seconds 1..65535, got ${sec}`,
      device,
    );
  }
}
