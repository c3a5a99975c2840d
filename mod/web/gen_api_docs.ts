/**
 * Generates docs/api.md (the HTTP API reference: every operation with its operationId)
 * from the routes' apiDoc entries, the same source as GET /api/openapi.json.
 * `deno task docs` writes it; tests/openapi_test.ts fails when it is stale.
 * @module
 */
import "../runtime.ts";
import { apiDocs, isDocumented } from "./openapi.ts";
import { isPublic } from "./public_paths.ts";
import { SELF_SERVICE } from "./auth.ts";

// reads a route refuses to any role but admin (the route checks; listed here for the table)
const ADMIN_READS = new Set(["/api/repl/tails/:tail/file"]);

/** Render the API reference as markdown. */
export function renderApiDocs(): string {
  const byTag = new Map<string, string[]>();
  const rows = apiDocs().filter(([, path]) => isDocumented(path)).sort((a, b) =>
    a[1] === b[1] ? a[0].localeCompare(b[0]) : a[1].localeCompare(b[1])
  );
  for (const [method, path, doc] of rows) {
    const tag = doc.tag ?? (path.split("/")[2] || path.split("/")[1]);
    const media = Object.values(doc.responses ?? {}).find((r) => r.media)?.media;
    const answer = media
      ? `\`${media.split(";")[0]}\``
      : doc.response || Object.values(doc.responses ?? {}).some((r) => r.schema)
      ? "JSON"
      : "—";
    const errors = Object.keys(doc.errors ?? {}).join(", ") || "—";
    const access = isPublic(path)
      ? "public"
      : ADMIN_READS.has(path)
      ? "admin"
      : method === "GET" || SELF_SERVICE.has(path)
      ? "viewer"
      : "admin";
    (byTag.get(tag) ?? byTag.set(tag, []).get(tag)!).push(
      `| \`${doc.operationId}\` | \`${method} ${path}\` | ${
        doc.summary.replaceAll("|", "\\|")
      } | ` +
        `${answer} | ${errors} | ${access} |`,
    );
  }
  const out = [
    "# HTTP API reference",
    "",
    "<!-- generated from the routes' apiDoc entries by `deno task docs`; tests fail when stale -->",
    "",
    "The full document, with every request and response schema, is `GET /api/openapi.json`",
    "(OpenAPI 3.1). It is generated from the route definitions: each route registers an `apiDoc`",
    "entry (`mod/web/openapi.ts`) beside its handler with a stable `operationId`, the zod schemas",
    "that validate its path, query and body, and the zod schema of its answer, which the handler",
    "answers through. `tests/openapi_test.ts` validates the document with an OpenAPI 3.1 validator",
    "(`@seriousme/openapi-schema-validator`), fails on any route without an `apiDoc` entry, and",
    "checks real answers of every `GET` operation against their schemas.",
    "",
    'Every error answer is `{"error": {"code", "message", "fields"?}}` (the `Error` schema).',
    "Beyond the statuses listed per operation: 400 for a bad path, query or body (the fields",
    "named), 401 without a session or token, 403 for a cross-site request or a viewer's write,",
    "413 for a body over its bound, 503 when the load governor sheds the request.",
    "Access: `public` needs nothing, `viewer` any signed-in role or token, `admin` the admin role.",
    "",
  ];
  for (const [tag, lines] of [...byTag].sort((a, b) => a[0].localeCompare(b[0]))) {
    out.push(
      `## ${tag}`,
      "",
      "| operationId | route | what | answer | errors | access |",
      "| --- | --- | --- | --- | --- | --- |",
      ...lines,
      "",
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const text = renderApiDocs();
  if (Deno.args.includes("--write")) {
    const path = new URL("../../docs/api.md", import.meta.url);
    await Deno.writeTextFile(path, text);
    console.log(`wrote ${path.pathname}`);
  } else console.log(text);
}
