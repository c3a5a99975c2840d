/**
 * The OpenAPI document at /api/openapi.json, generated from the registered routes
 * and the zod schemas that validate their requests and type their answers.
 *
 * Every route registers an {@link ApiDoc} with {@link apiDoc} next to its definition:
 * a stable `operationId`, the zod schemas of its path parameters, query and body, and
 * the zod schema of what it answers (the same schema the module's answer type is
 * inferred from, so the two cannot drift). Errors share one shape ({@link apiErrorSchema}).
 * `tests/openapi_test.ts` validates the document with an OpenAPI validator, checks that
 * every route of the app is documented, and checks real answers against their schemas.
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { isPublic } from "./public_paths.ts";

/**
 * Answer with JSON whose type is the one inferred from the route's documented
 * response schema: a field the schema does not have (or lacks) fails type checking.
 */
export function answer<S extends z.ZodType>(
  c: Context,
  _schema: S,
  body: z.output<S>,
  status: ContentfulStatusCode = 200,
): Response {
  return c.json(body as Record<string, unknown>, status);
}

/** Body of every API error: `{"error":{"code","message","fields"?}}` (see errors.ts). */
export const apiErrorSchema = z.object({
  error: z.object({
    code: z.string().describe("machine-readable: bad_request, not_found, unauthorized, ..."),
    message: z.string().describe("a sentence for a person"),
    fields: z.record(z.string(), z.string()).optional().describe(
      "per-field problems of a validation error (path → reason)",
    ),
  }),
});

/**
 * Compile-time check that a hand-written type and the output type of its schema have
 * the same fields: `sameType<X, z.output<typeof xSchema>>((v) => v, (v) => v);` fails
 * type checking, naming the field, when a field is added, renamed or removed on one
 * side only. Does nothing at run time.
 */
export function sameType<A, B>(_toB: (a: A) => B, _toA: (b: B) => A): void {}

/** One documented answer of a route. */
export interface ApiResponseDoc {
  /** One line. */
  description: string;
  /** Schema of a JSON answer (with `media` unset or JSON). */
  schema?: z.ZodType;
  /**
   * Media type when the answer is not JSON (`text/event-stream`, `text/plain`, ...);
   * `schemaText` then describes it in words.
   */
  media?: string;
  /** What a non-JSON answer holds. */
  schemaText?: string;
}

/** What a route documents about itself. */
export interface ApiDoc {
  /**
   * Stable, unique operation name (lowerCamelCase verb first: `listSubsystems`,
   * `holdBypass`). Clients generated from the document name their methods after it,
   * so it never changes with a path.
   */
  operationId: string;
  /** One line. */
  summary: string;
  /** Tag (module); default: the first path segment after /api. */
  tag?: string;
  /** Path parameter schema (zod object); default: every `:param` a string. */
  params?: z.ZodType;
  /** Query schema (zod object). */
  query?: z.ZodType;
  /** JSON body schema. */
  body?: z.ZodType;
  /** The body is optional (e.g. mark-good takes `{}` or nothing). */
  bodyOptional?: boolean;
  /** Request bodies in other media types (e.g. the bundle as `application/octet-stream`). */
  otherBodies?: Record<string, string>;
  /** Schema of the JSON success answer (status 200). */
  response?: z.ZodType;
  /** Other answers by status (e.g. 201, 204, 503 of /api/health, or a non-JSON 200). */
  responses?: Record<number, ApiResponseDoc>;
  /** Error answers this route gives beyond the common ones, by status: what they mean. */
  errors?: Record<number, string>;
  /**
   * Request body bound in bytes, or `"stream"` for a route that reads its body as a
   * stream and bounds it itself (bundle upload). Default: {@link BODY_LIMITS}.
   */
  bodyLimit?: number | "stream";
}

/** Default request body bounds (bytes): public routes get the small one. */
export const BODY_LIMITS = { public: 16 * 1024, signedIn: 1024 * 1024 } as const;

const DOCS = new Map<string, ApiDoc>();
const OPERATIONS = new Map<string, string>();
const STATUS_DOCS = new Map<string, z.ZodType>();

const LIMITS: { method: string; re: RegExp; limit: number | "stream" }[] = [];

/**
 * Register docs for `METHOD /path` (Hono path syntax with the `/api` prefix, e.g.
 * `/api/bypass/:segment/hold`). Throws when another route took the operationId.
 */
export function apiDoc(method: string, path: string, doc: ApiDoc): void {
  const key = `${method.toUpperCase()} ${path}`;
  const owner = OPERATIONS.get(doc.operationId);
  if (owner && owner !== key) {
    throw new Error(`operationId ${doc.operationId} of ${key} is taken by ${owner}`);
  }
  if (!/^[a-z][A-Za-z0-9]*$/.test(doc.operationId)) {
    throw new Error(`operationId ${doc.operationId} of ${key}: use lowerCamelCase`);
  }
  OPERATIONS.set(doc.operationId, key);
  DOCS.set(key, doc);
  if (doc.bodyLimit !== undefined) {
    const re = new RegExp(
      "^" + path.split("/").map((seg) =>
        seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      ).join("/") + "$",
    );
    LIMITS.push({ method: method.toUpperCase(), re, limit: doc.bodyLimit });
  }
}

/** Every registered route doc: `[method, path, doc]`, in registration order. */
export function apiDocs(): [string, string, ApiDoc][] {
  return [...DOCS].map(([key, doc]) => {
    const i = key.indexOf(" ");
    return [key.slice(0, i), key.slice(i + 1), doc];
  });
}

