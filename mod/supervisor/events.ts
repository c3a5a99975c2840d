/**
 * Event kinds the supervisor publishes, with their payload types, and the typed
 * `publish` its parts are handed.
 * @module
 */
import type { EventKind, TypedEventInput } from "../events/mod.ts";
import type { Criticality, SubsystemState } from "./api.ts";

/** Bypass segments named by an escalation: `all` or names. */
type Segments = string[] | "all";

declare module "../events/mod.ts" {
  interface EventMap {
    /** A subsystem changed state (the table in state.ts), with the reason. */
    "supervisor.transition": {
      subsystem: string;
      kind: "worker" | "process" | "probe";
      criticality: Criticality;
      from: SubsystemState;
      to: SubsystemState;
      /** Why (state.ts `Cause`: boot, exit, crash, heartbeat-timeout, ...). */
      cause: string;
      /** The reason as a sentence. */
      reason: string;
      exitCode?: number;
      signal?: string;
      /** Backoff before the next start (to `restarting`). */
      delayMs?: number;
      /** The subsystem gave up (to `failed` by policy or intensity): escalation follows. */
      gaveUp?: boolean;
      /** Automatic restarts so far. */
      restarts: number;
    };
    /** A supervisor-initiated action failed (a start, stopping dependents, an escalation). */
    "supervisor.error": { action: string; error: string };
    /** A subsystem gave up and its escalation ran. */
    "supervisor.escalation": {
      subsystem: string;
      /** mark-failed | restart-group | bypass-hold | reboot */
      action: string;
      reason: string;
      segments?: Segments;
      group?: string;
      members?: string[];
      /** The restart group exceeded its intensity: its members are marked failed. */
      gaveUp?: boolean;
    };
    /** The subsystem whose escalation held bypass is ready again: the hold is released. */
    "supervisor.escalation_released": { subsystem: string; segments: Segments };
    /**
     * Whether every essential subsystem is ready changed (published once after start
     * too, with the value then). The bypass module releases its start/shutdown holds on
     * `ready: true`.
     */
    "supervisor.essentials_ready": { ready: boolean };
    /**
     * A process group a previous keepwire left running (it was killed) was ended at
     * start, before the subsystem started again.
     */
    "supervisor.orphan_ended": {
      subsystem: string;
      pgid: number;
      pids: number[];
      /** SIGKILL was needed after the stop timeout. */
      forced: boolean;
    };
    /** A probe's restart command ran. */
    "supervisor.probe_restart_command": {
      subsystem: string;
      command: string[];
      exitCode: number;
      stderr: string;
    };
    /** A line a process subsystem wrote (rate limited). */
    "supervisor.output": { subsystem: string; stream: "stdout" | "stderr"; line: string };
    /** Output lines dropped by the rate limit since the last journalled one. */
    "supervisor.output_dropped": { subsystem: string; dropped: number };
    /** An sd_notify datagram with lines keepwire does not understand. */
    "supervisor.notify_invalid": { subsystem: string; problems: string[] };
    /** A process ignored SIGTERM for its stop timeout and was killed. */
    "supervisor.stop_forced": { subsystem: string; afterMs: number };
    /** NOTIFY_SOCKET is set but cannot be used (keepwire's own systemd watchdog). */
    "supervisor.sd_notify_unusable": { error: string };
    /** keepwire stops WATCHDOG=1 to systemd so it restarts keepwire (leaked threads). */
    "supervisor.systemd_watchdog_withheld": { leakedThreads: number; max: number; note: string };
    /** A watchdog could not be petted. */
    "supervisor.pet_failed": { petter: string; error: string };
    /** A watchdog that failed to be petted is petted again. */
    "supervisor.pet_recovered": { petter: string };
    /** Watchdogs are no longer petted (lag, a failed essential subsystem, ...). */
    "supervisor.petting_stopped": { lagMs: number; reasons: string[] };
    /** Watchdogs are petted again. */
    "supervisor.petting_resumed": { lagMs: number; reasons: string[] };
    /** worker.terminate() did not stop a spinning thread (Deno 2.9); it was demoted. */
    "supervisor.worker_thread_leaked": {
      subsystem: string;
      tid: number;
      /** Share of one core it used. */
      cpu: number;
      /** Moved to SCHED_IDLE. */
      demoted: boolean;
      note: string;
    };
  }
}

/** Every event kind the supervisor publishes (docs, UI filters). */
export const SUPERVISOR_EVENTS = [
  "supervisor.transition",
  "supervisor.error",
  "supervisor.escalation",
  "supervisor.escalation_released",
  "supervisor.essentials_ready",
  "supervisor.orphan_ended",
  "supervisor.probe_restart_command",
  "supervisor.output",
  "supervisor.output_dropped",
  "supervisor.notify_invalid",
  "supervisor.stop_forced",
  "supervisor.sd_notify_unusable",
  "supervisor.systemd_watchdog_withheld",
  "supervisor.pet_failed",
  "supervisor.pet_recovered",
  "supervisor.petting_stopped",
  "supervisor.petting_resumed",
  "supervisor.worker_thread_leaked",
] as const;

/** The typed publish the supervisor's parts get (the bus's `publish`; tests record). */
export type Publish = <K extends EventKind>(e: TypedEventInput<K>) => void;
