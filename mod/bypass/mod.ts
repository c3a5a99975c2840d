/**
 * Bypass module: one state machine per configured segment (segment.ts) with its
 * hold ledger (hold_ledger.ts, persisted by hold_store.ts) and card watchdog
 * (card_watchdog.ts), the mode read back from the driver after every switch and
 * on every poll, and the API the supervisor, the updater, the web and the CLI use.
 *
 * The hold reasons keepwire's components use are in hold_reasons.ts; the errors
 * (with their HTTP status) in errors.ts; the event kinds in events.ts.
 *
 * Traffic stays in bypass across a restart of keepwire: before any module stops,
 * `prepareStop` puts a `shutdown` hold on every segment (config `onStop: bypass`),
 * persisted, so the wire carries traffic while the subsystems stop and until the
 * next start is ready. After start, the module waits for the supervisor's
 * `supervisor.essentials_ready` event with `ready: true` and then releases the
 * `shutdown` hold and the configured `holdAtStart` one (`bypass.start_holds_released`).
 * @module
 */
import type { Hono } from "hono";
import type { MetricFamily } from "../web/metrics.ts";
import { bypassMetrics } from "./metrics.ts";
import type { ModuleContext, PartHealth } from "../module.ts";
import { BYPASS_PAGE } from "./page.tsx";
import type { EventMap, KwEvent, Severity } from "../events/mod.ts";
import type {} from "../supervisor/events.ts";
import type { SegmentConfig } from "../../hw/bypass/config.ts";
import { type BypassDriverDeps, createBypassDriver } from "../../hw/bypass/mod.ts";
import type { BypassDriver } from "../../hw/bypass/types.ts";
import { BypassHoldStore } from "./hold_store.ts";
import { Segment } from "./segment.ts";
import { bypassRoutes, type BypassStatus } from "./routes.ts";
import { BypassInputError, BypassSwitchError, BypassUnknownSegmentError } from "./errors.ts";
import type { BypassEventKind, SegmentEventKind, SegmentPublish } from "./events.ts";
import { HOLD_REASONS, holdReasonProblem, operatorHoldReasonProblem } from "./hold_reasons.ts";
import type { BypassModule, SegmentHoldStore, SegmentStatus, SwitchOutcome } from "./types.ts";

export * from "./errors.ts";
export * from "./hold_reasons.ts";
export { BYPASS_EVENTS, type BypassEventKind } from "./events.ts";
export type * from "./types.ts";
export { holdReasonSchema, operatorHoldReasonSchema } from "./types.ts";

/** Options for tests: how drivers are made. */
export interface BypassModuleOptions {
  /** Build a segment's driver (default: createBypassDriver). */
  driverFactory?: (seg: SegmentConfig) => BypassDriver;
  /** Deps for the default factory. */
  driverDeps?: BypassDriverDeps;
  /** Hold store (default: the store's bypass_holds table). */
  holdStore?: SegmentHoldStore;
}

/** Who takes the shutdown hold and releases the start holds (shown in status and events). */
const BY_STOP = "keepwire-stop";
const BY_READY = "essentials-ready";

function checkReason(reason: string, problem: (r: string) => string | null): void {
  const p = problem(reason);
  if (p) {
    throw new BypassInputError(`invalid hold reason ${JSON.stringify(reason)}: ${p}`, {
      reason: p,
    });
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
  let startedAt = 0;
  // The start holds are released once, on the first "essentials ready" after start.
  let startHoldsPending = false;
  let stopping = false;
  let unsubscribe: (() => void) | undefined;

  const publish = <K extends BypassEventKind>(
    kind: K,
    payload: EventMap[K],
    severity?: Severity,
  ) => ctx.bus.publish({ module: "bypass", kind, severity, payload });

  // A segment's events carry its name: the one place the payload is completed.
  const segmentPublisher = (segment: string): SegmentPublish =>
  <K extends SegmentEventKind>(
    kind: K,
    payload: Omit<EventMap[K], "segment">,
    severity?: Severity,
  ) => void publish(kind, { ...payload, segment } as EventMap[K], severity);

  /** Release the `shutdown` and `holdAtStart` holds (once, when essentials are first ready). */
  async function releaseStartHolds(): Promise<void> {
    if (!startHoldsPending || stopping) return;
    startHoldsPending = false;
    unsubscribe?.();
    unsubscribe = undefined;
    const reasons = [...new Set([HOLD_REASONS.shutdown, cfg.holdAtStart])].filter(
      (r): r is string => !!r,
    );
    const held = reasons.filter((r) =>
      [...segs.values()].some((s) => s.holds.some((h) => h.reason === r))
    );
    if (!held.length) return;
    for (const r of held) {
      try {
        await mod.releaseWith("all", r, { by: BY_READY, force: true });
      } catch (e) {
        publish("bypass.release_failed", { reason: r, error: (e as Error).message }, "error");
      }
    }
    publish("bypass.start_holds_released", {
      released: held,
      afterMs: ctx.clock.now() - startedAt,
    });
  }

  function onEssentials(e: KwEvent): void {
    if (e.kind !== "supervisor.essentials_ready") return;
    const p = e.payload as EventMap["supervisor.essentials_ready"];
    if (p.ready !== true) return;
    void releaseStartHolds();
  }

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
      startedAt = ctx.clock.now();
      stopping = false;
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
            publish: segmentPublisher(sc.name),
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
      startHoldsPending = true;
      unsubscribe = ctx.bus.subscribe(onEssentials, { kindPrefix: "supervisor.essentials_ready" });
    },

    async prepareStop(): Promise<void> {
      stopping = true;
      unsubscribe?.();
      unsubscribe = undefined;
      if (cfg.onStop !== "bypass") return;
      // one shutdown hold per segment, not one per stop: it is not counted up
      throwFailures(
        await Promise.all(
          [...segs.values()].map((s) => s.holdOnce(HOLD_REASONS.shutdown, BY_STOP)),
        ),
      );
    },

    async stop(): Promise<void> {
      stopping = true;
      unsubscribe?.();
      unsubscribe = undefined;
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
      checkReason(reason, holdReasonProblem);
      const outs = await Promise.all(targets(target).map((s) => s.hold(reason, by)));
      throwFailures(outs);
    },

    async holdByOperator(target, reason, by): Promise<void> {
      checkReason(reason, operatorHoldReasonProblem);
      if (reason === cfg.holdAtStart) {
        checkReason(
          reason,
          () =>
            `"${reason}" is the configured holdAtStart, released when the appliance is ready; choose another reason`,
        );
      }
      await mod.hold(target, reason, by);
    },

    async release(target, reason): Promise<void> {
      await mod.releaseWith(target, reason);
    },

    async releaseWith(target, reason, o = {}) {
      checkReason(reason, holdReasonProblem);
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
        throw new BypassInputError(`mode must be inline, bypass or disconnect, got "${mode}"`, {
          mode: "inline, bypass or disconnect",
        });
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

    status(): BypassStatus {
      return { segments: mod.segments() };
    },

    metrics(): MetricFamily[] {
      return bypassMetrics(mod.segments());
    },

    routes(): Hono {
      return bypassRoutes(mod);
    },
    pages: () => [BYPASS_PAGE],
  };
  return mod;
}
