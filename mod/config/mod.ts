/**
 * Configuration: the zod schema, the embedded default, JSON/JSONC files, env
 * overrides, and error messages that name each bad field.
 * @module
 */
import type { ParseError } from "jsonc-parser";
import type { z } from "zod";
import { type Config, configSchema, typeName } from "./schema.ts";
import { DEFAULT_CONFIG } from "./defaults.ts";
import { ConfigError } from "./errors.ts";
import { subsystemProblems } from "../supervisor/config.ts";
import { READ_LIMITS, readTextFileBounded } from "../fs.ts";
import { renamedGovernorKeys } from "../governor/config.ts";

export { type Config, type ConfigInput, configSchema, listenSchema } from "./schema.ts";
export { DEFAULT_CONFIG } from "./defaults.ts";
export { ConfigError } from "./errors.ts";

/**
 * Render a zod path as `a.b[0].c`. With `root` (the input), an array element that
 * has a name is shown with it: `subsystems[1] (name "foo").heartbeat`,
 * `hardware.bypass.segments[0] (name "lan").gpio`.
 */
export function formatPath(path: readonly PropertyKey[], root?: unknown): string {
  let out = "";
  let node: unknown = root;
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
    node = node && typeof node === "object"
      ? (node as Record<PropertyKey, unknown>)[p as string]
      : undefined;
    if (typeof p === "number" && node && typeof node === "object") {
      const name = (node as { name?: unknown }).name;
      if (typeof name === "string") out += ` (name ${JSON.stringify(name)})`;
    }
  }
  return out || "(root)";
}

/** Turn zod issues into `path: reason` lines a person can act on (`root`: see formatPath). */
export function formatIssues(issues: readonly z.core.$ZodIssue[], root?: unknown): string[] {
  const lines: string[] = [];
  for (const iss of issues) {
    const where = formatPath(iss.path, root);
    if (iss.code === "invalid_type" && !iss.message.startsWith('expected "')) {
      lines.push(`${where}: expected ${iss.expected}, got ${typeName(iss.input)}`);
    } else if (iss.code === "unrecognized_keys") {
      for (const k of iss.keys) {
        lines.push(`${formatPath([...iss.path, k], root)}: unknown field`);
      }
    } else if (iss.code === "invalid_union" && iss.errors.length) {
      const inner = iss.errors.flat();
      lines.push(
        ...formatIssues(inner.map((i) => ({ ...i, path: [...iss.path, ...i.path] })), root),
      );
    } else {
      lines.push(`${where}: ${iss.message}`);
    }
  }
  return [...new Set(lines)];
}

/** Validate an object against the schema; throws ConfigError naming each bad field. */
export function validateConfig(input: unknown, source = "config"): Config {
  const renamed = renamedGovernorKeys((input as { governor?: unknown } | null)?.governor);
  if (renamed.length) throw new ConfigError(source, renamed);
  // jitless: zod's compiled fast path pays off over many parses; the config is parsed once a
  // start, and compiling a parser for each of its objects cost ~10 ms of it (so the sections'
  // default thunks parse jitless too)
  const r = configSchema.safeParse(input, { reportInput: true, jitless: true });
  if (!r.success) throw new ConfigError(source, formatIssues(r.error.issues, input));
  const cross = subsystemProblems(r.data.subsystems);
  if (cross.length) throw new ConfigError(source, cross);
  return r.data;
}

/** Deepest nesting of objects and arrays a config may have (the schema needs fewer than 10). */
export const MAX_CONFIG_DEPTH = 64;

/**
 * Where JSON/JSONC text first nests deeper than `max` objects/arrays, as
 * `line L, column C`, or null. Strings and comments are skipped; it does not validate.
 * (The parser and the schema recurse per level: a file nested thousands deep would
 * overflow the stack instead of getting an answer.)
 */
export function tooDeep(text: string, max: number): string | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (ch === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (ch === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
    } else if (ch === "{" || ch === "[") {
      if (++depth > max) {
        const before = text.slice(0, i);
        const line = before.split("\n").length;
        return `line ${line}, column ${i - before.lastIndexOf("\n")}`;
      }
    } else if (ch === "}" || ch === "]") depth--;
  }
  return null;
}

