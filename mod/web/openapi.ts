/**
 * The OpenAPI document at /api/openapi.json, generated from the registered routes
 * and the same zod schemas that validate them.
 * @module
 */
import { z } from "zod";
import { isPublic } from "./public_paths.ts";

/** What a route documents about itself. */
export interface ApiDoc {
  /** One line. */
  summary: string;
  /** Query schema (zod object). */
  query?: z.ZodType;
  /** JSON body schema. */
  body?: z.ZodType;
  /** Tag (module). */
  tag?: string;
  /**
   * Request body bound in bytes, or `"stream"` for a route that reads its body as a
   * stream and bounds it itself (bundle upload). Default: {@link BODY_LIMITS}.
   */
  bodyLimit?: number | "stream";
}

/** Default request body bounds (bytes): public routes get the small one. */
export const BODY_LIMITS = { public: 16 * 1024, signedIn: 1024 * 1024 } as const;

const DOCS = new Map<string, ApiDoc>();

const LIMITS: { method: string; re: RegExp; limit: number | "stream" }[] = [];

/** Register docs for `METHOD /api/path` (Hono path syntax, e.g. `/api/bypass/:segment/hold`). */
export function apiDoc(method: string, path: string, doc: ApiDoc): void {
  DOCS.set(`${method.toUpperCase()} ${path}`, doc);
  if (doc.bodyLimit !== undefined) {
    const re = new RegExp(
      "^" + path.split("/").map((seg) =>
        seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      ).join("/") + "$",
    );
    LIMITS.push({ method: method.toUpperCase(), re, limit: doc.bodyLimit });
  }
}

/** The body bound a route declared with {@link apiDoc}, if any. */
export function declaredBodyLimit(method: string, path: string): number | "stream" | undefined {
  return LIMITS.find((l) => l.method === method && l.re.test(path))?.limit;
}

function jsonSchema(s: z.ZodType): Record<string, unknown> {
  const j = z.toJSONSchema(s, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  delete j.$schema;
  return j;
}

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        fields: { type: "object", additionalProperties: { type: "string" } },
      },
    },
  },
};

/** Build the document from Hono's route list. */
export function buildOpenApi(
  routes: { method: string; path: string }[],
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.method === "ALL" || !r.path.startsWith("/api/") || r.path.includes("*")) continue;
    const oaPath = r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const doc = DOCS.get(`${r.method} ${r.path}`);
    const params: Record<string, unknown>[] = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((
      m,
    ) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    if (doc?.query) {
      const qs = jsonSchema(doc.query) as {
        properties?: Record<string, unknown>;
        required?: string[];
      };
      for (const [name, schema] of Object.entries(qs.properties ?? {})) {
        params.push({ name, in: "query", required: qs.required?.includes(name) ?? false, schema });
      }
    }
    const op: Record<string, unknown> = {
      summary: doc?.summary ?? `${r.method} ${r.path}`,
      tags: [doc?.tag ?? r.path.split("/")[2]],
      parameters: params,
      responses: {
        "200": { description: "OK", content: { "application/json": {} } },
        "400": {
          description: "Bad request",
          content: { "application/json": { schema: errorSchema } },
        },
        ...(isPublic(r.path) ? {} : {
          "401": {
            description: "No session or token",
            content: { "application/json": { schema: errorSchema } },
          },
        }),
      },
      ...(isPublic(r.path) ? { security: [] } : {}),
    };
    if (doc?.body) {
      op.requestBody = {
        required: true,
        content: { "application/json": { schema: jsonSchema(doc.body) } },
      };
    }
    (paths[oaPath] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        session: { type: "apiKey", in: "cookie", name: "kw_session" },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
  };
}
