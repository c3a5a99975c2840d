/**
 * The configuration as the settings page and GET-side readers see it: walked together with
 * its JSON Schema (generated from the zod config schema), so every field carries its
 * description, and secrets are redacted by schema marking — a field marked
 * `.meta({ writeOnly: true })` in its config schema (JSON Schema's `writeOnly`) — never
 * by matching field names (which hid `hardware.bypass` for containing "pass").
 * @module
 */
import { z } from "zod";
import { configSchema } from "../../config/schema.ts";

/** A JSON Schema node (as z.toJSONSchema writes it). */
export type SchemaNode = {
  type?: string | string[];
  description?: string;
  writeOnly?: boolean;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  allOf?: SchemaNode[];
  $ref?: string;
  $defs?: Record<string, SchemaNode>;
  const?: unknown;
};

/** What a redacted secret reads as. */
export const REDACTED = "(redacted)";

let cached: SchemaNode | null = null;

/** The JSON Schema of the parsed config (io "output"), built once. */
export function configSchemaJson(): SchemaNode {
  cached ??= z.toJSONSchema(configSchema, {
    io: "output",
    unrepresentable: "any",
  }) as SchemaNode;
  return cached;
}

function deref(root: SchemaNode, s: SchemaNode | undefined): SchemaNode | undefined {
  let n = s;
  for (let i = 0; n?.$ref && i < 20; i++) {
    const m = /^#\/\$defs\/(.+)$/.exec(n.$ref);
    n = m ? root.$defs?.[m[1]] : undefined;
  }
  return n;
}

/** Variants of a node (anyOf/oneOf/allOf flattened), the node itself first. */
function variants(root: SchemaNode, s: SchemaNode | undefined): SchemaNode[] {
  const n = deref(root, s);
  if (!n) return [];
  const out = [n];
  for (const v of [...(n.anyOf ?? []), ...(n.oneOf ?? []), ...(n.allOf ?? [])]) {
    out.push(...variants(root, v));
  }
  return out;
}

/**
 * The schema of `key` inside an object value described by `s`: a declared property, or a
 * record's value schema. Unions pick the variant whose literal fields (`type: "sms"`) match.
 */
export function childSchema(
  root: SchemaNode,
  s: SchemaNode | undefined,
  key: string,
  value?: Record<string, unknown>,
): SchemaNode | undefined {
  const vs = variants(root, s);
  const fits = (v: SchemaNode) =>
    !value || !v.properties ||
    Object.entries(v.properties).every(([k, p]) => {
      const c = deref(root, p)?.const;
      return c === undefined || value[k] === c;
    });
  for (const v of vs) if (v.properties?.[key] && fits(v)) return deref(root, v.properties[key]);
  for (const v of vs) {
    if (v.additionalProperties && typeof v.additionalProperties === "object") {
      return deref(root, v.additionalProperties);
    }
  }
  return undefined;
}

/** The item schema of an array node. */
export function itemSchema(root: SchemaNode, s: SchemaNode | undefined): SchemaNode | undefined {
  for (const v of variants(root, s)) if (v.items) return deref(root, v.items);
  return undefined;
}

/** Is the node marked secret (`writeOnly`) in any of its variants? */
export function isSecret(root: SchemaNode, s: SchemaNode | undefined): boolean {
  return variants(root, s).some((v) => v.writeOnly === true);
}

/** The description of a node (first variant that has one). */
export function describeNode(root: SchemaNode, s: SchemaNode | undefined): string {
  return variants(root, s).find((v) => v.description)?.description ?? "";
}

/**
 * `value` with every field its schema marks secret replaced by {@link REDACTED}
 * (absent secrets stay absent). `schema` defaults to the config's.
 */
export function redactBySchema(value: unknown, schema?: SchemaNode): unknown {
  const root = schema ?? configSchemaJson();
  const walk = (v: unknown, s: SchemaNode | undefined): unknown => {
    if (s && isSecret(root, s)) return v === undefined || v === null ? v : REDACTED;
    if (Array.isArray(v)) return v.map((x) => walk(x, itemSchema(root, s)));
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(
        Object.entries(o).map(([k, x]) => [k, walk(x, childSchema(root, s, k, o))]),
      );
    }
    return v;
  };
  return walk(value, root);
}

/** One row of the settings page: a leaf field, its value (as text) and meaning. */
export interface SettingRow {
  /** Dotted path below the section, e.g. `tls.enabled`, `slots.rootfs.a.device`. */
  path: string;
  /** The value as shown (secrets already redacted). */
  value: string;
  /** The schema's description of the field. */
  description: string;
}

/** One section of the settings page (a top-level config key). */
export interface SettingSection {
  /** The top-level key. */
  name: string;
  /** Its description. */
  description: string;
  /** Its leaf fields. */
  rows: SettingRow[];
}

function show(v: unknown): string {
  if (v === undefined) return "—";
  if (typeof v === "string") return v === "" ? '""' : v;
  return JSON.stringify(v);
}

/** The (already redacted) config as sections of described rows. */
export function settingSections(config: unknown): SettingSection[] {
  const root = configSchemaJson();
  const redacted = redactBySchema(config, root) as Record<string, unknown>;
  const out: SettingSection[] = [];
  for (const [name, v] of Object.entries(redacted ?? {})) {
    const s = childSchema(root, root, name, redacted);
    const rows: SettingRow[] = [];
    // a leaf without its own description (a level inside a thresholds map) reads its
    // nearest described parent's
    const walk = (x: unknown, sch: SchemaNode | undefined, path: string, inherited: string) => {
      const own = describeNode(root, sch);
      const isObj = x && typeof x === "object" && !Array.isArray(x);
      const arrOfObj = Array.isArray(x) && x.some((e) => e && typeof e === "object");
      if (isObj && Object.keys(x as object).length) {
        const o = x as Record<string, unknown>;
        for (const [k, c] of Object.entries(o)) {
          walk(c, childSchema(root, sch, k, o), path ? `${path}.${k}` : k, own || inherited);
        }
      } else if (arrOfObj) {
        (x as unknown[]).forEach((e, i) =>
          walk(e, itemSchema(root, sch), `${path}[${i}]`, own || inherited)
        );
      } else {
        rows.push({ path: path || name, value: show(x), description: own || inherited });
      }
    };
    walk(v, s, "", "");
    out.push({ name, description: describeNode(root, s), rows });
  }
  return out;
}
