/** Config schema of the boot environment backend (`update.bootloader`). */
import { z } from "zod";

/** A boot environment backend: grubenv file, U-Boot env through libubootenv, or JSON file. */
export const bootConfigSchema = z.discriminatedUnion("backend", [
  z.strictObject({
    backend: z.literal("grubenv"),
    file: z.string().min(1).describe("GRUB environment block, e.g. /boot/grub/grubenv"),
    create: z.boolean().default(false).describe(
      "create the 1024-byte block on the first write when the file is missing",
    ),
  }),
  z.strictObject({
    backend: z.literal("uboot"),
    config: z.string().min(1).default("/etc/fw_env.config").describe(
      "libubootenv fw_env.config describing the env copies",
    ),
    fwPrintenv: z.string().min(1).default("fw_printenv").describe(
      "fw_printenv executable (PATH lookup unless absolute)",
    ),
    fwSetenv: z.string().min(1).default("fw_setenv").describe(
      "fw_setenv executable (PATH lookup unless absolute)",
    ),
    defaultEnv: z.string().min(1).optional().describe(
      "default env file passed as -f (libubootenv's own default: /etc/u-boot-initial-env)",
    ),
    allowDefaultEnv: z.boolean().default(false).describe(
      "accept libubootenv's default env when no stored copy is valid (fresh boards); " +
        "otherwise that is a 'corrupt' error",
    ),
    timeoutMs: z.number().int().min(100).max(600_000).default(10_000).describe(
      "kill fw_printenv / fw_setenv after this long",
    ),
  }),
  z.strictObject({
    backend: z.literal("file"),
    file: z.string().min(1).describe("JSON file with the variables (development)"),
  }),
]);

/** A validated boot env backend configuration. */
export type BootConfig = z.infer<typeof bootConfigSchema>;
/** A boot env backend configuration as written (defaults not applied). */
export type BootConfigInput = z.input<typeof bootConfigSchema>;
