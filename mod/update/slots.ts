/**
 * Slots: the configured slot classes with their A and B devices, the booted
 * slot (kernel command line `keepwire.slot=` / `rauc.slot=`, the launcher's
 * `KEEPWIRE_SLOT`, `update.bootedSlot`, or the boot env's `KEEPWIRE_BOOTED`),
 * and the target, which is always the other slot.
 * @module
 */
import { createBootEnv } from "../../hw/boot/mod.ts";
import { type BootScheme, type BootSchemeName, createBootScheme } from "../../hw/boot/ab.ts";
import type { BootEnv } from "../../hw/boot/types.ts";
import type { SlotConfig, UpdateConfig } from "./config.ts";
import { errorMessage, UpdateError } from "./errors.ts";
import { READ_LIMITS, readTextFileBounded } from "../fs.ts";

/** One slot of one class. */
export interface Slot {
  /** Slot class, e.g. `rootfs`. */
  slotClass: string;
  /** Bootname, e.g. `A`. */
  bootname: string;
  /** Block device or file. */
  device: string;
  /** Configured capacity (file slots). */
  size?: number;
}

/** Where the booted slot was learned from. */
export type BootedSource = "launcher" | "cmdline" | "config" | "bootenv";

/** The booted slot and its source. */
export interface Booted {
  /** Bootname. */
  bootname: string;
  /** Source. */
  source: BootedSource;
}

/** The two bootnames, in config order (a's first); throws when the classes disagree. */
export function bootnames(config: UpdateConfig): string[] {
  const classes = Object.entries(config.slots);
  if (!classes.length) throw new UpdateError("no_slot", "no slots configured (update.slots)");
  const [first] = classes;
  const names = [first[1].a.bootname, first[1].b.bootname];
  for (const [cls, pair] of classes) {
    if (pair.a.bootname === pair.b.bootname) {
      throw new UpdateError(
        "no_slot",
        `update.slots.${cls}: a and b have the same bootname ${pair.a.bootname}`,
      );
    }
    const these = [pair.a.bootname, pair.b.bootname].sort();
    if (these.join() !== [...names].sort().join()) {
      throw new UpdateError(
        "no_slot",
        `update.slots.${cls}: bootnames ${these.join("/")} differ from ${names.join("/")}`,
      );
    }
  }
  return names;
}

/** All slots. */
export function allSlots(config: UpdateConfig): Slot[] {
  return Object.entries(config.slots).flatMap(([cls, pair]) =>
    [pair.a, pair.b].map((s: SlotConfig) => ({
      slotClass: cls,
      bootname: s.bootname,
      device: s.device,
      ...(s.size !== undefined ? { size: s.size } : {}),
    }))
  );
}

/** The slot of `slotClass` with `bootname`. */
export function slotOf(config: UpdateConfig, slotClass: string, bootname: string): Slot {
  const pair = Object.hasOwn(config.slots, slotClass) ? config.slots[slotClass] : undefined;
  if (!pair) {
    throw new UpdateError(
      "no_slot",
      `no slot class ${JSON.stringify(slotClass)} in update.slots (configured: ${
        Object.keys(config.slots).join(", ") || "none"
      })`,
    );
  }
  const s = pair.a.bootname === bootname ? pair.a : pair.b;
  return {
    slotClass,
    bootname: s.bootname,
    device: s.device,
    ...(s.size !== undefined ? { size: s.size } : {}),
  };
}

/** The other bootname: the only slot an install may write. */
export function otherSlot(config: UpdateConfig, booted: string): string {
  const names = bootnames(config);
  if (!names.includes(booted)) {
    throw new UpdateError(
      "booted_unknown",
      `booted slot ${JSON.stringify(booted)} is none of the configured slots (${names.join(", ")})`,
    );
  }
  return names.find((n) => n !== booted)!;
}

/** `keepwire.slot=` or `rauc.slot=` from a kernel command line, or null. */
export function slotFromCmdline(cmdline: string): string | null {
  let found: string | null = null;
  for (const word of cmdline.trim().split(/\s+/)) {
    const m = /^(keepwire|rauc)\.slot=(.*)$/.exec(word);
    if (m && (found === null || m[1] === "keepwire")) found = m[2].replace(/^"|"$/g, "");
    if (m && m[1] === "keepwire") break;
  }
  return found;
}

