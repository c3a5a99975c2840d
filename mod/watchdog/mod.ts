/**
 * Watchdog module: owns the hardware watchdog (hw/watchdog) when keepwire is its
 * owner. Opens it at start (which starts the countdown), lets the supervisor's
 * self-monitoring pet it only while the system is healthy, and magic-closes it on
 * an orderly stop only — a crash or hang leaves it running, so the box resets.
 * @module
 */
import { createWatchdog, type HardwareWatchdog, type WatchdogInfo } from "../../hw/watchdog/mod.ts";
import type { Module, ModuleContext, PartHealth } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import "./events.ts";
import { z } from "zod";
import { sameType, statusDoc } from "../web/openapi.ts";

export { WATCHDOG_EVENTS } from "./events.ts";

/** A reason to stop petting (the box resets: self-fencing), or null while all is well. */
export type PetGate = () => string | null;

/** The watchdog module's part of /api/status (the driver's WatchdogInfo). */
export const watchdogStatusSchema = z.lazy(() =>
  z.object({
    driver: z.enum(["none", "mock", "dev"]),
    device: z.string().nullable(),
    open: z.boolean().describe("open (and so running) now"),
    identity: z.string().nullable(),
    timeoutSec: z.number().nullable(),
    timeoutSource: z.enum(["ioctl", "sysfs", "mock"]).nullable(),
    magicClose: z.boolean().nullable(),
    nowayout: z.boolean().nullable(),
    lastResetByWatchdog: z.boolean().nullable(),
    pets: z.number(),
    lastPetAt: z.number().nullable(),
    warning: z.string().nullable(),
  })
);
statusDoc("watchdog", watchdogStatusSchema);

/** The watchdog module. */
export class WatchdogModule implements Module {
  /** Module name. */
  readonly name = "watchdog";
  readonly #ctx: ModuleContext;
  readonly #wd: HardwareWatchdog;
  #error: string | null = null;
  #gates = new Map<string, PetGate>();
  #withheld: string | null = null;

  /** Build from the config (`hardware.watchdog`); `wd` overrides the driver (tests). */
  constructor(ctx: ModuleContext, wd?: HardwareWatchdog) {
    this.#ctx = ctx;
    this.#wd = wd ?? createWatchdog(ctx.config.hardware.watchdog, { clock: ctx.clock });
  }

  /** Open the device (the countdown starts now). */
  async start(): Promise<void> {
    if (this.#ctx.config.hardware.watchdog.driver === "none") return;
    await this.#wd.open();
    const info = this.#wd.info();
    this.#ctx.bus.publish({
      module: "watchdog",
      kind: "watchdog.opened",
      severity: "notice",
      payload: {
        driver: info.driver,
        device: info.device,
        timeoutSec: info.timeoutSec,
        lastResetByWatchdog: info.lastResetByWatchdog,
        warning: info.warning,
      },
    });
    if (info.lastResetByWatchdog) {
      this.#ctx.bus.publish({
        module: "watchdog",
        kind: "watchdog.last_reset_by_watchdog",
        severity: "warning",
        payload: { device: info.device },
      });
    }
  }

  /**
   * Add a gate (e.g. the HA module's: quorum lost and keepalived still MASTER past its
   * bound): while it returns a reason, {@link pet} does not pet. Returns its removal.
   */
  addGate(name: string, gate: PetGate): () => void {
    this.#gates.set(name, gate);
    return () => this.#gates.delete(name);
  }

  /** Why petting is withheld by a gate now, or null. */
  withheld(): string | null {
    for (const [name, gate] of this.#gates) {
      let r: string | null;
      try {
        r = gate();
      } catch (e) {
        r = `gate failed: ${(e as Error).message}`;
      }
      if (r !== null) return `${name}: ${r}`;
    }
    return null;
  }

  /** Pet once (called by self-monitoring only while healthy; not while a gate holds). */
  async pet(): Promise<void> {
    if (!this.#wd.info().open) return;
    this.#withheld = this.withheld();
    if (this.#withheld !== null) return;
    try {
      await this.#wd.pet();
      this.#error = null;
    } catch (e) {
      this.#error = (e as Error).message;
      throw e;
    }
  }

  /** Orderly stop: magic close so the box does not reset. */
  async stop(): Promise<void> {
    if (!this.#wd.info().open) return;
    await this.#wd.close({ magic: true });
    this.#ctx.bus.publish({ module: "watchdog", kind: "watchdog.closed", payload: {} });
  }

  /** Health: not essential itself (self-monitoring decides when to pet). */
  health(): PartHealth {
    const i = this.#wd.info();
    return {
      ok: this.#error === null && this.#withheld === null,
      essential: false,
      detail: this.#error ??
        (this.#withheld !== null ? `petting withheld: ${this.#withheld}` : null) ??
        (i.open
          ? `${i.driver} open, timeout ${i.timeoutSec ?? "?"} s, ${i.pets} pets`
          : `${i.driver}`),
    };
  }

  /** Status. */
  status(): WatchdogInfo {
    return this.#wd.info();
  }

  /** Metrics. */
  metrics(): MetricFamily[] {
    const i = this.#wd.info();
    return [{
      name: "hardware_watchdog_pets_total",
      help: "pets of the hardware watchdog since it was opened",
      type: "counter",
      samples: [{ labels: { driver: i.driver }, value: i.pets }],
    }];
  }
}

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<WatchdogInfo, z.output<typeof watchdogStatusSchema>>((v) => v, (v) => v);
