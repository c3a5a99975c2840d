/**
 * Mock bypass driver: a simulated relay card in memory with fault injection
 * (stuck relay, slow switch, driver errors) and a card watchdog that runs on an
 * injected clock, so tests drive every transition without sleeping.
 * @module
 */
import type { Clock, TimerId } from "../../mod/module.ts";
import {
  BYPASS_MODES,
  type BypassCapabilities,
  type BypassDriver,
  BypassDriverError,
  type BypassMode,
  type BypassOpenReport,
  type BypassPolicies,
  type BypassWatchdogReading,
} from "./types.ts";

/** Faults the mock can be told to show. */
export interface MockBypassFaults {
  /** The relay does not move: setMode succeeds, read-back still shows the old mode. */
  stuck: boolean;
  /** Extra time every switch takes (on the injected clock). */
  slowMs: number;
  /** When set, calls fail with this message (see `errorOn`). */
  error: string | null;
  /** Which calls fail when `error` is set. */
  errorOn: "set" | "read" | "all";
}

/** Options of the mock driver. */
export interface MockBypassOptions {
  /** The two ports. */
  ports: readonly [string, string];
  /** Clock for switch delays and the card watchdog. */
  clock: Clock;
  /** Mode at (simulated) power-up; default bypass. */
  initialMode?: BypassMode;
  /** Relay travel time in ms; default 0. */
  switchMs?: number;
  /** Start with a stuck relay. */
  stuck?: boolean;
  /** The card supports tap. */
  tap?: boolean;
  /** The card has a watchdog (default true). */
  watchdog?: boolean;
  /** Policies the simulated card holds (default: all bypass). */
  policies?: Partial<BypassPolicies>;
}

const WD_MIN_MS = 100;
const WD_MAX_MS = 3_600_000;

/** The mock driver. Fields are public so tests can look at the simulated card. */
export class MockBypassDriver implements BypassDriver {
  /** Driver kind. */
  readonly kind = "mock" as const;
  /** The two ports. */
  readonly ports: readonly [string, string];
  /** Current position of the simulated relay. */
  mode: BypassMode;
  /** Policies held by the simulated card (its "EEPROM"). */
  policies: BypassPolicies;
  /** Number of policy writes (each one would wear EEPROM on a real card). */
  policyWrites = 0;
  /** Number of watchdog pets. */
  pets = 0;
  /** Every setMode call, in order. */
  readonly setCalls: BypassMode[] = [];
  /** Active faults. */
  faults: MockBypassFaults = { stuck: false, slowMs: 0, error: null, errorOn: "all" };
  /** True after close(). */
  closed = false;
  #clock: Clock;
  #switchMs: number;
  #tap: boolean;
  #hasWatchdog: boolean;
  #wdTimeout = 0;
  #wdDeadline = 0;
  #wdTimer: TimerId | undefined;
  #wdExpired = false;

  /** Build a simulated card. */
  constructor(opts: MockBypassOptions) {
    this.ports = opts.ports;
    this.#clock = opts.clock;
    this.mode = opts.initialMode ?? "bypass";
    this.#switchMs = opts.switchMs ?? 0;
    this.faults.stuck = opts.stuck ?? false;
    this.#tap = opts.tap ?? false;
    this.#hasWatchdog = opts.watchdog ?? true;
    this.policies = {
      powerOff: "bypass",
      powerUp: "bypass",
      watchdogExpiry: "bypass",
      ...opts.policies,
    };
  }

  /** Turn faults on (merged into the current ones). */
  injectFault(f: Partial<MockBypassFaults>): void {
    this.faults = { ...this.faults, ...f };
  }

  /** Remove every fault. */
  clearFaults(): void {
    this.faults = { stuck: false, slowMs: 0, error: null, errorOn: "all" };
  }

  /** Simulate losing power and getting it back: powerOff mode, then powerUp mode; watchdog off. */
  powerCycle(): void {
    this.mode = this.policies.powerOff;
    this.#stopWd();
    this.#wdTimeout = 0;
    this.#wdExpired = false;
    this.mode = this.policies.powerUp;
  }

