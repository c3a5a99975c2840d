/**
 * Bypass module: one state machine per configured segment (segment.ts), holds
 * persisted in the store, mode read back from the driver after every switch and
 * on every poll, and the API the supervisor, the updater, the web and the CLI use.
 *
 * Reasons used by other modules: `runtime-fault` (supervisor escalation),
 * `update` (activation of a new image), `watchdog` (watchdog escalation or card
 * watchdog expiry), `manual` (CLI/API `set`).
 * @module
 */
import type { Hono } from "hono";
import type { Module, ModuleContext, PartHealth } from "../module.ts";
import { bypassReasonSchema, type SegmentConfig } from "../../hw/bypass/config.ts";
import { type BypassDriverDeps, createBypassDriver } from "../../hw/bypass/mod.ts";
import type { BypassDriver } from "../../hw/bypass/types.ts";
import { BypassHoldStore } from "./holds.ts";
import {
  BypassInputError,
  Segment,
  type SegmentHoldStore,
  type SegmentStatus,
  type SwitchOutcome,
} from "./segment.ts";
import { bypassRoutes } from "./routes.ts";

export {
  BypassHeldError,
  type BypassHold,
  BypassInputError,
  BypassSegmentConfigError,
  type SegmentHoldStatus,
  type SegmentStatus,
  type SegmentWatchdogStatus,
} from "./segment.ts";

/** Modes `set` accepts. */
export type BypassSetMode = "inline" | "bypass" | "disconnect";

/** What other modules, the web and the CLI call on the bypass module. */
export interface BypassApi {
  /** Status of every segment. */
  segments(): SegmentStatus[];
  /**
   * Take a named hold on one segment or `all` (count +1) and switch. Resolves once
   * the relays read back the wanted mode; rejects with BypassSwitchError when one
   * did not (the hold stays recorded and the switch is retried).
   */
  hold(target: string | "all", reason: string, by?: string): Promise<void>;
  /** Release a named hold (count -1) and switch; releasing a hold that is not there does nothing. */
  release(target: string | "all", reason: string): Promise<void>;
  /** Manual mode: a `manual` hold (bypass, disconnect) or its release (inline). */
  set(segment: string, mode: BypassSetMode, by?: string): Promise<void>;
  /** Pet every armed card watchdog (the supervisor calls this while healthy). */
  petWatchdogs(): Promise<void>;
  /** Health: not ok while a segment is `unknown`. */
  health(): PartHealth;
}

/** The bypass module: a Module that is also the BypassApi. */
export interface BypassModule extends Module, BypassApi {
  /** Module name. */
  readonly name: "bypass";
  /** Health: not ok while a segment is `unknown`. */
  health(): PartHealth;
  /** Release with options: `force` drops the hold whatever its count. */
  releaseWith(
    target: string | "all",
    reason: string,
    opts?: { by?: string; force?: boolean },
  ): Promise<{ segment: string; released: boolean; remaining: number }[]>;
  /** Status of one segment (throws BypassUnknownSegmentError). */
  segment(name: string): SegmentStatus;
  /** Poll every segment now (tests; the module polls every pollMs). */
  pollNow(): Promise<void>;
  /** The driver of a segment (tests, bench). */
  driverOf(name: string): BypassDriver;
}

/** A segment name that is not configured. */
export class BypassUnknownSegmentError extends Error {
  /** Build one. */
  constructor(name: string, known: string[]) {
    super(`no bypass segment "${name}" (segments: ${known.join(", ") || "none"})`);
    this.name = "BypassUnknownSegmentError";
  }
}

/** One or more relays did not read back the wanted mode. */
export class BypassSwitchError extends Error {
  /** The failed outcomes. */
  readonly failures: SwitchOutcome[];
  /** Build one. */
  constructor(failures: SwitchOutcome[]) {
    super(
      failures.map((f) =>
        `segment ${f.segment} did not reach ${f.wanted}: ${f.error ?? "unknown error"}`
      ).join("; ") + " (the hold is recorded; the switch is retried; mode reported unknown)",
    );
    this.name = "BypassSwitchError";
    this.failures = failures;
  }
}

/** Options for tests: how drivers are made. */
export interface BypassModuleOptions {
  /** Build a segment's driver (default: createBypassDriver). */
  driverFactory?: (seg: SegmentConfig) => BypassDriver;
  /** Deps for the default factory. */
  driverDeps?: BypassDriverDeps;
  /** Hold store (default: the store's bypass_holds table). */
  holdStore?: SegmentHoldStore;
}

function checkReason(reason: string): void {
  const r = bypassReasonSchema.safeParse(reason);
  if (!r.success) {
    throw new BypassInputError(`invalid hold reason "${reason}": ${r.error.issues[0].message}`);
  }
}

