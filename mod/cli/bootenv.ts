/**
 * `keepwire bootenv list|get|set|unset` for field engineers: reads and writes the
 * boot environment directly (no daemon needed), with the configured backend
 * (`update.bootloader`) or one named on the command line.
 * @module
 */
import type { Command } from "commander";
import {
  type BootConfigInput,
  type BootEnv,
  type BootEnvChanges,
  BootEnvError,
  bootVarNameProblem,
  createBootEnv,
} from "../../hw/boot/mod.ts";
import { CliError, commandConfig, type CommonOpts, EXIT, printJson } from "./common.ts";

/** Options every bootenv command takes. */
interface BootenvOpts extends CommonOpts {
  backend?: string;
  file?: string;
  create?: boolean;
  json?: boolean;
}

const BACKENDS = ["grubenv", "uboot", "file"] as const;

/** The backend the options name, else the configured `update.bootloader`. */
async function openBootEnv(opts: BootenvOpts): Promise<BootEnv> {
  let cfg: BootConfigInput;
  if (opts.backend === undefined) {
    if (opts.file !== undefined) {
      throw new CliError(EXIT.USAGE, "--file needs --backend grubenv|uboot|file");
    }
    cfg = (await commandConfig(opts)).update.bootloader;
  } else if (opts.backend === "grubenv" || opts.backend === "file") {
    if (!opts.file) throw new CliError(EXIT.USAGE, `--backend ${opts.backend} needs --file PATH`);
    cfg = opts.backend === "grubenv"
      ? { backend: "grubenv", file: opts.file, create: opts.create ?? false }
      : { backend: "file", file: opts.file };
  } else if (opts.backend === "uboot") {
    cfg = opts.file ? { backend: "uboot", config: opts.file } : { backend: "uboot" };
  } else {
    throw new CliError(
      EXIT.USAGE,
      `unknown --backend ${JSON.stringify(opts.backend)} (one of ${BACKENDS.join(", ")})`,
    );
  }
  try {
    return createBootEnv(cfg);
  } catch (e) {
    throw toCliError(e);
  }
}

/** Await a backend call, mapping its errors to exit codes. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toCliError(e);
  }
}

/** Map backend errors to exit codes: bad input 2, everything else 1. */
function toCliError(e: unknown): unknown {
  if (!(e instanceof BootEnvError)) return e;
  const usage = e.code === "invalid-name" || e.code === "invalid-value" ||
    e.code === "invalid-config";
  return new CliError(usage ? EXIT.USAGE : EXIT.FAILURE, e.message);
}

/** Parse `NAME=VALUE` arguments; exit 2 naming the first bad one. */
export function parseAssignments(args: string[]): BootEnvChanges {
  if (args.length === 0) throw new CliError(EXIT.USAGE, "set needs at least one NAME=VALUE");
  const out: BootEnvChanges = Object.create(null);
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq < 0) {
      throw new CliError(EXIT.USAGE, `bad argument ${JSON.stringify(arg)}: expected NAME=VALUE`);
    }
    const name = arg.slice(0, eq);
    const problem = bootVarNameProblem(name);
    if (problem) throw new CliError(EXIT.USAGE, `bad argument ${JSON.stringify(arg)}: ${problem}`);
    if (Object.hasOwn(out, name)) {
      throw new CliError(EXIT.USAGE, `bad argument ${JSON.stringify(arg)}: ${name} given twice`);
    }
    out[name] = arg.slice(eq + 1);
  }
  return out;
}

function checkNames(names: string[]): void {
  for (const n of names) {
    const problem = bootVarNameProblem(n);
    if (problem) throw new CliError(EXIT.USAGE, `bad argument ${JSON.stringify(n)}: ${problem}`);
  }
}

function withBackendOptions(c: Command): Command {
  return c
    .option("-b, --backend <backend>", "grubenv | uboot | file (default: the configured one)")
    .option("-f, --file <path>", "grubenv file, JSON file, or (uboot) fw_env.config")
    .option("-c, --config <file>", "keepwire config file (used without --backend)")
    .option("-d, --data <dir>", "data directory");
}

/** Register the bootenv commands. */
export function registerBootenvCommands(program: Command): void {
  const be = program.command("bootenv")
    .description("read and write the boot environment (grubenv, U-Boot env, JSON file)");

  withBackendOptions(be.command("list"))
    .description("print every variable as NAME=VALUE")
    .option("--json", "print JSON")
    .action(async (opts: BootenvOpts) => {
      const env = await openBootEnv(opts);
      const vars = await call(() => env.list());
      if (opts.json) return printJson({ source: env.describe(), vars });
      for (const [k, v] of Object.entries(vars)) console.log(`${k}=${v}`);
    });

  withBackendOptions(be.command("get"))
    .description("print the value of NAME (exit 1 when it is not set)")
    .argument("<name>", "variable name")
    .option("--json", "print JSON")
    .action(async (name: string, opts: BootenvOpts) => {
      checkNames([name]);
      const env = await openBootEnv(opts);
      const value = await call(() => env.get(name));
      if (opts.json) return printJson({ name, value: value ?? null });
      if (value === undefined) throw new CliError(EXIT.FAILURE, `${name} is not set`);
      console.log(value);
    });

  withBackendOptions(be.command("set"))
    .description("set variables in one atomic write (NAME= sets an empty value)")
    .argument("<assignments...>", "NAME=VALUE pairs")
    .option("--create", "grubenv: create the 1024-byte block when the file is missing")
    .action(async (args: string[], opts: BootenvOpts) => {
      const changes = parseAssignments(args);
      const env = await openBootEnv(opts);
      await call(() => env.set(changes));
      console.log(`set ${Object.keys(changes).join(", ")} in ${env.describe()}`);
    });

  withBackendOptions(be.command("unset"))
    .description("remove variables in one atomic write")
    .argument("<names...>", "variable names")
    .action(async (names: string[], opts: BootenvOpts) => {
      checkNames(names);
      const env = await openBootEnv(opts);
      const changes: BootEnvChanges = Object.create(null);
      for (const n of names) changes[n] = null;
      await call(() => env.set(changes));
      console.log(`unset ${names.join(", ")} in ${env.describe()}`);
    });
}
