/**
 * Self-monitoring: keepwire pets its watchdogs (the hardware watchdog when it owns
 * /dev/watchdog, the bypass cards' watchdogs, and systemd's service watchdog when
 * it runs under systemd) only while its event loop is responsive and no essential
 * subsystem has failed. The timeouts are layered so traffic fails open first
 * (bypass card), then systemd restarts keepwire (WatchdogSec), then the box
 * reboots (hardware watchdog).
 *
 * Event-loop lag is measured by timer drift: a probe timer every
 * `lagProbeIntervalMs`, plus the drift of the pet timer itself, so a pet that
 * runs late after a long block sees that block and does not pet.
 *
 * The bounds differ on purpose: the bypass and hardware pets stop above `maxLoopLagMs`
 * (1 s), systemd's WATCHDOG=1 only above `serviceWatchdogLagMs` (half of WatchdogSec by
 * default). A loop that is slow but alive has traffic on the bypass already; restarting
 * keepwire then would throw away its state without making it faster (measured: a 349 MB
 * bundle upload in a TCG-emulated guest lagged 1.1-3.2 s per window, and the 1 s bound
 * had systemd kill keepwire mid-upload).
 * @module
 */
import { z } from "zod";
import type { Clock, TimerId } from "../module.ts";
import type { Publish } from "./events.ts";
import type { Petter } from "./api.ts";
import type { SupervisorConfig } from "./config.ts";
import { NotifyClient } from "./notify.ts";

/** Name of the hardware watchdog petter: petted only when `watchdogOwner` is `keepwire`. */
export const HARDWARE_WATCHDOG_PETTER = "hardware-watchdog";

/** Self-monitoring in /api/status (`modules.supervisor.selfmon`). */
export const selfMonitorStatusSchema = z.lazy(() =>
  z.object({
    petting: z.boolean().describe(
      "the watchdogs are being petted (loop responsive, essentials up)",
    ),
    lastLagMs: z.number().describe("event-loop lag at the last probe"),
    maxLoopLagMs: z.number(),
    watchdogOwner: z.enum(["keepwire", "systemd", "none"]),
    petters: z.array(z.string()),
    pets: z.number(),
    skipped: z.number().describe("pets skipped because keepwire was not healthy"),
    petErrors: z.record(z.string(), z.string()).describe("petter → last error"),
    leakedWorkerThreads: z.number(),
    systemd: z.object({
      ready: z.boolean(),
      watchdogMs: z.number().nullable(),
      maxLagMs: z.number().nullable().describe("lag above which WATCHDOG=1 is withheld"),
    }).nullable()
      .describe("the systemd notify state, or null when not under systemd"),
  })
);
/** Self-monitoring in /api/status. */
export type SelfMonitorStatus = z.infer<typeof selfMonitorStatusSchema>;

/** What self-monitoring is built with. */
export interface SelfMonitorOptions {
  /** Supervisor settings (owner, lag bound, intervals). */
  config: SupervisorConfig;
  /** Clock for timers. */
  clock: Clock;
  /** Monotonic ms for lag measurement (default performance.now; tests pass the fake clock). */
  monotonic?: () => number;
  /** Watchdogs to pet while healthy. */
  petters: Petter[];
  /** Publish an event. */
  publish: Publish;
  /** Names of failed essential subsystems. */
  essentialFailed(): string[];
  /** Hung Worker threads still running after terminate() (default: none). */
  leakedThreads?(): number;
  /** Environment (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID); default Deno.env. */
  env?: Record<string, string | undefined>;
  /** Sends to systemd (tests inject a fake). */
  notifier?: { send(text: string): Promise<boolean>; close(): void };
}

/** Health verdict of one pet tick. */
export interface SelfHealth {
  /** True when watchdogs are petted. */
  ok: boolean;
  /** Lag seen in the last window (ms). */
  lagMs: number;
  /** Why not ok. */
  reasons: string[];
}

