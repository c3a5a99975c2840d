/** Config schema of the bypass segments (filled in by the hardware work). */
import { z } from "zod";

/** One bypass segment. */
export const segmentConfigSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "lowercase letters, digits, - and _"),
  ports: z.tuple([z.string().min(1), z.string().min(1)]).describe("the two ports of the segment"),
  driver: z.enum(["mock", "silicom", "gpio", "tc"]).default("mock"),
});

/** The `hardware.bypass` section. */
export const bypassConfigSchema = z.strictObject({
  segments: z.array(segmentConfigSchema).default([
    { name: "seg0", ports: ["eth2", "eth3"], driver: "mock" },
  ]).describe("bypass segments (pairs of ports)"),
});
