/**
 * Worker subsystems: a TypeScript module run in a Deno Worker. It talks to
 * keepwire through mod/sdk over postMessage (ready, heartbeat, status, queue).
 * A worker stuck in an endless loop stops beating and is ended with
 * `worker.terminate()`, which works even then. Spare Workers are kept started
 * (worker_host.ts) so a restart takes milliseconds.
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import type { Clock, TimerId } from "../module.ts";
import type { SubsystemSpec } from "./config.ts";
import type { ExitInfo, Runner, RunnerContext, RunnerEvents, RunnerFactory } from "./runner.ts";
import type { SdkHost } from "../sdk/host.ts";
import { sdkErrorBody } from "../sdk/socket.ts";

/**
 * The Worker host module. From source it sits next to this file; in the bundled
 * executable (image/bundle.ts) this code lives in keepwire.js and the host was
 * bundled beside it as worker_host.js.
 */
export const HOST_URL = workerHostUrl(import.meta.url);

/** The Worker host next to `moduleUrl`: `worker_host.ts` from source, `worker_host.js` bundled. */
export function workerHostUrl(moduleUrl: string): string {
  const bundled = !new URL(moduleUrl).pathname.endsWith(".ts");
  return new URL(bundled ? "./worker_host.js" : "./worker_host.ts", moduleUrl).href;
}
const REFILL_DELAY_MS = 30;

/** Messages a worker may send (validated: the worker is vendor code). */
export const workerMessageSchema = z.lazy(() =>
  z.discriminatedUnion("kw", [
    z.object({ kw: z.literal("ready") }),
    z.object({ kw: z.literal("heartbeat") }),
    z.object({ kw: z.literal("status"), text: z.string().max(2000) }),
    z.object({
      kw: z.literal("queue"),
      depth: z.number().finite().min(0),
      oldestAgeMs: z.number().finite().min(0),
    }),
    z.object({ kw: z.literal("stopped") }),
    z.object({ kw: z.literal("suspended") }),
    z.object({ kw: z.literal("resumed") }),
    z.object({ kw: z.literal("exit"), code: z.number().int().min(0).max(255) }),
    z.object({ kw: z.literal("fatal"), error: z.string() }),
    z.object({ kw: z.literal("thread"), tid: z.number().int().positive() }),
    // a call of the SDK's table service (host.ts validates op and args)
    z.object({
      kw: z.literal("call"),
      id: z.number().int().positive(),
      op: z.string().max(32),
      args: z.unknown(),
    }),
  ])
);

/** Worker threads that kept running after terminate() (see `watchLeak`). */
const leaked = new Map<number, { subsystem: string; since: number }>();

/** Threads of terminated Workers that are still alive (Deno 2.9: an endless loop survives terminate()). */
export function leakedWorkerThreads(): { tid: number; subsystem: string; since: number }[] {
  for (const tid of leaked.keys()) {
    try {
      Deno.statSync(`/proc/self/task/${tid}`);
    } catch {
      leaked.delete(tid);
    }
  }
  return [...leaked].map(([tid, v]) => ({ tid, ...v }));
}

/** CPU ticks (utime+stime) of a thread of this process, or null when it is gone. */
export function threadTicks(tid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

/** The URL a spec's `module` names: a URL as is, a path relative to the working directory. */
export function moduleUrl(module: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(module)) return module;
  return pathToFileURL(resolve(module)).href;
}

/**
 * Pre-started Worker hosts, handed out one per (re)start and refilled in the background,
 * once {@link WorkerPool.warm} was called (before, every Worker is made on demand).
 */
export class WorkerPool {
  readonly #spares: Worker[] = [];
  readonly #size: number;
  #closed = false;
  #filling = false;
  #warm = false;

  /** Keep `size` spares (0 = create on demand). */
  constructor(size: number) {
    this.#size = size;
  }

  /** A started host Worker (a spare when one is ready). */
  take(): Worker {
    const w = this.#spares.shift() ?? WorkerPool.#create();
    if (this.#warm) this.#fill();
    return w;
  }

  /** Start spares now and keep them from now on (the supervisor: at the first worker restart). */
  warm(): void {
    this.#warm = true;
    this.#fill(0);
  }

  static #create(): Worker {
    return new Worker(HOST_URL, { type: "module", name: "keepwire-worker" });
  }