/** The self-monitor. */
export class SelfMonitor {
  readonly #o: SelfMonitorOptions;
  readonly #mono: () => number;
  readonly #notifier: { send(text: string): Promise<boolean>; close(): void } | undefined;
  readonly #sdWatchdogMs: number | null;
  /** Lag above which WATCHDOG=1 is withheld (null: no service watchdog). */
  readonly #sdMaxLagMs: number | null;
  #probeTimer: TimerId | undefined;
  #petTimer: TimerId | undefined;
  #sdTimer: TimerId | undefined;
  #lastProbe = 0;
  #lastPet = 0;
  #lastSd = 0;
  #windowLag = 0;
  #sdWindowLag = 0;
  #lastLag = 0;
  #ok: boolean | null = null;
  #pets = 0;
  #skipped = 0;
  #petErrors = new Map<string, string>();
  #sdReady = false;
  #leakReported = false;

  /** Build (nothing runs until start). */
  constructor(opts: SelfMonitorOptions) {
    this.#o = opts;
    this.#mono = opts.monotonic ?? (() => performance.now());
    const env = opts.env ?? Deno.env.toObject();
    const sock = env.NOTIFY_SOCKET;
    let notifier = opts.notifier;
    if (!notifier && sock) {
      try {
        notifier = new NotifyClient(sock);
      } catch (e) {
        opts.publish({
          module: "supervisor",
          kind: "supervisor.sd_notify_unusable",
          severity: "warning",
          payload: { error: (e as Error).message },
        });
      }
    }
    this.#notifier = sock || opts.notifier ? notifier : undefined;
    const usec = Number(env.WATCHDOG_USEC ?? "");
    const forMe = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === Deno.pid;
    this.#sdWatchdogMs = this.#notifier && usec > 0 && forMe ? usec / 1000 : null;
    const cfg = opts.config;
    this.#sdMaxLagMs = this.#sdWatchdogMs === null ? null : Math.max(
      cfg.maxLoopLagMs,
      cfg.serviceWatchdogLagMs ?? Math.floor(this.#sdWatchdogMs / 2),
    );
  }

  /** True when keepwire runs under systemd with NOTIFY_SOCKET. */
  get underSystemd(): boolean {
    return this.#notifier !== undefined;
  }

