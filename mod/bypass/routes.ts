/**
 * Bypass API routes (mounted under /api):
 * - GET  /bypass                       → {"segments":[SegmentStatus...]}
 * - GET  /bypass/:segment              → {"segment":SegmentStatus}
 * - POST /bypass/:segment/hold    {"reason","by"?}     (:segment may be `all`)
 * - POST /bypass/:segment/release {"reason","force"?}  (:segment may be `all`)
 * - POST /bypass/:segment/set     {"mode":"inline"|"bypass"|"disconnect"}
 * Answers of the POSTs: {"segments":[status of the targeted segments], ...}.
 * Errors: 400 naming fields, 404 unknown segment, 409 held (set inline), 502 the
 * relay did not switch (the hold is recorded and retried).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { ApiError, jsonBody, parseOr400 } from "../web/mod.ts";
import { bypassReasonSchema } from "../../hw/bypass/config.ts";
import type { BypassModule } from "./mod.ts";
import { BypassHeldError, BypassInputError } from "./segment.ts";

/** Body of POST /bypass/:segment/hold. */
export const bypassHoldBodySchema = z.strictObject({
  reason: bypassReasonSchema,
  by: z.string().min(1).max(64).optional(),
});

/** Body of POST /bypass/:segment/release. */
export const bypassReleaseBodySchema = z.strictObject({
  reason: bypassReasonSchema,
  by: z.string().min(1).max(64).optional(),
  force: z.boolean().optional(),
});

/** Body of POST /bypass/:segment/set. */
export const bypassSetBodySchema = z.strictObject({
  mode: z.enum(["inline", "bypass", "disconnect"]),
  by: z.string().min(1).max(64).optional(),
});

function mapError(e: unknown): never {
  if (e instanceof ApiError) throw e;
  const name = e instanceof Error ? e.name : "";
  const message = e instanceof Error ? e.message : String(e);
  if (name === "BypassUnknownSegmentError") throw new ApiError(404, "not_found", message);
  if (e instanceof BypassHeldError) throw new ApiError(409, "held", message);
  if (e instanceof BypassInputError) throw new ApiError(400, "bad_request", message);
  if (name === "BypassSwitchError") throw new ApiError(502, "switch_failed", message);
  throw e;
}

/** The routes of the bypass module. */
export function bypassRoutes(api: BypassModule): Hono {
  const app = new Hono();
  const statusOf = (target: string) => target === "all" ? api.segments() : [api.segment(target)];

  app.get("/bypass", (c) => c.json({ segments: api.segments() }));

  app.get("/bypass/:segment", (c) => {
    try {
      return c.json({ segment: api.segment(c.req.param("segment")) });
    } catch (e) {
      mapError(e);
    }
  });

  app.post("/bypass/:segment/hold", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassHoldBodySchema, await jsonBody(c), "hold request");
    try {
      statusOf(target);
      await api.hold(target, body.reason, body.by ?? "api");
      return c.json({ segments: statusOf(target) });
    } catch (e) {
      mapError(e);
    }
  });

  app.post("/bypass/:segment/release", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassReleaseBodySchema, await jsonBody(c), "release request");
    try {
      statusOf(target);
      const res = await api.releaseWith(target, body.reason, {
        by: body.by ?? "api",
        force: body.force ?? false,
      });
      return c.json({ segments: statusOf(target), released: res });
    } catch (e) {
      mapError(e);
    }
  });

  app.post("/bypass/:segment/set", async (c) => {
    const target = c.req.param("segment");
    const body = parseOr400(bypassSetBodySchema, await jsonBody(c), "set request");
    try {
      if (target === "all") {
        throw new ApiError(400, "bad_request", "set takes one segment, not all", {
          segment: "one segment name",
        });
      }
      await api.set(target, body.mode, body.by ?? "api");
      return c.json({ segments: statusOf(target) });
    } catch (e) {
      mapError(e);
    }
  });

  return app;
}