/** Inputs to {@link detectBooted} (each injectable for tests). */
export interface DetectInputs {
  /** Process environment (the launcher passes KEEPWIRE_SLOT). */
  env?: Record<string, string | undefined>;
  /** Read the kernel command line (default: read `config.cmdline`). */
  readCmdline?: () => Promise<string | null>;
  /** Read KEEPWIRE_BOOTED from the boot env. */
  bootEnvBooted?: () => Promise<string | undefined>;
}

/**
 * The booted slot: the launcher's KEEPWIRE_SLOT, else the kernel command line
 * (`keepwire.slot=` first, then `rauc.slot=`), else `update.bootedSlot`, else the
 * boot env's `KEEPWIRE_BOOTED`. RAUC's `rauc.slot=` may name a bootname.
 */
export async function detectBooted(
  config: UpdateConfig,
  inputs: DetectInputs = {},
): Promise<Booted> {
  const names = bootnames(config);
  const check = (bootname: string, source: BootedSource): Booted => {
    if (!names.includes(bootname)) {
      throw new UpdateError(
        "booted_unknown",
        `booted slot ${JSON.stringify(bootname)} (from ${source}) is none of the configured ` +
          `bootnames (${names.join(", ")})`,
      );
    }
    return { bootname, source };
  };
  const env = inputs.env ?? Deno.env.toObject();
  if (env.KEEPWIRE_SLOT) return check(env.KEEPWIRE_SLOT, "launcher");
  const readCmdline = inputs.readCmdline ?? (async () => {
    try {
      return await readTextFileBounded(config.cmdline, READ_LIMITS.procfs, "kernel command line");
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw new UpdateError("booted_unknown", `cannot read ${config.cmdline}: ${errorMessage(e)}`);
    }
  });
  const cmd = await readCmdline();
  const fromCmd = cmd ? slotFromCmdline(cmd) : null;
  if (fromCmd) return check(fromCmd, "cmdline");
  if (config.bootedSlot) return check(config.bootedSlot, "config");
  const fromEnv = await inputs.bootEnvBooted?.().catch(() => undefined);
  if (fromEnv) return check(fromEnv, "bootenv");
  throw new UpdateError(
    "booted_unknown",
    `cannot tell the booted slot: no keepwire.slot= or rauc.slot= in ${config.cmdline}, no ` +
      `KEEPWIRE_SLOT from the launcher, no update.bootedSlot, no KEEPWIRE_BOOTED in the boot env`,
  );
}

/** Capacity of a slot in bytes (block device size, configured size, or Infinity). */
export async function slotCapacity(slot: Slot): Promise<number> {
  if (slot.size !== undefined) return slot.size;
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(slot.device);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return Infinity;
    throw new UpdateError("io", `cannot stat slot device ${slot.device}: ${errorMessage(e)}`);
  }
  if (st.isBlockDevice) {
    const f = await Deno.open(slot.device, { read: true });
    try {
      return await f.seek(0, Deno.SeekMode.End);
    } finally {
      f.close();
    }
  }
  if (!st.isFile) {
    throw new UpdateError("io", `slot device ${slot.device} is neither a block device nor a file`);
  }
  return Infinity;
}

/** The scheme a config uses (`auto`: uboot for the uboot backend, else grub). */
export function schemeOf(config: UpdateConfig): BootSchemeName {
  if (config.scheme !== "auto") return config.scheme;
  return config.bootloader.backend === "uboot" ? "uboot" : "grub";
}

/**
 * The A/B boot scheme of a config over `env` (default: the env `update.bootloader`
 * names); without slots, bootnames A and B. `activation.tries` is both the
 * mark-good and the set-primary attempt count.
 */
export function bootSchemeFor(config: UpdateConfig, env?: BootEnv): BootScheme {
  const names = Object.keys(config.slots).length ? bootnames(config) : ["A", "B"];
  return createBootScheme(schemeOf(config), env ?? createBootEnv(config.bootloader), {
    slots: names,
    attempts: config.activation.tries,
    attemptsPrimary: config.activation.tries,
  });
}