  /** Start the lag probe, the pet loop and (under systemd) the service watchdog loop. */
  start(): void {
    const c = this.#o.clock;
    const cfg = this.#o.config;
    const now = this.#mono();
    this.#lastProbe = this.#lastPet = this.#lastSd = now;
    this.#probeTimer = c.setInterval(() => {
      const t = this.#mono();
      const drift = Math.max(0, t - this.#lastProbe - cfg.lagProbeIntervalMs);
      this.#lastProbe = t;
      this.#windowLag = Math.max(this.#windowLag, drift);
      this.#sdWindowLag = Math.max(this.#sdWindowLag, drift);
    }, cfg.lagProbeIntervalMs);
    this.#petTimer = c.setInterval(() => this.#petTick(), cfg.petIntervalMs);
    if (this.#sdWatchdogMs !== null) {
      const every = Math.max(10, Math.floor(this.#sdWatchdogMs / 3));
      this.#sdTimer = c.setInterval(() => this.#sdTick(every), every);
    }
    this.#petTick(true);
  }

  /** Tell systemd start-up is done (READY=1); called once keepwire has started. */
  async ready(): Promise<void> {
    if (!this.#notifier || this.#sdReady) return;
    this.#sdReady = true;
    await this.#notifier.send(`READY=1\nSTATUS=keepwire running\nMAINPID=${Deno.pid}`);
  }

  /** Stop all timers; tell systemd keepwire is stopping. */
  async stop(): Promise<void> {
    const c = this.#o.clock;
    if (this.#probeTimer !== undefined) c.clearInterval(this.#probeTimer);
    if (this.#petTimer !== undefined) c.clearInterval(this.#petTimer);
    if (this.#sdTimer !== undefined) c.clearInterval(this.#sdTimer);
    this.#probeTimer = this.#petTimer = this.#sdTimer = undefined;
    if (this.#notifier) {
      await this.#notifier.send("STOPPING=1\nSTATUS=keepwire stopping");
      this.#notifier.close();
    }
  }

  /**
   * Evaluate health given the lag of the last window, against `maxLagMs` (default the
   * petting bound `maxLoopLagMs`; systemd's service watchdog passes its own, larger bound).
   */
  evaluate(lagMs: number, maxLagMs = this.#o.config.maxLoopLagMs): SelfHealth {
    const reasons: string[] = [];
    if (lagMs > maxLagMs) {
      reasons.push(`event-loop lag ${Math.round(lagMs)} ms > ${maxLagMs} ms`);
    }
    if (this.#o.config.stopPettingOnEssentialFailure) {
      const failed = this.#o.essentialFailed();
      if (failed.length) reasons.push(`essential subsystem failed: ${failed.join(", ")}`);
    }
    return { ok: reasons.length === 0, lagMs, reasons };
  }

  #petTick(first = false): void {
    const t = this.#mono();
    const drift = first ? 0 : Math.max(0, t - this.#lastPet - this.#o.config.petIntervalMs);
    this.#lastPet = t;
    const lag = Math.max(this.#windowLag, drift);
    this.#windowLag = 0;
    this.#lastLag = lag;
    const h = this.evaluate(lag);
    this.#report(h);
    if (!h.ok) {
      this.#skipped++;
      return;
    }
    this.#pets++;
    for (const p of this.#o.petters) {
      if (p.name === HARDWARE_WATCHDOG_PETTER && this.#o.config.watchdogOwner !== "keepwire") {
        continue;
      }
      try {
        const r = p.pet();
        if (r instanceof Promise) r.then(() => this.#petOk(p), (e) => this.#petFailed(p, e));
        else this.#petOk(p);
      } catch (e) {
        this.#petFailed(p, e);
      }
    }
  }

  #sdTick(every: number): void {
    const t = this.#mono();
    const drift = Math.max(0, t - this.#lastSd - every);
    this.#lastSd = t;
    const lag = Math.max(this.#sdWindowLag, drift);
    this.#sdWindowLag = 0;
    const leaked = this.#o.leakedThreads?.() ?? 0;
    if (leaked > this.#o.config.maxLeakedWorkerThreads) {
      if (!this.#leakReported) {
        this.#leakReported = true;
        this.#o.publish({
          module: "supervisor",
          kind: "supervisor.systemd_watchdog_withheld",
          severity: "critical",
          payload: {
            leakedThreads: leaked,
            max: this.#o.config.maxLeakedWorkerThreads,
            note: "systemd will restart keepwire (WatchdogSec) to reclaim the leaked threads",
          },
        });
      }
      return;
    }
    // a loop that is slow but alive (lag between maxLoopLagMs and this bound) has already
    // stopped the bypass and hardware pets; a restart would not make it faster, so systemd
    // restarts keepwire only when the loop stalls
    if (this.evaluate(lag, this.#sdMaxLagMs ?? undefined).ok) this.#notifier?.send("WATCHDOG=1");
  }

  #petOk(p: Petter): void {
    if (this.#petErrors.delete(p.name)) {
      this.#o.publish({
        module: "supervisor",
        kind: "supervisor.pet_recovered",
        severity: "notice",
        payload: { petter: p.name },
      });
    }
  }

  #petFailed(p: Petter, e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    if (this.#petErrors.get(p.name) === msg) return;
    this.#petErrors.set(p.name, msg);
    this.#o.publish({
      module: "supervisor",
      kind: "supervisor.pet_failed",
      severity: "error",
      payload: { petter: p.name, error: msg },
    });
  }

  #report(h: SelfHealth): void {
    if (this.#ok === h.ok) return;
    const first = this.#ok === null;
    this.#ok = h.ok;
    if (first && h.ok) return;
    this.#o.publish({
      module: "supervisor",
      kind: h.ok ? "supervisor.petting_resumed" : "supervisor.petting_stopped",
      severity: h.ok ? "notice" : "critical",
      payload: { lagMs: Math.round(h.lagMs), reasons: h.reasons },
    });
  }

  /** Snapshot for /api/status. */
  status(): SelfMonitorStatus {
    return {
      petting: this.#ok ?? false,
      lastLagMs: Math.round(this.#lastLag),
      maxLoopLagMs: this.#o.config.maxLoopLagMs,
      watchdogOwner: this.#o.config.watchdogOwner,
      petters: this.#o.petters.map((p) => p.name),
      pets: this.#pets,
      skipped: this.#skipped,
      petErrors: Object.fromEntries(this.#petErrors),
      leakedWorkerThreads: this.#o.leakedThreads?.() ?? 0,
      systemd: this.#notifier
        ? { ready: this.#sdReady, watchdogMs: this.#sdWatchdogMs, maxLagMs: this.#sdMaxLagMs }
        : null,
    };
  }
}
