/**
 * Test helpers for the supervisor: a fake clock (@sinonjs/fake-timers) and a fake
 * runner factory whose runs the test drives (ready, heartbeat, exit, ...).
 * @module
 */
import * as FakeTimers from "@sinonjs/fake-timers";
import nodeAssert from "node:assert/strict";
import type { Clock, TimerId } from "../mod/module.ts";
import type { EventInput } from "../mod/events/mod.ts";
import type { EscalationActions } from "../mod/supervisor/api.ts";
import {
  type SubsystemSpec,
  type SubsystemSpecInput,
  subsystemSpecSchema,
  type SupervisorConfig,
  supervisorConfigSchema,
} from "../mod/supervisor/config.ts";
import type { ExitInfo, Runner, RunnerEvents, RunnerFactory } from "../mod/supervisor/runner.ts";
import { Supervisor } from "../mod/supervisor/supervisor.ts";

/** Assert a condition. */
export function assert(v: unknown, msg?: string): asserts v {
  nodeAssert.ok(v, msg);
}
/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}
/** String matches a regex. */
export function assertMatch(s: string, re: RegExp, msg?: string): void {
  nodeAssert.match(s, re, msg);
}
/** The promise rejects with an Error whose message includes `includes`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof Error, "rejected with an Error");
    if (includes) assert(e.message.includes(includes), `"${e.message}" lacks "${includes}"`);
    return e;
  }
  throw new Error("expected a rejection");
}

/** A recorded event. */
export interface RecordedEvent {
  /** Kind. */
  kind: string;
  /** Severity. */
  severity: string;
  /** Payload. */
  payload: Record<string, unknown>;
}

/** A fake clock and the Clock view of it. */
export function fakeClock(start = 1_000_000): {
  fc: FakeTimers.Clock;
  clock: Clock;
} {
  const fc = FakeTimers.createClock(start);
  const clock: Clock = {
    now: () => fc.now,
    setTimeout: (fn, ms) => fc.setTimeout(fn, ms) as unknown as TimerId,
    clearTimeout: (id) => fc.clearTimeout(id as unknown as FakeTimers.TimerId),
    setInterval: (fn, ms) => fc.setInterval(fn, ms) as unknown as TimerId,
    clearInterval: (id) => fc.clearInterval(id as unknown as FakeTimers.TimerId),
  };
  return { fc, clock };
}

/** One fake run. */
export class FakeRun implements Runner {
  /** Events into the state machine. */
  readonly ev: RunnerEvents;
  /** The spec. */
  readonly spec: SubsystemSpec;
  /** Fake pid. */
  readonly pid: number;
  /** Lifecycle log of this run. */
  readonly log: string[] = [];
  /** Was it a restart? */
  readonly restart: boolean;
  #fail: string | undefined;

  /** Build. */
  constructor(spec: SubsystemSpec, ev: RunnerEvents, pid: number, restart: boolean, fail?: string) {
    this.spec = spec;
    this.ev = ev;
    this.pid = pid;
    this.restart = restart;
    this.#fail = fail;
  }
  /** Launch. */
  start(): Promise<void> {
    this.log.push("start");
    return this.#fail ? Promise.reject(new Error(this.#fail)) : Promise.resolve();
  }
  /** Stop. */
  stop(): Promise<void> {
    this.log.push("stop");
    return Promise.resolve();
  }
  /** Kill. */
  kill(): Promise<void> {
    this.log.push("kill");
    return Promise.resolve();
  }
  /** Suspend. */
  suspend(): Promise<void> {
    this.log.push("suspend");
    return Promise.resolve();
  }
  /** Resume. */
  resume(): Promise<void> {
    this.log.push("resume");
    return Promise.resolve();
  }
  /** Exit with a code. */
  exit(code: number): void {
    const info: ExitInfo = {
      code,
      signal: null,
      clean: code === 0,
      text: `exit code ${code}`,
      cause: "exit",
    };
    this.ev.exited(info);
  }
}

/** Fake runners: every run is recorded; `autoReady` names get ready() at once. */
export class FakeRunners {
  /** Every run, in order. */
  readonly runs: FakeRun[] = [];
  /** Names that become ready as soon as they start. */
  readonly autoReady = new Set<string>();
  /** Names whose start() rejects with this message. */
  readonly failStart = new Map<string, string>();
  /** Global order of lifecycle calls: `start:a`, `stop:b`, ... */
  readonly order: string[] = [];
  #pid = 100;

