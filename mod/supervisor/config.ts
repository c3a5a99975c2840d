/**
 * Config schema of subsystems and of the supervisor itself. A spec error names
 * the subsystem and the field, e.g.
 * `subsystems[1] (name "foo").heartbeat.timeoutMs: must be greater than heartbeat.intervalMs`.
 * @module
 */
import { z } from "zod";

const NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;
const nameSchema = z.string().regex(NAME_RE, "lowercase letters, digits, - and _");

/** Heartbeat of a worker or process subsystem (null disables heartbeat checks). */
export const heartbeatSchema = z.strictObject({
  intervalMs: z.number().int().min(10).max(3_600_000).default(1000).describe(
    "how often the subsystem is expected to send a heartbeat",
  ),
  timeoutMs: z.number().int().min(20).max(3_600_000).default(3000).describe(
    "no heartbeat for this long = hung (passed to processes as WATCHDOG_USEC)",
  ),
}).refine((h) => h.timeoutMs > h.intervalMs, {
  message: "must be greater than heartbeat.intervalMs",
  path: ["timeoutMs"],
});

/** Restart backoff: initial delay, growth, cap, jitter, and reset after a healthy run. */
export const backoffSchema = z.strictObject({
  initialMs: z.number().int().min(0).default(100).describe("delay before the first restart"),
  maxMs: z.number().int().min(0).default(30_000).describe("delay never exceeds this"),
  multiplier: z.number().min(1).max(10).default(2).describe("delay grows by this factor"),
  jitter: z.number().min(0).max(1).default(0.2).describe(
    "random spread: delay × [1-jitter, 1+jitter], so restarts of many subsystems do not align",
  ),
  resetAfterMs: z.number().int().min(0).default(30_000).describe(
    "ready at least this long before failing = a long healthy run: the restart is immediate",
  ),
}).refine((b) => b.maxMs >= b.initialMs, {
  message: "must be at least backoff.initialMs",
  path: ["maxMs"],
});

/** Restart intensity as in Erlang/OTP: more than maxRestarts within periodSec escalates. */
export const intensitySchema = z.strictObject({
  maxRestarts: z.number().int().min(0).max(100_000).default(5).describe(
    "restarts tolerated within the period",
  ),
  periodSec: z.number().min(0.001).max(86_400).default(60).describe("the sliding period"),
});

/** What happens when restarts do not help (intensity exceeded or restart policy `never`). */
export const escalationSchema = z.strictObject({
  action: z.enum(["mark-failed", "restart-group", "bypass-hold", "reboot"]).describe(
    "mark-failed | restart-group | bypass-hold (on segments) | reboot",
  ),
  segments: z.union([z.literal("all"), z.array(nameSchema).min(1)]).default("all").describe(
    "bypass segments held by bypass-hold",
  ),
});

/** An HTTP, TCP or exec check of a probe subsystem. */
export const probeCheckSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("http"),
    url: z.string().url().describe("URL to request"),
    method: z.enum(["GET", "HEAD", "POST"]).default("GET").describe("HTTP method"),
    expectStatus: z.array(z.number().int().min(100).max(599)).min(1).optional().describe(
      "accepted status codes (default: 200-399)",
    ),
    bodyContains: z.string().optional().describe("the body must contain this text"),
    bodyRegex: z.string().optional().refine((s) => {
      if (s === undefined) return true;
      try {
        new RegExp(s);
        return true;
      } catch {
        return false;
      }
    }, "not a valid regular expression").describe("the body must match this regex"),
  }),
  z.strictObject({
    type: z.literal("tcp"),
    host: z.string().min(1).describe("host to connect to"),
    port: z.number().int().min(1).max(65535).describe("TCP port that must accept a connection"),
  }),
  z.strictObject({
    type: z.literal("exec"),
    command: z.string().min(1).describe("executable to run"),
    args: z.array(z.string()).default([]).describe("its arguments"),
    expectExit: z.number().int().min(0).max(255).default(0).describe("exit status that means ok"),
  }),
]);

/** Probe settings: check, interval, failure and recovery thresholds (like monit). */
export const probeSchema = z.strictObject({
  check: probeCheckSchema.describe("what is checked: an HTTP request, a TCP connect or a command"),
  intervalMs: z.number().int().min(10).default(5000).describe("time between checks"),
  timeoutMs: z.number().int().min(10).default(2000).describe("one check times out after this"),
  failureThreshold: z.number().int().min(1).max(1000).default(3).describe(
    "consecutive failures that trigger the restart command",
  ),
  recoveryThreshold: z.number().int().min(1).max(1000).default(2).describe(
    "consecutive successes that make an unhealthy service ready again",
  ),
  restartCommand: z.strictObject({
    command: z.string().min(1).describe("executable"),
    args: z.array(z.string()).default([]).describe("its arguments"),
  }).optional().describe("run to restart the watched service (e.g. systemctl restart foo)"),
});

