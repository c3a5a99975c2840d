/**
 * The `ha.replication` section: durability per table group and the engine's timing.
 * Which tables replicate is declared in code (the registry, `registry.ts`), not here.
 * @module
 */
import { z } from "zod";

/** One group's durability. */
export const replGroupConfigSchema = z.strictObject({
  durability: z.enum(["sync", "async"]).describe(
    "sync: a write is acknowledged only after the standby applied it; async: shipped within batchMs",
  ),
  onStandbyLost: z.enum(["continue", "refuse"]).default("continue").describe(
    "sync groups with the standby gone: continue locally (event + alert) or refuse writes (503)",
  ),
});

/** The `ha.replication` section. */
export const replConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe(
    "replicate the store's shared tables from the active to the standby over the peer link",
  ),
  groups: z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "a group name"),
    replGroupConfigSchema,
  ).default({}).describe(
    "durability per table group (built-in: config and data sync, logs async; a vendor's " +
      "groups too)",
  ),
  batchMs: z.number().int().min(5).max(1000).default(50).describe(
    "longest time changes wait before they are shipped",
  ),
  ackTimeoutMs: z.number().int().min(100).max(60_000).default(2000).describe(
    "a send not answered in this time marks the standby gone",
  ),
});

/** The `ha.replication` section, parsed. */
export type ReplConfig = z.infer<typeof replConfigSchema>;
