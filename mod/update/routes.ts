/**
 * HTTP API of the updater (mounted under /api):
 *
 * - `GET  /update`               slots, boot env, activation, progress, history
 * - `POST /update`               body `application/octet-stream` = the bundle (streamed, never
 *                                buffered whole; `?allowDowngrade=1`), or JSON `{"url", "allowDowngrade"}`
 * - `POST /update/activate`      bypass hold, then switch into the installed slot
 * - `POST /update/mark-good`     JSON `{"slot": "booted" | "other" | bootname}` (default booted)
 * - `POST /update/mark-bad`      same (default other)
 * @module
 */
import { Hono } from "hono";
import type { ErrorStatus } from "../errors.ts";
import { z } from "zod";
import { ApiError, jsonBody, parseOr400 } from "../web/errors.ts";
import { UpdateError, type UpdateErrorCode } from "./errors.ts";
import type { UpdateModule } from "./mod.ts";
import { type ByteSource, streamSource } from "./stream.ts";

const STATUS: Record<UpdateErrorCode, ErrorStatus> = {
  "not-a-bundle": 422,
  "unsupported-format": 422,
  "unsigned": 422,
  "unknown-key": 422,
  "bad-signature": 422,
  "bad-manifest": 422,
  "bad-key": 500,
  "truncated": 422,
  "trailing-data": 422,
  "hash-mismatch": 422,
  "incompatible": 422,
  "downgrade": 422,
  "no-slot": 422,
  "slot-too-small": 422,
  "booted-unknown": 500,
  "io": 500,
  "download": 502,
  "hook-failed": 500,
  "busy": 409,
  "boot-env": 500,
  "cancelled": 409,
  "bad-request": 400,
};

/** Turn an UpdateError into the API error shape (code = the update error code). */
export function toApiError(e: unknown): unknown {
  if (e instanceof UpdateError) return new ApiError(STATUS[e.code] ?? 500, e.code, e.message);
  return e;
}

const flag = z.union([
  z.boolean(),
  z.enum(["1", "0", "true", "false"]).transform((v) => v === "1" || v === "true"),
]);

const urlBodySchema = z.strictObject({
  url: z.string().regex(/^https?:\/\//i, "an http:// or https:// URL"),
  allowDowngrade: z.boolean().default(false),
});

const markSchema = z.strictObject({
  slot: z.string().min(1).optional(),
});

const querySchema = z.strictObject({
  allowDowngrade: flag.optional(),
});

/** The routes of the update module. */
export function updateRoutes(mod: UpdateModule): Hono {
  const app = new Hono();
  const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw toApiError(e);
    }
  };

  app.get("/update", async (c) => c.json(await wrap(() => mod.fullStatus())));

  app.post("/update", async (c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") {
      const body = parseOr400(urlBodySchema, await jsonBody(c), "install request");
      const r = await wrap(() =>
        mod.installFrom(body.url, { allowDowngrade: body.allowDowngrade })
      );
      return c.json(r);
    }
    if (type !== "application/octet-stream" && type !== "application/x-keepwire-bundle") {
      throw new ApiError(
        415,
        "unsupported_media_type",
        `send the bundle as application/octet-stream (streamed), or JSON {"url": ...}; got ${
          type || "no content type"
        }`,
      );
    }
    const q = parseOr400(querySchema, c.req.query(), "query");
    const body = c.req.raw.body;
    if (!body) throw new ApiError(400, "bad_request", "empty body: upload the bundle");
    const len = c.req.header("content-length");
    const size = len && /^\d+$/.test(len) ? Number(len) : undefined;
    const src = streamSource(body, size);
    // The service closes its source when done; keep the body open so that after a
    // rejection the rest of the upload is read and the client gets the answer.
    const view: ByteSource = {
      read: (b) => src.read(b),
      get size() {
        return src.size;
      },
      get offset() {
        return src.offset;
      },
      close: () => {},
    };
    try {
      return c.json(
        await wrap(() => mod.installStream(view, "upload", { allowDowngrade: q.allowDowngrade })),
      );
    } catch (e) {
      const scratch = new Uint8Array(1 << 20);
      try {
        while ((await src.read(scratch)) !== null) { /* drain */ }
      } catch { /* client gone */ }
      throw e;
    } finally {
      src.close();
    }
  });

  app.post("/update/activate", async (c) => c.json(await wrap(() => mod.activate())));

  for (
    const [path, fn, dflt] of [
      ["/update/mark-good", (s: string) => mod.service.markGood(s), "booted"],
      ["/update/mark-bad", (s: string) => mod.service.markBad(s), "other"],
    ] as const
  ) {
    app.post(path, async (c) => {
      const text = await c.req.text();
      let raw: unknown = {};
      if (text.trim()) {
        try {
          raw = JSON.parse(text);
        } catch {
          throw new ApiError(400, "bad_request", "request body must be JSON");
        }
      }
      const body = parseOr400(markSchema, raw, "mark request");
      return c.json(await wrap(() => fn(body.slot ?? dflt)));
    });
  }
  return app;
}
