/** Types shared by the storage module and its routes (a file of its own: no import circle). */
import { z } from "zod";
import { diskStatusSchema, raidArrayStatusSchema, raidHealthSchema } from "./health.ts";

/** What GET /api/storage returns. */
export const storageViewSchema = z.lazy(() =>
  z.object({
    arrays: z.array(raidArrayStatusSchema).describe("arrays in the order the kernel lists them"),
    disks: z.array(diskStatusSchema).describe("watched disks"),
    updatedAt: z.number().nullable().describe("last successful md read (ms since epoch)"),
    error: z.string().nullable().describe("why the last md read failed"),
  })
);
/** What GET /api/storage returns. */
export type StorageView = z.infer<typeof storageViewSchema>;

/** The storage module's part of /api/status. */
export const storageStatusSchema = z.lazy(() =>
  z.object({
    driver: z.string(),
    running: z.boolean(),
    updatedAt: z.number().nullable(),
    error: z.string().nullable(),
    arrays: z.array(z.object({ name: z.string(), health: raidHealthSchema })),
    disks: z.array(
      z.object({ device: z.string(), health: diskStatusSchema.unwrap().shape.health }),
    ),
  })
);
/** The storage module's part of /api/status. */
export type StorageStatus = z.infer<typeof storageStatusSchema>;