const specObject = z.strictObject({
  name: nameSchema.describe("unique name"),
  kind: z.enum(["worker", "process", "probe"]).describe("worker | process | probe"),
  description: z.string().max(200).optional().describe("what the subsystem does (shown in the UI)"),
  criticality: z.enum(["essential", "important", "optional"]).default("important").describe(
    "essential subsystems are never suspended; their failure stops watchdog petting",
  ),
  autoStart: z.boolean().default(true).describe("start with keepwire"),
  module: z.string().min(1).optional().describe(
    "worker: module path (relative to the working directory) or file:/https: URL",
  ),
  command: z.string().min(1).optional().describe("process: executable"),
  args: z.array(z.string()).default([]).describe("process: arguments"),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a variable name"), z.string())
    .default({}).describe("process: extra environment; worker: passed to the SDK"),
  cwd: z.string().min(1).optional().describe("process: working directory"),
  user: z.string().min(1).optional().describe("process: run as this user (name or uid)"),
  readyOn: z.enum(["notify", "spawn"]).optional().describe(
    "process: ready on READY=1 (notify, default) or as soon as spawned",
  ),
  suspendMode: z.enum(["sigstop", "stop"]).default("sigstop").describe(
    "process: suspend by SIGSTOP/SIGCONT of the group, or by stopping and starting",
  ),
  heartbeat: heartbeatSchema.nullable().optional().describe(
    "heartbeat (default for worker: 1000/3000 ms; process and probe: none)",
  ),
  readinessTimeoutMs: z.number().int().min(10).default(10_000).describe(
    "not ready within this time = failed start",
  ),
  stopTimeoutMs: z.number().int().min(10).default(5000).describe(
    "SIGTERM (or onStop) first, SIGKILL (or terminate) after this",
  ),
  restart: z.enum(["always", "on-failure", "never"]).default("always").describe(
    "always | on-failure (not after a clean exit) | never",
  ),
  backoff: backoffSchema.default(() => backoffSchema.parse({}, { jitless: true })).describe(
    "delay between restarts: grows from initial to max, reset after a healthy run",
  ),
  intensity: intensitySchema.default(() => intensitySchema.parse({}, { jitless: true })).describe(
    "restarts tolerated within a period before the subsystem is marked failed (escalation)",
  ),
  after: z.array(nameSchema).default([]).describe("start after these are ready (ordering only)"),
  requires: z.array(nameSchema).default([]).describe(
    "needs these ready; their restart restarts this one",
  ),
  group: nameSchema.optional().describe(
    "restart group for restart-group (default: this one and its dependents)",
  ),
  escalation: escalationSchema.optional().describe(
    "when restarts do not help (default: bypass-hold on all segments for essential, else mark-failed)",
  ),
  probe: probeSchema.optional().describe("probe: what to check and how"),
});

type SpecObject = z.infer<typeof specObject>;

/** One subsystem spec, validated. */
export const subsystemSpecSchema = specObject.superRefine((s, ctx) => {
  const only = (field: keyof SpecObject, kinds: SpecObject["kind"][]) => {
    if (s[field] !== undefined && !kinds.includes(s.kind)) {
      ctx.addIssue({
        code: "custom",
        path: [field],
        message: `only for kind ${kinds.join(" or ")}, not ${s.kind}`,
      });
    }
  };
  const need = (field: keyof SpecObject, kind: SpecObject["kind"]) => {
    if (s.kind === kind && s[field] === undefined) {
      ctx.addIssue({ code: "custom", path: [field], message: `required for kind ${kind}` });
    }
  };
  need("module", "worker");
  need("command", "process");
  need("probe", "probe");
  only("module", ["worker"]);
  only("command", ["process"]);
  only("cwd", ["process"]);
  only("user", ["process"]);
  only("readyOn", ["process"]);
  only("probe", ["probe"]);
  if (s.kind === "probe" && s.heartbeat) {
    ctx.addIssue({
      code: "custom",
      path: ["heartbeat"],
      message: "a probe has no heartbeat; use probe.intervalMs",
    });
  }
  if (s.args.length && s.kind !== "process") {
    ctx.addIssue({ code: "custom", path: ["args"], message: `only for kind process` });
  }
  for (const f of ["after", "requires"] as const) {
    s[f].forEach((d, i) => {
      if (d === s.name) {
        ctx.addIssue({
          code: "custom",
          path: [f, i],
          message: "a subsystem cannot depend on itself",
        });
      }
    });
  }
}).transform((s) => ({
  ...s,
  heartbeat: s.heartbeat === undefined
    ? (s.kind === "worker" ? { intervalMs: 1000, timeoutMs: 3000 } : null)
    : s.heartbeat,
  readyOn: s.readyOn ?? "notify",
  escalation: s.escalation ??
    (s.criticality === "essential"
      ? { action: "bypass-hold" as const, segments: "all" as const }
      : { action: "mark-failed" as const, segments: "all" as const }),
}));

