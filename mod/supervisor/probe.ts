/**
 * Probe subsystems: a service keepwire does not start but watches (HTTP status and
 * body, TCP connect, exec exit code) on an interval, with failure and recovery
 * thresholds like monit. Reaching the failure threshold ends the "run"; the state
 * machine then restarts it through the configured restart command, with the same
 * backoff, intensity and escalation as any other subsystem.
 * @module
 */
import type { Clock, TimerId } from "../module.ts";
import type { Publish } from "./events.ts";
import type { SubsystemSpec } from "./config.ts";
import type { Runner, RunnerContext, RunnerEvents } from "./runner.ts";
import { probeCheckSchema } from "./config.ts";
import type { z } from "zod";

/** A check spec. */
export type ProbeCheck = z.infer<typeof probeCheckSchema>;

/** Result of one check: null = passed, else why it failed. */
export type CheckResult = string | null;

/** Runs one check. */
export type CheckFn = (check: ProbeCheck, timeoutMs: number) => Promise<CheckResult>;

async function withTimeout<T>(p: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${ms} ms`)), ms);
  try {
    return await p(ac.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** The real checks: HTTP (status, body), TCP connect, exec exit code. */
export const runCheck: CheckFn = async (
  check: ProbeCheck,
  timeoutMs: number,
): Promise<CheckResult> => {
  try {
    switch (check.type) {
      case "http":
        return await withTimeout(async (signal) => {
          const res = await fetch(check.url, { method: check.method, signal, redirect: "manual" });
          const okStatus = check.expectStatus
            ? check.expectStatus.includes(res.status)
            : res.status >= 200 && res.status < 400;
          const needBody = check.bodyContains !== undefined || check.bodyRegex !== undefined;
          const body = needBody ? await res.text() : (await res.body?.cancel(), "");
          if (!okStatus) return `HTTP ${res.status} from ${check.url}`;
          if (check.bodyContains !== undefined && !body.includes(check.bodyContains)) {
            return `body of ${check.url} does not contain ${JSON.stringify(check.bodyContains)}`;
          }
          if (check.bodyRegex !== undefined && !new RegExp(check.bodyRegex).test(body)) {
            return `body of ${check.url} does not match /${check.bodyRegex}/`;
          }
          return null;
        }, timeoutMs);
      case "tcp":
        return await withTimeout(async (signal) => {
          const conn = await Promise.race([
            Deno.connect({ hostname: check.host, port: check.port }),
            new Promise<never>((_, rej) =>
              signal.addEventListener("abort", () => rej(signal.reason))
            ),
          ]);
          conn.close();
          return null;
        }, timeoutMs);
      case "exec":
        return await withTimeout(async (signal) => {
          const out = await new Deno.Command(check.command, {
            args: check.args,
            stdin: "null",
            stdout: "null",
            stderr: "null",
            signal,
          }).output();
          if (signal.aborted) return `${check.command} timed out after ${timeoutMs} ms`;
          return out.code === check.expectExit
            ? null
            : `${check.command} exited ${out.code}, expected ${check.expectExit}`;
        }, timeoutMs);
    }
  } catch (e) {
    const target = check.type === "http"
      ? check.url
      : check.type === "tcp"
      ? `${check.host}:${check.port}`
      : check.command;
    return `${target}: ${(e as Error).message}`;
  }
};

/** Runs one attempt of a probe subsystem. */
export class ProbeRunner implements Runner {
  readonly #spec: SubsystemSpec;
  readonly #probe: NonNullable<SubsystemSpec["probe"]>;
  readonly #ev: RunnerEvents;
  readonly #clock: Clock;
  readonly #publish: Publish;
  readonly #check: CheckFn;
  readonly #restart: boolean;
  #timer: TimerId | undefined;
  #running = false;
  #paused = false;
  #readySent = false;
  #unhealthy = false;
  #failures = 0;
  #successes = 0;
  #inFlight: Promise<void> | undefined;

  /** Build for one attempt; `check` is injectable for tests. */
  constructor(spec: SubsystemSpec, ev: RunnerEvents, ctx: RunnerContext, check: CheckFn) {
    this.#spec = spec;
    this.#probe = spec.probe!;
    this.#ev = ev;
    this.#clock = ctx.clock;
    this.#publish = ctx.publish;
    this.#check = check;
    this.#restart = ctx.restart;
  }

  /** Probes have no pid. */
  get pid(): number | null {
    return null;
  }

  /** On a restart, run the restart command first; then probe at once and on the interval. */
  async start(): Promise<void> {
    this.#running = true;
    const rc = this.#probe.restartCommand;
    if (this.#restart && rc) {
      let code: number;
      try {
        const out = await new Deno.Command(rc.command, {
          args: rc.args,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        code = out.code;
        this.#publish({
          module: "supervisor",
          kind: "supervisor.probe_restart_command",
          severity: code === 0 ? "notice" : "error",
          payload: {
            subsystem: this.#spec.name,
            command: [rc.command, ...rc.args],
            exitCode: code,
            stderr: new TextDecoder().decode(out.stderr).slice(0, 2000),
          },
        });
      } catch (e) {
        throw new Error(`restart command ${rc.command}: ${(e as Error).message}`);
      }
      if (code !== 0) throw new Error(`restart command ${rc.command} exited ${code}`);
    }
    if (!this.#running) return;
    this.#tick();
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), this.#probe.intervalMs);
  }

  #tick(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    if (this.#paused) return this.#schedule();
    this.#inFlight = this.#check(this.#probe.check, this.#probe.timeoutMs).then(
      (r) => this.#result(r),
      (e) => this.#result(`check failed: ${(e as Error).message}`),
    ).finally(() => {
      this.#inFlight = undefined;
      this.#schedule();
    });
  }

  #result(r: CheckResult): void {
    if (!this.#running || this.#paused) return;
    if (r === null) {
      this.#failures = 0;
      this.#successes++;
      if (!this.#readySent) {
        this.#readySent = true;
        this.#ev.ready();
      } else if (this.#unhealthy && this.#successes >= this.#probe.recoveryThreshold) {
        this.#unhealthy = false;
        this.#ev.recovered();
      }
      if (this.#readySent) this.#ev.heartbeat();
      return;
    }
    this.#successes = 0;
    if (!this.#readySent) return; // not up yet: the readiness timeout decides
    this.#failures++;
    if (this.#failures >= this.#probe.failureThreshold) {
      this.#running = false;
      this.#ev.exited({
        code: null,
        signal: null,
        clean: false,
        text: `${this.#failures} consecutive probe failures: ${r}`,
        cause: "probe-failed",
      });
      return;
    }
    if (!this.#unhealthy) {
      this.#unhealthy = true;
      this.#ev.unhealthy(`probe failed (${this.#failures}/${this.#probe.failureThreshold}): ${r}`);
    }
  }

  #halt(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stop probing (the watched service is not touched). */
  stop(): Promise<void> {
    this.#halt();
    return Promise.resolve();
  }

  /** Stop probing. */
  kill(): Promise<void> {
    this.#halt();
    return Promise.resolve();
  }

  /** Pause probing. */
  suspend(): Promise<void> {
    this.#paused = true;
    return Promise.resolve();
  }

  /** Resume probing. */
  resume(): Promise<void> {
    this.#paused = false;
    this.#failures = 0;
    return Promise.resolve();
  }

  /** The check in flight, if any (tests). */
  get inFlight(): Promise<void> | undefined {
    return this.#inFlight;
  }
}

/** Runner factory for probes; `check` is injectable for tests. */
export function probeRunnerFactory(
  check: CheckFn = runCheck,
): (spec: SubsystemSpec, ev: RunnerEvents, ctx: RunnerContext) => Runner {
  return (spec, ev, ctx) => new ProbeRunner(spec, ev, ctx, check);
}
