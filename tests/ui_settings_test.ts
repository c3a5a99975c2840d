// The settings page's view of the config: secrets redacted by schema marking (writeOnly),
// never by field name; every field described from the config schema.
import { assert, assertEquals } from "./helpers/assert.ts";
import { type ConfigInput, validateConfig } from "../mod/config/mod.ts";
import {
  configSchemaJson,
  REDACTED,
  type SchemaNode,
  settingSections,
} from "../mod/web/ui/config_view.ts";
import { redact } from "../mod/web/app.ts";

const WHSEC = "whsec_" + btoa("y".repeat(32));

function secretConfig() {
  return validateConfig({
    alert: {
      channels: {
        m: { type: "email", host: "h", from: "a@b.example.org", user: "u", password: "P1" },
        s: { type: "sms", url: "http://g/", password: "P2", apiKey: "P3" },
        w: { type: "webhook", url: "http://w/", secret: WHSEC },
      },
    },
  } as unknown as ConfigInput);
}

Deno.test("ui settings: secrets marked in the schema are redacted, wherever they sit", () => {
  const c = secretConfig();
  const text = JSON.stringify(redact(c));
  for (const s of ["P1", "P2", "P3", "whsec_"]) assert(!text.includes(s), `${s} not redacted`);
  const r = redact(c) as { alert: { channels: Record<string, Record<string, unknown>> } };
  assertEquals(r.alert.channels.s.password, REDACTED);
  assertEquals(r.alert.channels.w.secret, REDACTED);
  // not secrets: stay readable
  assertEquals(r.alert.channels.m.user, "u");
  assertEquals(r.alert.channels.w.url, "http://w/");
});

Deno.test("ui settings: a name that merely contains 'pass' (hardware.bypass) is not redacted", () => {
  const c = validateConfig({});
  const r = redact(c) as { hardware: { bypass: unknown } };
  assert(r.hardware.bypass !== REDACTED, "hardware.bypass was redacted by its name");
  assertEquals(JSON.stringify(r.hardware.bypass), JSON.stringify(c.hardware.bypass));
});

Deno.test("ui settings: every field whose name says secret is marked writeOnly in the schema", () => {
  // the mechanism is the marking; this catches a new secret field someone forgot to mark
  const root = configSchemaJson();
  const unmarked: string[] = [];
  const seen = new Set<SchemaNode>();
  const walk = (s: SchemaNode | undefined, path: string) => {
    if (!s || seen.has(s)) return;
    seen.add(s);
    for (const [k, p] of Object.entries(s.properties ?? {})) {
      if (/^(password|secret|apiKey|token|privateKey)$/i.test(k) && !p.writeOnly) {
        unmarked.push(`${path}.${k}`);
      }
      walk(p, `${path}.${k}`);
    }
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      walk(s.additionalProperties, `${path}.*`);
    }
    if (s.items) walk(s.items, `${path}[]`);
    for (const v of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) walk(v, path);
  };
  walk(root, "");
  assertEquals(unmarked, []);
});

Deno.test("ui settings: sections with descriptions, leaf rows described, secrets redacted", () => {
  const sections = settingSections(secretConfig());
  const names = sections.map((s) => s.name);
  for (const n of ["identity", "web", "hardware", "alert"]) assert(names.includes(n), n);
  for (const s of sections) assert(s.description, `section ${s.name} has no description`);
  const web = sections.find((s) => s.name === "web")!;
  const listen = web.rows.find((r) => r.path === "listen");
  assert(listen && listen.description, "web.listen has no description");
  const alert = sections.find((s) => s.name === "alert")!;
  const pw = alert.rows.find((r) => r.path === "channels.s.password")!;
  assertEquals(pw.value, REDACTED);
  assert(pw.description.includes("password"));
  const text = JSON.stringify(sections);
  for (const s of ["P1", "P2", "P3", WHSEC]) assert(!text.includes(s), `${s} shown`);
  const described = sections.flatMap((s) => s.rows).filter((r) => r.description).length;
  const all = sections.flatMap((s) => s.rows).length;
  assert(described / all > 0.9, `only ${described} of ${all} rows have a description`);
});