/** A validated subsystem spec (defaults applied). */
export type SubsystemSpec = z.infer<typeof subsystemSpecSchema>;
/** A subsystem spec as written in the config. */
export type SubsystemSpecInput = z.input<typeof subsystemSpecSchema>;

/**
 * Checks across specs that one spec alone cannot make: unique names, known
 * dependencies, no dependency cycles. Returns one `path: reason` line per problem,
 * paths in the config error style (`subsystems[1] (name "foo").requires[0]`).
 */
export function subsystemProblems(specs: readonly SubsystemSpec[]): string[] {
  const out: string[] = [];
  const at = (i: number) => `subsystems[${i}] (name "${specs[i].name}")`;
  const index = new Map<string, number>();
  specs.forEach((s, i) => {
    const prev = index.get(s.name);
    if (prev !== undefined) out.push(`${at(i)}.name: duplicate of subsystems[${prev}]`);
    else index.set(s.name, i);
  });
  specs.forEach((s, i) => {
    for (const f of ["after", "requires"] as const) {
      s[f].forEach((d, j) => {
        if (!index.has(d)) out.push(`${at(i)}.${f}[${j}]: unknown subsystem "${d}"`);
      });
    }
  });
  // cycle detection over after ∪ requires
  const color = new Map<string, 0 | 1 | 2>();
  const reported = new Set<string>();
  const visit = (name: string, stack: string[]): void => {
    color.set(name, 1);
    const i = index.get(name);
    if (i === undefined) return;
    for (const d of [...specs[i].after, ...specs[i].requires]) {
      if (!index.has(d)) continue;
      const c = color.get(d) ?? 0;
      if (c === 1) {
        const cycle = [...stack.slice(stack.indexOf(d)), d];
        const key = [...cycle].sort().join(",");
        if (!reported.has(key)) {
          reported.add(key);
          const field = specs[i].requires.includes(d) ? "requires" : "after";
          out.push(`${at(i)}.${field}: dependency cycle ${cycle.join(" -> ")}`);
        }
      } else if (c === 0) visit(d, [...stack, d]);
    }
    color.set(name, 2);
  };
  for (const s of specs) if (!color.get(s.name)) visit(s.name, [s.name]);
  return out;
}

/** The `supervisor` section. */
export const supervisorConfigSchema = z.strictObject({
  watchdogOwner: z.enum(["keepwire", "systemd", "none"]).default("keepwire").describe(
    "who pets /dev/watchdog (it opens only once): keepwire, systemd (RuntimeWatchdogSec) or none",
  ),
  maxLoopLagMs: z.number().int().min(10).default(1000).describe(
    "event-loop lag above which watchdogs are no longer petted",
  ),
  serviceWatchdogLagMs: z.number().int().min(10).nullable().default(null).describe(
    "event-loop lag above which systemd's service watchdog (WATCHDOG=1) is withheld; null = " +
      "half of WatchdogSec. Never below maxLoopLagMs: a slow loop stops the bypass and hardware " +
      "pets first, systemd restarts keepwire only when its loop is stalled",
  ),
  petIntervalMs: z.number().int().min(10).max(60_000).default(500).describe(
    "how often the hardware and bypass watchdogs are petted while healthy; keep " +
      "petIntervalMs + maxLoopLagMs below the shortest watchdog timeout (bypass card)",
  ),
  lagProbeIntervalMs: z.number().int().min(5).max(10_000).default(100).describe(
    "interval of the timer-drift probe that measures event-loop lag",
  ),
  stopPettingOnEssentialFailure: z.boolean().default(true).describe(
    "stop petting watchdogs while an essential subsystem is failed",
  ),
  groupIntensity: intensitySchema.default(() => ({ maxRestarts: 3, periodSec: 300 })).describe(
    "restart-group escalations tolerated per group before its members are marked failed",
  ),
  output: z.strictObject({
    linesPerSec: z.number().min(0.1).max(100_000).default(20).describe(
      "process stdout/stderr lines journaled per second (sustained)",
    ),
    burst: z.number().int().min(1).max(1_000_000).default(100).describe("lines in a burst"),
  }).default({ linesPerSec: 20, burst: 100 }).describe(
    "rate limit of process output copied into the journal (supervisor.output events)",
  ),
  maxLeakedWorkerThreads: z.number().int().min(0).max(1000).default(2).describe(
    "hung Worker threads that survived terminate() (a Deno 2.9 bug) tolerated before keepwire " +
      "stops its systemd WATCHDOG=1 so systemd restarts it and reclaims the cores",
  ),
  workerSpares: z.number().int().min(0).max(16).default(1).describe(
    "Worker isolates kept ready, from the first worker restart on, so a worker restarts in a few ms",
  ),
});

/** The validated `supervisor` section. */
export type SupervisorConfig = z.infer<typeof supervisorConfigSchema>;
