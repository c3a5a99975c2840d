/**
 * The SDK module: keepwire's side of what subsystems get through the SDK — replicated
 * tables and the queue handoff (host.ts) — and its API under /api:
 *
 * - GET  /sdk                        this node, every subsystem's table groups and handoff
 * - GET  /sdk/:subsystem/handoff     where the subsystem's new work goes, and why
 * - POST /sdk/:subsystem/handoff     {enabled, onAt, offAt} (admin; on the active node)
 *
 * The supervisor serves the calls (worker postMessage, process socket); the runtime
 * hands it {@link SdkModule.host}.
 * @module
 */
import { Hono } from "hono";
import type { Module, ModuleContext, PartHealth } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import { jsonBody } from "../web/errors.ts";
import { type HaView, SdkHost } from "./host.ts";
import { SdkDeclarationError } from "./errors.ts";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";
import { handoffSettingsSchema } from "./handoff.ts";
import { handoffViewSchema, sdkOverviewSchema } from "./status.ts";
import { z } from "zod";

statusDoc("sdk", sdkOverviewSchema);
const subsystemParam = z.object({ subsystem: z.string() });
apiDoc("GET", "/api/sdk", {
  operationId: "getSdk",
  summary: "this node as subsystems see it, and each subsystem's table groups and handoff",
  response: sdkOverviewSchema,
});
apiDoc("GET", "/api/sdk/:subsystem/handoff", {
  operationId: "getHandoff",
  summary: "where the subsystem's new work goes (this node or the peer), and why",
  params: subsystemParam,
  response: handoffViewSchema,
});
apiDoc("POST", "/api/sdk/:subsystem/handoff", {
  operationId: "setHandoff",
  summary: "set the subsystem's queue handoff thresholds (admin; on the active node)",
  params: subsystemParam,
  body: handoffSettingsSchema,
  response: handoffViewSchema,
  errors: { 409: "not the active node" },
});
import { HANDOFF_PAGE } from "./page.tsx";

/** The SDK module. */
export interface SdkModule extends Module {
  /** Module name. */
  readonly name: "sdk";
  /** The table and handoff service. */
  readonly host: SdkHost;
}

/** What the SDK module is wired with. */
export interface SdkDeps {
  /** This node's HA view (late-bound: the HA module is built after the supervisor). */
  ha?: () => HaView;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Build the SDK module on the store. */
export function createSdkModule(ctx: ModuleContext, deps: SdkDeps = {}): SdkModule {
  const host = new SdkHost({ store: ctx.store, bus: ctx.bus, clock: ctx.clock, ha: deps.ha });
  let routes: Hono | undefined;
  const sub = (s: string) => {
    if (!NAME.test(s)) throw new SdkDeclarationError("subsystem", "not a subsystem name");
    return s;
  };
  return {
    name: "sdk",
    host,
    start: () => Promise.resolve(),
    stop: () => {
      host.close();
      return Promise.resolve();
    },
    health: (): PartHealth => ({ ok: true, essential: false }),
    status: (): z.infer<typeof sdkOverviewSchema> => ({
      node: host.node(),
      subsystems: host.overview(),
    }),
    pages: () => [HANDOFF_PAGE],
    routes: () => {
      if (routes) return routes;
      const app = new Hono();
      app.get(
        "/sdk",
        (c) => answer(c, sdkOverviewSchema, { node: host.node(), subsystems: host.overview() }),
      );
      app.get(
        "/sdk/:subsystem/handoff",
        (c) => answer(c, handoffViewSchema, host.handoff(sub(c.req.param("subsystem")))),
      );
      app.post("/sdk/:subsystem/handoff", async (c) => {
        const who = (c.get as (k: string) => { name?: string } | undefined)("principal");
        return answer(
          c,
          handoffViewSchema,
          await host.setHandoff(
            sub(c.req.param("subsystem")),
            await jsonBody(c),
            who?.name ?? "api",
          ),
        );
      });
      return routes = app;
    },
    metrics: (): MetricFamily[] => {
      const subs = host.overview();
      return [{
        name: "sdk_handoff_to_peer",
        help: "1 while the subsystem's new work goes to the peer node (queue handoff)",
        type: "gauge",
        samples: subs.map((s) => ({
          labels: { subsystem: s.subsystem },
          value: s.handoff.target === "peer" ? 1 : 0,
        })),
      }];
    },
  };
}
