/** Core commands: run, status, config check|show, version. */
import type { Command } from "commander";
import { join } from "node:path";
import { RUN_OPTIONS, runCommand, type RunOpts } from "./run.ts";
import { VERSION } from "../version.ts";
import { CliError, commandConfig, type CommonOpts, EXIT, printJson } from "./common.ts";
import { daemonRequest, DaemonUnreachable } from "./client.ts";
import { Store } from "../store/mod.ts";
import { painter } from "./colour.ts";

/** Register run, status, config and version on the program. */
export function registerCoreCommands(program: Command): void {
  const run = program.command("run")
    .description("start the appliance runtime (foreground; SIGINT/SIGTERM stop it)");
  for (const o of RUN_OPTIONS) run.option(`-${o.short}, --${o.long} <${o.arg}>`, o.help);
  run.action((opts: RunOpts) => runCommand(opts));

  program.command("status")
    .description(
      "show the appliance status (from the daemon, or from the store when none runs; exit 3 then)",
    )
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const config = await commandConfig(opts);
      let status: Record<string, unknown>;
      try {
        status = await daemonRequest(config.dataDir, "GET", "/api/status");
      } catch (e) {
        if (!(e instanceof DaemonUnreachable)) throw e;
        status = offlineStatus(config.dataDir);
      }
      if (opts.json) printJson(status);
      else printStatus(status);
      // like systemctl status / LSB: 3 = not running (scripts test for it)
      if (!status.running) throw new CliError(EXIT.NO_DAEMON, "");
    });

  const cfg = program.command("config").description("check or show configuration");
  cfg.command("check")
    .description("validate a config file; names each bad field; exit 2 when invalid")
    .argument("<file>", "config file (JSON/JSONC)")
    .action(async (file: string) => {
      await commandConfig({ config: file }, {});
      console.log(`${file}: valid`);
    });
  cfg.command("show")
    .description(
      "print the effective configuration (defaults, file, env, stored alert edits applied) as JSON; secrets redacted",
    )
    .option("-c, --config <file>", "config file; default: embedded default")
    .option("-d, --data <dir>", "data directory override")
    .action(async (opts: CommonOpts) => {
      // secrets (fields the config schema marks writeOnly) are never printed back; alert
      // channels, recipients and rules edited at run time (stored) are shown as in force
      const { redactBySchema } = await import("../web/ui/config_view.ts");
      const { configWithAlertEdits } = await import("../alert/stored.ts");
      printJson(redactBySchema(configWithAlertEdits(await commandConfig(opts))));
    });

  program.command("version")
    .description("print the keepwire and Deno versions")
    .option("--json", "print JSON")
    .action((opts: { json?: boolean }) => {
      const v = { keepwire: VERSION, deno: Deno.version.deno, v8: Deno.version.v8 };
      if (opts.json) printJson(v);
      else console.log(`keepwire ${v.keepwire} (deno ${v.deno})`);
    });
}

/** Status read straight from the store when no daemon runs. */
function offlineStatus(dataDir: string): Record<string, unknown> {
  const dbPath = join(dataDir, "keepwire.db");
  try {
    Deno.statSync(dbPath);
  } catch {
    return { running: false, dataDir, note: "no daemon running and no store yet" };
  }
  const store = new Store({ path: dbPath });
  try {
    const last = store.events({ kind: "runtime.", limit: 1 })[0];
    return {
      running: false,
      dataDir,
      lastRuntimeEvent: last ?? null,
      events: store.eventCount(),
      recent: store.events({ limit: 10 }),
    };
  } finally {
    store.close();
  }
}

function printStatus(s: Record<string, unknown>): void {
  if (!s.running) {
    console.log(`keepwire: not running (data ${s.dataDir})`);
    const last = s.lastRuntimeEvent as { kind: string; time: number } | null | undefined;
    if (last) console.log(`last: ${last.kind} at ${new Date(last.time).toISOString()}`);
    return;
  }
  const health = s.health as {
    ok: boolean;
    parts: Record<string, { ok: boolean; essential?: boolean; detail?: string }>;
  };
  const paint = painter();
  console.log(
    `keepwire ${s.version} "${s.name}" — ${
      health.ok ? paint("green", "healthy") : paint("boldRed", "UNHEALTHY")
    }, up ${Math.round(Number(s.uptimeMs) / 1000)}s, pid ${s.pid}`,
  );
  for (const [name, p] of Object.entries(health.parts)) {
    const mark = p.ok ? paint("green", "ok  ") : paint(p.essential ? "boldRed" : "yellow", "FAIL");
    console.log(`  ${mark} ${name}${p.detail ? `: ${p.detail}` : ""}`);
  }
}
