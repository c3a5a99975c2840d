/** Config schema of the boot environment backend (filled in by the hardware work). */
import { z } from "zod";

/** A boot environment backend. */
export const bootConfigSchema = z.discriminatedUnion("backend", [
  z.strictObject({ backend: z.literal("grubenv"), file: z.string().min(1) }),
  z.strictObject({ backend: z.literal("uboot"), config: z.string().default("/etc/fw_env.config") }),
  z.strictObject({ backend: z.literal("file"), file: z.string().min(1) }),
]);
