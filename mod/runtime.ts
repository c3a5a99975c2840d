/**
 * Composition root: builds every module from the config, starts them in order,
 * stops them in reverse order within the shutdown timeout, and reports health.
 * @module
 */
import { join } from "node:path";
import type { MiddlewareHandler } from "hono";
import type { Config } from "./config/mod.ts";
import { EventBus } from "./events/mod.ts";
import { Store } from "./store/mod.ts";
import {
  type Clock,
  type Module,
  type ModuleContext,
  type ModulePage,
  type PartHealth,
  systemClock,
} from "./module.ts";
import { type HealthReport, type RuntimeView, WebModule } from "./web/mod.ts";
import { VERSION } from "./version.ts";
import type { MetricFamily } from "./web/metrics.ts";
import { createStorageModule, type StorageModule } from "./storage/mod.ts";
import {
  createSupervisorModule,
  type SupervisorModule,
  supervisorWiring,
} from "./supervisor/mod.ts";
import { type BypassModule, createBypassModule } from "./bypass/mod.ts";
import { WatchdogModule } from "./watchdog/mod.ts";
import { createUpdateModule, type UpdateModule } from "./update/mod.ts";
import { createGovernorModule, type GovernorModule } from "./governor/mod.ts";
import { DataDirLock } from "./data_dir_lock.ts";
import { createHaModule, type HaModule, haReaders, updaterOf } from "./ha/mod.ts";
import { createSdkModule, type SdkModule } from "./sdk/module.ts";
import { createReplModule, type ReplModule } from "./repl/mod.ts";
import { createAlertModule } from "./alert/mod.ts";
import "./runtime_events.ts";
import { adminExists, startupLines } from "./log/announce.ts";
import { createLogModule } from "./log/mod.ts";
import { createHistoryModule, type HistorySource } from "./history/mod.ts";

/** Options of the runtime (tests inject a clock or extra modules). */
export interface RuntimeOptions {
  /** Clock (default: the system clock). */
  clock?: Clock;
  /** Extra modules started after the built-in ones and before the web. */
  extraModules?: (ctx: ModuleContext) => Module[];
}

/** The running appliance. */
export class Runtime implements RuntimeView {
  /** Configuration. */
  readonly config: Config;
  /** Clock. */
  readonly clock: Clock;
  /** Event bus. */
  readonly bus: EventBus;
  #store: Store | undefined;
  #modules: Module[] = [];
  #started: Module[] = [];
  #startedAt = 0;
  #closing = new AbortController();
  #opts: RuntimeOptions;
  #web: WebModule | undefined;
  #wired: Wiring | undefined;
  #stopping: Promise<{ clean: boolean }> | undefined;
  #lock: DataDirLock | undefined;

  /** Build (nothing is opened until start). */
  constructor(config: Config, opts: RuntimeOptions = {}) {
    this.config = config;
    this.clock = opts.clock ?? systemClock;
    this.bus = new EventBus({ now: () => this.clock.now() });
    this.#opts = opts;
  }

  /** The store (after start). */
  get store(): Store {
    if (!this.#store) throw new Error("runtime not started");
    return this.#store;
  }

  /** Aborted when stopping. */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** The web module (after start). */
  get web(): WebModule | undefined {
    return this.#web;
  }

  /** A started module by name. */
  module<T extends Module>(name: string): T | undefined {
    return this.#modules.find((m) => m.name === name) as T | undefined;
  }

  /** Open the store, build and start all modules in order. On failure, stops what started. */
  async start(): Promise<void> {
    await Deno.mkdir(this.config.dataDir, { recursive: true });
    // before anything in the data directory is touched: a second keepwire on the same
    // directory is refused here and leaves the first one's socket, journal, bypass
    // holds and subsystems alone
    this.#lock = await DataDirLock.acquire(this.config.dataDir);
    try {
      this.#store = new Store({
        path: join(this.config.dataDir, "keepwire.db"),
        retention: this.config.store.retention,
        synchronous: this.config.store.synchronous,
        now: () => this.clock.now(),
      });
      // WAL checkpoints in rounds whose fsyncs are off the event loop (mod/store/checkpoint.ts)
      this.#store.startCheckpoints({ clock: this.clock });
    } catch (e) {
      this.#lock.release();
      throw e;
    }
    this.bus.attachJournal(this.#store);
    const ctx: ModuleContext = {
      config: this.config,
      store: this.#store,
      bus: this.bus,
      clock: this.clock,
    };
    this.#web = new WebModule(this);
    const wiring = new Wiring(ctx, this);
    this.#wired = wiring;
    this.#modules = [
      ...MODULES.map((m) => wiring.build(m)),
      ...(this.#opts.extraModules?.(ctx) ?? []),
      this.#web,
    ];
    this.#startedAt = this.clock.now();
    const moduleStartMs: Record<string, number> = {};
    for (const m of this.#modules) {
      try {
        const t0 = performance.now();
        await m.start();
        moduleStartMs[m.name] = Math.round((performance.now() - t0) * 10) / 10;
        this.#started.push(m);
      } catch (e) {
        this.bus.publish({
          module: "runtime",
          kind: "runtime.start_failed",
          severity: "critical",
          payload: { module: m.name, error: (e as Error).message },
        });
        await this.stop(`start of ${m.name} failed`);
        throw new Error(`cannot start ${m.name}: ${(e as Error).message}`);
      }
    }
    this.bus.publish({
      module: "runtime",
      kind: "runtime.started",
      payload: {
        version: VERSION,
        pid: Deno.pid,
        listen: this.#web.address,
        modules: this.#modules.map((m) => m.name),
        startMs: this.clock.now() - this.#startedAt,
        moduleStartMs,
      },
    });
  }

