/**
 * Config schema of the bypass segments (`hardware.bypass`). Each segment names its
 * driver and that driver's options (an object named after the driver); problems are
 * reported at their path, which the config loader prints with the segment's name:
 * `hardware.bypass.segments[1] (name "wan").gpio: driver gpio needs its options object "gpio"`.
 * @module
 */
import { z } from "zod";
import { BYPASS_DRIVER_KINDS, BYPASS_MODES } from "./types.ts";
import { HOLD_REASONS, isReservedHoldReason } from "../../mod/bypass/hold_reasons.ts";

const modeEnum = z.enum(BYPASS_MODES);
const gpioLine = z.union([z.number().int().min(0), z.string().min(1)], {
  error: "expected a line offset or name",
});

/**
 * The name of the hold taken at start (`holdAtStart`): a short token, not a reason
 * another component owns (`startup` is the conventional one).
 */
const holdAtStartSchema = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/,
  "a short name: letters, digits, . _ : - (at most 64), e.g. startup",
).refine(
  (r) => r === HOLD_REASONS.startup || !isReservedHoldReason(r),
  "a reason another part of keepwire holds with; use startup or a name of your own",
).refine((r) => r !== HOLD_REASONS.manual, "manual is the operator's manual mode");

/** Provisioning policies (EEPROM/NVRAM on real cards; written only when they differ). */
export const segmentPoliciesSchema = z.strictObject({
  powerOff: modeEnum.default("bypass").describe("mode while the appliance has no power"),
  powerUp: modeEnum.default("bypass").describe(
    "mode from power-up until keepwire takes control",
  ),
  watchdogExpiry: modeEnum.default("bypass").describe(
    "mode the card falls into when its watchdog expires",
  ),
  provision: z.boolean().default(true).describe(
    "write policies that differ from the card at start (false: only report the difference)",
  ),
});

/** The card's own watchdog. */
export const segmentWatchdogSchema = z.strictObject({
  timeoutMs: z.number().int().min(0).max(3_600_000).default(0).refine(
    (v) => v === 0 || v >= 100,
    "0 (off) or at least 100 ms",
  ).describe("card watchdog timeout in ms; 0 = not armed"),
  petBy: z.enum(["supervisor", "module"]).default("supervisor").describe(
    "supervisor: pet only while the supervisor finds the appliance healthy; module: the bypass module pets every timeout/3",
  ),
  onExpiry: z.enum(["hold", "rearm"]).default("hold").describe(
    "after the card watchdog expired: hold (a persisted `watchdog` hold keeps the segment out of inline until released) or rearm (re-arm and return to the wanted mode)",
  ),
});

/** Options of the mock driver. */
export const mockBypassOptionsSchema = z.strictObject({
  initialMode: modeEnum.default("bypass").describe("mode of the simulated relay at power-up"),
  switchMs: z.number().int().min(0).max(60_000).default(0).describe("simulated relay time"),
  stuck: z.boolean().default(false).describe("fault: the relay never moves"),
  tap: z.boolean().default(false).describe("the simulated card supports tap"),
});

/** Options of the Silicom driver (/proc/net/bypass/bypass_<master>/). */
export const silicomBypassOptionsSchema = z.strictObject({
  root: z.string().min(1).default("/proc/net/bypass").describe(
    "directory holding bypass_<if>/ (a fake tree in tests)",
  ),
  master: z.string().min(1).optional().describe(
    "master port whose directory controls the pair (default: the first port)",
  ),
});

/** Options of the GPIO driver (libgpiod gpioset/gpioget). */
export const gpioBypassOptionsSchema = z.strictObject({
  chip: z.string().min(1).describe("GPIO chip: gpiochip0, 0 or /dev/gpiochip0"),
  line: gpioLine.describe(
    "relay line: driven active = inline; released (no holder process) = bypass",
  ),
  disconnectLine: gpioLine.optional().describe(
    "line that darkens both ports when driven active (disconnect mode)",
  ),
  statusLine: gpioLine.optional().describe(
    "input line reporting the relay (active = inline); without it read-back is the holder process",
  ),
  activeLow: z.boolean().default(false).describe("the driven lines are active-low"),
  statusActiveLow: z.boolean().default(false).describe("the status line is active-low"),
  tool: z.enum(["auto", "v1", "v2"]).default("auto").describe(
    "libgpiod command-line syntax; auto = from gpioset --version",
  ),
  gpioset: z.string().min(1).default("gpioset").describe("gpioset executable"),
  gpioget: z.string().min(1).default("gpioget").describe("gpioget executable"),
  consumer: z.string().min(1).default("keepwire").describe("consumer label (v2)"),
  settleMs: z.number().int().min(0).max(10_000).default(100).describe(
    "a holder that exits within this time failed to take the line",
  ),
});

/** Options of the tc software bypass (one atomic switch point per direction). */
export const tcBypassOptionsSchema = z.strictObject({
  netns: z.string().min(1).optional().describe("network namespace of the ports (default: own)"),
  engine: z.tuple([z.string().min(1), z.string().min(1)]).describe(
    "kernel-side veth ends toward the inspection engine, paired with ports[0] and ports[1]",
  ),
  tc: z.string().min(1).default("tc").describe("tc executable"),
  ip: z.string().min(1).default("ip").describe("ip executable"),
  prio: z.number().int().min(1).max(65535).default(1).describe("filter priority"),
});

