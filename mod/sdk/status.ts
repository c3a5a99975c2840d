/**
 * The SDK module's answers as data (GET /api/sdk, the handoff routes, its part of
 * /api/status) as zod schemas, checked against the types the host builds.
 * @module
 */
import { z } from "zod";
import type { SameType } from "../web/openapi.ts";
import type { NodeInfo, TablesInfo } from "./mod.ts";
import type { HandoffView } from "./host.ts";

/** This node as a subsystem sees it. */
export const nodeInfoSchema = z.object({
  role: z.enum(["single", "active", "standby"]).describe(
    "`single` (no HA), `active`, or `standby` (writes refused)",
  ),
  ha: z.string().describe("the HA role as keepwire names it"),
  node: z.string(),
  peer: z.string().nullable(),
  writable: z.boolean().describe("writes to replicated tables are accepted here now"),
});

/** One table group a subsystem declared. */
export const tablesInfoSchema = z.object({
  group: z.string(),
  version: z.number().describe("schema version reached"),
  tables: z.array(z.string()),
  durability: z.enum(["sync", "async"]),
});

/** Where new work of a subsystem goes, and why. */
export const handoffViewSchema = z.object({
  target: z.enum(["local", "peer"]),
  reason: z.string(),
  depth: z.number().describe("last reported queue depth"),
  since: z.number(),
  settings: z.object({ enabled: z.boolean(), onAt: z.number(), offAt: z.number() }),
  decidedBy: z.string().describe("the node that decides (the active), or `none`"),
  to: z.string().describe("the node id that takes new work now"),
});

/** GET /api/sdk and the SDK module's part of /api/status. */
export const sdkOverviewSchema = z.object({
  node: nodeInfoSchema,
  subsystems: z.array(z.object({
    subsystem: z.string(),
    groups: z.array(tablesInfoSchema),
    handoff: handoffViewSchema,
  })),
});

// hand-written types and their schemas cannot drift apart (fails type checking)
const _nodeInfoSchemaSame: SameType<z.output<typeof nodeInfoSchema>, NodeInfo> = true;
const _tablesInfoSchemaSame: SameType<z.output<typeof tablesInfoSchema>, TablesInfo> = true;
const _handoffViewSchemaSame: SameType<z.output<typeof handoffViewSchema>, HandoffView> = true;
