/**
 * How pages read the API: {@link readApi} returns a GET answer typed by the zod schema
 * its route answers with (so a field the module renames breaks the page's type check),
 * and refuses a schema that is not the route's. The loose readers below remain for
 * answers read field by field without a schema.
 * @module
 */
import type { z } from "zod";
import { apiDocOf } from "../openapi.ts";
import type { Internal } from "./contract.ts";

/**
 * `GET path` in-process, typed as the output of `schema`: the zod schema the route
 * answers with (its `apiDoc` response). Throws when the route documents another schema,
 * so a page cannot read one answer as the type of another. Null when the call fails.
 */
export async function readApi<S extends z.ZodType>(
  d: { internal: Internal },
  path: string,
  schema: S,
): Promise<z.output<S> | null> {
  const route = path.split("?")[0];
  if (apiDocOf("GET", route)?.response !== schema) {
    throw new Error(`GET ${route} does not answer with the schema the page reads it with`);
  }
  return await d.internal<z.output<S>>(path);
}

/** A JSON object. */
export type Obj = Record<string, unknown>;

/** Field as object. */
export function obj(v: unknown): Obj {
  return v && typeof v === "object" && !Array.isArray(v) ? v as Obj : {};
}
/** Field as array of objects. */
export function arr(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map(obj) : [];
}
/** Field as string ("" when absent). */
export function str(v: unknown): string {
  return v === null || v === undefined ? "" : typeof v === "string" ? v : String(v);
}
/** Field as number or null. */
export function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
