/** Config schema of the load governor (filled in by the governor work). */
import { z } from "zod";

/** The `governor` section. */
export const governorConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
});
