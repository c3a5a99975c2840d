/**
 * The supervisor module: runs the configured subsystems (worker | process | probe),
 * restarts them, escalates, pets the watchdogs while healthy, and serves
 * /api/subsystems. Other modules use it through `SupervisorApi` (api.ts).
 * @module
 */
import type { MetricFamily } from "../web/metrics.ts";
import type { HistorySample } from "../history/types.ts";
import { supervisorMetrics } from "./metrics.ts";
import type { Hono } from "hono";
import type { Module, ModuleContext, PartHealth } from "../module.ts";
import { SUBSYSTEMS_PAGE } from "./page.tsx";
import type {
  BypassControl,
  EscalationActions,
  Petter,
  SubsystemInfo,
  SupervisorApi,
} from "./api.ts";
import type { RunnerFactory } from "./runner.ts";
import { Supervisor } from "./supervisor.ts";
import { HARDWARE_WATCHDOG_PETTER, SelfMonitor } from "./selfmon.ts";
import { systemReboot } from "./system_actions.ts";
import { leakedWorkerThreads, WorkerPool, workerRunnerFactory } from "./worker.ts";
import { createProcessRunner } from "./process.ts";
import { probeRunnerFactory } from "./probe.ts";
import { supervisorRoutes, type SupervisorStatus } from "./routes.ts";
import { GroupLedger } from "./orphans.ts";
import { NotifyHub } from "./notify.ts";
import type { Publish } from "./events.ts";
import type { SdkHost } from "../sdk/host.ts";
import { SdkSockets } from "../sdk/socket.ts";
import { join } from "node:path";

export type {
  BypassControl,
  Criticality,
  EscalationActions,
  Petter,
  SubsystemInfo,
  SubsystemState,
  SupervisorApi,
} from "./api.ts";
export { HARDWARE_WATCHDOG_PETTER } from "./selfmon.ts";
export { SUPERVISOR_EVENTS } from "./events.ts";
export { Supervisor } from "./supervisor.ts";
export * from "./errors.ts";
export type { SubsystemSpec, SupervisorConfig } from "./config.ts";

/**
 * The supervisor module: a Module that also implements SupervisorApi.
 * `start()`/`stop()` without a name start/stop the module; with a name, a subsystem.
 */
export interface SupervisorModule
  extends Omit<Module, "start" | "stop">, Omit<SupervisorApi, "start" | "stop"> {
  /** Start the module (no name) or one subsystem (manual). */
  start(name?: string): Promise<void>;
  /** Stop the module (no name) or one subsystem (manual). */
  stop(name?: string): Promise<void>;
  /** The supervisor behind the API. */
  readonly supervisor: Supervisor;
  /** Self-monitoring (watchdog petting). */
  readonly selfmon: SelfMonitor;
  /** Routes under /api. */
  routes(): Hono;
}

/** What the supervisor module needs from outside. */
export interface SupervisorDeps {
  /** Escalation actions (bypass hold/release, reboot). */
  escalation: EscalationActions;
  /** Watchdogs petted while healthy (hardware: name HARDWARE_WATCHDOG_PETTER; bypass cards). */
  petters: Petter[];
  /** Runner factory override (tests). */
  runners?: RunnerFactory;
  /** Environment for systemd detection (tests); default Deno.env. */
  env?: Record<string, string | undefined>;
  /** The SDK's table service (worker calls, process sockets under DATA/sdk/). */
  sdk?: SdkHost;
}

/**
 * The supervisor's connections in a running keepwire: escalation holds on the bypass
 * segments, reboot through systemd (system_actions.ts), and the watchdogs petted while
 * healthy (the bypass cards; /dev/watchdog only when keepwire owns it, see selfmon.ts).
 */
export function supervisorWiring(
  bypass: BypassControl,
  hardwareWatchdog: { pet(): Promise<void> | void },
  reboot: (reason: string) => Promise<void> = systemReboot,
): Pick<SupervisorDeps, "escalation" | "petters"> {
  const each = async (targets: string[] | "all", fn: (t: string) => Promise<unknown>) => {
    for (const t of targets === "all" ? ["all"] : targets) await fn(t);
  };
  return {
    escalation: {
      bypassHold: (segments, reason) => each(segments, (t) => bypass.hold(t, reason, "supervisor")),
      bypassRelease: (segments, reason) => each(segments, (t) => bypass.release(t, reason)),
      reboot,
    },
    petters: [
      { name: "bypass-watchdogs", pet: () => bypass.petWatchdogs() },
      { name: HARDWARE_WATCHDOG_PETTER, pet: () => hardwareWatchdog.pet() },
    ],
  };
}

/** From this many process subsystems on, their sd_notify is received off the main thread. */
export const NOTIFY_THREAD_MIN_PROCESSES = 8;

/**
 * Runner factory by kind: worker (shared spare pool), process (its groups recorded in
 * `groups`), probe.
 */
export function defaultRunners(
  pool: WorkerPool,
  groups?: GroupLedger,
  sdk?: { host: SdkHost; sockets: SdkSockets },
  notifyHub?: NotifyHub,
): RunnerFactory {
  const worker = workerRunnerFactory(pool, sdk?.host);
  const sdkSocket = sdk
    ? (name: string, ids?: { uid: number; gid: number }) => sdk.sockets.open(name, ids)
    : undefined;
  const probe = probeRunnerFactory();
  return (spec, ev, ctx) => {
    switch (spec.kind) {
      case "worker":
        return worker(spec, ev, ctx);
      case "process":
        return createProcessRunner(spec, ev, { ...ctx, groups, sdkSocket, notifyHub });
      case "probe":
        return probe(spec, ev, ctx);
    }
  };
}

