/**
 * The front of the TCP listener: connection limits and timeouts that `Deno.serve` does
 * not have (Deno 2.9.6 has no header or idle timeout: a half-sent request head, an idle
 * keep-alive connection and a silent one all stay open indefinitely).
 *
 * The front accepts each client connection itself (TLS is terminated here), counts it
 * against a total and a per-address cap, and relays its bytes to the HTTP server, which
 * listens on an ephemeral loopback port. The server learns the real client address from
 * the front by the port of the relay connection ({@link Front.remoteOf}); a connection to
 * that loopback port that did not come through the front has no entry and is refused.
 *
 * What it enforces (defaults; `web.timeouts` in the config):
 * - header timeout: the first request head must be complete within `headerMs` (10 s) of
 *   the connection (TLS handshake included);
 * - idle timeout: a connection with no byte in either direction for `idleMs` (120 s) is
 *   closed (live event streams send a keep-alive every 15 s);
 * - at most `maxConnections` (512) open connections, `maxPerAddress` (64) per client
 *   address other than loopback (local monitoring and tools are on the box already);
 *   beyond, a new connection is closed at once.
 * @module
 */

/** Limits of the front. */
export interface FrontLimits {
  /** The first request head must be complete within this (ms). */
  headerMs: number;
  /** Close a connection silent in both directions this long (ms). */
  idleMs: number;
  /** Open connections at most. */
  maxConnections: number;
  /** Open connections per client address at most. */
  maxPerAddress: number;
}

/** Defaults of {@link FrontLimits} (documented in docs/security.md). */
export const DEFAULT_FRONT_LIMITS: FrontLimits = {
  headerMs: 10_000,
  idleMs: 120_000,
  maxConnections: 512,
  maxPerAddress: 64,
};

/** Counters of what the front cut (status, tests). */
export interface FrontStats {
  /** Connections accepted and relayed. */
  accepted: number;
  /** Closed because the request head did not complete in time. */
  headerTimeouts: number;
  /** Closed because silent too long. */
  idleTimeouts: number;
  /** Refused because of the connection caps. */
  refused: number;
}

const CRLF2 = [13, 10, 13, 10];

/**
 * Go on looking for the CRLFCRLF that ends a request head: `matched` bytes of it ended
 * the bytes before `chunk`; the result is how many end `chunk` (4: found).
 */
export function scanHeadEnd(chunk: Uint8Array, matched: number): number {
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i];
    if (b === CRLF2[matched]) matched++;
    else matched = b === 13 ? 1 : 0;
    if (matched === 4) return 4;
  }
  return matched;
}

/** The TCP (or TLS) front relaying to a loopback HTTP server. */
export class Front {
  readonly #limits: FrontLimits;
  readonly #listener: Deno.Listener;
  readonly #upstreamPort: number;
  readonly #tls: boolean;
  #byPort = new Map<number, Deno.NetAddr>();
  #perAddress = new Map<string, number>();
  #open = new Set<Deno.Conn>();
  #closed = false;
  #loop: Promise<void>;
  /** Counters. */
  readonly stats: FrontStats = { accepted: 0, headerTimeouts: 0, idleTimeouts: 0, refused: 0 };

