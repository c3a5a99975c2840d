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
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";
import {
  activateAnswerSchema,
  installResultSchema,
  markAnswerSchema,
  updateFullStatusSchema,
  updateModuleStatusSchema,
} from "./status.ts";

const flag = z.lazy(() =>
  z.union([
    z.boolean(),
    z.enum(["1", "0", "true", "false"]).transform((v) => v === "1" || v === "true"),
  ])
);

const urlBodySchema = z.lazy(() =>
  z.strictObject({
    url: z.string().regex(/^https?:\/\//i, "an http:// or https:// URL"),
    allowDowngrade: z.boolean().default(false),
  })
);

const markSchema = z.lazy(() =>
  z.strictObject({
    slot: z.string().min(1).optional(),
  })
);

const querySchema = z.lazy(() =>
  z.strictObject({
    allowDowngrade: flag.optional(),
  })
);

statusDoc("update", updateModuleStatusSchema);
apiDoc("GET", "/api/update", {
  operationId: "getUpdateStatus",
  summary: "slots, boot env, update state, install progress, health gate and history",
  response: updateFullStatusSchema,
});
// The upload is read as a stream and bounded by the bundle format, not by the web
// layer's default body limit (JSON bodies here still get that limit).
apiDoc("POST", "/api/update", {
  operationId: "installUpdate",
  summary: "install a bundle into the inactive slot: the bundle streamed, or JSON {url}",
  query: querySchema,
  body: urlBodySchema,
  otherBodies: {
    "application/octet-stream": "the .kwb bundle, streamed (never buffered whole)",
    "application/x-keepwire-bundle": "the same",
  },
  bodyLimit: "stream",
  response: installResultSchema,
  errors: {
    409: "an install is already running",
    415: "neither a bundle stream nor JSON",
    422: "the bundle is refused (signature, compatible, version, image)",
    502: "the bundle URL could not be downloaded",
  },
});
apiDoc("POST", "/api/update/activate", {
  operationId: "activateUpdate",
  summary: "hold the bypass, then switch into the installed slot (reboot or restart)",
  response: activateAnswerSchema,
  errors: { 409: "busy: an install runs or a slot is on trial" },
});
apiDoc("POST", "/api/update/mark-good", {
  operationId: "markSlotGood",
  summary: "mark a slot good (default: the booted one)",
  body: markSchema,
  bodyOptional: true,
  response: markAnswerSchema,
});
apiDoc("POST", "/api/update/mark-bad", {
  operationId: "markSlotBad",
  summary: "mark a slot bad (default: the other one)",
  body: markSchema,
  bodyOptional: true,
  response: markAnswerSchema,
});

/** The routes of the update module. */
export function updateRoutes(mod: UpdateModule): Hono {
  const app = new Hono();

  app.get("/update", async (c) => answer(c, updateFullStatusSchema, await mod.fullStatus()));

  app.post("/update", async (c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type === "application/json") {
      const body = parseOr400(urlBodySchema, await jsonBody(c), "install request");
      const r = await mod.installFrom(body.url, { allowDowngrade: body.allowDowngrade });
      return answer(c, installResultSchema, r);
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
      return answer(
        c,
        installResultSchema,
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

  app.post(
    "/update/activate",
    async (c) => answer(c, activateAnswerSchema, await mod.activate()),
  );

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
      return answer(c, markAnswerSchema, await fn(body.slot ?? dflt));
    });
  }
  return app;
}
