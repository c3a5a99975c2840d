/**
 * Generates docs/cli.md (the CLI reference) from the commander program, so the
 * reference always matches `--help`. `deno task docs` writes it; a test fails when stale.
 * @module
 */
import type { Command } from "commander";
import { buildProgram } from "./mod.ts";

function collect(cmd: Command, path: string[], out: string[]): void {
  const name = [...path, cmd.name()].join(" ");
  cmd.configureHelp({ helpWidth: 100 });
  out.push(`## \`${name}\``, "", "```", cmd.helpInformation().trimEnd(), "```", "");
  for (const sub of cmd.commands) collect(sub, [...path, cmd.name()], out);
}

/** Render the CLI reference as markdown. */
export function renderCliDocs(): string {
  const program = buildProgram();
  const out = [
    "# CLI reference",
    "",
    "<!-- generated from the commander program by `deno task docs`; tests fail when stale -->",
    "",
    "Run as `keepwire <command>` (the compiled binary) or `tools/deno run -A main.ts <command>`.",
    "",
    "Exit codes: **0** success; **1** the operation failed (hardware, verification, the daemon",
    "refused); **2** usage error — unknown command or flag, bad argument, invalid config or",
    "input; **3** the command needs a running daemon and none answers on the data directory's",
    "control socket.",
    "",
    "Commands that operate a running appliance find its daemon through the data directory",
    "(`--data DIR`, default: the configured `dataDir`): the daemon listens on",
    "`DIR/keepwire.sock` (mode 0600, root only), so they need no password.",
    "",
  ];
  collect(program, [], out);
  return out.join("\n");
}

if (import.meta.main) {
  const text = renderCliDocs();
  if (Deno.args.includes("--write")) {
    const path = new URL("../../docs/cli.md", import.meta.url);
    await Deno.writeTextFile(path, text);
    console.log(`wrote ${path.pathname}`);
  } else console.log(text);
}
