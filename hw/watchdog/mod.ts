/**
 * Hardware watchdog drivers behind one interface: `createWatchdog(config)` picks
 * none, mock or dev (/dev/watchdog).
 * @module
 */
import type { Clock } from "../../mod/module.ts";
import { systemClock } from "../../mod/module.ts";
import { type WatchdogConfig, watchdogConfigSchema } from "./config.ts";
import { DevWatchdog } from "./dev.ts";
import type { WatchdogSys } from "./sys.ts";
import { MockWatchdog, type WatchdogReset } from "./mock.ts";
import {
  type HardwareWatchdog,
  type WatchdogCloseOptions,
  WatchdogError,
  type WatchdogInfo,
} from "./types.ts";

export * from "./types.ts";
export { type WatchdogConfig, watchdogConfigSchema } from "./config.ts";
export { DevWatchdog, type DevWatchdogOptions, watchdogSysfsDir } from "./dev.ts";
export {
  defaultWatchdogSys,
  denoWatchdogSys,
  libcUnavailableReason,
  libcWatchdogSys,
  type WatchdogSys,
  WatchdogSysError,
} from "./sys.ts";
export { watchdogIoc, WDIOC, WDIOF } from "./ioctl.ts";
export {
  MockWatchdog,
  type MockWatchdogFaults,
  type MockWatchdogOptions,
  type WatchdogReset,
} from "./mock.ts";

/** The `none` driver: does nothing (systemd or another process owns the watchdog). */
export class NoneWatchdog implements HardwareWatchdog {
  /** Driver name. */
  readonly driver = "none" as const;
  /** No-op. */
  open(): Promise<void> {
    return Promise.resolve();
  }
  /** No-op. */
  pet(): Promise<void> {
    return Promise.resolve();
  }
  /** Not supported: there is no device. */
  setTimeout(_sec: number): Promise<number> {
    return Promise.reject(new WatchdogError("unsupported", "watchdog driver none: no device"));
  }
  /** No-op. */
  close(_opts: WatchdogCloseOptions): Promise<void> {
    return Promise.resolve();
  }
  /** State (nothing). */
  info(): WatchdogInfo {
    return {
      driver: "none",
      device: null,
      open: false,
      identity: null,
      timeoutSec: null,
      timeoutSource: null,
      magicClose: null,
      nowayout: null,
      lastResetByWatchdog: null,
      pets: 0,
      lastPetAt: null,
      warning: "driver none: keepwire does not own a hardware watchdog",
    };
  }
}

/** What the factory may need besides the config. */
export interface WatchdogDeps {
  /** Clock for the mock countdown and pet timestamps (default: system clock). */
  clock?: Clock;
  /** Mock: called when the mock watchdog fires. */
  onExpire?: (reset: WatchdogReset) => void;
  /** dev: system call layer (tests). */
  sys?: WatchdogSys;
}

/** Build the driver `hardware.watchdog` names; a bad config is an `invalid` error naming the field. */
export function createWatchdog(
  config: WatchdogConfig | Record<string, unknown>,
  deps: WatchdogDeps = {},
): HardwareWatchdog {
  const r = watchdogConfigSchema.safeParse(config);
  if (!r.success) {
    const msg = r.error.issues
      .map((i) => `${["hardware.watchdog", ...i.path.map(String)].join(".")}: ${i.message}`)
      .join("; ");
    throw new WatchdogError("invalid", msg);
  }
  const c = r.data;
  const clock = deps.clock ?? systemClock;
  switch (c.driver) {
    case "none":
      return new NoneWatchdog();
    case "mock":
      return new MockWatchdog({ clock, timeoutSec: c.timeoutSec, onExpire: deps.onExpire });
    case "dev":
      return new DevWatchdog({
        device: c.device,
        timeoutSec: c.timeoutSec,
        sysfsDir: c.sysfsDir,
        sys: deps.sys,
        clock,
      });
  }
}
