/**
 * zod's global `jitless`, set before any schema is built: main.ts imports this module first,
 * and mod/config/schema.ts does too (for what imports it without main.ts).
 *
 * zod decides when an object schema is built, not when it parses, whether a synchronous parse
 * compiles a fast-path parser with `new Function`; set later, the setting missed the schemas
 * built before it (every module's config section). Validation here runs once a start and on
 * small bodies: the compiled parser costs start-up time and memory for no gain at these sizes.
 * @module
 */
import { z } from "zod";

z.config({ jitless: true });
