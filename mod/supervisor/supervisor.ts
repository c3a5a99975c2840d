/**
 * The supervisor: all subsystems, their dependency order (`after`, `requires`),
 * the coupling of restarts (a required subsystem going down stops its
 * dependents; they start again once it is ready), and escalation when a
 * subsystem gives up (mark-failed | restart-group | bypass-hold | reboot).
 * @module
 */
import type { Clock } from "../module.ts";
import type { Publish } from "./events.ts";
import type { EscalationActions, SubsystemInfo, SubsystemState, SupervisorApi } from "./api.ts";
import type { SubsystemSpec, SupervisorConfig } from "./config.ts";
import type { RunnerFactory } from "./runner.ts";
import { RestartIntensity } from "./intensity.ts";
import { type Reason, Subsystem, type Transition } from "./state.ts";
import { UnknownSubsystemError } from "./errors.ts";
import { supervisorHoldReason } from "../bypass/hold_reasons.ts";

/** What the supervisor is built with. */
export interface SupervisorOptions {
  /** Validated specs, in config order. */
  specs: readonly SubsystemSpec[];
  /** Supervisor settings. */
  config: SupervisorConfig;
  /** Clock. */
  clock: Clock;
  /** Publish an event. */
  publish: Publish;
  /** Runner factory (worker | process | probe, or a fake in tests). */
  runners: RunnerFactory;
  /** Escalation actions (bypass hold, reboot). */
  escalation: EscalationActions;
  /** Random source for backoff jitter (tests). */
  random?: () => number;
}

const UP: ReadonlySet<SubsystemState> = new Set(["starting", "ready", "unhealthy", "suspended"]);
const RUNNING: ReadonlySet<SubsystemState> = new Set(["ready", "unhealthy", "suspended"]);

/** Dependency levels: level 0 has no dependencies; a subsystem is above all it depends on. */
export function dependencyLevels(specs: readonly SubsystemSpec[]): string[][] {
  const by = new Map(specs.map((s) => [s.name, s]));
  const level = new Map<string, number>();
  const visit = (n: string, seen: Set<string>): number => {
    const known = level.get(n);
    if (known !== undefined) return known;
    if (seen.has(n)) return 0; // cycles are rejected by the config; be safe anyway
    seen.add(n);
    const s = by.get(n);
    let l = 0;
    for (const d of s ? [...s.after, ...s.requires] : []) {
      if (by.has(d)) l = Math.max(l, visit(d, seen) + 1);
    }
    level.set(n, l);
    return l;
  };
  for (const s of specs) visit(s.name, new Set());
  const out: string[][] = [];
  for (const s of specs) (out[level.get(s.name)!] ??= []).push(s.name);
  return out.filter((l) => l?.length);
}

/** The supervisor. Implements the SupervisorApi that other modules use. */
export class Supervisor implements SupervisorApi {
  readonly #o: SupervisorOptions;
  readonly #subs = new Map<string, Subsystem>();
  readonly #levels: string[][];
  readonly #order: string[];
  readonly #wanted = new Set<string>();
  readonly #holds = new Set<string>();
  readonly #groupIntensity = new Map<string, RestartIntensity>();
  readonly #queueFns = new Set<(name: string, depth: number, oldestAgeMs: number) => void>();
  #shuttingDown = false;
  readonly #goingDown = new Set<string>();
  #pending = new Set<Promise<unknown>>();
  #essentialsReady: boolean | undefined;

