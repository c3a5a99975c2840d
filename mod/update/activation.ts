/**
 * Activation and the health gate.
 *
 * - `activate()`: put an `update` hold on every bypass segment (the wire keeps
 *   carrying traffic), record the activation, then switch: reboot (mode
 *   `reboot`) or exit so the launcher starts the primary slot (mode `restart`).
 * - On every start, `start()` settles what the last runtime left (state.ts:
 *   an interrupted install, a new slot on trial, a rollback) and runs the health gate: all essential subsystems
 *   ready and healthy for `healthGateMs` without a break. Passing marks the
 *   booted slot good (every healthy start, fallback starts included), commits a
 *   pending activation and releases the hold.
 * - A slot on trial that does not pass within `healthTimeoutMs` is marked bad,
 *   an alert event is raised and the box falls back; a start in the old slot
 *   while an activation was pending (crash loop, tries used up) is a rollback:
 *   the new slot is marked bad and an alert is raised. The hold stays until a
 *   healthy runtime releases it.
 * @module
 */
import type { EventBus, EventMap, Severity } from "../events/mod.ts";
import type { UpdateEventKind } from "./events.ts";
import type { Clock, TimerId } from "../module.ts";
import type { BootScheme } from "../../hw/boot/ab.ts";
import type { UpdateConfig } from "./config.ts";
import { bootOp, errorMessage, UpdateError } from "./errors.ts";
import type { UpdateRecords } from "./records.ts";
import { otherSlot } from "./slots.ts";
import { updateStep } from "./failpoints.ts";
import { HOLD_REASONS } from "../bypass/hold_reasons.ts";
import {
  GATE_TRANSITIONS,
  type GateState,
  type UpdateStateMachine,
  type UpdateStateRecord,
} from "./state.ts";

export type { GateState } from "./state.ts";

/** Name of the bypass hold the updater places (the bypass module's reserved reason). */
export const UPDATE_HOLD: typeof HOLD_REASONS.update = HOLD_REASONS.update;

/** The part of the bypass module the updater uses (holds are named and counted). */
export interface BypassHolds {
  /** Put hold `reason` on segment `target` or on `all`. */
  hold(target: string | "all", reason: string): Promise<unknown> | unknown;
  /** Release hold `reason` from `target` or `all`. */
  release(target: string | "all", reason: string): Promise<unknown> | unknown;
}

/** The part of the supervisor the health gate uses. */
export interface HealthSource {
  /** True when every essential subsystem is ready and healthy. */
  essentialHealthy(): boolean;
}

/** What the activation logic needs. */
export interface ActivationDeps {
  /** The `update` config. */
  config: UpdateConfig;
  /** Store tables. */
  records: UpdateRecords;
  /** The update lifecycle. */
  state: UpdateStateMachine;
  /** Event bus. */
  bus: EventBus;
  /** Clock. */
  clock: Clock;
  /** The A/B boot scheme. */
  boot: BootScheme;
  /** Booted bootname. */
  booted: string;
  /** Bypass holds (absent: no bypass hardware). */
  bypass?: BypassHolds;
  /** Health source (absent: the gate only waits `healthGateMs`). */
  health?: HealthSource;
  /** Switch into the primary slot: reboot, or exit for the launcher. */
  switchTo: (reason: string) => Promise<void>;
}

/** Status of activation and gate for the API. */
export interface ActivationStatus {
  /** Gate state in this runtime. */
  gate: GateState;
  /** Since when the essentials have been healthy without a break (ms), or null. */
  healthySince: number | null;
  /** When this runtime started the gate (ms). */
  startedAt: number;
  /** The update state. */
  activation: UpdateStateRecord;
}

/** Activation and health gate of one runtime. */
export class Activation {
  readonly #d: ActivationDeps;
  #gate: GateState = "stopped";
  #healthySince: number | null = null;
  #startedAt = 0;
  #timer: TimerId | undefined;
  #busy = false;
  #timeoutReported = false;

  /** Build. */
  constructor(deps: ActivationDeps) {
    this.#d = deps;
  }

  /** Status. */
  status(): ActivationStatus {
    return {
      gate: this.#gate,
      healthySince: this.#healthySince,
      startedAt: this.#startedAt,
      activation: this.#d.state.current(),
    };
  }

  /** Gate state. */
  get gate(): GateState {
    return this.#gate;
  }

  #setGate(to: GateState): void {
    if (!GATE_TRANSITIONS[this.#gate].includes(to)) {
      throw new Error(`update gate: illegal transition ${this.#gate} -> ${to}`);
    }
    this.#gate = to;
  }

