/** Config schema of high availability (filled in by the HA work). */
import { z } from "zod";

/** The `ha` section. */
export const haConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
});
