/** The Hono application: API under /api, pages at /. */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Config } from "../config/mod.ts";
import type { EventBus } from "../events/mod.ts";
import type { Store } from "../store/mod.ts";
import type { Clock, PartHealth } from "../module.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { eventsRoutes } from "./events_api.ts";
import { homePage } from "./pages.tsx";

/** Environment bindings: `trusted` is true for requests over the local control socket. */
export interface WebEnv {
  /** Bindings passed to app.fetch. */
  Bindings: { trusted?: boolean; remote?: Deno.Addr };
}

/** Overall health as /api/health reports it. */
export interface HealthReport {
  /** True when every essential part is ok. */
  ok: boolean;
  /** Health of each part. */
  parts: Record<string, PartHealth>;
}

/** What the web layer sees of the runtime. */
export interface RuntimeView {
  /** Configuration. */
  config: Config;
  /** Store. */
  store: Store;
  /** Event bus. */
  bus: EventBus;
  /** Clock. */
  clock: Clock;
  /** Health of all parts. */
  health(): HealthReport;
  /** Status of all parts. */
  status(): Record<string, unknown>;
  /** Aborted when the runtime stops (ends SSE streams). */
  closing: AbortSignal;
  /** Routes contributed by modules, mounted under /api. */
  moduleRoutes(): { name: string; app: Hono<WebEnv> | Hono }[];
}

/** Build the application. */
export function createApp(view: RuntimeView): Hono<WebEnv> {
  const app = new Hono<WebEnv>();

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    if (err instanceof HTTPException) {
      return errorResponse(c, new ApiError(err.status as 400, "http_error", err.message));
    }
    console.error("web: unhandled error", err);
    return errorResponse(c, new ApiError(500, "internal", "internal error; see the journal"));
  });
  app.notFound((c) =>
    errorResponse(
      c,
      new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
    )
  );

  app.get("/api/health", (c) => {
    const h = view.health();
    return c.json(h, h.ok ? 200 : 503);
  });
  app.get("/api/status", (c) => c.json(view.status()));
  app.route("/api", eventsRoutes(view.store, view.bus, { closing: view.closing }));
  for (const r of view.moduleRoutes()) app.route("/api", r.app as Hono<WebEnv>);

  app.get("/", (c) => c.html(homePage(view)));
  return app;
}
