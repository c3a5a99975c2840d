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
import { type BypassRoutesApi, holdReasonSchema, operatorHoldReasonSchema } from "./types.ts";
import { BypassInputError } from "./errors.ts";

const bySchema = z.string().min(1).max(64).optional();

/** Body of POST /bypass/:segment/hold. */
export const bypassHoldBodySchema = z.strictObject({
  reason: operatorHoldReasonSchema,
  by: bySchema,
});

/** Body of POST /bypass/:segment/release. */
export const bypassReleaseBodySchema = z.strictObject({
  reason: holdReasonSchema,
  by: bySchema,
  force: z.boolean().optional(),
});

/** Body of POST /bypass/:segment/set. */
export const bypassSetBodySchema = z.strictObject({
  mode: z.enum(["inline", "bypass", "disconnect"]),
  by: bySchema,
});

/** The routes of the bypass module over its API. */
export function bypassRoutes(api: BypassRoutesApi): Hono {
  const app = new Hono();
  const statusOf = (target: string) => target === "all" ? api.segments() : [api.segment(target)];

  app.get("/bypass", (c) => c.json({ segments: api.segments() }));

  app.get("/bypass/:segment", (c) => c.json({ segment: api.segment(c.req.param("segment")) }));

  app.post("/bypass/:segment/hold", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassHoldBodySchema, await jsonBody(c), "hold request");
    statusOf(target);
    await api.holdByOperator(target, body.reason, body.by ?? "api");
    return c.json({ segments: statusOf(target) });
  });

  app.post("/bypass/:segment/release", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassReleaseBodySchema, await jsonBody(c), "release request");
    statusOf(target);
    const res = await api.releaseWith(target, body.reason, {
      by: body.by ?? "api",
      force: body.force ?? false,
    });
    return c.json({ segments: statusOf(target), released: res });
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
    return c.json({ segments: statusOf(target) });
  });

  return app;
}
