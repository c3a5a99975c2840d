/**
 * The bypass segment state machine (one segment, one driver).
 *
 * Wanted mode: `inline` while no hold is active; with holds, the strongest hold
 * mode wins (disconnect > bypass > tap). The holds (named, counted, persisted
 * before the relay moves) are the segment's HoldLedger (hold_ledger.ts).
 *
 * Reported mode: what the driver reads back after every switch and every poll. A
 * switch whose read-back differs (stuck relay), fails or times out makes the
 * segment `unknown` (never silently `inline`), publishes `bypass.switch_failed`
 * and is retried with doubling delays until it succeeds.
 *
 * At start the config is checked against the card and its policies provisioned
 * (provision.ts).
 *
 * The card watchdog (card_watchdog.ts) is armed just before going inline and
 * disarmed after switching to a held mode; its expiry adds a persisted
 * `watchdog` hold when `onExpiry` is `hold`.
 *
 * All operations of a segment run one at a time (a promise queue); pets do not
 * wait in that queue.
 * @module
 */
import type { Clock, TimerId } from "../module.ts";
import type { BypassConfig, SegmentConfig } from "../../hw/bypass/config.ts";
import type {
  BypassCapabilities,
  BypassDriver,
  BypassMode,
  SegmentMode,
} from "../../hw/bypass/types.ts";
import type { BypassHold, SegmentHoldStore, SegmentStatus, SwitchOutcome } from "./types.ts";
import type { SegmentPublish } from "./events.ts";
import { BypassHeldError, BypassInputError } from "./errors.ts";
import { checkCapabilities, provisionPolicies } from "./provision.ts";
import { HoldLedger } from "./hold_ledger.ts";
import { CardWatchdog } from "./card_watchdog.ts";
import { HOLD_REASONS } from "./hold_reasons.ts";

/** What a segment is built with. */
export interface SegmentDeps {
  /** Clock for retries, timeouts and pets. */
  clock: Clock;
  /** Publish an event of this segment (the module adds module and segment name). */
  publish: SegmentPublish;
  /** Persisted holds. */
  holds: SegmentHoldStore;
  /** Module-wide timing settings. */
  timing: Pick<BypassConfig, "switchTimeoutMs" | "retry">;
}

