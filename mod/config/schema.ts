/** The one zod schema of the whole appliance configuration. */
// first: zod's jitless before any section schema is built
import "./zod_jitless.ts";
import { z } from "zod";
import { bypassConfigSchema } from "../../hw/bypass/config.ts";
import { raidConfigSchema } from "../../hw/raid/config.ts";
import { watchdogConfigSchema } from "../../hw/watchdog/config.ts";
import { subsystemSpecSchema, supervisorConfigSchema } from "../supervisor/config.ts";
import { governorConfigSchema } from "../governor/config.ts";
import { updateConfigSchema } from "../update/config.ts";
import { haConfigSchema } from "../ha/config.ts";
import { logConfigSchema } from "../log/config.ts";
import { alertConfigSchema } from "../alert/config.ts";
import { historyConfigSchema } from "../history/config.ts";

/** `host:port` with a port in 0..65535; IPv6 hosts in brackets. */
export const listenSchema = z.string({
  error: (iss) => `expected "host:port" string, got ${typeName(iss.input)}`,
}).regex(
  /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/,
  'expected "host:port", e.g. "127.0.0.1:8080"',
).refine((s) => Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, "port must be 0..65535");

/** Type name of a value as a person reads it. */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Schema of the whole configuration. */
export const configSchema = z.strictObject({
  $schema: z.string().optional().describe(
    "the JSON Schema editors check this file with (docs/keepwire.schema.json); keepwire ignores it",
  ),
  identity: z.strictObject({
    name: z.string().min(1).max(64).default("keepwire").describe("appliance name shown in UI"),
    vendor: z.string().default("keepwire").describe("vendor of the appliance"),
    model: z.string().default("generic").describe("model of the appliance"),
  }).default({ name: "keepwire", vendor: "keepwire", model: "generic" }).describe(
    "who the appliance is: shown in the UI, the status and the API",
  ),
  dataDir: z.string().min(1).default("./var").describe(
    "data directory: database, control socket, state (env KEEPWIRE_DATA)",
  ),
  web: z.strictObject({
    listen: listenSchema.default("127.0.0.1:8080").describe(
      "address of the web UI and API (env KEEPWIRE_LISTEN)",
    ),
    tls: z.strictObject({
      enabled: z.boolean().default(false).describe("serve the UI and API over HTTPS"),
      cert: z.string().optional().describe("PEM certificate; generated self-signed when absent"),
      key: z.string().optional().describe("PEM private key"),
    }).default({ enabled: false }).describe("HTTPS for the web UI and API"),
    allowedHosts: z.array(
      z.string().regex(/^[A-Za-z0-9.:_\[\]-]{1,253}$/, "a host name or address"),
    )
      .default([]).describe(
        "extra names/addresses clients may use in the Host header (added to: the listen address, localhost, 127.0.0.1, [::1], the box's hostname and, on a wildcard listen, its interface addresses)",
      ),
    connections: z.strictObject({
      headerMs: z.number().int().min(100).max(600_000).default(10_000).describe(
        "the first request head must arrive within this (ms)",
      ),
      idleMs: z.number().int().min(100).max(3_600_000).default(120_000).describe(
        "close a connection silent both ways this long (ms)",
      ),
      maxConnections: z.number().int().min(1).max(100_000).default(512).describe(
        "open connections at most",
      ),
      maxPerAddress: z.number().int().min(1).max(100_000).default(64).describe(
        "open connections per client address at most",
      ),
    }).default({ headerMs: 10_000, idleMs: 120_000, maxConnections: 512, maxPerAddress: 64 })
      .describe("connection timeouts and caps of the web listener (see docs/security.md)"),
  }).default({
    listen: "127.0.0.1:8080",
    tls: { enabled: false },
    allowedHosts: [],
    connections: { headerMs: 10_000, idleMs: 120_000, maxConnections: 512, maxPerAddress: 64 },
  }).describe("the web UI, the HTTP API and /metrics"),
  store: z.strictObject({
    retention: z.strictObject({
      maxEvents: z.number().int().min(100).default(100_000).describe("events kept at most"),
      maxAgeDays: z.number().min(1).default(90).describe("events older than this are dropped"),
    }).default({ maxEvents: 100_000, maxAgeDays: 90 }).describe(
      "how long the event journal keeps events",
    ),
    synchronous: z.enum(["NORMAL", "FULL"]).default("NORMAL").describe(
      "NORMAL survives a crash of keepwire, FULL also a power loss",
    ),
  }).default({ retention: { maxEvents: 100_000, maxAgeDays: 90 }, synchronous: "NORMAL" })
    .describe("the SQLite store in the data directory (event journal, users, state)"),
  hardware: z.strictObject({
    bypass: bypassConfigSchema.default(() => bypassConfigSchema.parse({}, { jitless: true }))
      .describe(
        "network bypass segments: port pairs shorted into a wire on failure (docs/bypass.md)",
      ),
    raid: raidConfigSchema.default(() => raidConfigSchema.parse({}, { jitless: true })).describe(
      "RAID (md) arrays and SMART disk health (docs/storage.md)",
    ),
    watchdog: watchdogConfigSchema.default(() => watchdogConfigSchema.parse({}, { jitless: true }))
      .describe(
        "the hardware watchdog (/dev/watchdog) keepwire pets while healthy",
      ),
  }).default(() => ({
    bypass: bypassConfigSchema.parse({}, { jitless: true }),
    raid: raidConfigSchema.parse({}, { jitless: true }),
    watchdog: watchdogConfigSchema.parse({}, { jitless: true }),
  })).describe(
    "the appliance's hardware: bypass relays, disks, watchdog (driver mock: no hardware)",
  ),
  supervisor: supervisorConfigSchema.default(() =>
    supervisorConfigSchema.parse({}, { jitless: true })
  ).describe(
    "how subsystems are supervised and keepwire watches itself (docs/supervisor.md)",
  ),
  subsystems: z.array(subsystemSpecSchema).default([]).describe("supervised subsystems"),
  governor: governorConfigSchema.default(() => governorConfigSchema.parse({}, { jitless: true }))
    .describe(
      "the load governor: pressure signals, levels, shedding (docs/governor.md)",
    ),
  update: updateConfigSchema.default(() => updateConfigSchema.parse({}, { jitless: true }))
    .describe(
      "signed A/B image updates: slots, boot loader, activation (docs/update.md)",
    ),
  ha: haConfigSchema.default(() => haConfigSchema.parse({}, { jitless: true })).describe(
    "high availability with a peer through keepalived (docs/ha.md)",
  ),
  log: logConfigSchema.default(() => logConfigSchema.parse({}, { jitless: true })),
  alert: alertConfigSchema.default(() => alertConfigSchema.parse({}, { jitless: true })).describe(
    "alerts: events sent to people through channels (mail, webhooks)",
  ),
  history: historyConfigSchema.default(() => historyConfigSchema.parse({}, { jitless: true })),
  shutdownTimeoutMs: z.number().int().min(100).default(10_000).describe(
    "orderly stop must finish within this time",
  ),
});

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** The configuration as written in a file. */
export type ConfigInput = z.input<typeof configSchema>;
