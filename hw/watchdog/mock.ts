/**
 * Mock hardware watchdog on an injected clock, behaving like the kernel's
 * watchdog core: single open (a second open is `busy`), open starts the
 * countdown, pet and setTimeout restart it, magic close stops it (unless
 * nowayout), a plain close leaves it running when the driver supports magic
 * close. Expiry records a reset and calls `onExpire`. Faults: open fails
 * (missing / busy / permission), pet fails, timeout not settable.
 * @module
 */
import type { Clock, TimerId } from "../../mod/module.ts";
import {
  assertWatchdogTimeout,
  type HardwareWatchdog,
  type WatchdogCloseOptions,
  WatchdogError,
  type WatchdogInfo,
} from "./types.ts";

/** A reset the mock watchdog caused. */
export interface WatchdogReset {
  /** When it fired (clock ms). */
  at: number;
  /** Last pet before it (clock ms), or null. */
  lastPetAt: number | null;
  /** Timeout in effect (s). */
  timeoutSec: number;
  /** Whether the device was still open (true) or had been closed without magic (false). */
  wasOpen: boolean;
}

/** Options of {@link MockWatchdog}. */
export interface MockWatchdogOptions {
  /** Clock (fake in tests). */
  clock: Pick<Clock, "now" | "setTimeout" | "clearTimeout">;
  /** Timeout applied on open (default 60 s). */
  timeoutSec?: number;
  /** Driver's maximum timeout (default 65535 s): larger values are rejected like EINVAL. */
  maxTimeoutSec?: number;
  /** Hardware granularity: the timeout is rounded up to a multiple (default 1 s). */
  granularitySec?: number;
  /** Driver supports magic close (default true). */
  magicClose?: boolean;
  /** Once started it cannot be stopped (default false). */
  nowayout?: boolean;
  /** Called when the watchdog fires (the box would reset). */
  onExpire?: (reset: WatchdogReset) => void;
}

/** Faults the mock can inject. */
export interface MockWatchdogFaults {
  /** open fails with this code. */
  open: "missing" | "busy" | "permission" | null;
  /** pets fail (the countdown is not restarted). */
  pet: boolean;
  /** setTimeout is not supported by the "driver". */
  setTimeout: boolean;
}

/** In-memory watchdog for tests and for appliances without one. */
export class MockWatchdog implements HardwareWatchdog {
  /** Driver name. */
  readonly driver = "mock" as const;
  /** Faults to inject; change at any time. */
  readonly faults: MockWatchdogFaults = { open: null, pet: false, setTimeout: false };
  /** Resets it caused, in order. */
  readonly resets: WatchdogReset[] = [];
  readonly #clock: MockWatchdogOptions["clock"];
  readonly #o: Required<Omit<MockWatchdogOptions, "clock" | "onExpire">>;
  readonly #onExpire?: (reset: WatchdogReset) => void;
  #open = false;
  #timer: TimerId | null = null;
  #deadline: number | null = null;
  #timeoutSec: number;
  #pets = 0;
  #lastPetAt: number | null = null;

  /** Build; nothing runs until open(). */
  constructor(opts: MockWatchdogOptions) {
    this.#clock = opts.clock;
    this.#o = {
      timeoutSec: opts.timeoutSec ?? 60,
      maxTimeoutSec: opts.maxTimeoutSec ?? 65535,
      granularitySec: opts.granularitySec ?? 1,
      magicClose: opts.magicClose ?? true,
      nowayout: opts.nowayout ?? false,
    };
    assertWatchdogTimeout(this.#o.timeoutSec);
    this.#timeoutSec = this.#round(this.#o.timeoutSec);
    this.#onExpire = opts.onExpire;
  }

