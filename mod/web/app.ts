/** The Hono application: security middleware, API under /api, /metrics, pages at /. */
import { redactBySchema } from "./ui/config_view.ts";
import { staticType, vendorFiles } from "./ui/vendor.ts";
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Config } from "../config/mod.ts";
import type { EventBus } from "../events/mod.ts";
import { isStorageFull, type Store } from "../store/mod.ts";
import { replicaRefusal } from "../repl/mod.ts";
import type { Clock, ModulePage, PartHealth } from "../module.ts";
import { VERSION } from "../version.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { KeepwireError } from "../errors.ts";
import { eventsRoutes } from "./events_api.ts";
import { uiRoutes } from "./ui/pages.tsx";
import { notFoundPage } from "./ui/layout.tsx";
import { readUiSettings, settingsRoutes } from "./settings_api.ts";
import { type AuthEnv, authMiddleware, authRoutes, csrfGuard } from "./auth.ts";
import { Users } from "./users.ts";
import { type MetricFamily, renderMetrics } from "./metrics.ts";
import {
  apiDoc,
  BODY_LIMITS,
  buildOpenApi,
  declaredBodyLimit,
  sameType,
  statusDocs,
} from "./openapi.ts";
import { z } from "zod";
import { SEVERITIES, type Severity } from "../events/mod.ts";
import { allowedHosts, hostGuard } from "./host_check.ts";
import { splitListen } from "../config/mod.ts";
import { bodyLimit } from "hono/body-limit";
import { isPublic } from "./public_paths.ts";
import { SecureHeaders } from "./secure_headers.ts";

/** Environment of the app (bindings from the server, variables from middleware). */
export type WebEnv = AuthEnv;

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
  /** Metric families of all modules. */
  metrics(): MetricFamily[];
  /** The configuration as in force (run-time edits of modules applied), for the settings page. */
  configInForce?(): unknown;
  /** UI pages contributed by modules (mounted and listed in the navigation). */
  modulePages?(): ModulePage[];
  /** Extra slowdown of UI live refresh under load (ms; 0 when normal). */
  uiThrottleMs?(): number;
  /** HTTP admission control of the load governor (first middleware), if any. */
  admission?(): MiddlewareHandler | undefined;
  /**
   * Replication's gate around API changes: `before` refuses a change up front (a `refuse`
   * sync group without its standby), `after` waits until the standby applied it.
   */
  writeGate?(): { before(): void; after(): Promise<boolean> } | undefined;
}

/** Health of one part. */
export const partHealthSchema = z.lazy(() =>
  z.object({
    ok: z.boolean(),
    essential: z.boolean().describe("essential parts make /api/health answer 503 when not ok"),
    detail: z.string().optional(),
  })
);
/** GET /api/health. */
export const healthReportSchema = z.lazy(() =>
  z.object({
    ok: z.boolean().describe("every essential part is ok"),
    parts: z.record(z.string(), partHealthSchema),
  })
);

/**
 * GET /api/status: the runtime's identity and each module's status document, each
 * module's schema as it registered it with statusDoc (read when the document is built).
 */
export function runtimeStatusSchema(): z.ZodType {
  return z.object({
    running: z.literal(true),
    name: z.string(),
    vendor: z.string(),
    model: z.string(),
    version: z.string(),
    pid: z.number(),
    dataDir: z.string(),
    startedAt: z.string().describe("ISO time"),
    uptimeMs: z.number(),
    health: healthReportSchema,
    events: z.object({
      total: z.number().describe("events in the journal"),
      published: z.object(
        Object.fromEntries(SEVERITIES.map((v) => [v, z.number()])) as Record<
          Severity,
          z.ZodNumber
        >,
      ).describe("published since start, by severity"),
    }),
    modules: z.object(
      Object.fromEntries([...statusDocs()].map(([m, sch]) => [m, sch.optional()])),
    ).describe("each module's status (present when the module runs)"),
  });
}

