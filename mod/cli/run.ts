/**
 * `keepwire run`: its options are declared once here and used both by the
 * commander program (help, errors) and by main.ts's fast path, which parses them
 * with node:util parseArgs so the runtime starts without loading commander.
 * @module
 */
import { parseArgs } from "node:util";
import { CliError, commandConfig } from "./common.ts";

/** One option of `run`. */
export interface RunOption {
  /** Long name. */
  long: "config" | "data" | "listen";
  /** Short letter. */
  short: string;
  /** Value placeholder. */
  arg: string;
  /** Help text. */
  help: string;
}

/** The options of `keepwire run`. */
export const RUN_OPTIONS: readonly RunOption[] = [
  {
    long: "config",
    short: "c",
    arg: "file",
    help: "config file (JSON/JSONC); default: embedded default",
  },
  {
    long: "data",
    short: "d",
    arg: "dir",
    help: "data directory (overrides config and KEEPWIRE_DATA)",
  },
  {
    long: "listen",
    short: "l",
    arg: "host:port",
    help: "web UI/API address (overrides config and KEEPWIRE_LISTEN)",
  },
];

/** Parsed options of `run`. */
export interface RunOpts {
  /** Config file. */
  config?: string;
  /** Data dir. */
  data?: string;
  /** Listen address. */
  listen?: string;
}

/**
 * Parse `run` arguments without commander. Returns null when they are not plain
 * (help asked, unknown flag, stray argument): the caller then lets commander
 * handle them so the user gets the usual help or usage error.
 */
export function fastParseRun(args: string[]): RunOpts | null {
  if (args.some((a) => a === "-h" || a === "--help")) return null;
  try {
    const { values, positionals } = parseArgs({
      args,
      options: Object.fromEntries(
        RUN_OPTIONS.map((o) => [o.long, { type: "string" as const, short: o.short }]),
      ),
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length) return null;
    return values as RunOpts;
  } catch {
    return null;
  }
}

/** Run the appliance until a signal; throws CliError for bad config or a failed run. */
export async function runCommand(opts: RunOpts): Promise<void> {
  const config = await commandConfig(opts);
  const { runUntilSignal } = await import("../runtime.ts");
  const code = await runUntilSignal(config);
  if (code !== 0) throw new CliError(code, "keepwire stopped with errors");
}
