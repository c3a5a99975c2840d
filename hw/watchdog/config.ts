/** Config schema of the hardware watchdog (filled in by the hardware work). */
import { z } from "zod";

/** The `hardware.watchdog` section. */
export const watchdogConfigSchema = z.strictObject({
  driver: z.enum(["none", "mock", "dev"]).default("mock").describe(
    "none (systemd owns /dev/watchdog), mock, or dev (/dev/watchdog)",
  ),
  device: z.string().default("/dev/watchdog"),
  timeoutSec: z.number().int().min(1).max(3600).default(60),
});
