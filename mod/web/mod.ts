/**
 * The web module: serves the Hono app on the configured TCP address and on the
 * local control socket (data dir, mode 0600) that the CLI uses without a password.
 * @module
 */
import type { Hono } from "hono";
import { splitListen } from "../config/mod.ts";
import { controlSocketPath } from "../cli/client.ts";
import type { Module, PartHealth } from "../module.ts";
import { createApp, type RuntimeView, type WebEnv } from "./app.ts";
import { loadTls } from "./tls.ts";
import { Front } from "./front.ts";
import type {} from "./events.ts";
import { z } from "zod";
import { statusDoc } from "./openapi.ts";

/** The web module's part of /api/status. */
export const webStatusSchema = z.lazy(() =>
  z.object({
    listen: z.string().describe("address the front listens on (empty before start)"),
    tls: z.boolean(),
    connections: z.object({
      accepted: z.number(),
      headerTimeouts: z.number(),
      idleTimeouts: z.number(),
      refused: z.number().describe("refused by the connection caps"),
    }).optional().describe("front counters (absent before the front started)"),
  })
);
/** The web module's part of /api/status. */
export type WebStatus = z.infer<typeof webStatusSchema>;
statusDoc("web", webStatusSchema);

export { createApp, type HealthReport, type RuntimeView, type WebEnv } from "./app.ts";
export { ApiError, jsonBody, parseOr400, validationError } from "./errors.ts";

/** Serves the web UI/API and the control socket. */
export class WebModule implements Module {
  /** Module name. */
  readonly name = "web";
  #view: RuntimeView;
  #app: Hono<WebEnv> | undefined;
  #tcp: Deno.HttpServer<Deno.NetAddr> | undefined;
  #unix: Deno.HttpServer<Deno.UnixAddr> | undefined;
  #front: Front | undefined;
  #listening = "";
  #scheme = "http";

  /** Build on a runtime view. */
  constructor(view: RuntimeView) {
    this.#view = view;
  }

  /** The app (available after start). */
  get app(): Hono<WebEnv> | undefined {
    return this.#app;
  }

  /** http or https. */
  get scheme(): string {
    return this.#scheme;
  }

  /** The bound address, e.g. `127.0.0.1:8080`. */
  get address(): string {
    return this.#listening;
  }

  /** Start both listeners; fails when the address is taken. */
  async start(): Promise<void> {
    const app = createApp(this.#view);
    this.#app = app;
    const { hostname, port } = splitListen(this.#view.config.web.listen);
    const sock = controlSocketPath(this.#view.config.dataDir);
    try {
      await Deno.remove(sock);
    } catch { /* absent */ }
    let tls: { cert: string; key: string } | undefined;
    if (this.#view.config.web.tls.enabled) {
      const m = await loadTls(this.#view.config.web.tls, this.#view.config.dataDir, hostname);
      tls = { cert: m.cert, key: m.key };
      if (m.source === "generated") {
        this.#view.bus.publish({
          module: "web",
          kind: "web.tls_generated",
          severity: "notice",
          payload: { dir: `${this.#view.config.dataDir}/tls` },
        });
      }
    }
    this.#scheme = tls ? "https" : "http";
    // The HTTP server listens on an ephemeral loopback port; the front (front.ts) owns
    // the configured address, enforces connection timeouts and caps, terminates TLS and
    // tells the server who each client is.
    const https = !!tls;
    let front: Front | undefined;
    // Deno.serve binds before it returns: its address is known at once
    this.#tcp = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: (e) => {
        console.error("web:", e);
        return new Response("internal error", { status: 500 });
      },
    }, (req, info) => {
      const remote = front?.remoteOf(info.remoteAddr.port);
      if (!remote) return new Response("connect to the configured address", { status: 403 });
      // the front terminated TLS: the request is https as far as the client knows
      const r = https ? new Request(req.url.replace(/^http:/, "https:"), req) : req;
      return app.fetch(r, { trusted: false, remote });
    });
    try {
      front = new Front({
        hostname,
        port,
        upstreamPort: this.#tcp.addr.port,
        tls,
        limits: this.#view.config.web.connections,
      });
    } catch (e) {
      await this.#tcp.shutdown();
      this.#tcp = undefined;
      throw new Error(`web: cannot listen on ${hostname}:${port}: ${(e as Error).message}`);
    }
    this.#front = front;
    const a = front.addr;
    this.#listening = `${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}`;
    const oldUmask = Deno.umask(0o177);
    try {
      this.#unix = Deno.serve({
        path: sock,
        transport: "unix",
        onListen: () => {},
      }, (req) => app.fetch(req, { trusted: true }));
    } finally {
      Deno.umask(oldUmask);
    }
    await Deno.chmod(sock, 0o600);
  }

  /** Stop both listeners (open SSE streams are cut). */
  async stop(): Promise<void> {
    const sock = controlSocketPath(this.#view.config.dataDir);
    await Promise.allSettled([this.#front?.close(), this.#tcp?.shutdown(), this.#unix?.shutdown()]);
    try {
      await Deno.remove(sock);
    } catch { /* gone */ }
  }

  /** Healthy while listening. */
  health(): PartHealth {
    return {
      ok: !!this.#tcp,
      essential: true,
      detail: this.#listening ? `listening on ${this.#listening}` : "not listening",
    };
  }

  /** Status. */
  status(): WebStatus {
    return {
      listen: this.#listening,
      tls: this.#view.config.web.tls.enabled,
      connections: this.#front?.stats,
    };
  }
}
