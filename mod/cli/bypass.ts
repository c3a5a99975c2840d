/**
 * `keepwire bypass` commands. They go through the running daemon (control
 * socket); `status` falls back to reading the hardware and the store directly
 * when no daemon runs.
 *
 * ```
 * keepwire bypass status [--json]
 * keepwire bypass hold SEGMENT|all --reason "free text" [--by WHO]
 * keepwire bypass release SEGMENT|all --reason R [--force]
 * keepwire bypass set SEGMENT inline|bypass|disconnect
 * ```
 * @module
 */
import type { Command } from "commander";
import { join } from "node:path";
import { z } from "zod";
import { CliError, commandConfig, type CommonOpts, EXIT, printJson } from "./common.ts";
import { DaemonError, daemonRequest, DaemonUnreachable } from "./client.ts";
import { createBypassDriver } from "../../hw/bypass/mod.ts";
import type { Config } from "../config/mod.ts";
import { readHoldsOffline } from "../bypass/hold_store.ts";
import {
  holdReasonProblem,
  operatorHoldReasonProblem,
  RESERVED_HOLD_REASONS,
  SUPERVISOR_HOLD_PREFIX,
} from "../bypass/hold_reasons.ts";

/** A segment as `bypass status --json` prints it (daemon or offline). */
interface StatusSegment {
  name: string;
  ports: [string, string];
  mode: string;
  holds: { reason: string; count: number; mode: string; by: string; since: string }[];
  driver: string;
  watchdog: Record<string, unknown>;
  desired?: string;
  lastError?: string | null;
  note?: string;
}

const statusSchema = z.looseObject({
  segments: z.array(z.looseObject({
    name: z.string(),
    ports: z.tuple([z.string(), z.string()]),
    mode: z.string(),
    holds: z.array(z.looseObject({
      reason: z.string(),
      count: z.number(),
      mode: z.string(),
      by: z.string(),
      since: z.string(),
    })),
    driver: z.string(),
    watchdog: z.record(z.string(), z.unknown()),
  })),
});

/** The reason, or a usage error (exit 2) saying what is wrong with it. */
function reasonOr2(r: string | undefined, problem: (r: string) => string | null): string {
  if (r === undefined) throw new CliError(EXIT.USAGE, "--reason is required");
  const p = problem(r);
  if (p) throw new CliError(EXIT.USAGE, `--reason ${JSON.stringify(r)}: ${p}`);
  return r;
}

/** Send a request; 404 (unknown segment) and 400 are usage errors (exit 2). */
async function send(
  config: Config,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  try {
    return await daemonRequest(config.dataDir, method, path, body);
  } catch (e) {
    if (e instanceof DaemonError && (e.status === 404 || e.status === 400)) {
      throw new CliError(EXIT.USAGE, e.message.replace(/^daemon answered \d+: /, ""));
    }
    if (e instanceof DaemonError) {
      throw new CliError(EXIT.FAILURE, e.message.replace(/^daemon answered \d+: /, ""));
    }
    throw e;
  }
}

/** Status read from hardware and store without a daemon. */
async function offlineStatus(config: Config): Promise<StatusSegment[]> {
  const holds = readHoldsOffline(join(config.dataDir, "keepwire.db"));
  const out: StatusSegment[] = [];
  for (const seg of config.hardware.bypass.segments) {
    const d = createBypassDriver(seg);
    let mode = "unknown";
    let lastError: string | null = null;
    let watchdog: Record<string, unknown> = {
      supported: null,
      timeoutMs: seg.watchdog.timeoutMs,
      petBy: seg.watchdog.petBy,
    };
    try {
      mode = await d.readMode();
      if (seg.watchdog.timeoutMs > 0) {
        const w = await d.readWatchdog();
        watchdog = {
          ...watchdog,
          supported: (await d.capabilities()).watchdog,
          effectiveMs: w.timeoutMs || null,
          armed: w.armed,
          expired: w.expired,
          remainingMs: w.remainingMs,
        };
      }
    } catch (e) {
      lastError = (e as Error).message;
    } finally {
      await d.close().catch(() => {});
    }
    out.push({
      name: seg.name,
      ports: [seg.ports[0], seg.ports[1]],
      mode,
      holds: (holds.get(seg.name) ?? []).map((h) => ({
        reason: h.reason,
        count: h.count,
        mode: h.mode,
        by: h.by,
        since: new Date(h.since).toISOString(),
      })),
      driver: seg.driver,
      watchdog,
      lastError,
      ...(seg.driver === "mock" ? { note: "mock driver without a daemon: simulated state" } : {}),
    });
  }
  return out;
}

function holdText(h: StatusSegment["holds"]): string {
  if (!h.length) return "-";
  return h.map((x) =>
    `${x.reason}${x.count > 1 ? ` x${x.count}` : ""}${x.mode !== "bypass" ? ` (${x.mode})` : ""}`
  ).join(", ");
}

function wdText(w: Record<string, unknown>): string {
  const t = Number(w.timeoutMs ?? 0);
  if (!t) return "off";
  if (w.expired) return `EXPIRED (${t} ms)`;
  return `${w.armed ? "armed" : "disarmed"} ${w.effectiveMs ?? t} ms, pet by ${w.petBy}`;
}

