/**
 * Security headers from hono/secure-headers, computed once and then copied onto
 * every response (hono's middleware rebuilds them per request, ~6 µs each).
 * @module
 */
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";

/** Options of hono's secureHeaders. */
export type SecureHeadersOptions = NonNullable<Parameters<typeof secureHeaders>[0]>;

/** Middleware adding the headers `secureHeaders(opts)` would add. */
export function staticSecureHeaders(opts: Partial<SecureHeadersOptions>): MiddlewareHandler {
  let headers: [string, string][] | undefined;
  const probe = async (): Promise<[string, string][]> => {
    const app = new Hono();
    app.use("*", secureHeaders(opts));
    app.get("/", (c) => c.text(""));
    const res = await app.request("/");
    await res.body?.cancel();
    return [...res.headers.entries()].filter(([k]) => k !== "content-type");
  };
  return async (c, next) => {
    headers ??= await probe();
    await next();
    for (const [k, v] of headers) c.res.headers.set(k, v);
  };
}
