/** Config schema of the hardware watchdog (`hardware.watchdog`). */
import { z } from "zod";

/** The `hardware.watchdog` section. */
export const watchdogConfigSchema = z.strictObject({
  driver: z.enum(["none", "mock", "dev"]).default("mock").describe(
    "none (systemd owns /dev/watchdog), mock, or dev (/dev/watchdog)",
  ),
  device: z.string().min(1).default("/dev/watchdog").describe("watchdog device (dev driver)"),
  timeoutSec: z.number().int().min(1).max(3600).default(60).describe(
    "timeout set on open (WDIOC_SETTIMEOUT, else a writable sysfs timeout); the box resets " +
      "when not petted for this long",
  ),
  sysfsDir: z.string().min(1).optional().describe(
    "the driver's sysfs dir; default /sys/class/watchdog/<watchdogN> derived from device",
  ),
});

/** A validated `hardware.watchdog` section. */
export type WatchdogConfig = z.infer<typeof watchdogConfigSchema>;
