/**
 * The updater's answers as data: GET /api/update, the answers of its commands and its
 * part of /api/status, as zod schemas. The types the service builds are checked
 * against them (`z.ZodType<T>`), and the whole status view is inferred from them.
 * @module
 */
import { z } from "zod";
import { sameType } from "../web/openapi.ts";
import type { ActivationStatus } from "./activation.ts";
import type { InstallProgress, InstallResult } from "./install.ts";
import type { HistoryEntry } from "./records.ts";
import { UPDATE_STATES, type UpdateStateRecord } from "./state.ts";

const gateStateSchema = z.lazy(() => z.enum(["stopped", "waiting", "passed", "failed"]));

/** The persisted update state (state.ts). */
export const updateStateRecordSchema = z.lazy(() =>
  z.object({
    state: z.enum(UPDATE_STATES),
    target: z.string().nullable().describe("slot being installed / activated"),
    from: z.string().nullable().describe("slot booted when the install or activation began"),
    version: z.string().nullable(),
    since: z.number().describe("when the state was entered (ms)"),
    detail: z.string().nullable(),
  })
);

/** Progress of the running (or the last) install. */
export const installProgressSchema = z.lazy(() =>
  z.object({
    phase: z.enum(["verifying", "writing", "finishing", "done", "failed"]),
    percent: z.number().describe("0..100"),
    bytes: z.number().describe("payload bytes written"),
    total: z.number().describe("payload bytes in total (0 until the manifest is verified)"),
    target: z.string().optional(),
    version: z.string().optional(),
    message: z.string(),
    error: z.string().optional(),
    code: z.string().optional(),
  })
);

/** One row of the update history. */
export const historyEntrySchema = z.lazy(() =>
  z.object({
    id: z.number(),
    time: z.number().describe("ms since the epoch"),
    action: z.string().describe(
      "install | activate | commit | rollback | mark-good | mark-bad | gate-failed",
    ),
    bootname: z.string().nullable(),
    version: z.string().nullable(),
    result: z.string().describe("ok | failed | ..."),
    detail: z.string().nullable(),
  })
);

/** One slot in `update status`. */
export const slotViewSchema = z.lazy(() =>
  z.object({
    slotClass: z.string(),
    bootname: z.string(),
    device: z.string(),
    state: z.enum(["good", "trying", "bad", "unknown"]).describe(
      "boot env and store combined; unknown when the env is unreadable",
    ),
    status: z.enum(["installing", "installed", "pending", "good", "bad", "failed"]).nullable()
      .describe("install status from the store"),
    version: z.string().nullable(),
    sha256: z.string().nullable(),
    installedAt: z.string().nullable().describe("ISO time"),
    booted: z.boolean(),
    primary: z.boolean().describe("the slot booted next"),
  })
);
/** One slot in `update status`. */
export type SlotView = z.infer<typeof slotViewSchema>;

/** The whole `update status` (CLI and service). */
export const updateStatusViewSchema = z.lazy(() =>
  z.object({
    compatible: z.string(),
    booted: z.object({
      bootname: z.string(),
      source: z.enum(["launcher", "cmdline", "config", "bootenv"]),
    }).nullable().describe("booted slot, or null with bootedError"),
    bootedError: z.string().optional(),
    primary: z.string().nullable().describe("primary bootname (from the boot env)"),
    bootEnv: z.string().describe("boot env and scheme"),
    bootEnvError: z.string().optional(),
    order: z.array(z.string()),
    mode: z.enum(["reboot", "restart"]),
    update: updateStateRecordSchema,
    slots: z.array(slotViewSchema),
    progress: installProgressSchema.nullable(),
    history: z.array(historyEntrySchema).describe("newest first"),
  })
);
/** The whole `update status` (CLI and service). */
export type UpdateStatusView = z.infer<typeof updateStatusViewSchema>;

/** Activation and health gate of this runtime. */
export const activationStatusSchema = z.lazy(() =>
  z.object({
    gate: gateStateSchema,
    healthySince: z.number().nullable(),
    startedAt: z.number(),
    activation: updateStateRecordSchema,
  })
);

/** GET /api/update. */
export const updateFullStatusSchema = z.lazy(() =>
  updateStatusViewSchema.unwrap().extend({
    gate: activationStatusSchema.nullable().describe("null when no slots are configured"),
  })
);
/** GET /api/update. */
export type UpdateFullStatus = z.infer<typeof updateFullStatusSchema>;

/** Answer of an install (POST /api/update). */
export const installResultSchema = z.lazy(() =>
  z.object({
    target: z.string().describe("slot written and made primary"),
    booted: z.string(),
    version: z.string(),
    keyId: z.string().describe("key that signed the bundle"),
    images: z.array(z.object({
      slotClass: z.string(),
      device: z.string(),
      size: z.number(),
      sha256: z.string(),
    })),
    bytes: z.number(),
    durationMs: z.number(),
  })
);

/** Answer of POST /api/update/activate. */
export const activateAnswerSchema = z.lazy(() =>
  z.object({
    target: z.string(),
    version: z.string().nullable(),
  })
);

/** Answer of mark-good / mark-bad. */
export const markAnswerSchema = z.lazy(() =>
  z.object({ slot: z.string().describe("the slot marked") })
);

/** The updater's part of /api/status. */
export const updateModuleStatusSchema = z.lazy(() =>
  z.object({
    installing: z.boolean(),
    progress: installProgressSchema.nullable(),
    gate: gateStateSchema.nullable(),
    activation: updateStateRecordSchema,
  })
);
/** The updater's part of /api/status. */
export type UpdateModuleStatus = z.infer<typeof updateModuleStatusSchema>;

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<UpdateStateRecord, z.output<typeof updateStateRecordSchema>>((v) => v, (v) => v);
sameType<InstallProgress, z.output<typeof installProgressSchema>>((v) => v, (v) => v);
sameType<HistoryEntry, z.output<typeof historyEntrySchema>>((v) => v, (v) => v);
sameType<ActivationStatus, z.output<typeof activationStatusSchema>>((v) => v, (v) => v);
sameType<InstallResult, z.output<typeof installResultSchema>>((v) => v, (v) => v);
