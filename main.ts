/**
 * keepwire — carrier-class high availability for network appliances.
 * CLI entry: `deno run -A main.ts <command>`; see `--help`.
 * @module
 */
import { runCli } from "./mod/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