/** The registered doc of `METHOD /path` (Hono path syntax), if any. */
export function apiDocOf(method: string, path: string): ApiDoc | undefined {
  return DOCS.get(`${method.toUpperCase()} ${path}`);
}

/**
 * Register the schema of a module's part of /api/status (`modules.<name>`): the
 * schema its `status()` answer type is inferred from.
 */
export function statusDoc(module: string, schema: z.ZodType): void {
  STATUS_DOCS.set(module, schema);
}

/** The module status schemas registered with {@link statusDoc}, by module name. */
export function statusDocs(): ReadonlyMap<string, z.ZodType> {
  return STATUS_DOCS;
}

/** The body bound a route declared with {@link apiDoc}, if any. */
export function declaredBodyLimit(method: string, path: string): number | "stream" | undefined {
  return LIMITS.find((l) => l.method === method && l.re.test(path))?.limit;
}

/**
 * Routes that are not part of the API document: UI pages and their static files.
 * Everything else the app answers (all of /api, /metrics) must have an {@link apiDoc}.
 */
export function isDocumented(path: string): boolean {
  return path.startsWith("/api/") || path === "/metrics";
}

function jsonSchema(s: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const j = z.toJSONSchema(s, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete j.$schema;
  return j;
}

const ERROR_REF = { $ref: "#/components/schemas/Error" };

function errorAnswer(description: string): Record<string, unknown> {
  return { description, content: { "application/json": { schema: ERROR_REF } } };
}

/** Build the document from Hono's route list. */
export function buildOpenApi(
  routes: { method: string; path: string }[],
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.method === "ALL" || !isDocumented(r.path) || r.path.includes("*")) continue;
    const oaPath = r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const doc = DOCS.get(`${r.method} ${r.path}`);
    const pub = isPublic(r.path);
    const pathProps = doc?.params
      ? (jsonSchema(doc.params, "input") as { properties?: Record<string, unknown> }).properties ??
        {}
      : {};
    const params: Record<string, unknown>[] = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((
      m,
    ) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: pathProps[m[1]] ?? { type: "string" },
    }));
    if (doc?.query) {
      const qs = jsonSchema(doc.query, "input") as {
        properties?: Record<string, unknown>;
        required?: string[];
      };
      for (const [name, schema] of Object.entries(qs.properties ?? {})) {
        params.push({ name, in: "query", required: qs.required?.includes(name) ?? false, schema });
      }
    }
    const responses: Record<string, unknown> = {};
    if (doc?.response) {
      responses["200"] = {
        description: "OK",
        content: { "application/json": { schema: jsonSchema(doc.response, "output") } },
      };
    }
    for (const [status, a] of Object.entries(doc?.responses ?? {})) {
      const media = a.media ?? "application/json";
      responses[status] = {
        description: a.description,
        content: {
          [media]: a.schema
            ? { schema: jsonSchema(a.schema, "output") }
            : { schema: { type: "string", description: a.schemaText ?? a.description } },
        },
      };
    }
    if (!Object.keys(responses).length) responses["200"] = { description: "OK (undocumented)" };
    const hasInput = !!(doc?.query || doc?.body || doc?.params || doc?.otherBodies);
    if (hasInput) responses["400"] = errorAnswer("bad request: the fields named are wrong");
    if (!pub) responses["401"] = errorAnswer("no session or token");
    if (r.method !== "GET" && !pub) {
      responses["403"] = errorAnswer("refused: cross-site request, or the role may not do this");
    }
    if (doc?.body || doc?.otherBodies) responses["413"] = errorAnswer("request body too large");
    for (const [status, what] of Object.entries(doc?.errors ?? {})) {
      responses[status] = errorAnswer(what);
    }
    responses["503"] ??= errorAnswer("shed by the load governor; retry after Retry-After");
    responses.default = errorAnswer("unexpected error (500), or the data partition is full (507)");
    const op: Record<string, unknown> = {
      operationId: doc?.operationId ?? undocumentedId(r.method, r.path),
      summary: doc?.summary ?? `${r.method} ${r.path} (undocumented)`,
      tags: [doc?.tag ?? (r.path.split("/")[2] || r.path.split("/")[1])],
      parameters: params,
      responses,
      ...(pub ? { security: [] } : {}),
    };
    if (doc?.body || doc?.otherBodies) {
      const content: Record<string, unknown> = {};
      if (doc.body) content["application/json"] = { schema: jsonSchema(doc.body, "input") };
      for (const [media, what] of Object.entries(doc.otherBodies ?? {})) {
        content[media] = {
          schema: { type: "string", contentMediaType: media, description: what },
        };
      }
      op.requestBody = { required: !doc.bodyOptional, content };
    }
    (paths[oaPath] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: {
      schemas: { Error: jsonSchema(apiErrorSchema, "output") },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        session: { type: "apiKey", in: "cookie", name: "kw_session" },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
  };
}

/** A stable id for a route nobody documented (the coverage test fails on it anyway). */
function undocumentedId(method: string, path: string): string {
  const words = path.split("/").filter((s) => s && s !== "api").map((s) => s.replace(/^:/, "by-"))
    .join("-").split(/[^A-Za-z0-9]+/).filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0].toUpperCase() + w.slice(1)).join("") +
    "Undocumented";
}
