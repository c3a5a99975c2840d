/**
 * The SDK table service's event kinds (merged into the bus's EventMap).
 * @module
 */
import type {} from "../events/mod.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /** A subsystem declared a table group (migrations ran to `version`). */
    "sdk.tables_declared": {
      subsystem: string;
      group: string;
      durability: string;
      tables: string[];
      version: number;
      migrated: string;
    };
    /** A subsystem's table declaration was refused. */
    "sdk.tables_refused": { subsystem: string; group: string; code: string; message: string };
    /** New messages of a subsystem go elsewhere (queue handoff on or off). */
    "sdk.handoff_changed": {
      subsystem: string;
      target: string;
      reason: string;
      depth: number;
      onAt: number;
      offAt: number;
    };
    /** An operator changed a subsystem's handoff thresholds. */
    "sdk.handoff_settings": {
      subsystem: string;
      enabled: boolean;
      onAt: number;
      offAt: number;
      by: string;
    };
  }
}

/** The SDK's event kinds. */
export const SDK_EVENTS = [
  "sdk.tables_declared",
  "sdk.tables_refused",
  "sdk.handoff_changed",
  "sdk.handoff_settings",
] as const;
