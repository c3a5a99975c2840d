/**
 * The supervisor's surface that other modules (governor, updater, web, CLI) use.
 * The supervisor module implements `SupervisorApi`.
 * @module
 */

/** Criticality of a subsystem: the governor never suspends `essential`. */
export type Criticality = "essential" | "important" | "optional";

/** States of a subsystem. */
export type SubsystemState =
  | "stopped"
  | "starting"
  | "ready"
  | "unhealthy"
  | "restarting"
  | "failed"
  | "suspended";

/** What `sub list` and GET /api/subsystems show per subsystem. */
export interface SubsystemInfo {
  /** Name. */
  name: string;
  /** worker | process | probe. */
  kind: "worker" | "process" | "probe";
  /** State. */
  state: SubsystemState;
  /** Criticality. */
  criticality: Criticality;
  /** Process id (process kind) or null. */
  pid: number | null;
  /** Restarts since keepwire started. */
  restarts: number;
  /** Milliseconds since the last heartbeat, or null. */
  lastHeartbeatMs: number | null;
  /** Last failure reason, or null. */
  lastFailure: string | null;
  /** Last STATUS= / status() text, or null. */
  statusText?: string | null;
  /** Queue depth last reported through the SDK, or null. */
  queue?: { depth: number; oldestAgeMs: number } | null;
}

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
