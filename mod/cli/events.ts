/**
 * `keepwire events`: the event journal, from the running daemon (its API over the
 * control socket; `-f` follows its SSE stream) or straight from the store when no
 * daemon runs.
 * @module
 */
import type { Command } from "commander";
import { join } from "node:path";
import { type KwEvent, SEVERITIES, type Severity } from "../events/mod.ts";
import { Store } from "../store/mod.ts";
import { eventText } from "../log/os_log.ts";
import { CliError, commandConfig, type CommonOpts, EXIT } from "./common.ts";
import { controlSocketPath, daemonRequest, DaemonUnreachable } from "./client.ts";
import { painter, SEVERITY_STYLE } from "./colour.ts";

/** Options of `events`. */
export interface EventsOpts extends CommonOpts {
  /** Follow. */
  follow?: boolean;
  /** Kind or module. */
  kind?: string;
  /** Minimum severity. */
  severity?: string;
  /** Start time. */
  since?: string;
  /** Number of past events. */
  lines?: string;
  /** NDJSON. */
  json?: boolean;
}

const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: a duration back from `now` (`90s`, `10m`, `2h`, `7d`) or an ISO 8601 time. */
export function parseSince(s: string, now: number = Date.now()): number {
  const m = DURATION.exec(s.trim());
  if (m) return now - Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    if (Number.isFinite(t)) return t;
  }
  throw new CliError(
    EXIT.USAGE,
    `--since: "${s}" is neither a duration (90s, 10m, 2h, 7d) nor an ISO 8601 time`,
  );
}

/** `--kind`: an exact kind (`storage.array_degraded`), a prefix (`storage.*`) or a module. */
export function kindQuery(k: string): string {
  if (!/^[a-z0-9_.*-]{1,100}$/i.test(k) || k.indexOf("*") >= 0 && !/^[^*]+\*$/.test(k)) {
    throw new CliError(
      EXIT.USAGE,
      `--kind: "${k}" is not a kind: e.g. storage.array_degraded, storage.* or storage`,
    );
  }
  return k.includes(".") ? k : `${k}.*`;
}

function severityOpt(s: string | undefined): Severity | undefined {
  if (s === undefined) return undefined;
  if (!(SEVERITIES as readonly string[]).includes(s)) {
    throw new CliError(EXIT.USAGE, `--severity: "${s}" is not one of ${SEVERITIES.join(", ")}`);
  }
  return s as Severity;
}

/** One event as a line of text. */
export function formatEvent(e: KwEvent, paint = painter()): string {
  const sev = paint(SEVERITY_STYLE[e.severity], e.severity.padEnd(8));
  return `${paint("dim", new Date(e.time).toISOString())} ${sev} ${eventText(e)}`;
}

/** Register `events`. */
export function registerEventsCommand(program: Command): void {
  program.command("events")
    .description(
      "show the event journal (from the daemon, or the store when none runs); -f follows",
    )
    .option("-f, --follow", "keep printing new events (needs a running daemon)")
    .option("--kind <kind>", "one kind, a prefix (storage.*) or a module (storage)")
    .option("--severity <severity>", `minimum severity: ${SEVERITIES.join(", ")}`)
    .option("--since <when>", "from this long ago (90s, 10m, 2h, 7d) or an ISO 8601 time")
    .option("-n, --lines <n>", "past events to show (1-1000)", "50")
    .option("--json", "one JSON object per line")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: EventsOpts) => {
      const kind = opts.kind === undefined ? undefined : kindQuery(opts.kind);
      const severity = severityOpt(opts.severity);
      const from = opts.since === undefined ? undefined : parseSince(opts.since);
      const limit = Number(opts.lines);
      if (!/^\d+$/.test(String(opts.lines)) || limit < 1 || limit > 1000) {
        throw new CliError(EXIT.USAGE, `--lines: "${opts.lines}" is not a number from 1 to 1000`);
      }
      const config = await commandConfig(opts);
      const paint = painter();
      const print = (e: KwEvent) =>
        console.log(opts.json ? JSON.stringify(e) : formatEvent(e, paint));
      const q = new URLSearchParams({ limit: String(limit), order: "desc" });
      if (kind) q.set("kind", kind);
      if (severity) q.set("severity", severity);
      if (from !== undefined) q.set("from", String(from));
      let past: KwEvent[];
      let daemon = true;
      try {
        past = (await daemonRequest<{ events: KwEvent[] }>(
          config.dataDir,
          "GET",
          `/api/events?${q}`,
        )).events;
      } catch (e) {
        if (!(e instanceof DaemonUnreachable)) throw e;
        if (opts.follow) throw e;
        daemon = false;
        past = storeEvents(config.dataDir, { kind, severity, from, limit });
      }
      past.reverse();
      for (const e of past) print(e);
      if (!opts.follow || !daemon) return;
      const last = past.at(-1)?.id ?? (await latestId(config.dataDir));
      await follow(config.dataDir, { kind, severity, since: last }, print);
    });
}

function storeEvents(
  dataDir: string,
  q: { kind?: string; severity?: Severity; from?: number; limit: number },
): KwEvent[] {
  const path = join(dataDir, "keepwire.db");
  try {
    Deno.statSync(path);
  } catch {
    return [];
  }
  const store = new Store({ path });
  try {
    return store.events({
      kind: q.kind,
      severity: q.severity,
      sinceTime: q.from,
      limit: q.limit,
      order: "desc",
    });
  } finally {
    store.close();
  }
}

async function latestId(dataDir: string): Promise<number> {
  const r = await daemonRequest<{ events: KwEvent[] }>(dataDir, "GET", "/api/events?limit=1");
  return r.events[0]?.id ?? 0;
}

/** Print events from the daemon's SSE stream until it ends or the process is stopped. */
async function follow(
  dataDir: string,
  q: { kind?: string; severity?: Severity; since: number },
  print: (e: KwEvent) => void,
): Promise<void> {
  const params = new URLSearchParams({ since: String(q.since) });
  if (q.kind) params.set("kind", q.kind);
  if (q.severity) params.set("severity", q.severity);
  const sock = controlSocketPath(dataDir);
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: sock } });
  const exact = q.kind && !q.kind.endsWith("*") ? q.kind : undefined;
  try {
    let res: Response;
    try {
      res = await fetch(`http://keepwire.local/api/events/stream?${params}`, { client });
    } catch (e) {
      throw new DaemonUnreachable(sock, (e as Error).message);
    }
    if (!res.ok || !res.body) {
      throw new CliError(EXIT.FAILURE, `the daemon refused the event stream (${res.status})`);
    }
    let buf = "";
    let event = "";
    let data = "";
    for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (event === "event" && data) {
            const e = JSON.parse(data) as KwEvent;
            if (!exact || e.kind === exact) print(e);
          }
          event = "";
          data = "";
        } else if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
    }
    throw new CliError(EXIT.FAILURE, "the daemon closed the event stream (stopped?)");
  } finally {
    client.close();
  }
}
