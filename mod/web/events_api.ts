/** /api/events (query) and /api/events/stream (SSE). */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { SEVERITIES } from "../events/mod.ts";
import type { EventBus, KwEvent } from "../events/mod.ts";
import type { Store } from "../store/mod.ts";
import { parseOr400 } from "./errors.ts";
import { answer, apiDoc, sameType } from "./openapi.ts";

const timeParam = z.lazy(() =>
  z.string().transform((s, ctx) => {
    const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
    if (!Number.isFinite(n)) {
      ctx.addIssue({ code: "custom", message: "expected milliseconds or an ISO 8601 time" });
      return z.NEVER;
    }
    return n;
  })
);
const intParam = (min: number, max: number) =>
  z.string().regex(/^\d+$/, "expected a non-negative integer").transform(Number).pipe(
    z.number().int().min(min).max(max),
  );

/** Query of GET /api/events. */
export const eventsQuerySchema = z.lazy(() =>
  z.strictObject({
    since: intParam(0, Number.MAX_SAFE_INTEGER).optional().describe("only events with id > since"),
    before: intParam(1, Number.MAX_SAFE_INTEGER).optional().describe(
      "only events with id < before",
    ),
    from: timeParam.optional().describe("only events at or after this time"),
    to: timeParam.optional().describe("only events before this time"),
    kind: z.string().regex(/^[a-z0-9_.*-]+$/i, "letters, digits, . _ - and a trailing *").max(100)
      .optional(),
    module: z.string().regex(/^[a-z0-9_-]+$/i).max(50).optional(),
    severity: z.enum(SEVERITIES).optional().describe("minimum severity"),
    limit: intParam(1, 1000).optional(),
    order: z.enum(["asc", "desc"]).optional(),
  })
);

/** One journalled event (GET /api/events, and the `data` of each SSE `event`). */
export const kwEventSchema = z.lazy(() =>
  z.object({
    id: z.number().describe("journal id (monotonic)"),
    time: z.number().describe("ms since the epoch"),
    module: z.string(),
    kind: z.string().describe("`<module>.<snake_case>`, e.g. storage.array_degraded"),
    severity: z.enum(SEVERITIES),
    payload: z.record(z.string(), z.unknown()).describe("fields of the kind (docs/events.md)"),
  })
);
/** GET /api/events. */
export const eventListSchema = z.lazy(() => z.object({ events: z.array(kwEventSchema) }));

apiDoc("GET", "/api/events", {
  operationId: "listEvents",
  summary: "query the event journal (newest first unless `since` is given)",
  query: eventsQuerySchema,
  response: eventListSchema,
});
apiDoc("GET", "/api/events/stream", {
  operationId: "streamEvents",
  summary: "the event journal live (Server-Sent Events; Last-Event-ID resumes)",
  query: eventsQuerySchema,
  responses: {
    200: {
      description: "an endless event stream",
      media: "text/event-stream",
      schemaText: "SSE: first `event: hello`, then `event: event` with `id:` the journal id " +
        "and `data:` one event as JSON (the shape of GET /api/events' items); " +
        "`: keep-alive` comments in between",
    },
  },
});

/** Routes for the journal. */
export function eventsRoutes(
  store: Store,
  bus: EventBus,
  opts: { sseKeepAliveMs?: number; sseThrottleMs?: () => number; closing?: AbortSignal } = {},
): Hono {
  const app = new Hono();
  app.get("/events", (c) => {
    const q = parseOr400(eventsQuerySchema, c.req.query(), "query");
    const events = store.events({
      sinceId: q.since,
      beforeId: q.before,
      sinceTime: q.from,
      untilTime: q.to,
      kind: q.kind,
      module: q.module,
      severity: q.severity,
      limit: q.limit ?? 100,
      order: q.order ?? (q.since !== undefined ? "asc" : "desc"),
    });
    return answer(c, eventListSchema, { events });
  });

  app.get("/events/stream", (c) => {
    const q = parseOr400(eventsQuerySchema, c.req.query(), "query");
    const lastId = Number(c.req.header("last-event-id") ?? q.since ?? NaN);
    return streamSSE(c, async (stream) => {
      const queue: KwEvent[] = [];
      let wake: (() => void) | undefined;
      const unsub = bus.subscribe((e) => {
        if (queue.length > 1000) queue.shift();
        queue.push(e);
        wake?.();
      }, { module: q.module, kindPrefix: q.kind?.replace(/\*$/, ""), minSeverity: q.severity });
      const onClose = () => {
        wake?.();
        stream.abort();
      };
      opts.closing?.addEventListener("abort", onClose);
      stream.onAbort(() => {
        unsub();
        opts.closing?.removeEventListener("abort", onClose);
        wake?.();
      });
      if (Number.isFinite(lastId)) {
        for (
          const e of store.events({
            sinceId: lastId,
            order: "asc",
            limit: 1000,
            module: q.module,
            severity: q.severity,
            kind: q.kind,
          })
        ) queue.push(e);
      }
      let seen = Number.isFinite(lastId) ? lastId : 0;
      await stream.writeSSE({ event: "hello", data: JSON.stringify({ time: Date.now() }) });
      while (!stream.aborted && !opts.closing?.aborted) {
        while (queue.length) {
          const e = queue.shift()!;
          if (e.id && e.id <= seen) continue;
          seen = e.id || seen;
          await stream.writeSSE({ id: String(e.id), event: "event", data: JSON.stringify(e) });
        }
        const keepAlive = opts.sseKeepAliveMs ?? 15_000;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, keepAlive);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
        const throttle = opts.sseThrottleMs?.() ?? 0;
        if (throttle > 0 && !stream.aborted) await stream.sleep(throttle);
        if (!queue.length && !stream.aborted) await stream.write(": keep-alive\n\n");
      }
      unsub();
    });
  });
  return app;
}

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<KwEvent, z.output<typeof kwEventSchema>>((v) => v, (v) => v);
