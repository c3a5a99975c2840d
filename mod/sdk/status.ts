/**
 * The SDK module's answers as data (GET /api/sdk, the handoff routes, its part of
 * /api/status) as zod schemas, checked against the types the host builds.
 * @module
 */
import { z } from "zod";
import { sameType } from "../web/openapi.ts";
import type { NodeInfo, TablesInfo } from "./mod.ts";
import type { HandoffView } from "./host.ts";

/** This node as a subsystem sees it. */
export const nodeInfoSchema = z.lazy(() =>
  z.object({
    role: z.enum(["single", "active", "standby"]).describe(
      "`single` (no HA), `active`, or `standby` (writes refused)",
    ),
    ha: z.string().describe("the HA role as keepwire names it"),
    node: z.string(),
    peer: z.string().nullable(),
    writable: z.boolean().describe("writes to replicated tables are accepted here now"),
    writableSets: z.array(z.enum(["a", "b"])).optional().describe(
      "the client sets whose groups this node writes now (active-active: b too while active for it)",
    ),
  })
);

/** One table group a subsystem declared. */
export const tablesInfoSchema = z.lazy(() =>
  z.object({
    group: z.string(),
    version: z.number().describe("schema version reached"),
    tables: z.array(z.string()),
    durability: z.enum(["sync", "async"]),
  })
);

/** Where new work of a subsystem goes, and why. */
export const handoffViewSchema = z.lazy(() =>
  z.object({
    target: z.enum(["local", "peer"]),
    reason: z.string(),
    depth: z.number().describe("last reported queue depth"),
    since: z.number(),
    settings: z.object({ enabled: z.boolean(), onAt: z.number(), offAt: z.number() }),
    decidedBy: z.string().describe("the node that decides (the active), or `none`"),
    to: z.string().describe("the node id that takes new work now"),
  })
);

/** GET /api/sdk and the SDK module's part of /api/status. */
export const sdkOverviewSchema = z.lazy(() =>
  z.object({
    node: nodeInfoSchema,
    subsystems: z.array(z.object({
      subsystem: z.string(),
      groups: z.array(tablesInfoSchema),
      handoff: handoffViewSchema,
    })),
  })
);

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<NodeInfo, z.output<typeof nodeInfoSchema>>((v) => v, (v) => v);
sameType<TablesInfo, z.output<typeof tablesInfoSchema>>((v) => v, (v) => v);
sameType<HandoffView, z.output<typeof handoffViewSchema>>((v) => v, (v) => v);