  #publish<K extends UpdateEventKind>(kind: K, severity: Severity, payload: EventMap[K]): void {
    this.#d.bus.publish({ module: "update", kind, severity, payload });
  }

  /**
   * Settle what the last runtime left (an interrupted install, an activation on
   * trial, a rollback), then start the health gate.
   */
  async start(): Promise<void> {
    const { state, booted } = this.#d;
    this.#startedAt = this.#d.clock.now();
    let cur = state.current();
    if (cur.state === "installing") cur = await this.#settleInterruptedInstall(cur);
    if (cur.state === "activating" || cur.state === "installed") {
      if (cur.target === booted) {
        state.to("trying", {
          detail: cur.state === "activating"
            ? "started in the new slot"
            : "started in the new slot without an activation (reboot)",
        });
        updateStep("start.trying");
        this.#publish("update.trying", "notice", {
          slot: booted,
          version: cur.version,
          from: cur.from,
        });
      } else if (cur.state === "activating") {
        // The new slot never got healthy here: it crashed, or its tries ran out.
        await this.#rollback(cur, "the new slot did not come up healthy (crash or tries used up)");
      }
    } else if (cur.state === "trying" && cur.target !== booted) {
      await this.#rollback(cur, "the new slot did not come up healthy (crash or tries used up)");
    } else if (cur.state === "gate-failed" && cur.target !== booted) {
      await this.#rollback(cur, cur.detail ?? "health gate failed");
    }
    this.#setGate("waiting");
    const poll = Math.max(
      10,
      Math.min(1000, Math.floor(this.#d.config.activation.healthGateMs / 10) || 10),
    );
    this.#timer = this.#d.clock.setInterval(() => void this.#tick(), poll);
    await this.#tick();
  }

  /**
   * keepwire stopped during an install. When it had finished everything but the
   * last state write (every record of the target installed, the target primary),
   * the install stands (`installed`); otherwise it failed (`install-failed`): the
   * target was marked bad before the first write and is not primary.
   */
  async #settleInterruptedInstall(cur: UpdateStateRecord): Promise<UpdateStateRecord> {
    const { records, boot, state } = this.#d;
    const target = cur.target!;
    const rows = records.slots().filter((r) => r.bootname === target);
    const recorded = rows.length > 0 &&
      rows.every((r) => ["installed", "pending"].includes(r.status) && r.version === cur.version);
    const primary = recorded
      ? (await bootOp(boot, "read the slots", () => boot.read())).primary
      : null;
    if (recorded && primary === target) {
      records.setStatus(target, "pending", "primary; waiting for its first healthy start");
      records.addHistory("install", target, cur.version, "ok", "completed after a restart");
      return state.to("installed", {
        detail: "installed; keepwire stopped before recording the end of the install",
      });
    }
    const why = "interrupted (keepwire stopped during the install)";
    records.setStatus(target, "failed", why);
    records.addHistory("install", target, cur.version, "failed", why);
    return state.to("install-failed", { detail: why });
  }

  async #rollback(act: UpdateStateRecord, why: string): Promise<void> {
    const { records, boot, state } = this.#d;
    const target = act.target!;
    try {
      await bootOp(boot, `mark ${target} bad`, () => boot.markBad(target));
    } catch (e) {
      this.#publish("update.error", "error", {
        error: `cannot mark ${target} bad: ${errorMessage(e)}`,
      });
    }
    records.setStatus(target, "bad", `rolled back: ${why}`);
    state.to("rolled-back", { detail: why });
    updateStep("start.rolled_back");
    records.addHistory("rollback", target, act.version, "rolled-back", why);
    this.#publish("update.rolled_back", "critical", {
      failed: target,
      version: act.version,
      running: this.#d.booted,
      reason: why,
      bypassHeld: !!this.#d.bypass,
    });
  }

  /** Stop the gate's timer. */
  stop(): void {
    if (this.#timer !== undefined) this.#d.clock.clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#gate === "waiting") this.#setGate("stopped");
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#gate !== "waiting") return;
    this.#busy = true;
    try {
      const now = this.#d.clock.now();
      const healthy = this.#d.health ? this.#d.health.essentialHealthy() : true;
      if (healthy) {
        this.#healthySince ??= now;
        if (now - this.#healthySince >= this.#d.config.activation.healthGateMs) {
          await this.#pass();
          return;
        }
      } else this.#healthySince = null;
      if (now - this.#startedAt >= this.#d.config.activation.healthTimeoutMs) await this.#timeout();
    } catch (e) {
      this.#publish("update.error", "error", { error: `health gate: ${errorMessage(e)}` });
    } finally {
      this.#busy = false;
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#d.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #pass(): Promise<void> {
    const { records, booted, boot, bypass, state } = this.#d;
    await bootOp(boot, `mark ${booted} good`, () => boot.markGood(booted));
    updateStep("gate.marked_good");
    records.setStatus(booted, "good", null);
    this.#clearTimer();
    this.#setGate("passed");
    const act = state.current();
    if (act.state === "trying" && act.target === booted) {
      state.to("committed", { detail: "health gate passed" });
      updateStep("gate.committed");
      records.addHistory("commit", booted, act.version, "ok", "health gate passed");
      this.#publish("update.committed", "notice", { slot: booted, version: act.version });
    }
    this.#publish("update.marked_good", "info", {
      slot: booted,
      gateMs: this.#d.config.activation.healthGateMs,
    });
    if (bypass) {
      try {
        await bypass.release("all", UPDATE_HOLD);
        this.#publish("update.hold_released", "info", { slot: booted });
        updateStep("gate.hold_released");
      } catch (e) {
        this.#publish("update.error", "error", {
          error: `cannot release the bypass hold: ${errorMessage(e)}`,
        });
      }
    }
  }

  async #timeout(): Promise<void> {
    const { records, booted, boot, state } = this.#d;
    const act = state.current();
    const onTrial = act.target === booted && act.state === "trying";
    if (!onTrial) {
      if (!this.#timeoutReported) {
        this.#timeoutReported = true;
        this.#publish("update.unhealthy", "error", {
          slot: booted,
          afterMs: this.#d.config.activation.healthTimeoutMs,
          note: "not on trial: no fallback; the slot is marked good once healthy",
        });
      }
      return;
    }
    this.#clearTimer();
    this.#setGate("failed");
    const why = `health gate not passed within ${this.#d.config.activation.healthTimeoutMs} ms`;
    // The activation's hold is still in place (holds are counted: never take a second one).
    await bootOp(boot, `mark ${booted} bad`, () => boot.markBad(booted));
    records.setStatus(booted, "bad", why);
    state.to("gate-failed", { detail: why });
    records.addHistory("gate-failed", booted, act.version, "failed", why);
    this.#publish("update.gate_failed", "critical", {
      slot: booted,
      version: act.version,
      reason: why,
      fallback: act.from,
    });
    await this.#d.switchTo(`fall back to slot ${act.from}: ${why}`);
  }

  /**
   * Activate the installed slot: bypass hold on every segment, record, switch.
   * Refuses unless the update is `installed` and the primary is the other slot.
   */
  async activate(): Promise<{ target: string; version: string | null }> {
    const { records, booted, boot, config, state } = this.#d;
    const target = otherSlot(config, booted);
    const cur = state.current();
    if (cur.state !== "installed" || cur.target !== target) {
      throw new UpdateError(
        "bad_request",
        `nothing to activate: the update is ${cur.state}${
          cur.target ? ` (slot ${cur.target})` : ""
        }, not installed into ${target} (install a bundle first)`,
      );
    }
    const view = await bootOp(boot, "read the slots", () => boot.read());
    if (view.primary !== target) {
      throw new UpdateError(
        "bad_request",
        `nothing to activate: the primary slot is ${view.primary ?? "none"}, not ${target} ` +
          `(install a bundle first)`,
      );
    }
    const version = records.versionOf(target);
    if (this.#d.bypass) {
      try {
        await this.#d.bypass.hold("all", UPDATE_HOLD);
      } catch (e) {
        throw new UpdateError(
          "io",
          `cannot put the bypass hold, not switching: ${errorMessage(e)}`,
        );
      }
      this.#publish("update.hold_placed", "info", { segments: "all" });
    }
    updateStep("activate.hold_placed");
    state.to("activating", { target, from: booted, version, detail: config.activation.mode });
    updateStep("activate.state_activating");
    records.addHistory("activate", target, version, "ok", `mode ${config.activation.mode}`);
    this.#publish("update.activating", "notice", {
      target,
      from: booted,
      version,
      mode: config.activation.mode,
    });
    updateStep("activate.switching");
    await this.#d.switchTo(`activate slot ${target} (${version ?? "unknown version"})`);
    return { target, version };
  }
}
