/**
 * The card watchdog of one segment (cards that have one, `watchdog.timeoutMs > 0`):
 * armed just before the segment goes inline, disarmed after it switched to a held
 * mode, petted from outside (the supervisor, while healthy) or by the module
 * itself. An expiry seen on a reading is published once as
 * `bypass.watchdog_expired` and handed to the segment (`onExpired`), which adds a
 * persisted `watchdog` hold when `onExpiry` is `hold`.
 * @module
 */
import type { SegmentConfig } from "../../hw/bypass/config.ts";
import type { BypassCapabilities, BypassDriver, BypassMode } from "../../hw/bypass/types.ts";
import type { SegmentWatchdogStatus } from "./types.ts";
import type { SegmentPublish } from "./events.ts";

/** What the watchdog of a segment is built with. */
export interface CardWatchdogDeps {
  /** The segment's config. */
  cfg: SegmentConfig;
  /** The segment's driver. */
  driver: BypassDriver;
  /** The driver's capabilities once it answered, else null. */
  caps(): BypassCapabilities | null;
  /** Bound a driver call by the switch timeout. */
  timed<T>(p: Promise<T>, what: string): Promise<T>;
  /** Publish a segment event. */
  publish: SegmentPublish;
  /** Milliseconds since the epoch. */
  now(): number;
  /** The card expired (called once per expiry, after the event). */
  onExpired(): void;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The card watchdog of one segment. */
export class CardWatchdog {
  readonly #d: CardWatchdogDeps;
  #effectiveMs: number | null = null;
  #armed = false;
  #expired = false;
  #expiredSeen = false;
  #remainingMs: number | null = null;
  #pets = 0;
  #lastPetAt: number | null = null;
  #petFailing = false;
  #armFailing = false;

  /** Build (nothing is touched). */
  constructor(deps: CardWatchdogDeps) {
    this.#d = deps;
  }

  /** A timeout is configured and the card has a watchdog. */
  configured(): boolean {
    return this.#d.cfg.watchdog.timeoutMs > 0 && !!this.#d.caps()?.watchdog;
  }

  /** The module pets it itself (`petBy: module`), every timeout/3. */
  petByModule(): boolean {
    return this.#d.cfg.watchdog.timeoutMs > 0 && this.#d.cfg.watchdog.petBy === "module";
  }

  /** Armed now. */
  get armed(): boolean {
    return this.#armed;
  }

  /** Going inline needs an arm first (configured and not armed, or expired). */
  needsArm(): boolean {
    return this.configured() && (!this.#armed || this.#expired);
  }

  /**
   * Read the card. Returns true when this reading saw a new expiry (published
   * and handed to `onExpired`). Driver errors throw.
   */
  async read(): Promise<boolean> {
    const r = await this.#d.timed(this.#d.driver.readWatchdog(), "watchdog read");
    this.#armed = r.armed;
    this.#expired = r.expired;
    this.#remainingMs = r.remainingMs;
    if (r.timeoutMs > 0) this.#effectiveMs = r.timeoutMs;
    if (!r.expired) {
      this.#expiredSeen = false;
      return false;
    }
    if (this.#expiredSeen) return false;
    this.#expiredSeen = true;
    this.#armed = false;
    this.#d.publish("bypass.watchdog_expired", {
      expiryMode: this.#d.cfg.policies.watchdogExpiry,
      onExpiry: this.#d.cfg.watchdog.onExpiry,
      timeoutMs: this.#effectiveMs,
      lastPetAt: this.#lastPetAt ? new Date(this.#lastPetAt).toISOString() : null,
    }, "critical");
    this.#d.onExpired();
    return true;
  }

  /**
   * Arm with the configured timeout. A failure does not throw: going inline without
   * the card's protection is still better than no traffic; it is published once per
   * streak and every poll tries again.
   */
  async arm(): Promise<void> {
    const timeoutMs = this.#d.cfg.watchdog.timeoutMs;
    try {
      const eff = await this.#d.timed(this.#d.driver.armWatchdog(timeoutMs), "watchdog arm");
      this.#effectiveMs = eff;
      this.#armed = true;
      this.#expired = false;
      this.#expiredSeen = false;
      this.#armFailing = false;
      this.#d.publish("bypass.watchdog_armed", {
        timeoutMs,
        effectiveMs: eff,
        petBy: this.#d.cfg.watchdog.petBy,
      });
    } catch (e) {
      if (!this.#armFailing) {
        this.#d.publish("bypass.watchdog_failed", { action: "arm", error: msg(e) }, "error");
      }
      this.#armFailing = true;
    }
  }

  /**
   * Disarm when armed (a deliberate bypass is not turned into the expiry mode later).
   * With `reached` (the held mode just switched to) it publishes
   * `bypass.watchdog_disarmed`; on stop it is quiet. Failures are published, never thrown.
   */
  async disarm(reached?: BypassMode): Promise<void> {
    if (!this.configured() || !this.#armed) return;
    try {
      await this.#d.timed(this.#d.driver.disarmWatchdog(), "watchdog disarm");
      this.#armed = false;
      if (reached) this.#d.publish("bypass.watchdog_disarmed", { mode: reached });
    } catch (e) {
      this.#d.publish("bypass.watchdog_failed", { action: "disarm", error: msg(e) }, "error");
    }
  }

  /** Pet when armed. Returns true when petted; a failure is published once per streak. */
  async pet(): Promise<boolean> {
    if (!this.configured() || !this.#armed) return false;
    try {
      await this.#d.timed(this.#d.driver.petWatchdog(), "watchdog pet");
      this.#pets++;
      this.#lastPetAt = this.#d.now();
      this.#petFailing = false;
      return true;
    } catch (e) {
      if (!this.#petFailing) {
        this.#d.publish("bypass.watchdog_pet_failed", { error: msg(e) }, "error");
      }
      this.#petFailing = true;
      return false;
    }
  }

  /** Status for the API. */
  status(): SegmentWatchdogStatus {
    return {
      supported: !!this.#d.caps()?.watchdog,
      timeoutMs: this.#d.cfg.watchdog.timeoutMs,
      effectiveMs: this.#effectiveMs,
      armed: this.#armed,
      expired: this.#expired,
      remainingMs: this.#remainingMs,
      petBy: this.#d.cfg.watchdog.petBy,
      pets: this.#pets,
      lastPetAt: this.#lastPetAt === null ? null : new Date(this.#lastPetAt).toISOString(),
    };
  }
}
