/**
 * HTTP API of the updater (mounted under /api):
 *
 * - `GET  /update`               slots, boot env, activation, progress, history
 * - `POST /update`               body `application/octet-stream` = the bundle (streamed, never
 *                                buffered whole; `?allowDowngrade=1`), or JSON `{"url", "allowDowngrade"}`
 * - `POST /update/activate`      bypass hold, then switch into the installed slot
 * - `POST /update/mark-good`     JSON `{"slot": "booted" | "other" | bootname}` (default booted)
 * - `POST /update/mark-bad`      same (default other)
 *
 * Errors are thrown (UpdateError carries its status); the web app maps them.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { ApiError, jsonBody, parseOr400 } from "../web/errors.ts";
import type { UpdateModule } from "./types.ts";
import { type ByteSource, streamSource } from "./stream.ts";
import { apiDoc } from "../web/openapi.ts";

// The upload is read as a stream and bounded by the bundle format, not by the web
// layer's default body limit (JSON bodies here still get that limit).
apiDoc("POST", "/api/update", { summary: "install a bundle (upload or URL)", bodyLimit: "stream" });

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

  app.get("/update", async (c) => c.json(await mod.fullStatus()));

  app.post("/update", async (c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") {
      const body = parseOr400(urlBodySchema, await jsonBody(c), "install request");
      const r = await mod.installFrom(body.url, { allowDowngrade: body.allowDowngrade });
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
        await mod.installStream(view, "upload", { allowDowngrade: q.allowDowngrade }),
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

  app.post("/update/activate", async (c) => c.json(await mod.activate()));

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
      return c.json(await fn(body.slot ?? dflt));
    });
  }
  return app;
}