  /**
   * Stop modules in reverse start order. Each gets what is left of the
   * shutdown timeout; a module that overruns is abandoned with an error event.
   */
  stop(reason = "stop requested"): Promise<{ clean: boolean }> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<{ clean: boolean }> {
    this.#closing.abort();
    const deadline = this.clock.now() + this.config.shutdownTimeoutMs;
    let clean = true;
    // Run one stop step within `ms`; a failure or overrun is journalled, not thrown.
    const step = async (module: string, what: string, work: () => Promise<unknown>, ms: number) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        work().then(() => "ok" as const, (e: Error) => e),
        new Promise<"timeout">((res) => timer = setTimeout(() => res("timeout"), ms)),
      ]);
      clearTimeout(timer);
      if (r === "ok") return;
      clean = false;
      this.bus.publish({
        module: "runtime",
        kind: "runtime.stop_failed",
        severity: "error",
        payload: { module, error: `${what}${r === "timeout" ? "timed out" : r.message}` },
      });
    };
    const prepareDeadline = this.clock.now() + this.config.shutdownTimeoutMs / 4;
    for (const m of [...this.#started].reverse()) {
      if (!m.prepareStop) continue;
      await step(
        m.name,
        "prepare stop: ",
        () => m.prepareStop!(),
        Math.max(0, prepareDeadline - this.clock.now()),
      );
    }
    for (const m of [...this.#started].reverse()) {
      await step(m.name, "", () => m.stop(), Math.max(0, deadline - this.clock.now()));
    }
    this.#started = [];
    if (this.#store) {
      try {
        this.bus.publish({
          module: "runtime",
          kind: "runtime.stopped",
          payload: { reason, clean, uptimeMs: this.clock.now() - this.#startedAt },
        });
      } catch (e) {
        console.error(`keepwire: could not journal runtime.stopped: ${(e as Error).message}`);
        clean = false;
      }
      this.bus.attachJournal(undefined);
      this.#store.close();
      await this.#store.checkpoints?.settled(); // its sync helper gone
    }
    this.#lock?.release();
    return { clean };
  }

  /** Health of every module; ok when every essential part is ok. */
  health(): HealthReport {
    const parts: Record<string, PartHealth> = {
      store: {
        ok: !!this.#store?.db.isOpen &&
          (!this.bus.lastJournalErrorAt || this.clock.now() - this.bus.lastJournalErrorAt > 60_000),
        essential: true,
        detail: this.bus.journalErrors
          ? `${this.bus.journalErrors} journal writes failed`
          : undefined,
      },
    };
    for (const m of this.#modules) {
      try {
        if (m.health) parts[m.name] = m.health();
      } catch (e) {
        parts[m.name] = { ok: false, essential: false, detail: `health check failed: ${e}` };
      }
    }
    const ok = Object.values(parts).every((p) => p.ok || !p.essential) &&
      this.#started.length === this.#modules.length;
    return { ok, parts };
  }

  /** Status of every module. */
  status(): Record<string, unknown> {
    const modules: Record<string, unknown> = {};
    for (const m of this.#modules) if (m.status) modules[m.name] = m.status();
    return {
      running: true,
      name: this.config.identity.name,
      vendor: this.config.identity.vendor,
      model: this.config.identity.model,
      version: VERSION,
      pid: Deno.pid,
      dataDir: this.config.dataDir,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeMs: this.clock.now() - this.#startedAt,
      health: this.health(),
      events: {
        total: this.#store?.db.isOpen ? this.#store.eventCountFast() : 0,
        published: this.bus.counts,
      },
      modules,
    };
  }

  /** The governor's HTTP admission middleware (the web installs it first). */
  admission(): MiddlewareHandler | undefined {
    return this.#wired?.get("governor").admission();
  }

  /** Replication's gate around API changes (when replication runs). */
  writeGate(): { before(): void; after(): Promise<boolean> } | undefined {
    const ha = this.config.ha;
    if (!ha.enabled || !ha.replication?.enabled) return undefined; // no middleware without it
    const r = this.#wired?.get("repl");
    if (!r) return undefined;
    return { before: () => r.admit(), after: () => r.barrier() };
  }

  /** Extra UI live-refresh delay under load (ms). */
  uiThrottleMs(): number {
    return this.#wired?.get("governor").uiThrottleMs() ?? 0;
  }

  /** Metric families: the runtime's own, then each module's. */
  metrics(): MetricFamily[] {
    const h = this.health();
    const fams: MetricFamily[] = [
      {
        name: "build_info",
        help: "keepwire version (value is always 1)",
        type: "gauge",
        samples: [{ labels: { version: VERSION, deno: Deno.version.deno }, value: 1 }],
      },
      {
        name: "healthy",
        help: "1 when every essential part is up (what /api/health answers 200 for)",
        type: "gauge",
        samples: [{ value: h.ok ? 1 : 0 }],
      },
      {
        name: "part_healthy",
        help: "1 when the part is up",
        type: "gauge",
        samples: Object.entries(h.parts).map(([part, p]) => ({
          labels: { part, essential: String(p.essential) },
          value: p.ok ? 1 : 0,
        })),
      },
      {
        name: "uptime_seconds",
        help: "seconds since the runtime started",
        type: "gauge",
        samples: [{ value: (this.clock.now() - this.#startedAt) / 1000 }],
      },
      {
        name: "events_published_total",
        help: "events published since start, by severity",
        type: "counter",
        samples: Object.entries(this.bus.counts).map(([severity, n]) => ({
          labels: { severity },
          value: n,
        })),
      },
      {
        name: "journal_events",
        help: "events currently kept in the journal",
        type: "gauge",
        samples: [{ value: this.#store?.db.isOpen ? this.#store.eventCountFast() : 0 }],
      },
    ];
    for (const m of this.#modules) if (m.metrics) fams.push(...m.metrics());
    return fams;
  }

  /** The configuration with the sections modules changed at run time as in force now. */
  configInForce(): Config {
    let c: Config = this.config;
    for (const m of this.#modules) if (m.configInForce) c = { ...c, ...m.configInForce() };
    return c;
  }

  /** UI pages of the modules, in start order. */
  modulePages(): ModulePage[] {
    return this.#modules.flatMap((m) => m.pages?.() ?? []);
  }

  /** The started modules that keep series in the metric history (`Module.history`). */
  historySources(): HistorySource[] {
    return this.#started.flatMap((m) =>
      m.history ? [{ name: m.name, history: () => m.history!() }] : []
    );
  }

  /** Routes of the modules. */
  moduleRoutes(): { name: string; app: import("hono").Hono }[] {
    return this.#modules.flatMap((m) => m.routes ? [{ name: m.name, app: m.routes() }] : []);
  }
}

/**
 * The built-in modules other modules connect to, by name, with their types. A module
 * that nobody connects to needs no entry here.
 */
interface Wired {
  bypass: BypassModule;
  storage: StorageModule;
  watchdog: WatchdogModule;
  supervisor: SupervisorModule;
  update: UpdateModule;
  governor: GovernorModule;
  sdk: SdkModule;
  ha: HaModule;
  repl: ReplModule;
}

/** One line of the module list: a name and how to build the module from its wiring. */
interface ModuleEntry {
  /** The module's name (its `name`, and its key in {@link Wired} when it has one). */
  readonly name: string;
  /** Build it; `w.get` reaches the modules listed above it, typed. */
  readonly build: (w: Wiring) => Module;
}

/** A module list entry; a name in {@link Wired} must build that type. */
function entry<K extends string>(
  name: K,
  build: (w: Wiring) => K extends keyof Wired ? Wired[K] : Module,
): ModuleEntry {
  return { name, build };
}

/** What a module factory gets: the context, the runtime, and the modules built before it. */
export class Wiring {
  /** The module context (config, store, bus, clock). */
  readonly ctx: ModuleContext;
  /** The runtime (to stop it, e.g. before an update switches slots). */
  readonly rt: Runtime;
  readonly #built = new Map<string, Module>();

  /** Wiring for one start. */
  constructor(ctx: ModuleContext, rt: Runtime) {
    this.ctx = ctx;
    this.rt = rt;
  }

  /** Build one entry and remember it by name. */
  build(e: ModuleEntry): Module {
    if (this.#built.has(e.name)) throw new Error(`module ${e.name} is listed twice`);
    const m = e.build(this);
    if (m.name !== e.name) throw new Error(`module listed as ${e.name} is named ${m.name}`);
    this.#built.set(e.name, m);
    return m;
  }

  /** A module built earlier in the list, typed (throws when it comes later or not at all). */
  get<K extends keyof Wired>(name: K): Wired[K] {
    const m = this.#built.get(name);
    if (!m) throw new Error(`module ${name} is used before it is built (order of MODULES)`);
    return m as Wired[K];
  }
}

/**
 * The built-in modules in start order (stopped in reverse); the web module is added
 * last by the runtime. A new module is one line here.
 */
const MODULES: readonly ModuleEntry[] = [
  entry("log", (w) => createLogModule(w.ctx)),
  entry("bypass", (w) => createBypassModule(w.ctx)),
  entry("storage", (w) => createStorageModule(w.ctx)),
  entry("watchdog", (w) => new WatchdogModule(w.ctx)),
  entry("sdk", (w) =>
    createSdkModule(w.ctx, {
      ha: () => {
        const s = w.rt.module<HaModule>("ha")?.status();
        const c = w.ctx.config.ha;
        return {
          role: s?.role ?? (c.enabled ? "init" : "disabled"),
          node: c.node.id,
          peer: s?.peer?.id ?? c.peers[0]?.id ?? null,
          peerUp: s?.peerLink ? s.peerLink.reachable : undefined,
        };
      },
    })),
  entry("supervisor", (w) => {
    const sdk = w.get("sdk").host;
    const m = createSupervisorModule(w.ctx, {
      ...supervisorWiring(w.get("bypass"), w.get("watchdog")),
      sdk,
    });
    m.onQueueReport((name, depth) => sdk.queue(name, depth));
    return m;
  }),
  entry("update", (w) =>
    createUpdateModule(w.ctx, {
      bypass: w.get("bypass"),
      health: w.get("supervisor"),
      exit: (code) => void w.rt.stop("update: switching slot").finally(() => Deno.exit(code)),
    })),
  entry("governor", (w) => createGovernorModule(w.ctx, { supervisor: w.get("supervisor") })),
  entry("ha", (w) =>
    createHaModule(w.ctx, {
      readers: haReaders({
        supervisor: w.get("supervisor"),
        bypass: w.get("bypass"),
        storage: w.get("storage"),
        governor: w.get("governor"),
      }),
      health: () => w.rt.health(),
      watchdog: w.get("watchdog"),
      update: updaterOf(w.get("update")),
      replication: () => w.get("repl").status(),
      prepareHandover: (ms, channels) => w.get("repl").prepareHandover(ms, channels),
      cancelHandover: () => w.get("repl").cancelHandover(),
      unacknowledged: () => w.get("repl").unacknowledged(),
    })),
  entry("repl", (w) =>
    createReplModule(w.ctx, {
      peer: w.get("ha").peerAccess,
      onBuilt: (r) => w.get("sdk").host.setReplication(r),
    })),
  entry("alert", (w) => createAlertModule(w.ctx)),
  entry("history", (w) => createHistoryModule(w.ctx, { sources: () => w.rt.historySources() })),
];

/**
 * Start a runtime and run until SIGINT/SIGTERM; a second signal forces exit.
 * Returns the process exit code.
 */
export async function runUntilSignal(config: Config): Promise<number> {
  const rt = new Runtime(config);
  try {
    await rt.start();
  } catch (e) {
    console.error(`keepwire: ${(e as Error).message}`);
    return 1;
  }
  const url = `${rt.web?.scheme}://${rt.web?.address}/`;
  const hasAdmin = adminExists(rt.store.db);
  for (const l of startupLines({ version: VERSION, url, dataDir: config.dataDir, hasAdmin })) {
    console.log(l);
  }
  const { promise, resolve } = Promise.withResolvers<string>();
  let signals = 0;
  const onSignal = (sig: Deno.Signal) => () => {
    signals++;
    if (signals > 1) {
      console.error(`keepwire: second ${sig}, exiting at once`);
      Deno.exit(130);
    }
    console.log(`keepwire: ${sig}, stopping (send again to force)`);
    resolve(sig);
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")],
  ];
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  const sig = await promise;
  const { clean } = await rt.stop(`signal ${sig}`);
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  console.log(`keepwire: stopped${clean ? "" : " (with errors)"}`);
  return clean ? 0 : 1;
}
