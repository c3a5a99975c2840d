/**
 * The `keepwire` command line: one commander program, one register function per
 * command group, exit codes in common.ts.
 * @module
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import { CliError, EXIT } from "./common.ts";
import { DaemonError, DaemonUnreachable } from "./client.ts";
import { registerCoreCommands } from "./core.ts";
import { registerBypassCommands } from "./bypass.ts";
import { registerRaidCommands } from "./raid.ts";
import { registerBootenvCommands } from "./bootenv.ts";
import { registerSubCommands } from "./sub.ts";
import { registerUpdateCommands } from "./update.ts";
import { registerBundleCommands } from "./bundle.ts";
import { registerUserCommands } from "./user.ts";
import { registerGovernorCommands } from "./governor.ts";
import { registerHaCommands } from "./ha.ts";
import { registerAlertCommands } from "./alert.ts";
import { registerEventsCommand } from "./events.ts";

export { CliError, EXIT } from "./common.ts";

/** Build the program with every command registered. */
export function buildProgram(): Command {
  const program = new Command("keepwire")
    .description("keepwire: carrier-class high availability for network appliances")
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => Deno.stdout.writeSync(new TextEncoder().encode(s)),
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
    });
  registerCoreCommands(program);
  registerEventsCommand(program);
  registerSubCommands(program);
  registerBypassCommands(program);
  registerRaidCommands(program);
  registerBootenvCommands(program);
  registerUpdateCommands(program);
  registerBundleCommands(program);
  registerUserCommands(program);
  registerGovernorCommands(program);
  registerHaCommands(program);
  registerAlertCommands(program);
  for (const c of program.commands) inherit(c);
  return program;
}

function inherit(c: Command): void {
  c.exitOverride().showHelpAfterError("(run with --help for usage)");
  for (const sub of c.commands) inherit(sub);
}

/** Run the CLI on `argv` (without the executable); returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" ||
        e.code === "commander.help"
      ) return EXIT.OK;
      if (e.code === "commander.executeSubCommandAsync") return EXIT.FAILURE;
      return EXIT.USAGE;
    }
    if (e instanceof CliError) {
      if (e.message) console.error(`keepwire: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof DaemonUnreachable) {
      console.error(`keepwire: ${e.message}`);
      return EXIT.NO_DAEMON;
    }
    if (e instanceof DaemonError) {
      console.error(`keepwire: ${e.message}`);
      return e.status === 400 ? EXIT.USAGE : EXIT.FAILURE;
    }
    console.error(`keepwire: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT.FAILURE;
  }
}