/**
 * Parse JSON or JSONC text; throws ConfigError with line:column on syntax errors and
 * on nesting deeper than {@link MAX_CONFIG_DEPTH}.
 * The JSONC parser is loaded on first use (it costs start-up time otherwise).
 */
export async function parseConfigText(text: string, source: string): Promise<unknown> {
  const deep = tooDeep(text, MAX_CONFIG_DEPTH);
  if (deep !== null) {
    throw new ConfigError(source, [
      `${deep}: nested deeper than ${MAX_CONFIG_DEPTH} objects/arrays (a keepwire config needs far fewer)`,
    ]);
  }
  const { parse: parseJsonc, printParseErrorCode } = await import("jsonc-parser");
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) {
    throw new ConfigError(
      source,
      errors.map((e) => {
        const before = text.slice(0, e.offset);
        const line = before.split("\n").length;
        const col = e.offset - before.lastIndexOf("\n");
        return `line ${line}, column ${col}: ${printParseErrorCode(e.error)}`;
      }),
    );
  }
  return value;
}

/** Where a configuration comes from and what overrides it. */
export interface LoadOptions {
  /** Config file (JSON or JSONC); when absent, the embedded default. */
  file?: string;
  /** Environment to read KEEPWIRE_LISTEN / KEEPWIRE_DATA / KEEPWIRE_GOVERNOR from. */
  env?: Record<string, string | undefined>;
  /** Overrides from the command line (applied last). */
  dataDir?: string;
  /** Override of web.listen from the command line. */
  listen?: string;
}

/**
 * Load the configuration: file (or embedded default), then env overrides, then
 * command-line overrides, validated once as a whole.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<Config> {
  let raw: Record<string, unknown>;
  let source = "embedded default";
  if (opts.file) {
    source = opts.file;
    let text: string;
    try {
      text = await readTextFileBounded(opts.file, READ_LIMITS.config, "config file");
    } catch (e) {
      throw new ConfigError(source, [`cannot read file: ${(e as Error).message}`]);
    }
    const v = await parseConfigText(text, source);
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new ConfigError(source, [`(root): expected object, got ${typeName(v)}`]);
    }
    raw = v as Record<string, unknown>;
  } else {
    raw = structuredClone(DEFAULT_CONFIG) as Record<string, unknown>;
  }
  const env = opts.env ?? Deno.env.toObject();
  const web = { ...(raw.web as Record<string, unknown> | undefined ?? {}) };
  if (env.KEEPWIRE_LISTEN) web.listen = env.KEEPWIRE_LISTEN;
  if (opts.listen) web.listen = opts.listen;
  if (Object.keys(web).length) raw.web = web;
  if (env.KEEPWIRE_DATA) raw.dataDir = env.KEEPWIRE_DATA;
  if (opts.dataDir) raw.dataDir = opts.dataDir;
  // KEEPWIRE_GOVERNOR=off|on: the load governor off or on whatever the file says (a
  // governor misbehaving in the field; test daemons, which must not depend on how busy
  // the machine running them is).
  const gov = env.KEEPWIRE_GOVERNOR;
  if (gov) {
    if (gov !== "on" && gov !== "off") {
      throw new ConfigError(source, [`KEEPWIRE_GOVERNOR: expected "on" or "off", got "${gov}"`]);
    }
    const section = raw.governor;
    raw.governor = {
      ...(section && typeof section === "object" && !Array.isArray(section) ? section : {}),
      enabled: gov === "on",
    };
  }
  return validateConfig(raw, source);
}

/** Split a validated `host:port` into parts. */
export function splitListen(listen: string): { hostname: string; port: number } {
  const i = listen.lastIndexOf(":");
  return {
    hostname: listen.slice(0, i).replace(/^\[|\]$/g, ""),
    port: Number(listen.slice(i + 1)),
  };
}
