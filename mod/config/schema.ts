/** The one zod schema of the whole appliance configuration. */
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

// Validation here runs once per start and on small API bodies: skip zod's JIT
// (it costs ~6 ms of start-up for no gain at these sizes).
z.config({ jitless: true });

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
  identity: z.strictObject({
    name: z.string().min(1).max(64).default("keepwire").describe("appliance name shown in UI"),
    vendor: z.string().default("keepwire").describe("vendor of the appliance"),
    model: z.string().default("generic").describe("model of the appliance"),
  }).default({ name: "keepwire", vendor: "keepwire", model: "generic" }),
  dataDir: z.string().min(1).default("./var").describe(
    "data directory: database, control socket, state (env KEEPWIRE_DATA)",
  ),
  web: z.strictObject({
    listen: listenSchema.default("127.0.0.1:8080").describe(
      "address of the web UI and API (env KEEPWIRE_LISTEN)",
    ),
    tls: z.strictObject({
      enabled: z.boolean().default(false),
      cert: z.string().optional().describe("PEM certificate; generated self-signed when absent"),
      key: z.string().optional().describe("PEM private key"),
    }).default({ enabled: false }),
    allowedHosts: z.array(
      z.string().regex(/^[A-Za-z0-9.:_\[\]-]{1,253}$/, "a host name or address"),
    )
      .default([]).describe(
        "extra names/addresses clients may use in the Host header (added to: the listen address, localhost, 127.0.0.1, [::1], the box's hostname and, on a wildcard listen, its interface addresses)",
      ),
  }).default({ listen: "127.0.0.1:8080", tls: { enabled: false }, allowedHosts: [] }),
  store: z.strictObject({
    retention: z.strictObject({
      maxEvents: z.number().int().min(100).default(100_000).describe("events kept at most"),
      maxAgeDays: z.number().min(1).default(90).describe("events older than this are dropped"),
    }).default({ maxEvents: 100_000, maxAgeDays: 90 }),
    synchronous: z.enum(["NORMAL", "FULL"]).default("NORMAL").describe(
      "NORMAL survives a crash of keepwire, FULL also a power loss",
    ),
  }).default({ retention: { maxEvents: 100_000, maxAgeDays: 90 }, synchronous: "NORMAL" }),
  hardware: z.strictObject({
    bypass: bypassConfigSchema.default(() => bypassConfigSchema.parse({})),
    raid: raidConfigSchema.default(() => raidConfigSchema.parse({})),
    watchdog: watchdogConfigSchema.default(() => watchdogConfigSchema.parse({})),
  }).default(() => ({
    bypass: bypassConfigSchema.parse({}),
    raid: raidConfigSchema.parse({}),
    watchdog: watchdogConfigSchema.parse({}),
  })),
  supervisor: supervisorConfigSchema.default(() => supervisorConfigSchema.parse({})),
  subsystems: z.array(subsystemSpecSchema).default([]).describe("supervised subsystems"),
  governor: governorConfigSchema.default(() => governorConfigSchema.parse({})),
  update: updateConfigSchema.default(() => updateConfigSchema.parse({})),
  ha: haConfigSchema.default(() => haConfigSchema.parse({})),
  log: logConfigSchema.default(() => logConfigSchema.parse({})),
  alert: alertConfigSchema.default(() => alertConfigSchema.parse({})),
  shutdownTimeoutMs: z.number().int().min(100).default(10_000).describe(
    "orderly stop must finish within this time",
  ),
});

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** The configuration as written in a file. */
export type ConfigInput = z.input<typeof configSchema>;