  #round(sec: number): number {
    const g = this.#o.granularitySec;
    return Math.ceil(sec / g) * g;
  }

  /** True while the countdown runs (open, or closed without magic). */
  get running(): boolean {
    return this.#timer !== null;
  }

  /** Ms until the reset, or null when not running. */
  timeLeftMs(): number | null {
    return this.#deadline === null ? null : Math.max(0, this.#deadline - this.#clock.now());
  }

  #arm(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    const ms = this.#timeoutSec * 1000;
    this.#deadline = this.#clock.now() + ms;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), ms);
  }

  #stop(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#deadline = null;
  }

  #fire(): void {
    this.#timer = null;
    this.#deadline = null;
    const reset: WatchdogReset = {
      at: this.#clock.now(),
      lastPetAt: this.#lastPetAt,
      timeoutSec: this.#timeoutSec,
      wasOpen: this.#open,
    };
    this.#open = false; // the box resets: whoever had it open is gone
    this.resets.push(reset);
    this.#onExpire?.(reset);
  }

  /** Open: starts (or, when still running after a plain close, pets) the countdown. */
  open(): Promise<void> {
    if (this.faults.open) {
      const msg = {
        missing: "mock: no such device (injected)",
        busy: "mock: busy, another process owns the watchdog (injected)",
        permission: "mock: permission denied (injected)",
      }[this.faults.open];
      return Promise.reject(new WatchdogError(this.faults.open, msg, "mock"));
    }
    if (this.#open) {
      return Promise.reject(new WatchdogError("busy", "mock: already open (single open)", "mock"));
    }
    this.#open = true;
    this.#pets = 0;
    this.#lastPetAt = null;
    this.#arm(); // the timeout set earlier stays, as in the kernel
    return Promise.resolve();
  }

  /** Restart the countdown. */
  pet(): Promise<void> {
    if (!this.#open) {
      return Promise.reject(new WatchdogError("not-open", "mock: pet before open", "mock"));
    }
    if (this.faults.pet) {
      return Promise.reject(new WatchdogError("injected", "mock: pet failed (injected)", "mock"));
    }
    this.#pets++;
    this.#lastPetAt = this.#clock.now();
    this.#arm();
    return Promise.resolve();
  }

  /** Set the timeout (rounded up to the granularity; restarts the countdown like the kernel). */
  setTimeout(sec: number): Promise<number> {
    try {
      assertWatchdogTimeout(sec, "mock");
    } catch (e) {
      return Promise.reject(e);
    }
    if (!this.#open) {
      return Promise.reject(new WatchdogError("not-open", "mock: setTimeout before open", "mock"));
    }
    if (this.faults.setTimeout) {
      return Promise.reject(
        new WatchdogError("unsupported", "mock: timeout cannot be set (injected)", "mock"),
      );
    }
    if (sec > this.#o.maxTimeoutSec) {
      return Promise.reject(
        new WatchdogError(
          "invalid",
          `mock: timeout ${sec} s above the driver's maximum ${this.#o.maxTimeoutSec} s`,
          "mock",
        ),
      );
    }
    this.#timeoutSec = this.#round(sec);
    this.#arm();
    return Promise.resolve(this.#timeoutSec);
  }

  /** Close; magic stops the countdown unless nowayout; plain close stops it only without magic-close support. */
  close(opts: WatchdogCloseOptions): Promise<void> {
    if (!this.#open) return Promise.resolve();
    this.#open = false;
    const stops = !this.#o.nowayout && (opts.magic || !this.#o.magicClose);
    if (stops) this.#stop();
    return Promise.resolve();
  }

  /** Current state. */
  info(): WatchdogInfo {
    return {
      driver: "mock",
      device: null,
      open: this.#open,
      identity: "mock watchdog",
      timeoutSec: this.#timeoutSec,
      timeoutSource: "mock",
      magicClose: this.#o.magicClose,
      nowayout: this.#o.nowayout,
      lastResetByWatchdog: null,
      pets: this.#pets,
      lastPetAt: this.#lastPetAt,
      warning: null,
    };
  }
}