  /** Build every subsystem in state `stopped`. */
  constructor(opts: SupervisorOptions) {
    this.#o = opts;
    for (const spec of opts.specs) {
      const sub = new Subsystem(spec, {
        clock: opts.clock,
        runners: opts.runners,
        config: opts.config,
        publish: opts.publish,
        onTransition: (t) => this.#onTransition(t),
        canStart: (n) => this.#blockedBy(n),
        random: opts.random,
      });
      sub.onQueue((d, a) => {
        for (const fn of this.#queueFns) fn(spec.name, d, a);
      });
      this.#subs.set(spec.name, sub);
    }
    this.#levels = dependencyLevels(opts.specs);
    this.#order = this.#levels.flat();
  }

  /** A subsystem by name (throws UnknownSubsystemError). */
  get(name: string): Subsystem {
    const s = this.#subs.get(name);
    if (!s) throw new UnknownSubsystemError(name);
    return s;
  }

  /** Names in start order (dependencies first). */
  get order(): readonly string[] {
    return this.#order;
  }

  /**
   * Start every `autoStart` subsystem in dependency order. Resolves once the first
   * level is launched; it does not wait for readiness (dependents follow as their
   * requirements get ready).
   */
  async startAll(): Promise<void> {
    this.#shuttingDown = false;
    for (const s of this.#o.specs) if (s.autoStart) this.#wanted.add(s.name);
    const starts = this.#reconcile({ cause: "boot", text: "keepwire start" });
    this.#noteEssentials(true);
    await Promise.allSettled(starts);
  }

  /** Stop everything, dependents before what they depend on. */
  async stopAll(): Promise<void> {
    this.#shuttingDown = true;
    this.#wanted.clear();
    for (const level of [...this.#levels].reverse()) {
      await Promise.all(
        level.map((n) => this.get(n).stop({ cause: "shutdown", text: "keepwire stop" })),
      );
    }
    await this.settled();
  }

  /** Resolves when no supervisor-initiated action is pending (tests). */
  async settled(): Promise<void> {
    while (this.#pending.size) await Promise.allSettled([...this.#pending]);
    await Promise.all([...this.#subs.values()].map((s) => s.idle()));
  }

  // ---- SupervisorApi ----------------------------------------------------------

  /** All subsystems, in config order. */
  list(): SubsystemInfo[] {
    return this.#o.specs.map((s) => this.get(s.name).info());
  }

  /** Start one, pulling in what it requires (manual). */
  async start(name: string): Promise<void> {
    const sub = this.get(name);
    for (const n of [name, ...this.#requiresClosure(name)]) this.#wanted.add(n);
    const reason: Reason = { cause: "manual", text: "manual start" };
    if (sub.state === "failed" || sub.state === "stopped") {
      await sub.start(reason);
    }
    this.#reconcile({ cause: "dependency", text: `pulled in by ${name}` });
  }

  /** Stop one; what requires it stops first (manual). */
  async stop(name: string): Promise<void> {
    const sub = this.get(name);
    this.#wanted.delete(name);
    await this.#whileGoingDown(name, async () => {
      await this.#stopDependents(name, { cause: "dependency", text: `${name} stopped by request` });
      await sub.stop({ cause: "manual", text: "manual stop" });
    });
  }

  /** Restart one now; what requires it stops before and starts after (manual). */
  async restart(name: string): Promise<void> {
    const sub = this.get(name);
    this.#wanted.add(name);
    for (const n of this.#requiresClosure(name)) this.#wanted.add(n);
    await this.#whileGoingDown(name, async () => {
      await this.#stopDependents(name, {
        cause: "dependency",
        text: `${name} restarted by request`,
      });
      await sub.restart({ cause: "manual", text: "manual restart" });
    });
    this.#reconcile({ cause: "dependency", text: `${name} restarted` });
  }

  /** Suspend one (governor). */
  async suspend(name: string, reason: string): Promise<void> {
    await this.get(name).suspend({ cause: "governor", text: reason });
  }

  /** Resume one (governor). */
  async resume(name: string, reason: string): Promise<void> {
    await this.get(name).resume({ cause: "governor", text: reason });
  }

  /** Subscribe to queue reports. */
  onQueueReport(fn: (name: string, depth: number, oldestAgeMs: number) => void): () => void {
    this.#queueFns.add(fn);
    return () => this.#queueFns.delete(fn);
  }

  /** True when every essential subsystem is ready. */
  essentialHealthy(): boolean {
    return [...this.#subs.values()].every((s) =>
      s.spec.criticality !== "essential" || s.state === "ready"
    );
  }

  /** Names of essential subsystems that are failed (self-monitoring stops petting). */
  essentialFailed(): string[] {
    return [...this.#subs.values()].filter((s) =>
      s.spec.criticality === "essential" && s.state === "failed"
    ).map((s) => s.name);
  }

  // ---- internals --------------------------------------------------------------

  #track(p: Promise<unknown>, what: string): void {
    const q = p.catch((e) => {
      this.#o.publish({
        module: "supervisor",
        kind: "supervisor.error",
        severity: "error",
        payload: { action: what, error: (e as Error).message },
      });
    }).finally(() => this.#pending.delete(q));
    this.#pending.add(q);
  }

  /** Why `name` may not start now, or null. */
  #blockedBy(name: string): string | null {
    const spec = this.get(name).spec;
    if (this.#goingDown.size) {
      for (const r of this.#requiresClosure(name)) {
        if (this.#goingDown.has(r)) return `waiting for required ${r} (going down)`;
      }
    }
    for (const r of this.#requiresClosure(name)) {
      const st = this.get(r).state;
      if (!RUNNING.has(st)) return `waiting for required ${r} (${st})`;
    }
    for (const a of spec.after) {
      const st = this.get(a).state;
      if (st === "starting" || st === "restarting") return `waiting for ${a} (${st})`;
      if (st === "stopped" && this.#wanted.has(a)) return `waiting for ${a} (stopped)`;
    }
    return null;
  }

  /** Start every wanted, stopped subsystem whose dependencies allow it; returns the starts. */
  #reconcile(reason: Reason): Promise<void>[] {
    if (this.#shuttingDown) return [];
    const started: Promise<void>[] = [];
    for (const n of this.#order) {
      const sub = this.get(n);
      if (!this.#wanted.has(n) || sub.state !== "stopped") continue;
      if (this.#blockedBy(n) !== null) continue;
      const p = sub.start(reason);
      this.#track(p, `start ${n}`);
      started.push(p);
    }
    return started;
  }

  /** Everything that (transitively) requires `name`, deepest first. */
  #dependentsOf(name: string): string[] {
    const out = new Set<string>();
    const walk = (n: string) => {
      for (const s of this.#o.specs) {
        if (s.requires.includes(n) && !out.has(s.name)) {
          out.add(s.name);
          walk(s.name);
        }
      }
    };
    walk(name);
    return [...this.#order].reverse().filter((n) => out.has(n));
  }

  /** Everything `name` (transitively) requires. */
  #requiresClosure(name: string): string[] {
    const out = new Set<string>();
    const walk = (n: string) => {
      for (const r of this.get(n).spec.requires) {
        if (!out.has(r)) {
          out.add(r);
          walk(r);
        }
      }
    };
    walk(name);
    return [...out];
  }

  async #stopDependents(name: string, reason: Reason): Promise<void> {
    for (const d of this.#dependentsOf(name)) {
      const sub = this.get(d);
      if (sub.state !== "stopped") await sub.stop(reason);
    }
  }

  /** Run `fn` while `name` counts as going down: nothing that requires it starts meanwhile. */
  async #whileGoingDown(name: string, fn: () => Promise<void>): Promise<void> {
    this.#goingDown.add(name);
    try {
      await fn();
    } finally {
      this.#goingDown.delete(name);
    }
  }

  /**
   * Publish `supervisor.essentials_ready` when "every essential subsystem is ready"
   * changed since the last one (or always, when `force`).
   */
  #noteEssentials(force = false): void {
    const ready = this.essentialHealthy();
    if (!force && ready === this.#essentialsReady) return;
    this.#essentialsReady = ready;
    this.#o.publish({
      module: "supervisor",
      kind: "supervisor.essentials_ready",
      severity: ready ? "notice" : "warning",
      payload: { ready },
    });
  }

  #onTransition(t: Transition): void {
    if (this.#essentialsReady !== undefined) this.#noteEssentials();
    if (this.#shuttingDown) return;
    const name = t.subsystem;
    if (t.to === "stopped" && t.reason.cause !== "dependency") {
      // stopped on request or by its own clean exit: not started again by reconcile
      this.#wanted.delete(name);
    }
    if (UP.has(t.from) && (t.to === "restarting" || t.to === "failed" || t.to === "stopped")) {
      const deps = this.#dependentsOf(name).filter((d) => this.get(d).state !== "stopped");
      if (deps.length) {
        this.#track(
          this.#stopDependents(name, {
            cause: "dependency",
            text: `required ${name} is ${t.to}: ${t.reason.text}`,
          }),
          `stop dependents of ${name}`,
        );
      }
    }
    if (t.to === "ready" && this.#holds.has(name)) {
      this.#holds.delete(name);
      const spec = this.get(name).spec;
      this.#track(
        this.#o.escalation.bypassRelease(spec.escalation.segments, supervisorHoldReason(name)).then(
          () =>
            this.#o.publish({
              module: "supervisor",
              kind: "supervisor.escalation_released",
              severity: "notice",
              payload: { subsystem: name, segments: spec.escalation.segments },
            }),
        ),
        `release bypass hold of ${name}`,
      );
    }
    if (t.to === "failed" && t.gaveUp) {
      this.#track(this.#escalate(name, t), `escalate ${name}`);
    }
    if (t.to === "ready" || t.to === "failed" || t.to === "stopped") {
      this.#reconcile({ cause: "dependency", text: `${name} is ${t.to}` });
    }
  }

  async #escalate(name: string, t: Transition): Promise<void> {
    const spec = this.get(name).spec;
    const action = spec.escalation.action;
    const why = `subsystem ${name} failed: ${t.reason.text}`;
    const publish = (extra: Record<string, unknown>, severity: "critical" | "error" = "critical") =>
      this.#o.publish({
        module: "supervisor",
        kind: "supervisor.escalation",
        severity: spec.criticality === "essential" ? "critical" : severity,
        payload: { subsystem: name, action, reason: t.reason.text, ...extra },
      });
    switch (action) {
      case "mark-failed":
        publish({}, "error");
        return;
      case "bypass-hold":
        await this.#o.escalation.bypassHold(spec.escalation.segments, supervisorHoldReason(name));
        this.#holds.add(name);
        publish({ segments: spec.escalation.segments });
        return;
      case "reboot":
        publish({});
        await this.#o.escalation.reboot(why);
        return;
      case "restart-group": {
        const group = this.#groupOf(name);
        const key = spec.group ?? `${name}+dependents`;
        let gi = this.#groupIntensity.get(key);
        if (!gi) {
          gi = new RestartIntensity(this.#o.config.groupIntensity);
          this.#groupIntensity.set(key, gi);
        }
        if (gi.record(this.#o.clock.now())) {
          publish({ group: key, members: group, gaveUp: true });
          const reason: Reason = {
            cause: "escalation",
            text:
              `group ${key} gave up after ${this.#o.config.groupIntensity.maxRestarts} restarts`,
          };
          for (const n of [...group].reverse()) await this.get(n).markFailed(reason);
          return;
        }
        publish({ group: key, members: group });
        const reason: Reason = { cause: "escalation", text: `restart of group ${key} (${why})` };
        for (const n of group) this.#wanted.delete(n); // nothing restarts half-way
        for (const n of [...group].reverse()) {
          const sub = this.get(n);
          if (sub.state !== "stopped") await sub.stop(reason);
          sub.resetHistory();
        }
        for (const n of group) this.#wanted.add(n);
        this.#reconcile(reason);
        return;
      }
    }
  }

  /** Members of `name`'s restart group, in start order. */
  #groupOf(name: string): string[] {
    const g = this.get(name).spec.group;
    if (g) return this.#order.filter((n) => this.get(n).spec.group === g);
    const set = new Set([name, ...this.#dependentsOf(name)]);
    return this.#order.filter((n) => set.has(n));
  }
}