/** Build the supervisor module from the config. */
export function createSupervisorModule(
  ctx: ModuleContext,
  deps: SupervisorDeps,
): SupervisorModule {
  const cfg = ctx.config.supervisor;
  const publish: Publish = (e) => void ctx.bus.publish(e);
  const groups = new GroupLedger(ctx.config.dataDir);
  const pool = new WorkerPool(
    ctx.config.subsystems.some((s) => s.kind === "worker") ? cfg.workerSpares : 0,
  );
  const sockets = deps.sdk ? new SdkSockets(deps.sdk, join(ctx.config.dataDir, "sdk")) : undefined;
  // Many process subsystems: receive their sd_notify on a thread of its own (notify.ts),
  // so their heartbeats cost the main thread nothing. For a few, that thread's isolate
  // (~13 MB) costs more than their heartbeats do on the main thread.
  const hub = ctx.config.subsystems.filter((s) => s.kind === "process").length >=
      NOTIFY_THREAD_MIN_PROCESSES
    ? new NotifyHub()
    : undefined;
  const supervisor = new Supervisor({
    specs: ctx.config.subsystems,
    config: cfg,
    clock: ctx.clock,
    publish,
    runners: deps.runners ??
      defaultRunners(pool, groups, deps.sdk && sockets && { host: deps.sdk, sockets }, hub),
    escalation: deps.escalation,
  });
  const selfmon = new SelfMonitor({
    config: cfg,
    clock: ctx.clock,
    petters: deps.petters,
    publish,
    essentialFailed: () => supervisor.essentialFailed(),
    leakedThreads: () => leakedWorkerThreads().length,
    env: deps.env,
  });
  let unsubscribe: (() => void) | undefined;
  let routes: Hono | undefined;
  // time of each subsystem's last restart, for metrics
  const lastRestartAt = new Map<string, number>();
  let unsubscribeRestarts: (() => void) | undefined;

  const startModule = async () => {
    // a previous keepwire killed with SIGKILL left its process subsystems running:
    // end them before starting new copies
    const stopTimeout = (name: string) =>
      ctx.config.subsystems.find((s) => s.name === name)?.stopTimeoutMs ?? 5000;
    for (const g of await groups.endPrevious(stopTimeout)) {
      ctx.bus.publish({
        module: "supervisor",
        kind: "supervisor.orphan_ended",
        severity: "warning",
        payload: { subsystem: g.name, pgid: g.pgid, pids: g.pids, forced: g.forced },
      });
    }
    unsubscribe = ctx.bus.subscribe(() => void selfmon.ready(), { kindPrefix: "runtime.started" });
    unsubscribeRestarts = ctx.bus.subscribe((e) => {
      if (e.payload.to !== "restarting") return;
      lastRestartAt.set(String(e.payload.subsystem), e.time);
      // A spare isolate (~13 MB) is kept from the first worker restart on: start-up and a
      // box whose workers never crash do without it; the first restart starts it while
      // its backoff runs, and later restarts take it.
      if (e.payload.kind === "worker") pool.warm();
    }, { kindPrefix: "supervisor.transition" });
    selfmon.start();
    await supervisor.startAll();
  };
  const stopModule = async () => {
    unsubscribe?.();
    unsubscribeRestarts?.();
    await selfmon.stop();
    await supervisor.stopAll();
    pool.close();
    await sockets?.close();
    hub?.close();
  };

  return {
    name: "supervisor",
    supervisor,
    selfmon,
    // Module.start()/stop() and SupervisorApi.start(name)/stop(name) share a name:
    // without a name they start/stop the module, with one a subsystem.
    start: (name?: string) => name === undefined ? startModule() : supervisor.start(name),
    stop: (name?: string) => name === undefined ? stopModule() : supervisor.stop(name),
    health(): PartHealth {
      const failed = supervisor.essentialFailed();
      const list = supervisor.list();
      const count = (s: string) => list.filter((i) => i.state === s).length;
      const leaked = leakedWorkerThreads().length;
      return {
        ok: failed.length === 0,
        essential: true,
        detail:
          (failed.length
            ? `essential subsystem failed: ${failed.join(", ")}`
            : `${list.length} subsystems: ${count("ready")} ready, ${count("failed")} failed`) +
          (leaked ? `; ${leaked} hung worker thread(s) leaked (restart keepwire)` : ""),
      };
    },
    status: (): SupervisorStatus => ({ subsystems: supervisor.list(), selfmon: selfmon.status() }),
    routes: () => routes ??= supervisorRoutes(supervisor),
    pages: () => [SUBSYSTEMS_PAGE],
    metrics: (): MetricFamily[] => supervisorMetrics(supervisor.list(), lastRestartAt),
    // restarts per subsystem over time (the history keeps each step's increase)
    history: (): HistorySample[] =>
      supervisor.list().map((s) => ({
        series: `supervisor.restarts.${s.name}`,
        value: s.restarts,
        unit: "restarts",
        kind: "counter",
        label: s.name,
      })),
    list: (): SubsystemInfo[] => supervisor.list(),
    restart: (n: string) => supervisor.restart(n),
    suspend: (n: string, r: string) => supervisor.suspend(n, r),
    resume: (n: string, r: string) => supervisor.resume(n, r),
    onQueueReport: (fn: (name: string, depth: number, oldestAgeMs: number) => void) =>
      supervisor.onQueueReport(fn),
    essentialHealthy: () => supervisor.essentialHealthy(),
  };
}

/** Compile-time proof that the module is usable both as a Module and as a SupervisorApi. */
export const asModuleAndApi = (m: SupervisorModule): Module & SupervisorApi => m;
