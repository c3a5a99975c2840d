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

export { WATCHDOG_EVENTS } from "./events.ts";

/** The watchdog module. */
export class WatchdogModule implements Module {
  /** Module name. */
  readonly name = "watchdog";
  readonly #ctx: ModuleContext;
  readonly #wd: HardwareWatchdog;
  #error: string | null = null;

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

  /** Pet once (called by self-monitoring only while healthy). */
  async pet(): Promise<void> {
    if (!this.#wd.info().open) return;
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
      ok: this.#error === null,
      essential: false,
      detail: this.#error ??
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
