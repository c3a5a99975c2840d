/** Configuration of where keepwire's events go besides its own journal. */
import { z } from "zod";
import { SEVERITIES } from "../events/mod.ts";

/** Syslog facilities by name (RFC 5424 numbers). */
export const FACILITIES = {
  kern: 0,
  user: 1,
  daemon: 3,
  auth: 4,
  syslog: 5,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

const severity = z.enum(SEVERITIES);

/** `unix:/path` or `udp:host:port`. */
export const syslogTargetSchema = z.string().regex(
  /^(unix:\/\S+|udp:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5})$/,
  'expected "unix:/dev/log" or "udp:HOST:PORT"',
);

/** Schema of `log`. */
export const logConfigSchema = z.strictObject({
  stderr: z.strictObject({
    minSeverity: severity.default("warning").describe(
      "events of this severity and above are written to stderr, one line each",
    ),
    format: z.enum(["auto", "journal", "plain"]).default("auto").describe(
      'auto: sd-daemon "<N>" priority prefixes when stderr is the systemd journal (JOURNAL_STREAM), else plain lines',
    ),
    maxLinesPerSecond: z.number().int().min(1).default(100).describe(
      "lines beyond this rate are dropped and counted (keepwire_log_dropped_total)",
    ),
  }).default({ minSeverity: "warning", format: "auto", maxLinesPerSecond: 100 }).describe(
    "events on standard error (the systemd journal under systemd)",
  ),
  syslog: z.strictObject({
    target: syslogTargetSchema.describe(
      'where to send: "unix:/dev/log" (the local syslog daemon) or "udp:HOST:PORT"',
    ),
    format: z.enum(["rfc5424", "rfc3164"]).default("rfc5424").describe(
      "message format: RFC 5424 (structured, with the event kind as MSGID) or the older RFC 3164",
    ),
    facility: z.enum(Object.keys(FACILITIES) as [keyof typeof FACILITIES]).default("daemon")
      .describe("syslog facility"),
    minSeverity: severity.default("warning").describe(
      "events of this severity and above are sent",
    ),
    appName: z.string().regex(/^[!-~]{1,48}$/, "1-48 printable ASCII characters, no space")
      .default("keepwire").describe("APP-NAME (RFC 5424) or TAG (RFC 3164)"),
  }).optional().describe("send events to syslog as well; absent: no syslog"),
}).describe("where events go besides keepwire's own journal");

/** The validated `log` section. */
export type LogConfig = z.infer<typeof logConfigSchema>;