  #fail(kind: "set" | "read"): void {
    const f = this.faults;
    if (f.error !== null && (f.errorOn === "all" || f.errorOn === kind)) {
      throw new BypassDriverError("mock", "fault", f.error);
    }
  }

  #modes(): BypassMode[] {
    return BYPASS_MODES.filter((m) => m !== "tap" || this.#tap);
  }

  /** Nothing to prepare. */
  open(): Promise<BypassOpenReport> {
    this.closed = false;
    return Promise.resolve({ warnings: [] });
  }

  /** Everything settable; tap only when configured. */
  capabilities(): Promise<BypassCapabilities> {
    const modes = this.#modes();
    return Promise.resolve({
      modes,
      policies: {
        powerOff: { settable: modes.filter((m) => m !== "tap"), fixed: null },
        powerUp: { settable: modes, fixed: null },
        watchdogExpiry: { settable: modes.filter((m) => m !== "inline"), fixed: null },
      },
      watchdog: this.#hasWatchdog,
      ...(this.#hasWatchdog ? { watchdogRangeMs: { min: WD_MIN_MS, max: WD_MAX_MS } } : {}),
      readBack: "memory",
    });
  }

  /** The simulated relay position. */
  readMode(): Promise<BypassMode> {
    try {
      this.#fail("read");
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve(this.mode);
  }

  /** Move the simulated relay (after switchMs + slowMs on the clock; not at all when stuck). */
  async setMode(mode: BypassMode): Promise<void> {
    this.#fail("set");
    if (!this.#modes().includes(mode)) {
      throw new BypassDriverError("mock", "unsupported", `mode ${mode} not supported`);
    }
    this.setCalls.push(mode);
    const delay = this.#switchMs + this.faults.slowMs;
    if (delay > 0) {
      await new Promise<void>((r) => this.#clock.setTimeout(r, delay));
    }
    if (!this.faults.stuck) this.mode = mode;
  }

  /** The simulated EEPROM. */
  readPolicies(): Promise<Partial<BypassPolicies>> {
    try {
      this.#fail("read");
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.resolve({ ...this.policies });
  }

  /** Write the simulated EEPROM (counted). */
  writePolicies(p: Partial<BypassPolicies>): Promise<void> {
    try {
      this.#fail("set");
    } catch (e) {
      return Promise.reject(e);
    }
    this.policies = { ...this.policies, ...p };
    this.policyWrites++;
    return Promise.resolve();
  }

  /** The simulated card watchdog. */
  readWatchdog(): Promise<BypassWatchdogReading> {
    try {
      this.#fail("read");
    } catch (e) {
      return Promise.reject(e);
    }
    const armed = this.#wdTimer !== undefined;
    return Promise.resolve({
      armed,
      timeoutMs: this.#wdTimeout,
      remainingMs: armed ? Math.max(0, this.#wdDeadline - this.#clock.now()) : null,
      expired: this.#wdExpired,
    });
  }

  /** Arm; the card rounds up to 100 ms steps within 100 ms .. 1 h. */
  armWatchdog(timeoutMs: number): Promise<number> {
    try {
      this.#fail("set");
      if (!this.#hasWatchdog) {
        throw new BypassDriverError("mock", "unsupported", "this card has no watchdog");
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const ms = Math.min(WD_MAX_MS, Math.max(WD_MIN_MS, Math.ceil(timeoutMs / 100) * 100));
    this.#wdTimeout = ms;
    this.#wdExpired = false;
    this.#restartWd();
    return Promise.resolve(ms);
  }

  /** Pet: restart the countdown (fails when not armed, like a real card answering "disable"). */
  petWatchdog(): Promise<void> {
    try {
      this.#fail("set");
      if (this.#wdTimer === undefined) {
        throw new BypassDriverError("mock", "unsupported", "watchdog is not armed");
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this.pets++;
    this.#restartWd();
    return Promise.resolve();
  }

  /** Disarm. */
  disarmWatchdog(): Promise<void> {
    try {
      this.#fail("set");
    } catch (e) {
      return Promise.reject(e);
    }
    this.#stopWd();
    this.#wdTimeout = 0;
    this.#wdExpired = false;
    return Promise.resolve();
  }

  /** Stop the watchdog timer (the simulated card keeps its mode). */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Stop timers for good (tests call this at the end; a real card has no such thing). */
  dispose(): void {
    this.#stopWd();
  }

  #restartWd(): void {
    this.#stopWd();
    this.#wdDeadline = this.#clock.now() + this.#wdTimeout;
    this.#wdTimer = this.#clock.setTimeout(() => {
      this.#wdTimer = undefined;
      this.#wdExpired = true;
      if (!this.faults.stuck) this.mode = this.policies.watchdogExpiry;
    }, this.#wdTimeout);
  }

  #stopWd(): void {
    if (this.#wdTimer !== undefined) this.#clock.clearTimeout(this.#wdTimer);
    this.#wdTimer = undefined;
  }
}
