/** Config schema of subsystems and the supervisor (filled in by the supervisor work). */
import { z } from "zod";

/** One subsystem spec. */
export const subsystemSpecSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "lowercase letters, digits, - and _"),
  kind: z.enum(["worker", "process", "probe"]),
  criticality: z.enum(["essential", "important", "optional"]).default("important"),
});

/** The `supervisor` section. */
export const supervisorConfigSchema = z.strictObject({
  maxLoopLagMs: z.number().int().min(10).default(1000).describe(
    "event-loop lag above which watchdogs are no longer petted",
  ),
});
