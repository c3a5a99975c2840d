/**
 * keepwire — carrier-class high availability for network appliances.
 * CLI entry: `deno run -A main.ts <command>`; see `--help`.
 * @module
 */
// first: zod's jitless before any schema is built (mod/config/zod_jitless.ts)
import "./mod/config/zod_jitless.ts";

if (import.meta.main) {
  // Fast path: plain `keepwire run [opts]` starts the runtime without loading the
  // full command-line program (commander costs ~25 ms of start-up).
  if (Deno.args[0] === "run") {
    const { fastParseRun, runCommand } = await import("./mod/cli/run.ts");
    const opts = fastParseRun(Deno.args.slice(1));
    if (opts) {
      const { CliError } = await import("./mod/cli/common.ts");
      try {
        await runCommand(opts);
        Deno.exit(0);
      } catch (e) {
        console.error(`keepwire: ${e instanceof Error ? e.message : String(e)}`);
        Deno.exit(e instanceof CliError ? e.exitCode : 1);
      }
    }
  }
  const { runCli } = await import("./mod/cli/mod.ts");
  Deno.exit(await runCli(Deno.args));
}
