/**
 * Events to the operating system's logs: one line per event on stderr (with
 * sd-daemon `<N>` priority prefixes when stderr is the systemd journal, see
 * sd-daemon(3)), and datagrams to a syslog daemon (RFC 5424 or RFC 3164) over a
 * unix socket such as `/dev/log` or UDP.
 * @module
 */
import type { KwEvent, Severity } from "../events/mod.ts";
import { FACILITIES, type LogConfig } from "./config.ts";

/** sd-daemon / syslog priority of each severity (critical = LOG_CRIT ... debug = LOG_DEBUG). */
export const PRIORITY: Record<Severity, number> = {
  critical: 2,
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/**
 * Is stderr the systemd journal? systemd sets `JOURNAL_STREAM=<dev>:<inode>` of the
 * stream it connects; it only counts when that is still our stderr (a child whose
 * stderr was redirected inherits the variable but not the stream).
 */
export function stderrIsJournal(
  env: Record<string, string | undefined>,
  statStderr: () => { dev: number; ino: number | null } = () => Deno.statSync("/proc/self/fd/2"),
): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? "");
  if (!m) return false;
  try {
    const st = statStderr();
    return String(st.dev) === m[1] && String(st.ino) === m[2];
  } catch {
    return false;
  }
}

function fieldValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? "null";
}

/** One event as text: `kind key=value ...` (payload fields in order), at most 2,000 chars. */
export function eventText(e: Pick<KwEvent, "kind" | "payload">): string {
  const fields = Object.entries(e.payload ?? {}).map(([k, v]) => `${k}=${fieldValue(v)}`);
  const s = [e.kind, ...fields].join(" ").replace(/[\r\n]+/g, " ");
  return s.length > 2000 ? `${s.slice(0, 1999)}…` : s;
}

/** The stderr line of an event (without the newline). */
export function stderrLine(e: KwEvent, journal: boolean): string {
  const text = `${e.severity} ${eventText(e)}`;
  return journal ? `<${PRIORITY[e.severity]}>${text}` : `keepwire: ${text}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** One syslog message for an event. */
export function syslogMessage(
  e: KwEvent,
  o: {
    format: "rfc5424" | "rfc3164";
    facility: keyof typeof FACILITIES;
    appName: string;
    hostname: string;
    pid: number;
  },
): string {
  const pri = FACILITIES[o.facility] * 8 + PRIORITY[e.severity];
  const host = /^[!-~]{1,255}$/.test(o.hostname) ? o.hostname : "-";
  const text = `${e.severity} ${eventText(e)}`;
  if (o.format === "rfc5424") {
    const msgid = /^[!-~]{1,32}$/.test(e.kind) ? e.kind : "-";
    const ts = new Date(e.time).toISOString();
    return `<${pri}>1 ${ts} ${host} ${o.appName} ${o.pid} ${msgid} - ${text}`;
  }
  const d = new Date(e.time);
  const two = (n: number) => String(n).padStart(2, "0");
  const ts = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${
    two(d.getHours())
  }:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `<${pri}>${ts} ${host} ${o.appName}[${o.pid}]: ${text}`;
}

let serial = 0;

/** Sends datagrams to a syslog target (`unix:/path` or `udp:host:port`); never throws. */
export class SyslogSender {
  readonly #target: Deno.Addr;
  #conn: Deno.DatagramConn | undefined;
  /** Messages handed to the kernel. */
  sent = 0;
  /** Messages that could not be sent. */
  failed = 0;
  #chain: Promise<void> = Promise.resolve();

  /** Build for a configured target. */
  constructor(target: string) {
    if (target.startsWith("unix:")) {
      this.#target = { transport: "unixpacket", path: target.slice(5) };
    } else {
      const rest = target.slice(4);
      const i = rest.lastIndexOf(":");
      this.#target = {
        transport: "udp",
        hostname: rest.slice(0, i).replace(/^\[|\]$/g, ""),
        port: Number(rest.slice(i + 1)),
      };
    }
  }

  #open(): Deno.DatagramConn {
    if (this.#target.transport === "udp") {
      const v6 = this.#target.hostname.includes(":");
      return Deno.listenDatagram({ transport: "udp", hostname: v6 ? "::" : "0.0.0.0", port: 0 });
    }
    // Deno has no unbound datagram socket: bind a private abstract name first
    return Deno.listenDatagram({
      transport: "unixpacket",
      path: `\0keepwire-syslog-${Deno.pid}-${++serial}`,
    });
  }

  /** Queue one message (sent in order). */
  send(text: string): void {
    const data = new TextEncoder().encode(text);
    this.#chain = this.#chain.then(async () => {
      try {
        this.#conn ??= this.#open();
        await this.#conn.send(data, this.#target);
        this.sent++;
      } catch {
        this.failed++;
        try {
          this.#conn?.close();
        } catch { /* closed */ }
        this.#conn = undefined; // e.g. syslogd restarted: reopen next time
      }
    });
  }

  /** Wait for queued messages, then close. */
  async close(): Promise<void> {
    await this.#chain;
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = undefined;
  }
}

/** Builds the sinks from the `log` config. */
export interface OsLogSinks {
  /** Lines written to stderr. */
  stderrLines: number;
  /** Lines dropped by the stderr rate limit. */
  stderrDropped: number;
  /** Whether stderr lines carry journal priority prefixes. */
  journal: boolean;
  /** The syslog sender, when configured. */
  syslog: SyslogSender | undefined;
  /** Handle one event (filters by severity itself). */
  handle(e: KwEvent): void;
  /** Close the syslog sender. */
  close(): Promise<void>;
}

/** Create the OS log sinks for a config. */
export function createOsLog(
  cfg: LogConfig,
  o: {
    env?: Record<string, string | undefined>;
    write?: (line: string) => void;
    now?: () => number;
    hostname?: string;
  } = {},
): OsLogSinks {
  const env = o.env ?? Deno.env.toObject();
  const journal = cfg.stderr.format === "journal" ||
    (cfg.stderr.format === "auto" && stderrIsJournal(env));
  const enc = new TextEncoder();
  const write = o.write ?? ((l: string) => Deno.stderr.writeSync(enc.encode(`${l}\n`)));
  const now = o.now ?? Date.now;
  const stderrMin = PRIORITY[cfg.stderr.minSeverity];
  const sys = cfg.syslog;
  let hostname = o.hostname;
  if (sys && hostname === undefined) {
    try {
      hostname = Deno.hostname();
    } catch {
      hostname = "-";
    }
  }
  let windowStart = 0;
  let inWindow = 0;
  const sinks: OsLogSinks = {
    stderrLines: 0,
    stderrDropped: 0,
    journal,
    syslog: sys ? new SyslogSender(sys.target) : undefined,
    handle(e) {
      const p = PRIORITY[e.severity];
      if (p <= stderrMin) {
        const t = now();
        if (t - windowStart >= 1000) {
          windowStart = t;
          inWindow = 0;
        }
        if (++inWindow <= cfg.stderr.maxLinesPerSecond) {
          try {
            write(stderrLine(e, journal));
            sinks.stderrLines++;
          } catch {
            sinks.stderrDropped++;
          }
        } else sinks.stderrDropped++;
      }
      if (sys && sinks.syslog && p <= PRIORITY[sys.minSeverity]) {
        sinks.syslog.send(syslogMessage(e, {
          format: sys.format,
          facility: sys.facility,
          appName: sys.appName,
          hostname: hostname ?? "-",
          pid: Deno.pid,
        }));
      }
    },
    async close() {
      await sinks.syslog?.close();
    },
  };
  return sinks;
}
