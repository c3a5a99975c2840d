/**
 * Queue handoff (issue 13 §7): when a subsystem's queue depth (reported through the SDK)
 * reaches `onAt`, its new work goes to the peer node; when it falls to `offAt` or below,
 * back to this node. One small state machine per subsystem, on injected time.
 * @module
 */
import { z } from "zod";

/** Handoff thresholds of one subsystem (persisted in the replicated `sdk_handoff` table). */
export const handoffSettingsSchema = z.strictObject({
  enabled: z.boolean().describe("hand new work to the peer while the queue is deep"),
  onAt: z.number().int().min(1).max(1_000_000_000).describe(
    "queue depth at which new work goes to the peer",
  ),
  offAt: z.number().int().min(0).max(1_000_000_000).describe(
    "queue depth at or below which new work comes back to this node (below onAt)",
  ),
}).superRefine((s, ctx) => {
  if (s.offAt >= s.onAt) {
    ctx.addIssue({
      code: "custom",
      path: ["offAt"],
      message: `must be below onAt (${s.onAt}): the gap is the hysteresis`,
    });
  }
});

/** Handoff thresholds. */
export type HandoffSettings = z.infer<typeof handoffSettingsSchema>;

/** The default: off. */
export const HANDOFF_OFF: HandoffSettings = { enabled: false, onAt: 1000, offAt: 500 };

/** Where new work of a subsystem goes, and why (what the SDK, the API and the pages show). */
export interface HandoffState {
  /** `local`: this node takes new work; `peer`: new work goes to the peer node. */
  target: "local" | "peer";
  /** A sentence: why. */
  reason: string;
  /** Last reported queue depth. */
  depth: number;
  /** Since when (epoch ms). */
  since: number;
  /** The thresholds in force. */
  settings: HandoffSettings;
}

/** The handoff machine of one subsystem: local ⇄ peer with hysteresis. */
export class HandoffMachine {
  #settings: HandoffSettings;
  #target: "local" | "peer" = "local";
  #depth = 0;
  #since: number;
  #reason = "handoff off";

  /** Start local. */
  constructor(settings: HandoffSettings, now: number) {
    this.#settings = settings;
    this.#since = now;
    this.#reason = this.#localReason();
  }

  /** The state now. */
  state(): HandoffState {
    return {
      target: this.#target,
      reason: this.#reason,
      depth: this.#depth,
      since: this.#since,
      settings: { ...this.#settings },
    };
  }

  /** New thresholds; re-evaluated against the last depth. Returns true when the target changed. */
  configure(settings: HandoffSettings, now: number): boolean {
    this.#settings = settings;
    return this.report(this.#depth, now, true);
  }

  /**
   * A queue report. `peerAvailable` false (no peer, or it is not answering) keeps work
   * local whatever the depth. Returns true when the target changed.
   */
  report(depth: number, now: number, force = false, peerAvailable = true): boolean {
    this.#depth = depth;
    const s = this.#settings;
    let next = this.#target;
    if (!s.enabled || !peerAvailable) next = "local";
    else if (this.#target === "local" && depth >= s.onAt) next = "peer";
    else if (this.#target === "peer" && depth <= s.offAt) next = "local";
    const changed = next !== this.#target;
    if (changed) {
      this.#target = next;
      this.#since = now;
    }
    if (changed || force) {
      this.#reason = next === "peer"
        ? `queue ${depth} reached ${s.onAt} (on at ${s.onAt}, off at ${s.offAt}): new work goes to the peer`
        : !peerAvailable && s.enabled
        ? "no peer to hand work to: new work stays here"
        : this.#localReason();
    }
    return changed;
  }

  #localReason(): string {
    const s = this.#settings;
    return s.enabled
      ? `queue ${this.#depth} below ${s.onAt} (on at ${s.onAt}, off at ${s.offAt}): new work stays here`
      : "handoff off: new work stays here";
  }
}

/** One subsystem in GET /api/sdk (what `ha status` prints). */
export interface HandoffOverviewEntry {
  /** Subsystem name. */
  subsystem: string;
  /** Where its new work goes. */
  handoff: HandoffState & { to: string; decidedBy: string };
}

/** `ha status` lines: where each subsystem's new work goes and why. */
export function handoffLines(subsystems: HandoffOverviewEntry[]): string[] {
  return subsystems.map((x) => {
    const h = x.handoff;
    const s = h.settings;
    return `handoff ${x.subsystem}: new work → ${h.to || "this node"}${
      h.target === "peer" ? " (handed off)" : ""
    }; ${h.reason}${s.enabled ? "" : ` [off; set on the Handoff page]`}`;
  });
}