apiDoc("GET", "/api/health", {
  tag: "runtime",
  operationId: "getHealth",
  summary: "health: 200 when every essential part is up, else 503",
  response: healthReportSchema,
  responses: {
    503: { description: "an essential part is not ok (same body)", schema: healthReportSchema },
  },
});
apiDoc("GET", "/api/status", {
  tag: "runtime",
  operationId: "getStatus",
  summary: "identity, version, uptime, health and each module's status",
  response: z.lazy(runtimeStatusSchema),
});
apiDoc("GET", "/api/openapi.json", {
  tag: "runtime",
  operationId: "getOpenApi",
  summary: "this document: OpenAPI 3.1, generated from the route definitions",
  response: z.record(z.string(), z.unknown()),
});
apiDoc("GET", "/metrics", {
  operationId: "getMetrics",
  summary: "Prometheus metrics (text exposition format 0.0.4; a viewer token is enough)",
  tag: "metrics",
  responses: {
    200: {
      description: "every `keepwire_` family",
      media: "text/plain; version=0.0.4",
      schemaText: "Prometheus text exposition format 0.0.4",
    },
  },
});

/** Content-Security-Policy: no inline scripts, nothing from elsewhere, no framing. */
export const CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "data:"],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

function readStatic(name: string): string {
  return Deno.readTextFileSync(new URL(`./static/${name}`, import.meta.url));
}

/**
 * The config with secrets replaced: fields its schema marks `writeOnly` (see
 * mod/web/ui/config_view.ts), never matched by name.
 */
export function redact(v: unknown): unknown {
  return redactBySchema(v);
}

