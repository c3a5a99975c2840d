/** Config schema of RAID and disk health (filled in by the hardware work). */
import { z } from "zod";

/** The `hardware.raid` section. */
export const raidConfigSchema = z.strictObject({
  driver: z.enum(["mock", "md"]).default("mock").describe("mock, or md (/proc/mdstat + sysfs)"),
  pollMs: z.number().int().min(100).default(5000).describe("poll interval"),
});
