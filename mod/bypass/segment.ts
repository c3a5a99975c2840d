/**
 * The bypass segment state machine (one segment, one driver).
 *
 * Wanted mode: `inline` while no hold is active; with holds, the strongest hold
 * mode wins (disconnect > bypass > tap). Holds are named (`manual`, `update`,
 * `runtime-fault`, `watchdog`, ...) and counted: each hold() of a name adds one,
 * each release() takes one away, so an update and a runtime fault never fight
 * over the relay. Holds are persisted through a HoldStore before the relay moves.
 *
 * Reported mode: what the driver reads back after every switch and every poll. A
 * switch whose read-back differs (stuck relay), fails or times out makes the
 * segment `unknown` (never silently `inline`), publishes `bypass.switch_failed`
 * and is retried with doubling delays until it succeeds.
 *
 * Card watchdog: armed just before going inline, disarmed after switching to a
 * held mode; petted from outside (supervisor) or by the module. Its expiry
 * (seen on a poll) publishes `bypass.watchdog_expired` and, with onExpiry=hold,
 * adds a persisted `watchdog` hold.
 *
 * All operations of a segment run one at a time (a promise queue); pets do not
 * wait in that queue.
 * @module
 */
import type { Clock, TimerId } from "../module.ts";
import type { Severity } from "../events/mod.ts";
import type { BypassConfig, SegmentConfig } from "../../hw/bypass/config.ts";
import type {
  BypassCapabilities,
  BypassDriver,
  BypassMode,
  BypassPolicies,
  BypassPolicyName,
  BypassWatchdogReading,
  SegmentMode,
} from "../../hw/bypass/types.ts";

/** One named hold on a segment. */
export interface BypassHold {
  /** Name, e.g. `update`. */
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

/** An event as a segment hands it to the module (module and segment name are added). */
export interface SegmentEvent {
  /** Kind, e.g. `bypass.mode_changed`. */
  kind: string;
  /** Severity (default info). */
  severity?: Severity;
  /** Details. */
  payload: Record<string, unknown>;
}

/** What a segment is built with. */
export interface SegmentDeps {
  /** Clock for retries, timeouts and pets. */
  clock: Clock;
  /** Publish an event. */
  publish(e: SegmentEvent): void;
  /** Persisted holds. */
  holds: SegmentHoldStore;
  /** Module-wide timing settings. */
  timing: Pick<BypassConfig, "switchTimeoutMs" | "retry">;
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
  /** Name. */
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
  /** Active holds. */
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

/** The config asks for something the driver or card cannot do (fatal at start). */
export class BypassSegmentConfigError extends Error {
  /** Build for a segment and field. */
  constructor(segment: string, driver: string, field: string, message: string) {
    super(`segment "${segment}" (driver ${driver}): ${field}: ${message}`);
    this.name = "BypassSegmentConfigError";
  }
}

/** A request the segment cannot take (mode not supported, bad reason). */
export class BypassInputError extends Error {
  /** Build one. */
  constructor(message: string) {
    super(message);
    this.name = "BypassInputError";
  }
}

/** `set inline` while holds other than manual keep the segment out of inline. */
export class BypassHeldError extends Error {
  /** The holds in the way. */
  readonly holds: string[];
  /** Build one. */
  constructor(segment: string, holds: BypassHold[]) {
    super(
      `segment ${segment} is held by ${
        holds.map((h) => `${h.reason} (x${h.count}, by ${h.by})`).join(", ")
      }; release those holds first (keepwire bypass release ${segment} --reason ${
        holds[0].reason
      })`,
    );
    this.name = "BypassHeldError";
    this.holds = holds.map((h) => h.reason);
  }
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

const HOLD_STRENGTH: Record<BypassMode, number> = { inline: 0, tap: 1, bypass: 2, disconnect: 3 };

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One bypass segment. */
export class Segment {
  /** The segment's config. */
  readonly cfg: SegmentConfig;
  /** Its driver. */
  readonly driver: BypassDriver;
  #d: SegmentDeps;
  #holds = new Map<string, BypassHold>();
  #mode: SegmentMode = "unknown";
  #readBack: BypassMode | null = null;
  #caps: BypassCapabilities | null = null;
  #opened = false;
  #stopped = false;
  #queue: Promise<unknown> = Promise.resolve();
  #failures = 0;
  #lastError: string | null = null;
  #retryTimer: TimerId | undefined;
  #petTimer: TimerId | undefined;
  #switching = false;
  #lastSwitchMs: number | null = null;
  #lastChangeAt: number | null = null;
  #wd = {
    effectiveMs: null as number | null,
    armed: false,
    expired: false,
    expiredSeen: false,
    remainingMs: null as number | null,
    pets: 0,
    lastPetAt: null as number | null,
    petFailing: false,
    armFailing: false,
  };

