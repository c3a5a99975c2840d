/** Helpers shared by CLI commands: exit codes, errors, config and data-dir resolution. */
import { type Config, ConfigError, loadConfig } from "../config/mod.ts";

/** Exit codes of the `keepwire` command. */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** The operation failed (hardware, daemon refused, verification failed, ...). */
  FAILURE: 1,
  /** Usage error: unknown command or flag, bad argument, invalid config or input. */
  USAGE: 2,
  /** A command that needs the daemon found none running. */
  NO_DAEMON: 3,
} as const;

/** An error that ends the command with an exit code and a message for stderr. */
export class CliError extends Error {
  /** Process exit code. */
  readonly exitCode: number;
  /** Build with exit code and message. */
  constructor(exitCode: number, message: string) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** Options most commands accept. */
export interface CommonOpts {
  /** Config file. */
  config?: string;
  /** Data directory override. */
  data?: string;
}

/**
 * Load the effective config for a command (exit 2 with field errors when invalid).
 * `env` defaults to the process environment; `config check` passes `{}`.
 */
export async function commandConfig(
  opts: CommonOpts & { listen?: string },
  env?: Record<string, string | undefined>,
): Promise<Config> {
  try {
    return await loadConfig({ file: opts.config, dataDir: opts.data, listen: opts.listen, env });
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(EXIT.USAGE, e.message);
    throw e;
  }
}

/** The data directory a command works on: --data, else the configured one. */
export async function commandDataDir(opts: CommonOpts): Promise<string> {
  if (opts.data) return opts.data;
  return (await commandConfig(opts)).dataDir;
}

/** Print JSON to stdout. */
export function printJson(v: unknown): void {
  console.log(JSON.stringify(v, null, 2));
}