const segmentBase = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "lowercase letters, digits, - and _").max(32)
    .describe("segment name used by the CLI and API"),
  ports: z.tuple([z.string().min(1), z.string().min(1)]).refine(
    (p) => p[0] !== p[1],
    "the two ports must differ",
  ).describe("the two ports of the segment"),
  driver: z.enum(BYPASS_DRIVER_KINDS).default("mock").describe("mock, silicom, gpio or tc"),
  description: z.string().max(200).optional().describe("free text shown in the UI"),
  policies: segmentPoliciesSchema.prefault({}).describe(
    "what the card does by itself: at power off, power up, watchdog expiry",
  ),
  watchdog: segmentWatchdogSchema.prefault({}).describe(
    "the card's own watchdog: bypasses the segment when keepwire stops petting it",
  ),
  mock: mockBypassOptionsSchema.optional().describe("options of driver mock"),
  silicom: silicomBypassOptionsSchema.optional().describe("options of driver silicom"),
  gpio: gpioBypassOptionsSchema.optional().describe("options of driver gpio (required)"),
  tc: tcBypassOptionsSchema.optional().describe("options of driver tc (required)"),
});

/** One bypass segment: a pair of ports, its driver and the driver's options. */
export const segmentConfigSchema = segmentBase.superRefine((s, ctx) => {
  for (const k of BYPASS_DRIVER_KINDS) {
    if (k !== s.driver && s[k] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [k],
        message: `options for driver ${k} given, but the driver is ${s.driver}`,
      });
    }
  }
  if ((s.driver === "gpio" || s.driver === "tc") && s[s.driver] === undefined) {
    ctx.addIssue({
      code: "custom",
      path: [s.driver],
      message: `driver ${s.driver} needs its options object "${s.driver}"`,
    });
  }
  if (s.driver === "gpio" || s.driver === "tc") {
    if (s.watchdog.timeoutMs > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["watchdog", "timeoutMs"],
        message: `driver ${s.driver} has no card watchdog; use 0`,
      });
    }
    // Fixed by design: a released GPIO line and a fresh tc setup are bypass.
    for (const k of ["powerOff", "powerUp", "watchdogExpiry"] as const) {
      if (s.policies[k] !== "bypass") {
        ctx.addIssue({
          code: "custom",
          path: ["policies", k],
          message: `driver ${s.driver} cannot do ${s.policies[k]} here (fixed: bypass)`,
        });
      }
    }
  }
  if (s.driver === "tc" && s.tc) {
    const all = [...s.ports, ...s.tc.engine];
    if (new Set(all).size !== all.length) {
      ctx.addIssue({
        code: "custom",
        path: ["tc", "engine"],
        message: "engine interfaces must differ from each other and from the ports",
      });
    }
  }
  if (s.driver === "gpio" && s.gpio) {
    const lines = [s.gpio.line, s.gpio.disconnectLine, s.gpio.statusLine].filter((l) =>
      l !== undefined
    ).map(String);
    if (new Set(lines).size !== lines.length) {
      ctx.addIssue({
        code: "custom",
        path: ["gpio"],
        message: "line, disconnectLine and statusLine must be different lines",
      });
    }
  }
});

/** A validated segment. */
export type SegmentConfig = z.infer<typeof segmentConfigSchema>;
/** A segment as written in a config file. */
export type SegmentConfigInput = z.input<typeof segmentConfigSchema>;

/** The embedded default: one mock segment. */
export const DEFAULT_BYPASS_SEGMENTS: SegmentConfigInput[] = [
  { name: "seg0", ports: ["eth2", "eth3"], driver: "mock" },
];

/** The `hardware.bypass` section. */
export const bypassConfigSchema = z.strictObject({
  segments: z.array(segmentConfigSchema).prefault(DEFAULT_BYPASS_SEGMENTS).describe(
    "bypass segments (pairs of ports), each with its driver",
  ).superRefine((segs, ctx) => {
    const names = new Map<string, number>();
    const ports = new Map<string, string>();
    segs.forEach((s, i) => {
      if (names.has(s.name)) {
        ctx.addIssue({
          code: "custom",
          path: [i, "name"],
          message: `segment name "${s.name}" is used twice (also segments[${names.get(s.name)}])`,
        });
      }
      names.set(s.name, i);
      const ns = s.driver === "tc" ? s.tc?.netns ?? "" : "";
      for (const p of s.ports) {
        const key = `${ns}/${p}`;
        const other = ports.get(key);
        if (other) {
          ctx.addIssue({
            code: "custom",
            path: [i, "ports"],
            message: `port ${p} of segment "${s.name}" is already in segment "${other}"`,
          });
        }
        ports.set(key, s.name);
      }
    });
  }),
  pollMs: z.number().int().min(50).max(600_000).default(1000).describe(
    "read every segment's mode (and card watchdog) this often",
  ),
  switchTimeoutMs: z.number().int().min(10).max(120_000).default(5000).describe(
    "a switch (set + read-back) that takes longer has failed",
  ),
  retry: z.strictObject({
    initialMs: z.number().int().min(10).default(1000).describe("first retry after a failed switch"),
    maxMs: z.number().int().min(10).default(30_000).describe("retry interval doubles up to this"),
  }).prefault({}).describe("retries of a failed switch"),
  onStop: z.enum(["bypass", "keep"]).default("bypass").describe(
    "on an orderly stop of keepwire: put every segment in bypass (disconnect stays), or keep modes",
  ),
  holdAtStart: holdAtStartSchema.nullable().default(null).describe(
    "a hold put on every segment at start (e.g. startup), released by the bypass module once every essential subsystem is ready",
  ),
});

/** The validated `hardware.bypass` section. */
export type BypassConfig = z.infer<typeof bypassConfigSchema>;
