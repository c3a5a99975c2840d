// The configuration people can use: every field of docs/config.md says what it means,
// the JSON Schema for editors is in step with the zod schema, and the commented example
// file is a valid config that touches every section.
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { kw } from "./helpers/cli.ts";
import { configDocRows, configJsonSchema, renderConfigJsonSchema } from "../mod/config/gen_docs.ts";

const EXAMPLE = new URL("../examples/keepwire.jsonc", import.meta.url).pathname;
const SCHEMA_FILE = new URL("../docs/keepwire.schema.json", import.meta.url);

Deno.test("config docs: every field has a meaning", () => {
  const rows = configDocRows();
  assert(rows.length > 300, `only ${rows.length} rows`);
  // a meaning is words, not only the constraints the generator adds
  const blank = rows.filter((r) => !r[3] || /^(pattern|min|max|required)\b/.test(r[3]));
  assertEquals(blank.map((r) => r[0]), []);
});

Deno.test("docs/keepwire.schema.json is generated from the schema and up to date", async () => {
  const onDisk = await Deno.readTextFile(SCHEMA_FILE);
  assertEquals(onDisk, renderConfigJsonSchema(), "run `tools/deno task docs`");
  const s = JSON.parse(onDisk);
  assertEquals(s.$schema, "https://json-schema.org/draft/2020-12/schema");
  assertEquals(s.additionalProperties, false, "unknown fields are errors for editors too");
  assert(s.properties.log.properties.syslog, "the log section is in the schema");
});

Deno.test("examples/keepwire.jsonc: valid, commented, and it touches every section", async () => {
  const r = await kw(["config", "check", EXAMPLE]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "valid");
  const text = await Deno.readTextFile(EXAMPLE);
  assert(text.split("\n").filter((l) => l.trim().startsWith("//")).length >= 20, "comments");
  const { parse } = await import("jsonc-parser");
  const example = parse(text) as Record<string, unknown>;
  const sections = Object.keys(configJsonSchema().properties as Record<string, unknown>)
    .filter((k) => !["ha"].includes(k)); // HA needs a peer; docs/ha.md has its example
  assertEquals(sections.filter((k) => !(k in example)), []);

  // the check sees a mistake in it: a misspelt field is named
  const dir = await Deno.makeTempDir({ prefix: "kw-example-" });
  try {
    const bad = `${dir}/bad.jsonc`;
    await Deno.writeTextFile(bad, text.replace('"temperatureWarnC"', '"temperatureWarn"'));
    const b = await kw(["config", "check", bad]);
    assertEquals(b.code, 2, b.stdout);
    assertStringIncludes(b.stderr, "hardware.raid");
    assertStringIncludes(b.stderr, "temperatureWarn");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