/** Build the bypass module from the config. */
export function createBypassModule(
  ctx: ModuleContext,
  opts: BypassModuleOptions = {},
): BypassModule {
  const cfg = ctx.config.hardware.bypass;
  const factory = opts.driverFactory ??
    ((s: SegmentConfig) => createBypassDriver(s, { clock: ctx.clock, ...opts.driverDeps }));
  let holdStore: SegmentHoldStore | undefined = opts.holdStore;
  const segs = new Map<string, Segment>();
  let pollTimer: ReturnType<typeof setInterval> | undefined;
  let polling = false;
  let started = false;

  const publish = (kind: string, payload: Record<string, unknown>, severity?: "warning") =>
    ctx.bus.publishUntyped({ module: "bypass", kind, severity, payload });

  function targets(target: string): Segment[] {
    if (target === "all") return [...segs.values()];
    const s = segs.get(target);
    if (!s) throw new BypassUnknownSegmentError(target, [...segs.keys()]);
    return [s];
  }

  function throwFailures(outs: SwitchOutcome[]): void {
    const bad = outs.filter((o) => !o.ok);
    if (bad.length) throw new BypassSwitchError(bad);
  }

  async function pollAll(): Promise<void> {
    if (polling) return;
    polling = true;
    try {
      await Promise.all(
        [...segs.values()].map((s) =>
          s.poll().catch((e) =>
            publish(
              "bypass.poll_failed",
              { segment: s.name, error: (e as Error).message },
              "warning",
            )
          )
        ),
      );
    } finally {
      polling = false;
    }
  }

  const mod: BypassModule = {
    name: "bypass",

    async start(): Promise<void> {
      if (!holdStore) {
        const hs = new BypassHoldStore(ctx.store, () => ctx.clock.now());
        holdStore = hs;
      }
      for (const sc of cfg.segments) {
        segs.set(
          sc.name,
          new Segment(sc, factory(sc), {
            clock: ctx.clock,
            holds: holdStore,
            timing: { switchTimeoutMs: cfg.switchTimeoutMs, retry: cfg.retry },
            publish: (e) =>
              ctx.bus.publishUntyped({
                module: "bypass",
                kind: e.kind,
                severity: e.severity,
                payload: e.payload,
              }),
          }),
        );
      }
      if (holdStore instanceof BypassHoldStore) {
        const orphans = holdStore.segments().filter((n) => !segs.has(n));
        if (orphans.length) {
          publish("bypass.orphan_holds", {
            segments: orphans,
            note: "holds of segments no longer configured are kept in the store and ignored",
          }, "warning");
        }
      }
      const results = await Promise.allSettled(
        [...segs.values()].map((s) => s.start(cfg.holdAtStart)),
      );
      if (holdStore instanceof BypassHoldStore) {
        for (const b of holdStore.bad) {
          publish(
            "bypass.hold_invalid",
            { ...b, note: "row kept in the store, ignored" },
            "warning",
          );
        }
      }
      const failed = results.find((r) => r.status === "rejected") as
        | PromiseRejectedResult
        | undefined;
      if (failed) {
        await Promise.allSettled([...segs.values()].map((s) => s.stop("keep")));
        throw failed.reason;
      }
      pollTimer = ctx.clock.setInterval(() => void pollAll(), cfg.pollMs);
      started = true;
    },

    async stop(): Promise<void> {
      if (pollTimer !== undefined) ctx.clock.clearInterval(pollTimer);
      pollTimer = undefined;
      started = false;
      await Promise.all([...segs.values()].map((s) => s.stop(cfg.onStop)));
    },

    segments(): SegmentStatus[] {
      return [...segs.values()].map((s) => s.status());
    },

    segment(name: string): SegmentStatus {
      return targets(name)[0].status();
    },

    async hold(target, reason, by = "api"): Promise<void> {
      checkReason(reason);
      const outs = await Promise.all(targets(target).map((s) => s.hold(reason, by)));
      throwFailures(outs);
    },

    async release(target, reason): Promise<void> {
      await mod.releaseWith(target, reason);
    },

    async releaseWith(target, reason, o = {}) {
      checkReason(reason);
      const outs = await Promise.all(
        targets(target).map((s) => s.release(reason, o.by ?? "api", o.force ?? false)),
      );
      throwFailures(outs.filter((x) => x.released));
      return outs.map((x) => ({
        segment: x.segment,
        released: x.released,
        remaining: x.remaining,
      }));
    },

    async set(segment, mode, by = "api"): Promise<void> {
      if (!["inline", "bypass", "disconnect"].includes(mode)) {
        throw new BypassInputError(`mode must be inline, bypass or disconnect, got "${mode}"`);
      }
      const [s] = targets(segment);
      throwFailures([await s.set(mode, by)]);
    },

    async petWatchdogs(): Promise<void> {
      await Promise.all([...segs.values()].map((s) => s.pet()));
    },

    pollNow: pollAll,

    driverOf(name: string): BypassDriver {
      return targets(name)[0].driver;
    },

    health(): PartHealth {
      const st = mod.segments();
      const bad = st.filter((s) => s.mode === "unknown");
      const parts = st.map((s) =>
        `${s.name} ${s.mode}${
          s.holds.length ? ` (${s.holds.map((h) => h.reason).join(", ")})` : ""
        }`
      );
      return {
        ok: started ? bad.length === 0 : st.length === 0,
        essential: true,
        detail: st.length ? parts.join("; ") : "no segments",
      };
    },

    status(): unknown {
      return { segments: mod.segments() };
    },

    routes(): Hono {
      return bypassRoutes(mod);
    },
  };
  return mod;
}
