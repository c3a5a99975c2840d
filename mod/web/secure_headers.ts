/**
 * Security headers on every answer: the set hono's `secureHeaders` middleware sends for
 * keepwire's options (tests/web_test.ts pins that both are equal), with the values built
 * once.
 *
 * Why not hono's middleware itself: setting a header on a Response validates its name and
 * value each time, a dozen headers per answer (the CSP value alone is ~200 characters),
 * ~12 µs per request, a tenth of an authenticated GET. An answer built ahead with
 * {@link SecureHeaders.prebuilt} carries the headers already and is handed out per request
 * as a clone (the header list is copied, not validated again); the middleware recognises
 * such a copy and leaves it alone. Every other answer gets the headers set as before.
 * @module
 */
import type { MiddlewareHandler } from "hono";

/** Content-Security-Policy directives, as hono's `secureHeaders` takes them. */
export type CspDirectives = Record<string, string[]>;

/** The headers and values for `csp`, X-Frame-Options DENY, Referrer-Policy same-origin. */
export function securityHeaderPairs(csp: CspDirectives, tls: boolean): [string, string][] {
  const policy = Object.entries(csp)
    .map(([name, values]) => [kebab(name), ...values].join(" "))
    .join("; ");
  const pairs: [string, string][] = [
    ["Cross-Origin-Resource-Policy", "same-origin"],
    ["Cross-Origin-Opener-Policy", "same-origin"],
    ["Origin-Agent-Cluster", "?1"],
    ["Referrer-Policy", "same-origin"],
  ];
  if (tls) pairs.push(["Strict-Transport-Security", "max-age=31536000"]);
  pairs.push(
    ["X-Content-Type-Options", "nosniff"],
    ["X-DNS-Prefetch-Control", "off"],
    ["X-Download-Options", "noopen"],
    ["X-Frame-Options", "DENY"],
    ["X-Permitted-Cross-Domain-Policies", "none"],
    ["X-XSS-Protection", "0"],
    ["Content-Security-Policy", policy],
  );
  return pairs;
}

/** `frameAncestors` → `frame-ancestors` (hono's rule for directive names). */
function kebab(name: string): string {
  return name.replace(/[A-Z]+(?![a-z])|[A-Z]/g, (m, at) => (at ? "-" : "") + m.toLowerCase());
}

/** The security headers of one app: its middleware and its prebuilt answers. */
export class SecureHeaders {
  /** The headers every answer gets (name, value). */
  readonly pairs: readonly [string, string][];
  // copies of prebuilt answers: they carry the headers already
  #prebuiltCopies = new WeakSet<Response>();

  /** Headers for `csp`; Strict-Transport-Security when serving over TLS. */
  constructor(csp: CspDirectives, tls: boolean) {
    this.pairs = securityHeaderPairs(csp, tls);
  }

  /**
   * Middleware: after the route answered, set every header (replacing what the route
   * set) and drop X-Powered-By, unless the answer is a copy of a prebuilt one.
   */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      await next();
      const res = c.res;
      if (this.#prebuiltCopies.has(res)) return;
      const h = res.headers;
      for (const [name, value] of this.pairs) h.set(name, value);
      h.delete("X-Powered-By");
    };
  }

  /**
   * An answer built once with the security headers and `headers`; call the result for a
   * fresh copy per request (a Response body can be read only once).
   */
  prebuilt(body: string, status: number, headers: Record<string, string>): () => Response {
    const template = new Response(body, {
      status,
      headers: [...this.pairs, ...Object.entries(headers)],
    });
    return () => {
      const copy = template.clone();
      this.#prebuiltCopies.add(copy);
      return copy;
    };
  }
}