  /**
   * Listen on `hostname:port` (TLS when `tls` is given) and relay to the HTTP server on
   * `127.0.0.1:upstreamPort`. Throws when the address cannot be bound.
   */
  constructor(opts: {
    hostname: string;
    port: number;
    upstreamPort: number;
    tls?: { cert: string; key: string };
    limits?: Partial<FrontLimits>;
  }) {
    this.#limits = { ...DEFAULT_FRONT_LIMITS, ...opts.limits };
    this.#upstreamPort = opts.upstreamPort;
    this.#tls = !!opts.tls;
    this.#listener = opts.tls
      ? Deno.listenTls({ hostname: opts.hostname, port: opts.port, ...opts.tls })
      : Deno.listen({ hostname: opts.hostname, port: opts.port });
    this.#loop = this.#accept();
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** The client behind a relay connection arriving from loopback port `port`, if any. */
  remoteOf(port: number): Deno.NetAddr | undefined {
    return this.#byPort.get(port);
  }

  /** Stop accepting and cut every open connection. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const c of this.#open) closeQuietly(c);
    await this.#loop;
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        continue; // a failed accept (e.g. too many open files) must not end the listener
      }
      const remote = conn.remoteAddr as Deno.NetAddr;
      const n = this.#perAddress.get(remote.hostname) ?? 0;
      const capped = !isLoopback(remote.hostname) && n >= this.#limits.maxPerAddress;
      if (this.#open.size >= this.#limits.maxConnections || capped) {
        this.stats.refused++;
        closeQuietly(conn);
        continue;
      }
      this.#perAddress.set(remote.hostname, n + 1);
      this.#open.add(conn);
      this.stats.accepted++;
      this.#relay(conn, remote).catch(() => {}).finally(() => {
        this.#open.delete(conn);
        const left = (this.#perAddress.get(remote.hostname) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(remote.hostname, left);
        else this.#perAddress.delete(remote.hostname);
      });
    }
  }

  async #relay(client: Deno.Conn, remote: Deno.NetAddr): Promise<void> {
    const start = performance.now();
    // `active`: a byte moved since the timer last looked (cheaper per chunk than reading
    // the clock; the idle time is then known to within the timer's period, ≤ idleMs / 4)
    let last = start, active = false, headDone = false, cut = false;
    let upstream: Deno.TcpConn | undefined;
    const stop = (why?: "header" | "idle") => {
      if (cut) return;
      cut = true;
      if (why === "header") this.stats.headerTimeouts++;
      if (why === "idle") this.stats.idleTimeouts++;
      closeQuietly(client);
      if (upstream) closeQuietly(upstream);
    };
    const timer = setInterval(() => {
      const now = performance.now();
      if (active) {
        active = false;
        last = now;
      }
      if (!headDone && now - start > this.#limits.headerMs) stop("header");
      else if (now - last > this.#limits.idleMs) stop("idle");
    }, Math.max(50, Math.min(1000, this.#limits.headerMs / 4, this.#limits.idleMs / 4)));
    try {
      if (this.#tls) await (client as Deno.TlsConn).handshake();
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#upstreamPort });
      // a relay passes on what it got at once: no Nagle delay on either side (Deno leaves
      // it on for accepted and connected sockets)
      upstream.setNoDelay(true);
      if ("setNoDelay" in client) (client as Deno.TcpConn).setNoDelay(true);
      const port = (upstream.localAddr as Deno.NetAddr).port;
      this.#byPort.set(port, remote);
      try {
        // how much of CRLFCRLF ended the head bytes seen so far, to find it across reads
        let matched = 0;
        const up = pump(client, upstream, (chunk) => {
          active = true;
          if (!headDone) {
            matched = scanHeadEnd(chunk, matched);
            headDone = matched === 4;
          }
        });
        const down = pump(upstream, client, () => {
          active = true;
        });
        await Promise.all([up, down]);
      } finally {
        this.#byPort.delete(port);
      }
    } finally {
      clearInterval(timer);
      stop();
    }
  }
}

/** Copy `from` to `to` until end of stream, then half-close `to`. */
async function pump(from: Deno.Conn, to: Deno.Conn, seen: (b: Uint8Array) => void): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buf);
      if (n === null) break;
      const chunk = buf.subarray(0, n);
      seen(chunk);
      let off = 0;
      while (off < n) off += await to.write(chunk.subarray(off));
    }
    await to.closeWrite().catch(() => {});
  } catch {
    // either side went away: the caller closes both
    closeQuietly(from);
    closeQuietly(to);
  }
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* closed */ }
}

function isLoopback(ip: string): boolean {
  return ip.startsWith("127.") || ip === "::1" || ip.startsWith("::ffff:127.");
}
