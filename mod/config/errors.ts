/**
 * Errors of the configuration: one, naming every bad field.
 * @module
 */
import { KeepwireError } from "../errors.ts";

/**
 * A configuration that does not validate; `problems` has one `path: reason` line per bad
 * field (HTTP 400 `invalid_config`; `fields` maps each path to its reason where the line
 * has one). The CLI exits 2 with it.
 */
export class ConfigError extends KeepwireError {
  /** One `path: reason` line per problem. */
  readonly problems: string[];
  /** Build from problem lines; `source` names the file or "embedded default". */
  constructor(source: string, problems: string[]) {
    super(400, "invalid_config", `invalid configuration (${source}):\n  ${problems.join("\n  ")}`, {
      fields: fieldsOf(problems),
    });
    this.problems = problems;
  }
}

/** `path: reason` lines as a map (lines without a path are left out). */
function fieldsOf(problems: string[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const p of problems) {
    const i = p.indexOf(": ");
    if (i > 0 && !/\s/.test(p.slice(0, i).replace(/ \(name "[^"]*"\)/g, ""))) {
      out[p.slice(0, i)] = p.slice(i + 2);
    }
  }
  return Object.keys(out).length ? out : undefined;
}
