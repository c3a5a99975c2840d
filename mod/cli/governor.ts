/** `keepwire governor status|replay`: the load governor's state, and trace replay for tuning. */
import type { Command } from "commander";
import { CliError, commandConfig, type CommonOpts, EXIT, printJson } from "./common.ts";
import { daemonRequest } from "./client.ts";
import { InputTooLargeError, READ_LIMITS, readTextFileBounded } from "../fs.ts";
import { parseTrace, replay, TraceError } from "../governor/replay.ts";
import { defaultGovernorConfig, type GovernorConfig } from "../governor/config.ts";
import type { GovernorSnapshot } from "../governor/mod.ts";

/** Register `governor status` and `governor replay`. */
export function registerGovernorCommands(program: Command): void {
  const gov = program.command("governor").description("load governor: status and trace replay");

  gov.command("status")
    .description("level, each signal against its thresholds, what is suspended and why")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const config = await commandConfig(opts);
      const snap = await daemonRequest<GovernorSnapshot>(config.dataDir, "GET", "/api/governor");
      if (opts.json) return printJson(snap);
      printStatus(snap);
    });

  gov.command("replay")
    .description(
      'feed a recorded trace (JSON Lines: {"t": ms, "signals": {...}}) through the level logic; ' +
        "prints one JSON line per level change",
    )
    .argument("<trace>", "trace file (JSON Lines)")
    .option("-c, --config <file>", "config file whose governor section is used (default: defaults)")
    .action(async (file: string, opts: { config?: string }) => {
      const g: GovernorConfig = opts.config
        ? (await commandConfig({ config: opts.config })).governor
        : defaultGovernorConfig();
      let text: string;
      try {
        text = await readTextFileBounded(file, READ_LIMITS.trace, "trace");
      } catch (e) {
        if (e instanceof InputTooLargeError) throw new CliError(EXIT.USAGE, e.message);
        throw new CliError(EXIT.USAGE, `cannot read trace ${file}: ${(e as Error).message}`);
      }
      let samples;
      try {
        samples = parseTrace(text);
      } catch (e) {
        if (e instanceof TraceError) throw new CliError(EXIT.USAGE, `${file}: ${e.message}`);
        throw e;
      }
      for (const tr of replay(samples, g)) {
        console.log(JSON.stringify({ t: tr.t, from: tr.from, to: tr.to, reason: tr.reason }));
      }
    });
}

function fmtNum(v: number | null): string {
  if (v === null) return "-";
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function printStatus(s: GovernorSnapshot): void {
  if (!s.enabled) {
    console.log("governor: disabled");
    return;
  }
  console.log(
    `governor: ${s.level.toUpperCase()} since ${new Date(s.since).toISOString()} (${s.reason})`,
  );
  console.log("");
  console.log(
    `${"signal".padEnd(16)} ${"value".padStart(10)} ${"unit".padEnd(8)} ${"elevated".padStart(9)} ${
      "overload".padStart(9)
    } ${"severe".padStart(9)}  wants`,
  );
  for (const sig of s.signals) {
    const t = sig.thresholds;
    console.log(
      `${sig.name.padEnd(16)} ${fmtNum(sig.value).padStart(10)} ${sig.unit.padEnd(8)} ${
        fmtNum(t?.elevated ?? null).padStart(9)
      } ${fmtNum(t?.overload ?? null).padStart(9)} ${fmtNum(t?.severe ?? null).padStart(9)}  ${
        t === null ? "(disabled)" : sig.value === null ? "(no data)" : sig.level
      }`,
    );
  }
  console.log("");
  if (s.suspended.length === 0) console.log("suspended: none");
  else {
    console.log("suspended:");
    for (const x of s.suspended) {
      console.log(
        `  ${x.name} (${x.criticality}) since ${new Date(x.since).toISOString()}: ${x.reason}`,
      );
    }
  }
  const d = s.degradation;
  const a = s.admission;
  console.log(
    `degradation: debug events kept ${
      Math.round(d.debugSampleRate * 100)
    }%, UI refresh ${d.uiRefreshMs} ms, requests below priority ${d.minPriority} rejected, sheddable budget ${
      Math.round(d.budgetFraction * 100)
    }% of wall time (${a.burstMs} ms credit)`,
  );
  const rej = Object.values(a.rejected).reduce((x, y) => x + y, 0);
  const adm = Object.values(a.admitted).reduce((x, y) => x + y, 0);
  console.log(
    `admission: ${adm} admitted, ${rej} rejected (level ${a.rejectedBy.level}, concurrency ${a.rejectedBy.concurrency}, budget ${a.rejectedBy.budget}, stall ${a.rejectedBy.stall}); in flight ${a.inflight}, limit ${a.concurrencyLimit} (${a.algorithm})`,
  );
}
