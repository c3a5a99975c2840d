/**
 * How pages read the API: {@link readApi} returns a GET answer typed by the zod schema
 * its route answers with (so a field the module renames breaks the page's type check),
 * and refuses a schema that is not the route's. There are no loose readers: a page
 * that guesses at fields does not type-check.
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