function printSegments(segs: StatusSegment[]): void {
  const rows = [["SEGMENT", "PORTS", "DRIVER", "MODE", "HOLDS", "WATCHDOG"]];
  for (const s of segs) {
    rows.push([
      s.name,
      s.ports.join("/"),
      s.driver,
      s.mode.toUpperCase() === "UNKNOWN" ? "UNKNOWN" : s.mode,
      holdText(s.holds),
      wdText(s.watchdog),
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd());
  for (const s of segs) {
    if (s.lastError) console.log(`  ${s.name}: ${s.lastError}`);
  }
}

function commonOpts(c: Command): Command {
  return c.option("-c, --config <file>", "config file (JSON/JSONC)")
    .option("-d, --data <dir>", "data directory (where the daemon's control socket is)");
}

/** Register the bypass commands. */
export function registerBypassCommands(program: Command): void {
  const bp = program.command("bypass").description(
    "bypass segments: status, named holds, manual mode",
  );

  commonOpts(bp.command("status"))
    .description("show every segment: mode read back from the driver, holds, card watchdog")
    .option("--json", "print JSON")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const config = await commandConfig(opts);
      let segs: StatusSegment[];
      let daemon = true;
      try {
        const raw = await send(config, "GET", "/api/bypass");
        const r = statusSchema.safeParse(raw);
        if (!r.success) {
          throw new CliError(EXIT.FAILURE, `unexpected answer from the daemon: ${r.error.message}`);
        }
        segs = r.data.segments as StatusSegment[];
      } catch (e) {
        if (!(e instanceof DaemonUnreachable)) throw e;
        daemon = false;
        segs = await offlineStatus(config);
      }
      if (opts.json) return printJson({ daemon, segments: segs });
      if (!daemon) {
        console.log(
          `keepwire is not running (data ${config.dataDir}): read from the hardware and the store`,
        );
      }
      printSegments(segs);
    });

  commonOpts(bp.command("hold"))
    .description("take a named hold (the segment stays in bypass while any hold is active)")
    .argument("<segment>", "segment name or all")
    .requiredOption(
      "-r, --reason <reason>",
      `why, in your words (e.g. "waiting for the ISP"); keepwire's own reasons (${
        RESERVED_HOLD_REASONS.join(", ")
      }, ${SUPERVISOR_HOLD_PREFIX}*) are refused`,
    )
    .option("--by <who>", "who holds (shown in status)", "cli")
    .option("--json", "print JSON")
    .action(
      async (
        segment: string,
        opts: CommonOpts & { reason?: string; by: string; json?: boolean },
      ) => {
        const reason = reasonOr2(opts.reason, operatorHoldReasonProblem);
        const config = await commandConfig(opts);
        const r = await send(config, "POST", `/api/bypass/${encodeURIComponent(segment)}/hold`, {
          reason,
          by: opts.by,
        }) as { segments: StatusSegment[] };
        if (opts.json) return printJson(r);
        printSegments(r.segments);
      },
    );

  commonOpts(bp.command("release"))
    .description("release a named hold (count -1; the last release returns the segment inline)")
    .argument("<segment>", "segment name or all")
    .requiredOption("-r, --reason <reason>", "the hold's reason (any, also keepwire's own)")
    .option("--force", "drop the hold whatever its count")
    .option("--json", "print JSON")
    .action(
      async (
        segment: string,
        opts: CommonOpts & { reason?: string; force?: boolean; json?: boolean },
      ) => {
        const reason = reasonOr2(opts.reason, holdReasonProblem);
        const config = await commandConfig(opts);
        const r = await send(config, "POST", `/api/bypass/${encodeURIComponent(segment)}/release`, {
          reason,
          by: "cli",
          force: opts.force ?? false,
        }) as { segments: StatusSegment[]; released: { segment: string; released: boolean }[] };
        if (opts.json) return printJson(r);
        for (const x of r.released) {
          if (!x.released) {
            console.log(`${x.segment}: no hold ${JSON.stringify(reason)} (nothing released)`);
          }
        }
        printSegments(r.segments);
      },
    );

  commonOpts(bp.command("set"))
    .description("manual mode: bypass/disconnect take a manual hold, inline releases it")
    .argument("<segment>", "segment name")
    .argument("<mode>", "inline | bypass | disconnect")
    .option("--json", "print JSON")
    .action(async (segment: string, mode: string, opts: CommonOpts & { json?: boolean }) => {
      if (!["inline", "bypass", "disconnect"].includes(mode)) {
        throw new CliError(EXIT.USAGE, `mode must be inline, bypass or disconnect, got "${mode}"`);
      }
      const config = await commandConfig(opts);
      const r = await send(config, "POST", `/api/bypass/${encodeURIComponent(segment)}/set`, {
        mode,
        by: "cli",
      }) as { segments: StatusSegment[] };
      if (opts.json) return printJson(r);
      printSegments(r.segments);
    });
}
