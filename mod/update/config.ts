/** Config schema of the A/B updater. */
import { z } from "zod";
import { bootConfigSchema } from "../../hw/boot/config.ts";

/** One slot of a slot class. */
export const slotSchema = z.strictObject({
  device: z.string().min(1).describe("block device or file"),
  bootname: z.string().regex(/^[A-Za-z0-9_]+$/, "letters, digits and _"),
});

/** The `update` section. */
export const updateConfigSchema = z.strictObject({
  compatible: z.string().min(1).default("keepwire-dev").describe(
    "compatible string a bundle must carry",
  ),
  keyring: z.string().optional().describe("PEM file with one or more Ed25519 public keys"),
  bootedSlot: z.string().optional().describe("booted slot's bootname (tests; else from cmdline)"),
  bootloader: bootConfigSchema.default({ backend: "file", file: "./var/bootenv.json" }),
  slots: z.record(z.string(), z.strictObject({ a: slotSchema, b: slotSchema })).default({}),
});
