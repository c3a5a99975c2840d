/** Config schema of the A/B updater (`update` section). */
import { z } from "zod";
import { bootConfigSchema } from "../../hw/boot/config.ts";
import { BOOTNAME_RE, BOOTNAME_RULE, SLOT_CLASS_RE, SLOT_CLASS_RULE } from "./names.ts";

/** One slot of a slot class. */
export const slotSchema = z.strictObject({
  device: z.string().min(1).describe("block device or file"),
  bootname: z.string().regex(BOOTNAME_RE, BOOTNAME_RULE).describe(
    "the slot's name in the boot loader's variables (e.g. A, B)",
  ),
  size: z.number().int().min(1).optional().describe(
    "capacity in bytes of a file slot (block devices report their own size; a file slot " +
      "without it is limited only by its file system)",
  ),
});

/** Activation: how the box switches into the new slot and when it commits it. */
export const activationSchema = z.strictObject({
  mode: z.enum(["reboot", "restart"]).default("reboot").describe(
    "reboot: the real bootloader picks the slot; restart: the keepwire launcher starts the " +
      "primary slot's entry (application slots)",
  ),
  healthGateMs: z.number().int().min(0).max(3_600_000).default(30_000).describe(
    "all essential subsystems must be ready and healthy this long, without a break, before " +
      "the booted slot is marked good",
  ),
  healthTimeoutMs: z.number().int().min(1000).max(86_400_000).default(300_000).describe(
    "a slot on trial that has not passed the gate this long after start is marked bad and " +
      "the box falls back",
  ),
  tries: z.number().int().min(1).max(100).default(3).describe(
    "starts a new slot gets (U-Boot scheme BOOT_<X>_LEFT; the GRUB scheme always gives one)",
  ),
  rebootCommand: z.array(z.string().min(1)).min(1).default(["reboot"]).describe(
    "command that reboots the box (mode reboot)",
  ),
  restartExitCode: z.number().int().min(1).max(254).default(75).describe(
    "exit code with which keepwire asks the launcher to start the primary slot (mode restart)",
  ),
});

/** The launcher of `restart` mode. */
export const launcherSchema = z.strictObject({
  command: z.array(z.string().min(1)).min(1).default(["{device}"]).describe(
    "argv that starts a slot; {device}, {bootname} and {slotClass} are replaced",
  ),
  slotClass: z.string().optional().describe(
    "slot class whose device is the entry (default: the first configured class)",
  ),
  env: z.record(z.string(), z.string()).default({}).describe("extra environment of the child"),
  stopTimeoutMs: z.number().int().min(100).max(600_000).default(10_000).describe(
    "SIGTERM, then SIGKILL after this long, when the launcher itself is stopped",
  ),
  rescueDelayMs: z.number().int().min(0).max(3_600_000).default(5_000).describe(
    "wait this long before retrying when no slot is bootable",
  ),
});

/** Retry of HTTP(S) downloads. */
export const downloadSchema = z.strictObject({
  retries: z.number().int().min(0).max(10_000).default(10).describe(
    "times a broken download is resumed (HTTP Range) before the install fails",
  ),
  retryDelayMs: z.number().int().min(0).max(600_000).default(1_000).describe(
    "first delay before a resume; doubles per retry",
  ),
  maxRetryDelayMs: z.number().int().min(0).max(3_600_000).default(30_000).describe(
    "cap of the resume delay",
  ),
  stallTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000).describe(
    "no byte for this long = connection broken",
  ),
});

/** The `update` section (without the checks across fields). */
const updateSectionSchema = z.strictObject({
  compatible: z.string().min(1).default("keepwire-dev").describe(
    "compatible string a bundle must carry",
  ),
  keyring: z.string().optional().describe("PEM file with one or more Ed25519 public keys"),
  bootedSlot: z.string().optional().describe("booted slot's bootname (tests; else from cmdline)"),
  bootloader: bootConfigSchema.default({ backend: "file", file: "./var/bootenv.json" }).describe(
    "where the boot variables live: GRUB's grubenv, U-Boot's environment, or a file (tests)",
  ),
  slots: z.record(
    z.string().regex(SLOT_CLASS_RE, `slot class names: ${SLOT_CLASS_RULE}`),
    z.strictObject({
      a: slotSchema.describe("the A slot"),
      b: slotSchema.describe("the B slot"),
    }),
  ).default({}).describe(
    "slot classes, each with its a and b slot; every class has the same two bootnames",
  ),
  scheme: z.enum(["auto", "grub", "uboot"]).default("auto").describe(
    "boot variable scheme: grub (ORDER, <X>_OK, <X>_TRY) or uboot (BOOT_ORDER, " +
      "BOOT_<X>_LEFT); auto = uboot for the uboot backend, else grub",
  ),
  cmdline: z.string().min(1).default("/proc/cmdline").describe(
    "kernel command line read for keepwire.slot= / rauc.slot=",
  ),
  allowDowngrade: z.boolean().default(false).describe(
    "accept bundles older than the booted slot (else only with --allow-downgrade)",
  ),
  verifyReadBack: z.boolean().default(false).describe(
    "after fsync, read the slot back and hash it again",
  ),
  chunkSize: z.number().int().min(65_536).max(64 * 1024 * 1024).default(4 * 1024 * 1024)
    .describe("bytes per read/write; 4 buffers of this size are in flight"),
  activation: activationSchema.default(() => activationSchema.parse({}, { jitless: true }))
    .describe(
      "switching to the new slot: reboot or restart, the health gate, tries before rollback",
    ),
  launcher: launcherSchema.default(() => launcherSchema.parse({}, { jitless: true })).describe(
    "how the launcher starts keepwire from the booted slot (restart mode)",
  ),
  download: downloadSchema.default(() => downloadSchema.parse({}, { jitless: true })).describe(
    "installing from a URL: retries and stall timeout",
  ),
});

/**
 * The `update` section, refusing what an install would refuse later: a and b of
 * a class sharing a bootname, classes with different bootnames, a launcher
 * class that is not configured.
 */
export const updateConfigSchema = updateSectionSchema.superRefine((c, ctx) => {
  const classes = Object.entries(c.slots);
  if (!classes.length) return;
  const names = [classes[0][1].a.bootname, classes[0][1].b.bootname];
  for (const [cls, pair] of classes) {
    if (pair.a.bootname === pair.b.bootname) {
      ctx.addIssue({
        code: "custom",
        path: ["slots", cls],
        message: `a and b have the same bootname ${pair.a.bootname}`,
      });
      continue;
    }
    const these = [pair.a.bootname, pair.b.bootname].sort();
    if (these.join() !== [...names].sort().join()) {
      ctx.addIssue({
        code: "custom",
        path: ["slots", cls],
        message: `bootnames ${these.join("/")} differ from ${names.join("/")} ` +
          `(every slot class has the same two bootnames)`,
      });
    }
  }
  const lc = c.launcher.slotClass;
  if (lc !== undefined && !Object.hasOwn(c.slots, lc)) {
    ctx.addIssue({
      code: "custom",
      path: ["launcher", "slotClass"],
      message: `no slot class ${JSON.stringify(lc)} in update.slots (configured: ${
        Object.keys(c.slots).join(", ")
      })`,
    });
  }
});

/** The validated `update` section. */
export type UpdateConfig = z.infer<typeof updateConfigSchema>;
/** One validated slot. */
export type SlotConfig = z.infer<typeof slotSchema>;
