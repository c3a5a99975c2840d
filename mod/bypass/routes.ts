/**
 * Bypass API routes (mounted under /api):
 * - GET  /bypass                       → {"segments":[SegmentStatus...]}
 * - GET  /bypass/:segment              → {"segment":SegmentStatus}
 * - POST /bypass/:segment/hold    {"reason","by"?}     (:segment may be `all`)
 * - POST /bypass/:segment/release {"reason","force"?}  (:segment may be `all`)
 * - POST /bypass/:segment/set     {"mode":"inline"|"bypass"|"disconnect"}
 * Answers of the POSTs: {"segments":[status of the targeted segments], ...}.
 * A hold reason is free text (printable, at most 120 characters); keepwire's own
 * reasons (hold_reasons.ts) cannot be taken here but can be released.
 * Errors (errors.ts, answered by the web app): 400 `bad_request` naming fields,
 * 404 `segment_not_found`, 409 `held` (set inline), 502 `switch_failed` (the hold
 * is recorded and retried).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { jsonBody, parseOr400 } from "../web/errors.ts";
import {
  type BypassRoutesApi,
  holdReasonSchema,
  operatorHoldReasonSchema,
  releaseResultSchema,
  segmentStatusSchema,
} from "./types.ts";
import { BypassInputError } from "./errors.ts";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";

const bySchema = z.lazy(() => z.string().min(1).max(64).optional());

/** Body of POST /bypass/:segment/hold. */
export const bypassHoldBodySchema = z.lazy(() =>
  z.strictObject({
    reason: operatorHoldReasonSchema,
    by: bySchema,
  })
);

/** Body of POST /bypass/:segment/release. */
export const bypassReleaseBodySchema = z.lazy(() =>
  z.strictObject({
    reason: holdReasonSchema,
    by: bySchema,
    force: z.boolean().optional(),
  })
);

/** Body of POST /bypass/:segment/set. */
export const bypassSetBodySchema = z.lazy(() =>
  z.strictObject({
    mode: z.enum(["inline", "bypass", "disconnect"]),
    by: bySchema,
  })
);

/** GET /bypass, the POSTs, and the bypass module's part of /api/status. */
export const bypassSegmentsSchema = z.lazy(() =>
  z.object({ segments: z.array(segmentStatusSchema) })
);
/** GET /bypass/:segment. */
export const bypassSegmentSchema = z.lazy(() => z.object({ segment: segmentStatusSchema }));
/** POST /bypass/:segment/release. */
export const bypassReleaseAnswerSchema = z.lazy(() =>
  z.object({
    segments: z.array(segmentStatusSchema),
    released: z.array(releaseResultSchema).describe("what the release did on each segment"),
  })
);
/** The bypass module's part of /api/status. */
export type BypassStatus = z.infer<typeof bypassSegmentsSchema>;

statusDoc("bypass", bypassSegmentsSchema);
const segmentParam = z.lazy(() =>
  z.object({
    segment: z.string().describe("segment name, or `all` for every segment"),
  })
);
const segmentErrors = { 404: "no such segment" };
apiDoc("GET", "/api/bypass", {
  operationId: "listBypassSegments",
  summary: "every bypass segment: mode, holds, card watchdog, capabilities",
  response: bypassSegmentsSchema,
});
apiDoc("GET", "/api/bypass/:segment", {
  operationId: "getBypassSegment",
  summary: "one bypass segment",
  params: z.object({ segment: z.string() }),
  response: bypassSegmentSchema,
  errors: segmentErrors,
});
apiDoc("POST", "/api/bypass/:segment/hold", {
  operationId: "holdBypass",
  summary: "take a named hold (count +1): the segment goes to bypass until every hold is gone",
  params: segmentParam,
  body: bypassHoldBodySchema,
  response: bypassSegmentsSchema,
  errors: { ...segmentErrors, 502: "the relay did not switch (the hold is kept and retried)" },
});
apiDoc("POST", "/api/bypass/:segment/release", {
  operationId: "releaseBypass",
  summary: "release a named hold (count -1, or all of it with force)",
  params: segmentParam,
  body: bypassReleaseBodySchema,
  response: bypassReleaseAnswerSchema,
  errors: { ...segmentErrors, 502: "the relay did not switch back" },
});
apiDoc("POST", "/api/bypass/:segment/set", {
  operationId: "setBypassMode",
  summary: "set the mode by hand (a `manual` hold, or its release for inline)",
  params: z.object({ segment: z.string().describe("one segment name (not `all`)") }),
  body: bypassSetBodySchema,
  response: bypassSegmentsSchema,
  errors: {
    ...segmentErrors,
    409: "inline refused while other holds are active",
    502: "the relay did not switch",
  },
});

/** The routes of the bypass module over its API. */
export function bypassRoutes(api: BypassRoutesApi): Hono {
  const app = new Hono();
  const statusOf = (target: string) => target === "all" ? api.segments() : [api.segment(target)];

  app.get("/bypass", (c) => answer(c, bypassSegmentsSchema, { segments: api.segments() }));

  app.get(
    "/bypass/:segment",
    (c) => answer(c, bypassSegmentSchema, { segment: api.segment(c.req.param("segment")) }),
  );

  app.post("/bypass/:segment/hold", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassHoldBodySchema, await jsonBody(c), "hold request");
    statusOf(target);
    await api.holdByOperator(target, body.reason, body.by ?? "api");
    return answer(c, bypassSegmentsSchema, { segments: statusOf(target) });
  });

  app.post("/bypass/:segment/release", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassReleaseBodySchema, await jsonBody(c), "release request");
    statusOf(target);
    const res = await api.releaseWith(target, body.reason, {
      by: body.by ?? "api",
      force: body.force ?? false,
    });
    return answer(c, bypassReleaseAnswerSchema, { segments: statusOf(target), released: res });
  });

  app.post("/bypass/:segment/set", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassSetBodySchema, await jsonBody(c), "set request");
    if (target === "all") {
      throw new BypassInputError("set takes one segment, not all", {
        segment: "one segment name",
      });
    }
    await api.set(target, body.mode, body.by ?? "api");
    return answer(c, bypassSegmentsSchema, { segments: statusOf(target) });
  });

  return app;
}
