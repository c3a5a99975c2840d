/**
 * The one redirect check: where the browser may be sent after signing in. Only a path
 * on this same origin is accepted; `//host`, `/\host`, tabs or newlines that the URL
 * parser strips, and any encoding of those are refused, because the candidate is
 * resolved by the WHATWG URL parser (as the browser will) and its origin compared.
 * @module
 */

const BASE = "http://same-origin.invalid";

/**
 * `next` as a same-origin path (path, query, fragment), or `fallback` when it is
 * missing or would leave this origin.
 */
export function safeNext(next: string | null | undefined, fallback = "/"): string {
  if (!next || next.length > 2048 || !next.startsWith("/")) return fallback;
  // anything the URL parser would strip or reinterpret is refused outright
  // deno-lint-ignore no-control-regex
  if (/[\\\x00-\x1f\x7f]/.test(next)) return fallback;
  let decoded = next;
  try {
    decoded = decodeURIComponent(next);
  } catch {
    return fallback;
  }
  // refuse encoded variants of the same tricks (%2F%2Fhost, %5Chost), too
  // deno-lint-ignore no-control-regex
  if (/^\/[\/\\]|[\\\x00-\x1f\x7f]/.test(decoded)) return fallback;
  let u: URL;
  try {
    u = new URL(next, BASE);
  } catch {
    return fallback;
  }
  if (u.origin !== BASE) return fallback;
  return u.pathname + u.search + u.hash;
}
