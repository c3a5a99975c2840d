/**
 * Generates docs/config.md (the configuration reference) from the zod schema.
 * `deno task docs` writes it; tests/config_docs_test.ts fails when it is stale.
 * @module
 */
import { z } from "zod";
import { configSchema } from "./schema.ts";

type Json = Record<string, unknown>;

function typeOf(s: Json): string {
  if (s.enum) return (s.enum as unknown[]).map((v) => JSON.stringify(v)).join(" \\| ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf) return (s.anyOf as Json[]).map(typeOf).join(" \\| ");
  if (s.oneOf) return (s.oneOf as Json[]).map(typeOf).join(" \\| ");
  if (s.type === "array") {
    if (s.prefixItems) return `[${(s.prefixItems as Json[]).map(typeOf).join(", ")}]`;
    return `${s.items ? typeOf(s.items as Json) : "any"}[]`;
  }
  if (s.type === "object" && s.additionalProperties && !s.properties) {
    return `map of ${typeOf(s.additionalProperties as Json)}`;
  }
  if (Array.isArray(s.type)) return s.type.join(" \\| ");
  return String(s.type ?? "any");
}

function fmtDefault(v: unknown): string {
  if (v === undefined) return "";
  const s = JSON.stringify(v);
  return s.length > 60 ? "`…` (see `keepwire config show`)" : `\`${s.replace(/\|/g, "\\|")}\``;
}

/** Keys of per-level maps (governor): their fields take the map's meaning. */
const LEVEL_KEYS = new Set(["normal", "elevated", "overload", "severe"]);

/** The discriminator of a variant object, e.g. `type: "http"`. */
function discriminator(v: Json): string | undefined {
  for (const [k, p] of Object.entries((v.properties ?? {}) as Record<string, Json>)) {
    if (p.const !== undefined) return `\`${k}\`: ${JSON.stringify(p.const)}`;
  }
  return undefined;
}

/**
 * What a field means: its own description; else, for a per-level map's entry, the map's
 * meaning at that level; for a variant's discriminator, that it selects the variant.
 */
function meaning(s: Json, key: string, parent: string): string {
  if (s.description) return String(s.description);
  if (LEVEL_KEYS.has(key) && parent) return `${parent} — at level ${key}`;
  if (s.const !== undefined) return `selects this variant`;
  return "";
}

function walk(s: Json, path: string, rows: string[][], required: boolean, parent = ""): void {
  const key = path.slice(path.lastIndexOf(".") + 1);
  const desc = meaning(s, key, parent);
  const variants = (s.oneOf ?? s.anyOf) as Json[] | undefined;
  if (variants && variants.every((v) => v.type === "object" && v.properties)) {
    rows.push([`\`${path}\``, "one of the variants below", fmtDefault(s.default), desc]);
    variants.forEach((v, i) => {
      const d = discriminator(v);
      const vd = v.description ? String(v.description) : d ? `the variant with ${d}` : desc;
      walk({ ...v, description: vd }, `${path} (variant ${i + 1})`, rows, required, desc);
    });
    return;
  }
  const props = s.properties as Record<string, Json> | undefined;
  if (s.type === "object" && props) {
    if (path) rows.push([`\`${path}\``, "object", "", desc]);
    const req = new Set((s.required as string[] | undefined) ?? []);
    for (const [k, v] of Object.entries(props)) {
      walk(v, path ? `${path}.${k}` : k, rows, req.has(k) && v.default === undefined, desc);
    }
    return;
  }
  if (s.type === "array" && (s.items as Json | undefined)?.type === "object") {
    rows.push([`\`${path}\``, "array of objects", fmtDefault(s.default), desc]);
    const item = s.items as Json;
    walk(
      item.description ? item : { ...item, description: `one entry of \`${path}\`` },
      `${path}[]`,
      rows,
      true,
      desc,
    );
    return;
  }
  if (
    s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object" &&
    (s.additionalProperties as Json).properties
  ) {
    rows.push([`\`${path}\``, "map of objects", fmtDefault(s.default), desc]);
    const item = s.additionalProperties as Json;
    walk(
      item.description ? item : { ...item, description: `one entry of \`${path}\`, by name` },
      `${path}.<name>`,
      rows,
      true,
      desc,
    );
    return;
  }
  const extra: string[] = [];
  if (s.pattern) extra.push(`pattern \`${String(s.pattern).replace(/\|/g, "\\|")}\``);
  if (s.minimum !== undefined) extra.push(`min ${s.minimum}`);
  if (s.maximum !== undefined && Number(s.maximum) < Number.MAX_SAFE_INTEGER) {
    extra.push(`max ${s.maximum}`);
  }
  if (required) extra.push("required");
  rows.push([
    `\`${path}\``,
    typeOf(s),
    fmtDefault(s.default),
    [desc, extra.join(", ")].filter(Boolean).join(" — "),
  ]);
}

/** The JSON Schema of a config file as written (io "input": fields with defaults are optional). */
export function configJsonSchema(): Json {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as Json;
}

/** Rows of the reference: field, type, default, meaning. */
export function configDocRows(): string[][] {
  const rows: string[][] = [];
  walk(configJsonSchema(), "", rows, false);
  return rows;
}

/** Render the configuration reference as markdown. */
export function renderConfigDocs(): string {
  const rows = configDocRows();
  const lines = [
    "# Configuration reference",
    "",
    "<!-- generated from the zod schema by `deno task docs`; tests fail when stale -->",
    "",
    "keepwire reads one JSON or JSONC file (`keepwire run --config FILE`); without one it runs",
    "on the embedded default (mock hardware, data in `./var`, web UI on 127.0.0.1:8080).",
    "`keepwire config show` prints the effective configuration; `keepwire config check FILE`",
    "validates a file and names every bad field. Environment overrides: `KEEPWIRE_LISTEN`",
    "(web.listen), `KEEPWIRE_DATA` (dataDir) and `KEEPWIRE_GOVERNOR` (`on`/`off`: governor.enabled);",
    "command-line flags override them.",
    "Unknown fields are errors.",
    "",
    "| field | type | default | meaning |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.map((c) => c.replace(/\n/g, " ")).join(" | ")} |`),
    "",
  ];
  return lines.join("\n");
}

/** docs/keepwire.schema.json: the JSON Schema of a config file, for editors. */
export function renderConfigJsonSchema(): string {
  const schema = configJsonSchema();
  const out = {
    $schema: schema.$schema,
    title: "keepwire configuration",
    description: "keepwire's config file (JSON or JSONC); reference: docs/config.md. " +
      "Generated from the zod schema by `deno task docs`.",
    ...schema,
  };
  return JSON.stringify(out, null, 2) + "\n";
}

if (import.meta.main) {
  const out = renderConfigDocs();
  if (Deno.args.includes("--write")) {
    const path = new URL("../../docs/config.md", import.meta.url);
    await Deno.writeTextFile(path, out);
    console.log(`wrote ${path.pathname}`);
    const schemaPath = new URL("../../docs/keepwire.schema.json", import.meta.url);
    await Deno.writeTextFile(schemaPath, renderConfigJsonSchema());
    console.log(`wrote ${schemaPath.pathname}`);
  } else console.log(out);
}
