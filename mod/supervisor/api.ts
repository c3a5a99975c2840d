/**
 * The supervisor's surface that other modules (governor, updater, web, CLI) use.
 * The supervisor module implements `SupervisorApi`.
 * @module
 */

import { z } from "zod";

/** Criticality of a subsystem: the governor never suspends `essential`. */
export const criticalitySchema = z.lazy(() => z.enum(["essential", "important", "optional"]));
/** Criticality of a subsystem: the governor never suspends `essential`. */
export type Criticality = z.infer<typeof criticalitySchema>;

/** Every state of a subsystem (the metrics' state set has one sample per state). */
export const SUBSYSTEM_STATES = [
  "stopped",
  "starting",
  "ready",
  "unhealthy",
  "restarting",
  "failed",
  "suspended",
] as const;

/** States of a subsystem. */
export const subsystemStateSchema = z.lazy(() => z.enum(SUBSYSTEM_STATES));
/** States of a subsystem. */
export type SubsystemState = z.infer<typeof subsystemStateSchema>;

/** What `sub list` and GET /api/subsystems show per subsystem. */
export const subsystemInfoSchema = z.lazy(() =>
  z.object({
    name: z.string(),
    kind: z.enum(["worker", "process", "probe"]),
    state: subsystemStateSchema,
    criticality: criticalitySchema,
    pid: z.number().nullable().describe("process id (process kind) or null"),
    restarts: z.number().describe("restarts since keepwire started"),
    lastHeartbeatMs: z.number().nullable().describe("milliseconds since the last heartbeat"),
    lastFailure: z.string().nullable().describe("last failure reason"),
    statusText: z.string().nullable().optional().describe("last STATUS= / status() text"),
    queue: z.object({ depth: z.number(), oldestAgeMs: z.number() }).nullable().optional()
      .describe("queue depth last reported through the SDK"),
  })
);
/** What `sub list` and GET /api/subsystems show per subsystem. */
export type SubsystemInfo = z.infer<typeof subsystemInfoSchema>;

/** A watchdog keepwire pets only while healthy (hardware watchdog, bypass card watchdogs). */
export interface Petter {
  /** Name for events. */
  name: string;
  /** Pet once. */
  pet(): Promise<void> | void;
}

/** Actions the supervisor's escalation may take, injected so tests can mock them. */
export interface EscalationActions {
  /** Put a named hold on bypass segments (`all` or names). */
  bypassHold(segments: string[] | "all", reason: string): Promise<void>;
  /** Release a named hold. */
  bypassRelease(segments: string[] | "all", reason: string): Promise<void>;
  /** Reboot the box (real: `systemctl reboot` / reboot(2); tests: a mock). */
  reboot(reason: string): Promise<void>;
}

/**
 * The part of the bypass module the supervisor drives: escalation holds, and the card
 * watchdogs it pets while healthy. Structural, so the supervisor does not import bypass.
 */
export interface BypassControl {
  /** Put a named hold on one segment or `all`. */
  hold(target: string, reason: string, by: string): Promise<unknown>;
  /** Release a named hold on one segment or `all`. */
  release(target: string, reason: string): Promise<unknown>;
  /** Pet every bypass card watchdog once. */
  petWatchdogs(): Promise<void> | void;
}

/** What other modules call on the supervisor. */
export interface SupervisorApi {
  /** All subsystems. */
  list(): SubsystemInfo[];
  /** Start one (manual). */
  start(name: string): Promise<void>;
  /** Stop one (manual). */
  stop(name: string): Promise<void>;
  /** Restart one (manual). */
  restart(name: string): Promise<void>;
  /** Suspend one (governor): worker gets onSuspend, process SIGSTOP or stop per spec. */
  suspend(name: string, reason: string): Promise<void>;
  /** Resume one (governor). */
  resume(name: string, reason: string): Promise<void>;
  /** Subscribe to queue reports from subsystems (SDK reportQueue / sd_notify). */
  onQueueReport(fn: (name: string, depth: number, oldestAgeMs: number) => void): () => void;
  /** True when every essential subsystem is ready (the updater's health gate). */
  essentialHealthy(): boolean;
}