  /** Build (nothing is touched until start). */
  constructor(cfg: SegmentConfig, driver: BypassDriver, deps: SegmentDeps) {
    this.cfg = cfg;
    this.driver = driver;
    this.#d = deps;
  }

  /** Segment name. */
  get name(): string {
    return this.cfg.name;
  }

  /** Reported mode. */
  get mode(): SegmentMode {
    return this.#mode;
  }

  /** Active holds (copies). */
  get holds(): BypassHold[] {
    return [...this.#holds.values()].map((h) => ({ ...h }));
  }

  /** The wanted mode: inline without holds, else the strongest hold mode. */
  desired(): BypassMode {
    let best: BypassMode = "inline";
    for (const h of this.#holds.values()) {
      if (HOLD_STRENGTH[h.mode] > HOLD_STRENGTH[best]) best = h.mode;
    }
    return best;
  }

  #wdConfigured(): boolean {
    return this.cfg.watchdog.timeoutMs > 0 && !!this.#caps?.watchdog;
  }

  #publish(kind: string, payload: Record<string, unknown>, severity?: Severity): void {
    this.#d.publish({ kind, severity, payload: { segment: this.name, ...payload } });
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => {});
    return p;
  }

  async #timed<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.#d.timing.switchTimeoutMs;
    let timer: TimerId | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, rej) => {
          timer = this.#d.clock.setTimeout(
            () => rej(new Error(`${what} did not finish within ${ms} ms`)),
            ms,
          );
        }),
      ]);
    } finally {
      if (timer !== undefined) this.#d.clock.clearTimeout(timer);
    }
  }

  /**
   * Load holds, open the driver, check the config against its capabilities
   * (throws BypassSegmentConfigError), provision policies that differ, read the
   * mode and switch to the wanted one. Driver errors do not throw: the segment
   * is `unknown` and retried.
   */
  async start(holdAtStart: string | null = null): Promise<void> {
    for (const h of this.#d.holds.load(this.name)) this.#holds.set(h.reason, h);
    if (holdAtStart && !this.#holds.has(holdAtStart)) {
      this.#addHold(holdAtStart, "keepwire-start", "bypass");
    }
    if (this.#wdPetByModule()) {
      // Pet at a third of the timeout; pet() does nothing while disarmed.
      this.#petTimer = this.#d.clock.setInterval(
        () => void this.pet(),
        Math.max(10, Math.floor(this.cfg.watchdog.timeoutMs / 3)),
      );
    }
    await this.#enqueue(() => this.#init());
  }

  #wdPetByModule(): boolean {
    return this.cfg.watchdog.timeoutMs > 0 && this.cfg.watchdog.petBy === "module";
  }

  async #init(): Promise<void> {
    let caps: BypassCapabilities;
    try {
      const rep = await this.#timed(this.driver.open(), "driver open");
      for (const w of rep.warnings) {
        this.#publish("bypass.driver_warning", { warning: w, driver: this.driver.kind }, "warning");
      }
      caps = await this.#timed(this.driver.capabilities(), "capabilities");
    } catch (e) {
      this.#fail(`driver open failed: ${msg(e)}`, null, this.desired());
      return;
    }
    this.#caps = caps;
    this.#validate(caps);
    this.#opened = true;
    try {
      await this.#provision();
      const mode = await this.#timed(this.driver.readMode(), "read-back");
      this.#readBack = mode;
      this.#mode = mode;
      this.#publish("bypass.segment_found", {
        mode,
        driver: this.driver.kind,
        holds: this.#holdSummary(),
      });
      if (this.#wdConfigured()) await this.#readWatchdog();
    } catch (e) {
      this.#opened = false; // provision and read again on the retry
      this.#fail(`reading the segment failed: ${msg(e)}`, null, this.desired());
      return;
    }
    await this.#reconcile();
  }

  #validate(caps: BypassCapabilities): void {
    const seg = this.name, drv = this.driver.kind;
    for (const k of ["powerOff", "powerUp", "watchdogExpiry"] as BypassPolicyName[]) {
      const want = this.cfg.policies[k];
      const c = caps.policies[k];
      if (c.settable.includes(want) || c.fixed === want) continue;
      if (c.fixed === null && c.settable.length === 0 && want === "bypass") continue;
      if (k === "watchdogExpiry" && !caps.watchdog && want === "bypass") continue;
      throw new BypassSegmentConfigError(
        seg,
        drv,
        `policies.${k}`,
        `${want} is not possible (${
          c.settable.length
            ? `settable: ${c.settable.join(", ")}`
            : `fixed: ${c.fixed ?? "not applicable"}`
        })`,
      );
    }
    const wd = this.cfg.watchdog.timeoutMs;
    if (wd > 0 && !caps.watchdog) {
      throw new BypassSegmentConfigError(
        seg,
        drv,
        "watchdog.timeoutMs",
        "this card has no watchdog; use 0",
      );
    }
    if (wd > 0 && caps.watchdogRangeMs) {
      const { min, max } = caps.watchdogRangeMs;
      if (wd < min || wd > max) {
        throw new BypassSegmentConfigError(
          seg,
          drv,
          "watchdog.timeoutMs",
          `${wd} ms is outside what the card supports (${min}..${max} ms)`,
        );
      }
    }
  }

  /** Write only the policies that differ (EEPROM/NVRAM wear), or only report them. */
  async #provision(): Promise<void> {
    const caps = this.#caps!;
    const current = await this.#timed(this.driver.readPolicies(), "policy read");
    const diff: Partial<BypassPolicies> = {};
    for (const k of ["powerOff", "powerUp", "watchdogExpiry"] as BypassPolicyName[]) {
      if (caps.policies[k].settable.length === 0) continue;
      if (k === "watchdogExpiry" && !caps.watchdog) continue;
      if (current[k] !== this.cfg.policies[k]) diff[k] = this.cfg.policies[k];
    }
    if (Object.keys(diff).length === 0) return;
    const previous = Object.fromEntries(
      Object.keys(diff).map((k) => [k, current[k as "powerOff"] ?? null]),
    );
    if (!this.cfg.policies.provision) {
      this.#publish("bypass.policies_differ", { wanted: diff, card: previous }, "warning");
      return;
    }
    await this.#timed(this.driver.writePolicies(diff), "policy write");
    this.#publish("bypass.policies_written", { written: diff, previous }, "notice");
  }

  async #readWatchdog(): Promise<BypassWatchdogReading> {
    const r = await this.#timed(this.driver.readWatchdog(), "watchdog read");
    this.#wd.armed = r.armed;
    this.#wd.expired = r.expired;
    this.#wd.remainingMs = r.remainingMs;
    if (r.timeoutMs > 0) this.#wd.effectiveMs = r.timeoutMs;
    if (r.expired && !this.#wd.expiredSeen) this.#onWatchdogExpired();
    if (!r.expired) this.#wd.expiredSeen = false;
    return r;
  }

  #onWatchdogExpired(): void {
    this.#wd.expiredSeen = true;
    this.#wd.armed = false;
    const expiryMode = this.cfg.policies.watchdogExpiry;
    const onExpiry = this.cfg.watchdog.onExpiry;
    this.#publish("bypass.watchdog_expired", {
      expiryMode,
      onExpiry,
      timeoutMs: this.#wd.effectiveMs,
      lastPetAt: this.#wd.lastPetAt ? new Date(this.#wd.lastPetAt).toISOString() : null,
    }, "critical");
    if (onExpiry === "hold" && expiryMode !== "inline" && !this.#holds.has("watchdog")) {
      this.#addHold("watchdog", "card-watchdog", expiryMode);
    }
  }

  #holdSummary(): string[] {
    return [...this.#holds.values()].map((h) => `${h.reason}x${h.count}`);
  }

  #addHold(reason: string, by: string, mode: BypassMode): BypassHold {
    const now = this.#d.clock.now();
    const h = this.#holds.get(reason);
    let hold: BypassHold;
    if (h) {
      hold = { ...h, count: h.count + 1, by };
    } else {
      hold = { reason, count: 1, mode, by, since: now };
    }
    this.#d.holds.put(this.name, hold);
    this.#holds.set(reason, hold);
    this.#publish("bypass.hold_added", {
      reason,
      count: hold.count,
      by,
      mode: hold.mode,
      holds: this.#holdSummary(),
    }, "notice");
    return hold;
  }

  /** Check a mode against the driver (when it has answered). */
  #checkMode(mode: BypassMode): void {
    if (this.#caps && !this.#caps.modes.includes(mode)) {
      throw new BypassInputError(
        `segment ${this.name} (driver ${this.driver.kind}) cannot do ${mode}; it can do ${
          this.#caps.modes.join(", ")
        }`,
      );
    }
  }

  /** Take a hold (count +1) and switch to the wanted mode. */
  hold(reason: string, by: string, mode: BypassMode = "bypass"): Promise<SwitchOutcome> {
    return this.#enqueue(async () => {
      this.#checkMode(mode);
      this.#addHold(reason, by, mode);
      return await this.#reconcile();
    });
  }

  /**
   * Release a hold (count -1; `force` drops it whatever its count) and switch
   * to the wanted mode. `released` is false when the segment had no such hold.
   */
  release(
    reason: string,
    by: string,
    force = false,
  ): Promise<SwitchOutcome & { released: boolean; remaining: number }> {
    return this.#enqueue(async () => {
      const h = this.#holds.get(reason);
      if (!h) {
        return {
          ok: this.#mode !== "unknown",
          segment: this.name,
          wanted: this.desired(),
          released: false,
          remaining: 0,
        };
      }
      const remaining = force ? 0 : h.count - 1;
      if (remaining <= 0) {
        this.#holds.delete(reason);
        this.#d.holds.remove(this.name, reason);
      } else {
        const next = { ...h, count: remaining };
        this.#holds.set(reason, next);
        this.#d.holds.put(this.name, next);
      }
      this.#publish("bypass.hold_released", {
        reason,
        remaining,
        by,
        forced: force,
        holds: this.#holdSummary(),
      }, "notice");
      const out = await this.#reconcile();
      return { ...out, released: true, remaining };
    });
  }

  /**
   * Manual mode: bypass/disconnect = a `manual` hold with that mode (count stays
   * 1); inline = drop the manual hold, refused (BypassHeldError) while other
   * holds are active.
   */
  set(mode: "inline" | "bypass" | "disconnect", by: string): Promise<SwitchOutcome> {
    return this.#enqueue(async () => {
      this.#checkMode(mode);
      if (mode === "inline") {
        const others = [...this.#holds.values()].filter((h) => h.reason !== "manual");
        if (others.length) throw new BypassHeldError(this.name, others);
        if (this.#holds.has("manual")) {
          this.#holds.delete("manual");
          this.#d.holds.remove(this.name, "manual");
          this.#publish("bypass.hold_released", {
            reason: "manual",
            remaining: 0,
            by,
            forced: true,
            holds: this.#holdSummary(),
          }, "notice");
        }
      } else {
        const h = this.#holds.get("manual");
        if (!h) this.#addHold("manual", by, mode);
        else if (h.mode !== mode) {
          const next = { ...h, mode, by };
          this.#holds.set("manual", next);
          this.#d.holds.put(this.name, next);
          this.#publish("bypass.hold_added", {
            reason: "manual",
            count: next.count,
            by,
            mode,
            holds: this.#holdSummary(),
          }, "notice");
        }
      }
      return await this.#reconcile();
    });
  }

  /** Read mode and watchdog; handle drift and expiry. Skipped while a retry is pending. */
  poll(): Promise<void> {
    if (this.#stopped || this.#retryTimer !== undefined || this.#switching) {
      return Promise.resolve();
    }
    return this.#enqueue(async () => {
      if (this.#stopped || this.#retryTimer !== undefined || !this.#opened) return;
      let got: BypassMode;
      let expiredNow = false;
      try {
        got = await this.#timed(this.driver.readMode(), "read-back");
        if (this.#wdConfigured()) {
          const before = this.#wd.expiredSeen;
          await this.#readWatchdog();
          expiredNow = !before && this.#wd.expiredSeen;
        }
      } catch (e) {
        this.#fail(`read-back failed: ${msg(e)}`, null, this.desired());
        return;
      }
      this.#readBack = got;
      if (got !== this.#mode) {
        if (!expiredNow && this.#mode !== "unknown") {
          this.#publish("bypass.mode_drift", { expected: this.#mode, observed: got }, "warning");
        }
        this.#mode = got;
      }
      if (got !== this.desired() || (this.desired() === "inline" && this.#wdNeedsArm())) {
        await this.#reconcile();
      }
    });
  }

  #wdNeedsArm(): boolean {
    return this.#wdConfigured() && (!this.#wd.armed || this.#wd.expired);
  }

  /** Pet the card watchdog if it is armed. Returns true when petted. */
  async pet(): Promise<boolean> {
    if (!this.#wdConfigured() || !this.#wd.armed || this.#stopped) return false;
    try {
      await this.#timed(this.driver.petWatchdog(), "watchdog pet");
      this.#wd.pets++;
      this.#wd.lastPetAt = this.#d.clock.now();
      this.#wd.petFailing = false;
      return true;
    } catch (e) {
      if (!this.#wd.petFailing) {
        this.#publish("bypass.watchdog_pet_failed", { error: msg(e) }, "error");
      }
      this.#wd.petFailing = true;
      return false;
    }
  }

  async #reconcile(): Promise<SwitchOutcome> {
    if (!this.#opened) {
      await this.#init();
      return {
        ok: this.#opened && this.#mode === this.desired(),
        segment: this.name,
        wanted: this.desired(),
        ...(this.#lastError ? { error: this.#lastError } : {}),
      };
    }
    const want = this.desired();
    if (this.#mode === want && this.#failures === 0 && !(want === "inline" && this.#wdNeedsArm())) {
      return { ok: true, segment: this.name, wanted: want };
    }
    return await this.#switchTo(want);
  }

  async #switchTo(want: BypassMode): Promise<SwitchOutcome> {
    if (this.#retryTimer !== undefined) {
      this.#d.clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    const from = this.#mode;
    const t0 = this.#d.clock.now();
    let got: BypassMode | null = null;
    let err: string | null = null;
    this.#switching = true;
    try {
      if (want === "inline" && this.#wdNeedsArm()) await this.#arm();
      if (this.#mode !== want || this.#readBack !== want) {
        await this.#timed(this.driver.setMode(want), "switch");
      }
      got = await this.#timed(this.driver.readMode(), "read-back");
    } catch (e) {
      err = msg(e);
    } finally {
      this.#switching = false;
    }
    if (got !== null) this.#readBack = got;
    if (err === null && got === want) {
      if (want !== "inline") await this.#disarm();
      const recovered = this.#failures > 0;
      this.#failures = 0;
      this.#lastError = null;
      this.#mode = want;
      const ms = this.#d.clock.now() - t0;
      this.#lastSwitchMs = ms;
      if (from !== want || recovered) {
        this.#lastChangeAt = this.#d.clock.now();
        this.#publish("bypass.mode_changed", {
          from,
          to: want,
          holds: this.#holdSummary(),
          ms,
          ...(recovered ? { recovered: true } : {}),
        }, want === "inline" ? "notice" : "warning");
      }
      return { ok: true, segment: this.name, wanted: want };
    }
    const error = err ?? `relay did not switch: read back ${got} after setting ${want}`;
    this.#fail(error, got, want);
    return { ok: false, segment: this.name, wanted: want, error };
  }

  /** Mark unknown, publish, schedule a retry. */
  #fail(error: string, readBack: BypassMode | null, wanted: BypassMode): void {
    this.#failures++;
    this.#mode = "unknown";
    this.#lastError = error;
    const r = this.#d.timing.retry;
    const delay = Math.min(r.maxMs, r.initialMs * 2 ** Math.min(this.#failures - 1, 20));
    this.#publish("bypass.switch_failed", {
      wanted,
      readBack,
      error,
      attempt: this.#failures,
      retryInMs: this.#stopped ? null : delay,
    }, this.#failures >= 3 ? "critical" : "error");
    if (this.#stopped) return;
    if (this.#retryTimer !== undefined) this.#d.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#d.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#stopped) return;
      this.#enqueue(() => this.#reconcile()).catch((e) => {
        // A config error found only now (the driver was unreachable at start).
        this.#lastError = msg(e);
        this.#publish("bypass.config_error", { error: msg(e) }, "critical");
      });
    }, delay);
  }

  async #arm(): Promise<void> {
    try {
      const eff = await this.#timed(
        this.driver.armWatchdog(this.cfg.watchdog.timeoutMs),
        "watchdog arm",
      );
      this.#wd.effectiveMs = eff;
      this.#wd.armed = true;
      this.#wd.expired = false;
      this.#wd.expiredSeen = false;
      this.#wd.armFailing = false;
      this.#publish("bypass.watchdog_armed", {
        timeoutMs: this.cfg.watchdog.timeoutMs,
        effectiveMs: eff,
        petBy: this.cfg.watchdog.petBy,
      });
    } catch (e) {
      // Going inline without the card's protection is still better than no
      // traffic; the failure is loud (once per streak) and every poll tries again.
      if (!this.#wd.armFailing) {
        this.#publish("bypass.watchdog_failed", { action: "arm", error: msg(e) }, "error");
      }
      this.#wd.armFailing = true;
    }
  }

  async #disarm(): Promise<void> {
    if (!this.#wdConfigured() || !this.#wd.armed) return;
    try {
      await this.#timed(this.driver.disarmWatchdog(), "watchdog disarm");
      this.#wd.armed = false;
      this.#publish("bypass.watchdog_disarmed", { mode: this.#mode });
    } catch (e) {
      this.#publish("bypass.watchdog_failed", { action: "disarm", error: msg(e) }, "error");
    }
  }

  /**
   * Stop: no more retries, polls or pets. With onStop=bypass the segment is put in
   * bypass (disconnect stays disconnect); the card watchdog is disarmed; the
   * driver is closed (a GPIO relay is released to bypass).
   */
  async stop(onStop: "bypass" | "keep"): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer !== undefined) this.#d.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#petTimer !== undefined) this.#d.clock.clearInterval(this.#petTimer);
    this.#petTimer = undefined;
    await this.#enqueue(async () => {
      if (this.#opened && onStop === "bypass") {
        const target: BypassMode = this.desired() === "disconnect" ? "disconnect" : "bypass";
        if (this.#mode !== target) await this.#switchTo(target);
      }
      if (this.#opened) {
        if (this.#wdConfigured() && this.#wd.armed) {
          try {
            await this.#timed(this.driver.disarmWatchdog(), "watchdog disarm");
            this.#wd.armed = false;
          } catch (e) {
            this.#publish("bypass.watchdog_failed", { action: "disarm", error: msg(e) }, "error");
          }
        }
      }
      try {
        await this.driver.close();
      } catch (e) {
        this.#publish("bypass.driver_warning", { warning: `close failed: ${msg(e)}` }, "warning");
      }
    });
  }

  /** Status snapshot. */
  status(): SegmentStatus {
    const iso = (t: number | null) => t === null ? null : new Date(t).toISOString();
    return {
      name: this.name,
      ports: [this.cfg.ports[0], this.cfg.ports[1]],
      driver: this.driver.kind,
      mode: this.#mode,
      desired: this.desired(),
      readBack: this.#readBack,
      holds: [...this.#holds.values()].sort((x, y) =>
        x.since - y.since || x.reason.localeCompare(y.reason)
      ).map((h) => ({
        reason: h.reason,
        count: h.count,
        mode: h.mode,
        by: h.by,
        since: new Date(h.since).toISOString(),
      })),
      watchdog: {
        supported: !!this.#caps?.watchdog,
        timeoutMs: this.cfg.watchdog.timeoutMs,
        effectiveMs: this.#wd.effectiveMs,
        armed: this.#wd.armed,
        expired: this.#wd.expired,
        remainingMs: this.#wd.remainingMs,
        petBy: this.cfg.watchdog.petBy,
        pets: this.#wd.pets,
        lastPetAt: iso(this.#wd.lastPetAt),
      },
      capabilities: this.#caps,
      switching: this.#switching,
      failures: this.#failures,
      lastError: this.#lastError,
      lastSwitchMs: this.#lastSwitchMs,
      lastChangeAt: iso(this.#lastChangeAt),
      ...(this.cfg.description ? { description: this.cfg.description } : {}),
    };
  }
}
