/**
 * Host header check against DNS rebinding: a page on `rebind.attacker.example` whose
 * name the attacker re-points at this box (or at 127.0.0.1 from a browser on it)
 * talks to us "same-origin" as far as the browser knows, and origin checks that
 * compare Origin with Host would pass. So the Host a client names must be one of ours:
 * the listen address, localhost, 127.0.0.1, [::1], the box's hostname, on a wildcard
 * listen the box's interface addresses, and `web.allowedHosts`. Anything else is
 * answered 421 before any other middleware runs.
 * @module
 */
import type { MiddlewareHandler } from "hono";

/** Host part of a Host header value (`name`, `1.2.3.4`, `::1`), lowercased, no port. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 0 ? h.slice(1, end) : h;
  }
  const i = h.lastIndexOf(":");
  return (i >= 0 && h.indexOf(":") === i ? h.slice(0, i) : h).replace(/\.$/, "");
}

function bare(h: string): string {
  return h.trim().toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
}

/**
 * The hosts a client may name. `listenHost` is the configured listen address (without
 * port); `extra` comes from `web.allowedHosts`.
 */
export function allowedHosts(listenHost: string, extra: readonly string[] = []): Set<string> {
  const out = new Set(["localhost", "127.0.0.1", "::1", ...extra.map(bare)]);
  const listen = bare(listenHost);
  const wildcard = listen === "0.0.0.0" || listen === "::" || listen === "";
  if (!wildcard) out.add(listen);
  try {
    const name = Deno.hostname().toLowerCase();
    out.add(name);
    out.add(`${name}.local`);
  } catch { /* no permission: configured names only */ }
  if (wildcard) {
    try {
      for (const i of Deno.networkInterfaces()) out.add(bare(i.address.split("%")[0]));
    } catch { /* no permission: configured names only */ }
  }
  return out;
}

/**
 * Middleware: refuse (421) a request whose Host is not in `allowed()`. Requests from
 * the control socket (`trusted`) are not checked.
 */
export function hostGuard(
  allowed: () => Set<string>,
): MiddlewareHandler<{ Bindings: { trusted?: boolean } }> {
  return async (c, next) => {
    if (c.env?.trusted) return await next();
    const header = c.req.header("host") ?? new URL(c.req.url).host;
    const host = hostOf(header);
    if (!allowed().has(host)) {
      return c.json({
        error: {
          code: "unknown_host",
          message:
            "this box does not answer to that host name; use its address or a name listed in web.allowedHosts",
        },
      }, 421);
    }
    await next();
  };
}
