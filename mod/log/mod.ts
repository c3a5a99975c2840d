/**
 * The `log` module: sends events of the configured severities to the OS logs
 * (stderr / the systemd journal, syslog) and reports the process's own CPU time,
 * memory and event-loop lag as metrics. Started first, so it sees every start event.
 * @module
 */
import { z } from "zod";
import { statusDoc } from "../web/openapi.ts";
import process from "node:process";
import type { Module, ModuleContext, TimerId } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import { severityRank } from "../events/mod.ts";
import { createOsLog, type OsLogSinks } from "./os_log.ts";

/** The log module's part of /api/status: where events go. */
export const logStatusSchema = z.lazy(() =>
  z.object({
    stderr: z.object({
      journal: z.boolean().describe("stderr is the journal (priority prefixes)"),
      lines: z.number().describe("lines written"),
    }),
    syslog: z.object({ target: z.string(), sent: z.number(), failed: z.number() }).nullable(),
  })
);
/** The log module's part of /api/status. */
export type LogStatus = z.infer<typeof logStatusSchema>;
statusDoc("log", logStatusSchema);

/** How often the event-loop lag probe runs (ms). */
export const LAG_PROBE_MS = 250;
/** Lag samples kept: the metric is the worst of the last 10 s. */
const LAG_SAMPLES = 40;

/** Measures event-loop lag by timer drift. */
export class LagProbe {
  #timer: TimerId | undefined;
  #last = 0;
  readonly #samples: number[] = [];
  readonly #ctx: Pick<ModuleContext, "clock">;

  /** Build on a clock. */
  constructor(ctx: Pick<ModuleContext, "clock">) {
    this.#ctx = ctx;
  }

  /** Start probing. */
  start(): void {
    this.#last = performance.now();
    this.#timer = this.#ctx.clock.setInterval(() => {
      const now = performance.now();
      this.#samples.push(Math.max(0, now - this.#last - LAG_PROBE_MS));
      if (this.#samples.length > LAG_SAMPLES) this.#samples.shift();
      this.#last = now;
    }, LAG_PROBE_MS);
    if (typeof this.#timer === "number") Deno.unrefTimer(this.#timer);
  }

  /** Stop probing. */
  stop(): void {
    if (this.#timer !== undefined) this.#ctx.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Worst lag of the last 10 s, in ms. */
  maxMs(): number {
    return this.#samples.reduce((a, b) => Math.max(a, b), 0);
  }
}

/** The log module. */
export class LogModule implements Module {
  /** Module name. */
  readonly name = "log";
  readonly #ctx: ModuleContext;
  readonly #env: Record<string, string | undefined> | undefined;
  #sinks: OsLogSinks | undefined;
  #unsub: (() => void) | undefined;
  readonly #lag: LagProbe;

  /** Build from the context; `env` defaults to the process environment. */
  constructor(ctx: ModuleContext, opts: { env?: Record<string, string | undefined> } = {}) {
    this.#ctx = ctx;
    this.#env = opts.env;
    this.#lag = new LagProbe(ctx);
  }

  /** Subscribe the OS sinks and start the lag probe. */
  start(): Promise<void> {
    const cfg = this.#ctx.config.log;
    this.#sinks = createOsLog(cfg, { env: this.#env, now: () => this.#ctx.clock.now() });
    const min = [cfg.stderr.minSeverity, cfg.syslog?.minSeverity ?? "critical"]
      .sort((a, b) => severityRank(a) - severityRank(b))[0];
    const sinks = this.#sinks;
    this.#unsub = this.#ctx.bus.subscribe((e) => sinks.handle(e), { minSeverity: min });
    this.#lag.start();
    return Promise.resolve();
  }

  /** Unsubscribe, flush syslog, stop the probe. */
  async stop(): Promise<void> {
    this.#unsub?.();
    this.#unsub = undefined;
    this.#lag.stop();
    await this.#sinks?.close();
  }

  /** Status: where events go. */
  status(): LogStatus {
    const s = this.#sinks;
    return {
      stderr: { journal: s?.journal ?? false, lines: s?.stderrLines ?? 0 },
      syslog: this.#ctx.config.log.syslog
        ? {
          target: this.#ctx.config.log.syslog.target,
          sent: s?.syslog?.sent ?? 0,
          failed: s?.syslog?.failed ?? 0,
        }
        : null,
    };
  }

  /** The process's own figures and the OS log counters. */
  metrics(): MetricFamily[] {
    const mem = Deno.memoryUsage();
    const cpu = process.cpuUsage();
    const s = this.#sinks;
    const fams: MetricFamily[] = [
      {
        name: "process_cpu_seconds_total",
        help: "CPU time used by the keepwire process (user + system), seconds",
        type: "counter",
        samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
      },
      {
        name: "process_resident_memory_bytes",
        help: "resident set size of the keepwire process",
        type: "gauge",
        samples: [{ value: mem.rss }],
      },
      {
        name: "process_heap_used_bytes",
        help: "JavaScript heap in use",
        type: "gauge",
        samples: [{ value: mem.heapUsed }],
      },
      {
        name: "process_event_loop_lag_seconds",
        help:
          `worst event-loop lag of the last 10 s (timer drift, probed every ${LAG_PROBE_MS} ms)`,
        type: "gauge",
        samples: [{ value: this.#lag.maxMs() / 1000 }],
      },
      {
        name: "log_lines_total",
        help: "events written to the OS logs, by target",
        type: "counter",
        samples: [
          { labels: { target: "stderr" }, value: s?.stderrLines ?? 0 },
          { labels: { target: "syslog" }, value: s?.syslog?.sent ?? 0 },
        ],
      },
      {
        name: "log_dropped_total",
        help: "events not written to the OS logs (stderr rate limit, syslog send failures)",
        type: "counter",
        samples: [
          { labels: { target: "stderr" }, value: s?.stderrDropped ?? 0 },
          { labels: { target: "syslog" }, value: s?.syslog?.failed ?? 0 },
        ],
      },
    ];
    return fams;
  }
}

/** Build the log module. */
export function createLogModule(ctx: ModuleContext): LogModule {
  return new LogModule(ctx);
}