  /** The factory to hand to the supervisor. */
  readonly factory: RunnerFactory = (spec, ev, ctx) => {
    const run = new FakeRun(spec, ev, ++this.#pid, ctx.restart, this.failStart.get(spec.name));
    const orig = { start: run.start.bind(run), stop: run.stop.bind(run), kill: run.kill.bind(run) };
    run.start = () => {
      this.order.push(`start:${spec.name}`);
      const p = orig.start();
      if (this.autoReady.has(spec.name)) p.then(() => ev.ready(), () => {});
      return p;
    };
    run.stop = () => {
      this.order.push(`stop:${spec.name}`);
      return orig.stop();
    };
    run.kill = () => {
      this.order.push(`kill:${spec.name}`);
      return orig.kill();
    };
    this.runs.push(run);
    return run;
  };

  /** The latest run of a subsystem. */
  last(name: string): FakeRun {
    const r = this.runs.filter((r) => r.spec.name === name).at(-1);
    if (!r) throw new Error(`no run of ${name}`);
    return r;
  }

  /** Runs of a subsystem. */
  of(name: string): FakeRun[] {
    return this.runs.filter((r) => r.spec.name === name);
  }
}

/** Build a spec with test-friendly defaults (worker kind, no jitter). */
export function spec(input: Partial<SubsystemSpecInput> & { name: string }): SubsystemSpec {
  return subsystemSpecSchema.parse({
    kind: "worker",
    module: "x.ts",
    heartbeat: null,
    backoff: { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0, resetAfterMs: 10_000 },
    ...input,
  });
}

/** Supervisor settings with defaults. */
export function supConfig(input: Record<string, unknown> = {}): SupervisorConfig {
  return supervisorConfigSchema.parse(input);
}

/** A recording mock of the escalation actions. */
export class MockEscalation implements EscalationActions {
  /** Calls, e.g. `hold:all:supervisor:a`. */
  readonly calls: string[] = [];
  /** Hold. */
  bypassHold(segments: string[] | "all", reason: string): Promise<void> {
    this.calls.push(`hold:${segments === "all" ? "all" : segments.join(",")}:${reason}`);
    return Promise.resolve();
  }
  /** Release. */
  bypassRelease(segments: string[] | "all", reason: string): Promise<void> {
    this.calls.push(`release:${segments === "all" ? "all" : segments.join(",")}:${reason}`);
    return Promise.resolve();
  }
  /** Reboot (never real in tests). */
  reboot(reason: string): Promise<void> {
    this.calls.push(`reboot:${reason}`);
    return Promise.resolve();
  }
}

/** A supervisor on fake time with fake runners, recording its events. */
export function harness(specs: SubsystemSpec[], cfg: Record<string, unknown> = {}): {
  fc: FakeTimers.Clock;
  clock: Clock;
  sup: Supervisor;
  runners: FakeRunners;
  escalation: MockEscalation;
  events: RecordedEvent[];
  transitions: () => string[];
  flush: () => Promise<void>;
} {
  const { fc, clock } = fakeClock();
  const runners = new FakeRunners();
  const escalation = new MockEscalation();
  const events: RecordedEvent[] = [];
  const sup = new Supervisor({
    specs,
    config: supConfig(cfg),
    clock,
    publish: (e: EventInput) =>
      void events.push({
        kind: e.kind,
        severity: e.severity ?? "info",
        payload: (e.payload ?? {}) as Record<string, unknown>,
      }),
    runners: runners.factory,
    escalation,
    random: () => 0.5,
  });
  const flush = async () => {
    for (let i = 0; i < 5; i++) {
      await fc.tickAsync(0);
      await sup.settled();
    }
  };
  const transitions = () =>
    events.filter((e) => e.kind === "supervisor.transition").map((e) => {
      const p = e.payload as { subsystem: string; from: string; to: string };
      return `${p.subsystem}:${p.from}->${p.to}`;
    });
  return { fc, clock, sup, runners, escalation, events, transitions, flush };
}
