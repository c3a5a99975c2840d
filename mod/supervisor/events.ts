/**
 * Event kinds the supervisor publishes, with their payload types.
 * @module
 */
import type {} from "../events/mod.ts";

declare module "../events/mod.ts" {
  interface EventMap {
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
    "supervisor.orphan_ended": { subsystem: string; pgid: number; pids: number[]; forced: boolean };
  }
}

/** Every event kind the supervisor publishes (docs, UI filters). */
export const SUPERVISOR_EVENTS = [
  "supervisor.essentials_ready",
  "supervisor.orphan_ended",
] as const;