/** Who takes the holds the segment takes itself. */
const BY_START = "keepwire-start";
const BY_CARD_WATCHDOG = "card-watchdog";

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
  #publish: SegmentPublish;
  #holds: HoldLedger;
  #wd: CardWatchdog;
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

  /** Build (nothing is touched until start). */
  constructor(cfg: SegmentConfig, driver: BypassDriver, deps: SegmentDeps) {
    this.cfg = cfg;
    this.driver = driver;
    this.#d = deps;
    this.#publish = deps.publish;
    this.#holds = new HoldLedger(cfg.name, deps.holds, () => deps.clock.now());
    this.#wd = new CardWatchdog({
      cfg,
      driver,
      caps: () => this.#caps,
      timed: (p, what) => this.#timed(p, what),
      publish: deps.publish,
      now: () => deps.clock.now(),
      onExpired: () => {
        const expiryMode = cfg.policies.watchdogExpiry;
        if (
          cfg.watchdog.onExpiry === "hold" && expiryMode !== "inline" &&
          !this.#holds.has(HOLD_REASONS.watchdog)
        ) {
          this.#take(HOLD_REASONS.watchdog, BY_CARD_WATCHDOG, expiryMode);
        }
      },
    });
  }

  /** Segment name. */
  get name(): string {
    return this.cfg.name;
  }

  /** Reported mode. */
  get mode(): SegmentMode {
    return this.#mode;
  }

  /** Active holds (copies), oldest first. */
  get holds(): BypassHold[] {
    return this.#holds.list();
  }

  /** The wanted mode: inline without holds, else the strongest hold mode. */
  desired(): BypassMode {
    return this.#holds.desired();
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
   * is `unknown` and retried. `holdAtStart` is taken unless it is already held.
   */
  async start(holdAtStart: string | null = null): Promise<void> {
    this.#holds.load();
    if (holdAtStart && !this.#holds.has(holdAtStart)) {
      this.#take(holdAtStart, BY_START, "bypass");
    }
    if (this.#wd.petByModule()) {
      // Pet at a third of the timeout; pet() does nothing while disarmed.
      this.#petTimer = this.#d.clock.setInterval(
        () => void this.pet(),
        Math.max(10, Math.floor(this.cfg.watchdog.timeoutMs / 3)),
      );
    }
    await this.#enqueue(() => this.#init());
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
    checkCapabilities(this.cfg, this.driver.kind, caps);
    this.#opened = true;
    try {
      await provisionPolicies(
        this.cfg,
        this.driver,
        caps,
        (p, w) => this.#timed(p, w),
        this.#publish,
      );
      const mode = await this.#timed(this.driver.readMode(), "read-back");
      this.#readBack = mode;
      this.#mode = mode;
      this.#publish("bypass.segment_found", {
        mode,
        driver: this.driver.kind,
        holds: this.#holds.summary(),
      });
      if (this.#wd.configured()) await this.#wd.read();
    } catch (e) {
      this.#opened = false; // provision and read again on the retry
      this.#fail(`reading the segment failed: ${msg(e)}`, null, this.desired());
      return;
    }
    await this.#reconcile();
  }

  /** Take a hold in the ledger (persisted) and publish it. */
  #take(reason: string, by: string, mode: BypassMode): void {
    this.#announceAdded(this.#holds.take(reason, by, mode));
  }

  #announceAdded(h: BypassHold): void {
    this.#publish("bypass.hold_added", {
      reason: h.reason,
      count: h.count,
      by: h.by,
      mode: h.mode,
      holds: this.#holds.summary(),
    }, "notice");
  }

  /** Release in the ledger (persisted) and publish it; the remaining count, or null. */
  #release(reason: string, by: string, force: boolean): number | null {
    const r = this.#holds.release(reason, force);
    if (!r) return null;
    this.#publish("bypass.hold_released", {
      reason,
      remaining: r.remaining,
      by,
      forced: force,
      holds: this.#holds.summary(),
    }, "notice");
    return r.remaining;
  }

  /** Check a mode against the driver (when it has answered). */
  #checkMode(mode: BypassMode): void {
    if (this.#caps && !this.#caps.modes.includes(mode)) {
      throw new BypassInputError(
        `segment ${this.name} (driver ${this.driver.kind}) cannot do ${mode}; it can do ${
          this.#caps.modes.join(", ")
        }`,
        { mode: `not supported by this segment (${this.#caps.modes.join(", ")})` },
      );
    }
  }

  /** Take a hold (count +1) and switch to the wanted mode. */
  hold(reason: string, by: string, mode: BypassMode = "bypass"): Promise<SwitchOutcome> {
    return this.#enqueue(async () => {
      this.#checkMode(mode);
      this.#take(reason, by, mode);
      return await this.#reconcile();
    });
  }

  /**
   * Take a hold only when this segment does not have it yet (a hold that stands for
   * one state, like `shutdown`, not a count of requests) and switch.
   */
  holdOnce(reason: string, by: string): Promise<SwitchOutcome> {
    return this.#enqueue(async () => {
      if (!this.#holds.has(reason)) this.#take(reason, by, "bypass");
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
      const remaining = this.#release(reason, by, force);
      if (remaining === null) {
        return {
          ok: this.#mode !== "unknown",
          segment: this.name,
          wanted: this.desired(),
          released: false,
          remaining: 0,
        };
      }
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
        const others = this.#holds.list().filter((h) => h.reason !== HOLD_REASONS.manual);
        if (others.length) throw new BypassHeldError(this.name, others);
        this.#release(HOLD_REASONS.manual, by, true);
      } else {
        const changed = this.#holds.ensure(HOLD_REASONS.manual, by, mode);
        if (changed) this.#announceAdded(changed);
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
        if (this.#wd.configured()) expiredNow = await this.#wd.read();
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
      if (got !== this.desired() || (this.desired() === "inline" && this.#wd.needsArm())) {
        await this.#reconcile();
      }
    });
  }

  /** Pet the card watchdog if it is armed. Returns true when petted. */
  pet(): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    return this.#wd.pet();
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
    if (
      this.#mode === want && this.#failures === 0 && !(want === "inline" && this.#wd.needsArm())
    ) {
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
      if (want === "inline" && this.#wd.needsArm()) await this.#wd.arm();
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
      if (want !== "inline") await this.#wd.disarm(want);
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
          holds: this.#holds.summary(),
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
      if (this.#opened) await this.#wd.disarm();
      try {
        await this.driver.close();
      } catch (e) {
        this.#publish("bypass.driver_warning", { warning: `close failed: ${msg(e)}` }, "warning");
      }
    });
  }

  /** Status snapshot. */
  status(): SegmentStatus {
    return {
      name: this.name,
      ports: [this.cfg.ports[0], this.cfg.ports[1]],
      driver: this.driver.kind,
      mode: this.#mode,
      desired: this.desired(),
      readBack: this.#readBack,
      holds: this.#holds.list().map((h) => ({
        reason: h.reason,
        count: h.count,
        mode: h.mode,
        by: h.by,
        since: new Date(h.since).toISOString(),
      })),
      watchdog: this.#wd.status(),
      capabilities: this.#caps,
      switching: this.#switching,
      failures: this.#failures,
      lastError: this.#lastError,
      lastSwitchMs: this.#lastSwitchMs,
      lastChangeAt: this.#lastChangeAt === null ? null : new Date(this.#lastChangeAt).toISOString(),
      ...(this.cfg.description ? { description: this.cfg.description } : {}),
    };
  }
}
