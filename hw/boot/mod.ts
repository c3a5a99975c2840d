/**
 * Boot environment backends behind one interface: `createBootEnv(config)` picks
 * grubenv, uboot (libubootenv tools) or file (JSON); the mock is built directly.
 * @module
 */
import { type BootConfig, type BootConfigInput, bootConfigSchema } from "./config.ts";
import { FileBootEnv } from "./file.ts";
import { GrubEnv } from "./grubenv.ts";
import { type BootEnv, BootEnvError } from "./types.ts";
import { UBootEnv } from "./uboot.ts";

export * from "./types.ts";
export { type BootConfig, type BootConfigInput, bootConfigSchema } from "./config.ts";
export { GrubEnv, parseGrubEnv, serializeGrubEnv } from "./grubenv.ts";
export { UBootEnv } from "./uboot.ts";
export { FileBootEnv } from "./file.ts";
export { MockBootEnv } from "./mock.ts";
export {
  BOOT_SCHEMES,
  type BootScheme,
  type BootSchemeName,
  type BootSchemeOptions,
  type BootView,
  createBootScheme,
  GrubScheme,
  type SlotBootState,
  type SlotBootView,
  UBootScheme,
} from "./ab.ts";

/** Build the backend a (validated or raw) config names; a bad config is an `invalid-config` error naming the field. */
export function createBootEnv(config: BootConfig | BootConfigInput): BootEnv {
  const r = bootConfigSchema.safeParse(config);
  if (!r.success) {
    const msg = r.error.issues
      .map((i) => `${i.path.length ? i.path.join(".") : "(config)"}: ${i.message}`)
      .join("; ");
    throw new BootEnvError("invalid-config", `boot env config: ${msg}`);
  }
  const c = r.data;
  switch (c.backend) {
    case "grubenv":
      return new GrubEnv({ file: c.file, create: c.create });
    case "uboot":
      return new UBootEnv({
        config: c.config,
        fwPrintenv: c.fwPrintenv,
        fwSetenv: c.fwSetenv,
        defaultEnv: c.defaultEnv,
        allowDefaultEnv: c.allowDefaultEnv,
        timeoutMs: c.timeoutMs,
      });
    case "file":
      return new FileBootEnv({ file: c.file });
  }
}