  #fill(delayMs = REFILL_DELAY_MS): void {
    if (this.#closed || this.#filling || this.#spares.length >= this.#size) return;
    this.#filling = true;
    // Refill a little later, so the new isolate does not compete with the restart
    // that just took a spare.
    setTimeout(() => {
      this.#filling = false;
      if (this.#closed) return;
      while (this.#spares.length < this.#size) this.#spares.push(WorkerPool.#create());
    }, delayMs);
  }

  /** Terminate the spares. */
  close(): void {
    this.#closed = true;
    for (const w of this.#spares.splice(0)) w.terminate();
  }
}

/** Runs one attempt of a worker subsystem. */
export class WorkerRunner implements Runner {
  readonly #spec: SubsystemSpec;
  readonly #ev: RunnerEvents;
  readonly #clock: Clock;
  readonly #pool: WorkerPool;
  #w: Worker | undefined;
  #ended = false;
  #ending = false;
  #acks = new Map<string, () => void>();
  #tid: number | null = null;
  readonly #publish: RunnerContext["publish"];
  readonly #beat = new BigInt64Array(new SharedArrayBuffer(8));
  readonly #sdk: SdkHost | undefined;
  #unsubs: (() => void)[] = [];

  /** Build for one attempt; `sdk` serves the SDK's table calls (none: they are refused). */
  constructor(
    spec: SubsystemSpec,
    ev: RunnerEvents,
    ctx: RunnerContext,
    pool: WorkerPool,
    sdk?: SdkHost,
  ) {
    this.#spec = spec;
    this.#ev = ev;
    this.#clock = ctx.clock;
    this.#pool = pool;
    this.#publish = ctx.publish;
    this.#sdk = sdk;
  }

  /** Workers have no pid. */
  get pid(): number | null {
    return null;
  }

  /** Last heartbeat written into the shared slot by the SDK (Date.now ms), or null. */
  lastHeartbeat(): number | null {
    const v = Number(Atomics.load(this.#beat, 0));
    return v > 0 ? v : null;
  }

  /** Hand a spare the module to load. */
  start(): Promise<void> {
    const url = moduleUrl(this.#spec.module!);
    if (url.startsWith("file:")) {
      try {
        Deno.statSync(new URL(url));
      } catch {
        return Promise.reject(new Error(`module not found: ${this.#spec.module}`));
      }
    }
    const w = this.#pool.take();
    this.#w = w;
    w.onmessage = (e: MessageEvent) => this.#onMessage(e.data);
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#end({
        code: null,
        signal: null,
        clean: false,
        text: `uncaught ${e.message || "error"}`,
        cause: "crash",
      });
    };
    w.onmessageerror = () => {
      this.#end({
        code: null,
        signal: null,
        clean: false,
        text: "message could not be decoded",
        cause: "crash",
      });
    };
    w.postMessage({
      kw: "load",
      url,
      name: this.#spec.name,
      env: this.#spec.env,
      heartbeatIntervalMs: this.#spec.heartbeat?.intervalMs ?? null,
      beat: this.#beat.buffer,
    });
    const sdk = this.#sdk;
    if (sdk) {
      // the SDK's node() and handoff() are pushed now and on every change
      const name = this.#spec.name;
      w.postMessage({ kw: "node", node: sdk.node() });
      w.postMessage({ kw: "handoff", handoff: sdk.handoff(name) });
      this.#unsubs.push(
        sdk.onNode((node) => this.#post({ kw: "node", node })),
        sdk.onHandoff((sub, handoff) => sub === name && this.#post({ kw: "handoff", handoff })),
      );
    }
    return Promise.resolve();
  }

  #post(m: unknown): void {
    if (!this.#ended) this.#w?.postMessage(m);
  }

  async #call(id: number, op: string, args: unknown): Promise<void> {
    try {
      if (!this.#sdk) throw new Error("this keepwire has no table service");
      const value = await this.#sdk.call(this.#spec.name, op, args);
      this.#post({ kw: "reply", id, ok: true, value });
    } catch (e) {
      this.#post({ kw: "reply", id, ok: false, error: sdkErrorBody(e) });
    }
  }

  #onMessage(data: unknown): void {
    if (this.#ended) return;
    if ((data as { kw?: unknown } | null)?.kw === "heartbeat") {
      this.#ev.heartbeat();
      return;
    }
    const r = workerMessageSchema.safeParse(data);
    if (!r.success) {
      this.#ev.status(`invalid message from worker ignored`);
      return;
    }
    const m = r.data;
    switch (m.kw) {
      case "ready":
        this.#ev.ready();
        break;
      case "heartbeat":
        this.#ev.heartbeat();
        break;
      case "status":
        this.#ev.status(m.text);
        break;
      case "queue":
        this.#ev.queue(m.depth, m.oldestAgeMs);
        break;
      case "call":
        void this.#call(m.id, m.op, m.args);
        break;
      case "thread":
        this.#tid = m.tid;
        break;
      case "stopped":
      case "suspended":
      case "resumed":
        this.#acks.get(m.kw)?.();
        break;
      case "exit":
        this.#end({
          code: m.code,
          signal: null,
          clean: m.code === 0,
          text: `exit code ${m.code}`,
          cause: "exit",
        });
        break;
      case "fatal":
        this.#end({
          code: null,
          signal: null,
          clean: false,
          text: m.error.startsWith("uncaught") || m.error.startsWith("unhandled")
            ? m.error
            : `cannot load module: ${m.error}`,
          cause: "crash",
        });
        break;
    }
  }

  #end(info: ExitInfo): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const u of this.#unsubs.splice(0)) u();
    this.#w?.terminate();
    for (const a of this.#acks.values()) a();
    if (!this.#ending) this.#ev.exited(info);
  }

  #ask(kw: "stop" | "suspend" | "resume", ack: string, timeoutMs: number): Promise<boolean> {
    if (!this.#w || this.#ended) return Promise.resolve(true);
    return new Promise((res) => {
      let timer: TimerId | undefined = undefined;
      const done = (ok: boolean) => {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        this.#acks.delete(ack);
        res(ok);
      };
      this.#acks.set(ack, () => done(true));
      timer = this.#clock.setTimeout(() => done(false), timeoutMs);
      this.#w!.postMessage({ kw });
    });
  }

  /** onStop handlers run; terminate after the timeout or when they finish. */
  async stop(timeoutMs: number): Promise<void> {
    this.#ending = true;
    await this.#ask("stop", "stopped", timeoutMs);
    this.#end({ code: 0, signal: null, clean: true, text: "stopped", cause: "exit" });
  }

  /**
   * terminate() now. Deno 2.9 returns at once but does not stop a JS endless loop
   * (denoland/deno#35657): the thread keeps a core busy. So watch the thread; if it
   * still burns CPU a second later, demote it to SCHED_IDLE (`chrt --idle`) and report it.
   */
  kill(): Promise<void> {
    this.#ending = true;
    const tid = this.#tid;
    const before = tid !== null ? threadTicks(tid) : null;
    this.#end({ code: null, signal: null, clean: false, text: "terminated", cause: "signal" });
    if (tid !== null && before !== null) this.#watchLeak(tid, before);
    return Promise.resolve();
  }

  /**
   * A terminated worker's thread ends within milliseconds. One that is still there a
   * second later and still using CPU is spinning; on a busy machine it may get only a
   * small share of a core, so a low share is looked at again (up to 10 s) rather than
   * taken as "idle".
   */
  #watchLeak(tid: number, before: number, t0 = Date.now(), tries = 0): void {
    setTimeout(async () => {
      const after = threadTicks(tid);
      if (after === null) return; // the thread ended
      const busy = (after - before) * 10 / Math.max(1, Date.now() - t0); // share of one core
      if (busy < 0.5 && after - before < 10) { // < 100 ms of CPU so far
        if (tries < 10) this.#watchLeak(tid, before, t0, tries + 1);
        return;
      }
      leaked.set(tid, { subsystem: this.#spec.name, since: t0 });
      let demoted = false;
      try {
        demoted = (await new Deno.Command("chrt", {
          args: ["--idle", "-p", "0", String(tid)],
          stdout: "null",
          stderr: "null",
        }).output()).success;
      } catch { /* chrt missing */ }
      this.#publish({
        module: "supervisor",
        kind: "supervisor.worker_thread_leaked",
        severity: "critical",
        payload: {
          subsystem: this.#spec.name,
          tid,
          cpu: Math.round(busy * 100) / 100,
          demoted,
          note:
            "worker.terminate() did not stop the endless loop (Deno 2.9, denoland/deno#35657); " +
            "the thread runs at SCHED_IDLE until keepwire restarts",
        },
      });
    }, 1000);
  }

  /** onSuspend handlers run (bounded by the stop timeout). */
  async suspend(): Promise<void> {
    await this.#ask("suspend", "suspended", this.#spec.stopTimeoutMs);
  }

  /** onResume handlers run. */
  async resume(): Promise<void> {
    await this.#ask("resume", "resumed", this.#spec.stopTimeoutMs);
  }
}

/** Runner factory for worker subsystems sharing one spare pool. */
export function workerRunnerFactory(pool: WorkerPool, sdk?: SdkHost): RunnerFactory {
  return (spec, ev, ctx) => new WorkerRunner(spec, ev, ctx, pool, sdk);
}