/** Build the application. */
export function createApp(view: RuntimeView, opts: { users?: Users } = {}): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const tls = view.config.web.tls.enabled;
  const users = opts.users ?? new Users(view.store, { now: () => view.clock.now() });

  app.onError((err, c) => {
    if (err instanceof KeepwireError) return errorResponse(c, err);
    const readOnly = replicaRefusal(err); // a replicated table written on the standby
    if (readOnly) return errorResponse(c, readOnly);
    if (err instanceof HTTPException) {
      const msg = err.status === 403
        ? "cross-site request refused (CSRF check: Origin / Sec-Fetch-Site)"
        : err.message || "request refused";
      return errorResponse(c, new ApiError(err.status as 400, "http_error", msg));
    }
    if (isStorageFull(err)) {
      return errorResponse(
        c,
        new ApiError(
          507,
          "storage_full",
          "the data partition is full: nothing was changed; free space on it and retry",
        ),
      );
    }
    console.error("web: unhandled error", err);
    return errorResponse(c, new ApiError(500, "internal", "internal error; see the journal"));
  });
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    // a browser that followed a stale link or mistyped a page gets a page, not JSON
    if (
      c.req.method === "GET" && !path.startsWith("/api/") &&
      (c.req.header("accept") ?? "").includes("text/html")
    ) {
      return c.html(notFoundPage(view.config.identity.name, path), 404);
    }
    return errorResponse(
      c,
      new ApiError(404, "not_found", `no route for ${c.req.method} ${path}`),
    );
  });

  // Host first (DNS rebinding): a request naming a host that is not ours gets nothing
  // else, not even load accounting. The set is rebuilt every 30 s (addresses change).
  let hosts: Set<string> | undefined, hostsAt = -Infinity;
  app.use(
    "*",
    hostGuard(() => {
      if (!hosts || performance.now() - hostsAt > 30_000) {
        hosts = allowedHosts(
          splitListen(view.config.web.listen).hostname,
          view.config.web.allowedHosts,
        );
        hostsAt = performance.now();
      }
      return hosts;
    }),
  );
  // load shedding next: a rejected request costs nothing else
  const admission = view.admission?.();
  if (admission) app.use("*", admission);
  // the values are built once; prebuilt answers carry them already (secure_headers.ts)
  const secure = new SecureHeaders(CSP, tls);
  app.use("*", secure.middleware());
  app.use("*", csrfGuard());
  app.use("*", authMiddleware({ users, bus: view.bus, tls }));
  const gate = view.writeGate?.();
  if (gate) {
    // a change through the API is answered once the standby has it (sync replication)
    app.use("/api/*", async (c, next) => {
      if (c.req.method === "GET" || c.req.method === "HEAD") return await next();
      gate.before();
      await next();
      if (c.res.status < 400) await gate.after();
    });
  }
  // Body bounds, after auth (which refuses anonymous requests without reading a byte):
  // small on public routes, larger once signed in; a route that declared "stream"
  // (bundle upload) bounds its own octet stream, but JSON or form bodies never escape.
  const tooLarge = (limit: number) =>
    bodyLimit({
      maxSize: limit,
      onError: () => {
        throw new ApiError(413, "too_large", `request body larger than ${limit} bytes`);
      },
    });
  const limiters = new Map<number, ReturnType<typeof tooLarge>>();
  app.use("*", async (c, next) => {
    if (!c.req.raw.body) return await next(); // no body (most GETs): nothing to bound
    const declared = declaredBodyLimit(c.req.method, c.req.path);
    const type = (c.req.header("content-type") ?? "").toLowerCase();
    const structured = /json|form|text\//.test(type) || type === "";
    if (declared === "stream" && !structured) return await next();
    const limit = typeof declared === "number"
      ? declared
      : isPublic(c.req.path) || !c.get("principal")
      ? BODY_LIMITS.public
      : BODY_LIMITS.signedIn;
    let mw = limiters.get(limit);
    if (!mw) limiters.set(limit, mw = tooLarge(limit));
    return await mw(c, next);
  });

  app.get("/api/health", (c) => {
    let h: HealthReport;
    try {
      h = view.health();
    } catch (e) {
      // a part whose health check itself fails is not healthy: 503, never a 500
      console.error("web: health check failed", e);
      h = { ok: false, parts: {} };
    }
    return c.json(h, h.ok ? 200 : 503);
  });
  // Status is assembled at most every 200 ms: monitoring polls it hard, and a
  // snapshot 200 ms old is as good as a fresh one (its uptimeMs tells its age). The
  // answer is built with it, security headers included, and copied per request.
  let statusAnswer: (() => Response) | undefined, statusAt = -Infinity;
  app.get("/api/status", () => {
    const now = performance.now();
    if (!statusAnswer || now - statusAt > 200) {
      statusAnswer = secure.prebuilt(JSON.stringify(view.status()), 200, {
        "content-type": "application/json",
      });
      statusAt = now;
    }
    return statusAnswer();
  });
  app.route(
    "/api",
    authRoutes({ users, bus: view.bus, tls, clock: view.clock, closing: view.closing }),
  );
  app.route(
    "/api",
    eventsRoutes(view.store, view.bus, {
      closing: view.closing,
      sseThrottleMs: () => view.uiThrottleMs?.() ?? 0,
    }),
  );
  for (const r of view.moduleRoutes()) app.route("/api", r.app as Hono<WebEnv>);

  app.get(
    "/api/openapi.json",
    (c) => c.json(buildOpenApi(app.routes, { title: "keepwire API", version: VERSION })),
  );
  app.get("/metrics", async (c) => {
    const text = await renderMetrics(view.metrics());
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.route("/api", settingsRoutes(view.store, view.bus));

  const staticFiles: Record<string, [string, string]> = {
    "app.css": ["text/css; charset=utf-8", readStatic("app.css")],
    "app.js": ["text/javascript; charset=utf-8", readStatic("app.js")],
    "charts.js": ["text/javascript; charset=utf-8", readStatic("charts.js")],
  };
  for (const [name, src] of vendorFiles()) staticFiles[name] = [staticType(name), src];
  app.get("/static/:file", (c) => {
    const f = staticFiles[c.req.param("file")];
    if (!f) throw new ApiError(404, "not_found", "no such file");
    return c.body(f[1], 200, { "content-type": f[0], "cache-control": "no-cache" });
  });
  app.get("/favicon.ico", (c) => c.body(null, 204));

  const internal = async <T>(path: string): Promise<T | null> => {
    const res = await app.fetch(new Request(`http://keepwire.internal${path}`), { trusted: true });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return await res.json() as T;
  };
  app.route(
    "/",
    uiRoutes({
      appliance: view.config.identity.name,
      internal,
      refreshMs: () => readUiSettings(view.store).refreshMs + (view.uiThrottleMs?.() ?? 0),
      hasAdmin: () => users.hasAdmin(),
      config: () => redact(view.configInForce?.() ?? view.config),
      version: VERSION,
    }, view.modulePages?.() ?? []),
  );
  return app;
}

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<PartHealth, z.output<typeof partHealthSchema>>((v) => v, (v) => v);
sameType<HealthReport, z.output<typeof healthReportSchema>>((v) => v, (v) => v);
