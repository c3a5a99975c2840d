/**
 * The peer link: each node of the pair reads the other's health over HTTP on its own
 * listener (`ha.peerLink.port`, routes under `/peer/v1/`; not the web app, so user
 * tokens never reach it and it is not public).
 *
 * Mutual authentication by the pair secret (`ha.peerLink.secret`): a request carries
 * `x-kw-peer-pair`, `-node`, `-time`, `-nonce` and `-auth` = HMAC-SHA256(secret,
 * `method \n path \n time \n nonce \n pair \n node \n sha256(body)`); the server refuses
 * a time more than ±30 s off its clock, a nonce it saw within that window (replay), a
 * wrong pair id or signature. The answer is signed too (`x-kw-peer-auth` =
 * HMAC(secret, `answer \n nonce \n sha256(body)`), bound to the request's nonce, so a
 * recorded answer cannot be replayed to the client. Stand-in for certificates made at
 * pairing time; no TLS yet (docs/ha.md, Not built yet).
 *
 * Other modules mount their routes on the link ({@link PeerMount}; replication mounts
 * `/peer/v1/repl`): every request to them passes the same authentication, and every
 * answer is signed the same way. A streamed request body (a replication snapshot) is
 * not hashed whole before it is handed on: the request says `x-kw-peer-body: stream`,
 * the signature covers its `x-kw-peer-meta` header instead, and only paths a mount
 * declares `streamed` accept it (the route checks the stream against the meta itself).
 *
 * A duplex request (`x-kw-peer-body: stream` and `x-kw-peer-duplex: 1`, paths a mount declares
 * in `duplex`) is one
 * long-lived request whose body and answer are both streams of messages (replication's
 * frames one way, acks the other). Its opening is signed like any request (the signature
 * covers `x-kw-peer-meta`), the answer's headers are signed (status bound to the nonce),
 * and every message in either direction is
 * `u32 length | payload | HMAC-SHA256(key, direction | u64 counter | payload)` with
 * `key = HMAC(secret, "duplex\n" + nonce)`: a message cannot be forged, replayed,
 * reordered, reflected or moved to another request, and a request cut inside a message
 * delivers nothing of it. The mount sees (and answers with) one stream chunk per message.
 * {@link createPeerFetch} is the client side of all of this.
 *
 * {@link PeerMonitor} polls the peer and turns what it learns into `ha.peer_lost`,
 * `ha.peer_degraded`, `ha.peer_recovered`, `ha.peer_version`; an answer that is not
 * signed, does not parse, names another pair or an incompatible protocol is refused,
 * counted and journalled (`ha.peer_refused`), and never acted on (it proves nothing, so
 * it counts as no answer).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import type { Clock, TimerId } from "../module.ts";

/** The peer protocol's version; a peer with another one is refused (incompatible). */
export const PEER_PROTOCOL = 1;
/** Allowed clock difference between the nodes (and the nonce cache's window). */
export const PEER_MAX_SKEW_MS = 30_000;
/** Path of the health document. */
export const PEER_HEALTH_PATH = "/peer/v1/health";

const H = {
  pair: "x-kw-peer-pair",
  node: "x-kw-peer-node",
  time: "x-kw-peer-time",
  nonce: "x-kw-peer-nonce",
  auth: "x-kw-peer-auth",
  body: "x-kw-peer-body",
  meta: "x-kw-peer-meta",
  duplex: "x-kw-peer-duplex",
} as const;

/** Header a streamed request carries its description in (signed instead of the body). */
export const PEER_META_HEADER = H.meta;
/** Header marking a streamed request body (`stream`). */
export const PEER_BODY_HEADER = H.body;
/**
 * Header (`1`, with `x-kw-peer-body: stream`) opening a duplex request. A node of a version
 * without duplex requests refuses it at once (401, "takes no streamed body") instead of
 * waiting for a body that never ends.
 */
export const PEER_DUPLEX_HEADER = H.duplex;

/** What is signed for a streamed body: its meta header, never the bytes. */
function streamDigestInput(meta: string): string {
  return `stream\n${meta}`;
}

/** What is signed when a duplex request opens: its meta header. */
function duplexDigestInput(meta: string): string {
  return `duplex\n${meta}`;
}

/** The largest message of a duplex request (a bound on what a peer can make this node buffer). */
export const PEER_DUPLEX_MAX_MESSAGE = 257 * 1024 * 1024;

/** Direction byte of a duplex message's MAC: client → server, server → client. */
const TO_SERVER = 0, TO_CLIENT = 1;

/**
 * HMAC-SHA256 under one key (RFC 2104), its padded key blocks computed once: two plain
 * SHA-256 runs per message, several times cheaper here than a `createHmac` per message.
 */
interface MessageKey {
  inner: Uint8Array;
  outer: Uint8Array;
}

function duplexKey(secret: string, nonce: string): MessageKey {
  const k = createHmac("sha256", secret).update(`duplex\n${nonce}`).digest();
  const inner = new Uint8Array(64).fill(0x36), outer = new Uint8Array(64).fill(0x5c);
  for (let i = 0; i < k.length; i++) inner[i] ^= k[i], outer[i] ^= k[i];
  return { inner, outer };
}

function messageMac(key: MessageKey, dir: number, n: bigint, payload: Uint8Array): Uint8Array {
  const head = new Uint8Array(9);
  head[0] = dir;
  new DataView(head.buffer).setBigUint64(1, n);
  const ih = createHash("sha256").update(key.inner).update(head).update(payload).digest();
  return createHash("sha256").update(key.outer).update(ih).digest();
}

/** Each chunk written is one message: it leaves as `length | payload | MAC`. */
function sealMessages(key: MessageKey, dir: number): TransformStream<Uint8Array, Uint8Array> {
  let n = 0n;
  return new TransformStream({
    transform(payload, ctl) {
      const out = new Uint8Array(4 + payload.length + 32);
      new DataView(out.buffer).setUint32(0, payload.length);
      out.set(payload, 4);
      out.set(messageMac(key, dir, n++, payload), 4 + payload.length);
      ctl.enqueue(out);
    },
  });
}

/**
 * Bytes as they arrive → one chunk per verified message. Errors the stream on a bad MAC,
 * a message over the bound, or bytes that end inside a message (nothing of it is passed).
 */
function openMessages(key: MessageKey, dir: number): TransformStream<Uint8Array, Uint8Array> {
  let n = 0n;
  const parts: Uint8Array[] = [];
  let have = 0;
  const take = (len: number): Uint8Array => {
    if (len === 0) return new Uint8Array(0);
    const out = parts[0].length >= len ? null : new Uint8Array(len);
    if (!out) {
      const head = parts[0].subarray(0, len);
      if (parts[0].length === len) parts.shift();
      else parts[0] = parts[0].subarray(len);
      have -= len;
      return head;
    }
    let o = 0;
    while (o < len) {
      const p = parts[0];
      const k = Math.min(p.length, len - o);
      out.set(p.subarray(0, k), o);
      o += k;
      if (k === p.length) parts.shift();
      else parts[0] = p.subarray(k);
    }
    have -= len;
    return out;
  };
  const peek4 = (): Uint8Array => {
    const out = new Uint8Array(4);
    let o = 0;
    for (const p of parts) {
      const k = Math.min(p.length, 4 - o);
      out.set(p.subarray(0, k), o);
      if ((o += k) === 4) break;
    }
    return out;
  };
  return new TransformStream({
    transform(chunk, ctl) {
      if (chunk.length) parts.push(chunk), have += chunk.length;
      while (have >= 4) {
        const h = parts[0].length >= 4 ? parts[0] : peek4();
        const len = new DataView(h.buffer, h.byteOffset, 4).getUint32(0);
        if (len > PEER_DUPLEX_MAX_MESSAGE) {
          throw new Error(`duplex message of ${len} bytes is over the bound`);
        }
        if (have < 4 + len + 32) return;
        take(4);
        const payload = take(len);
        const mac = take(32);
        if (!timingSafeEqual(messageMac(key, dir, n++, payload), mac)) {
          throw new Error("duplex message not signed with the pair secret");
        }
        ctl.enqueue(payload);
      }
    },
    flush() {
      if (have) throw new Error(`duplex request ended inside a message (${have} bytes)`);
    },
  });
}

/** Routes another module serves on the peer link (behind its authentication). */
export interface PeerMount {
  /** Path prefix, e.g. `/peer/v1/repl`. */
  prefix: string;
  /** Handles a request whose path starts with `prefix` (full path kept). */
  fetch: (req: Request) => Response | Promise<Response>;
  /** Full paths that take a streamed body (see the module doc). */
  streamed?: string[];
  /** Full paths that open a duplex request (see the module doc). */
  duplex?: string[];
}

function sha(b: Uint8Array | string): string {
  return createHash("sha256").update(b).digest("hex");
}

function hmac(secret: string, text: string): string {
  return createHmac("sha256", secret).update(text).digest("hex");
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The request signature (see the module doc). */
export function signPeerRequest(
  secret: string,
  r: { method: string; path: string; time: string; nonce: string; pair: string; node: string },
  body: Uint8Array | string = "",
): string {
  return hmac(
    secret,
    `${r.method.toUpperCase()}\n${r.path}\n${r.time}\n${r.nonce}\n${r.pair}\n${r.node}\n${
      sha(body)
    }`,
  );
}

/** The answer's signature, bound to the request's nonce. */
export function signPeerAnswer(secret: string, nonce: string, body: string | Uint8Array): string {
  return hmac(secret, `answer\n${nonce}\n${sha(body)}`);
}

/** Nonces seen within the skew window (replay protection); bounded. */
export class NonceCache {
  #seen = new Map<string, number>();
  #max: number;
  /** Build one holding at most `max` nonces. */
  constructor(max = 10_000) {
    this.#max = max;
  }
  /** false when `nonce` was seen within the window (a replay); records it otherwise. */
  add(nonce: string, now: number): boolean {
    for (const [n, t] of this.#seen) {
      if (now - t <= 2 * PEER_MAX_SKEW_MS && this.#seen.size <= this.#max) break;
      this.#seen.delete(n);
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, now);
    return true;
  }
}

/** One part of a node's health as the peer reports it. */
export const peerPartSchema = z.lazy(() =>
  z.strictObject({
    ok: z.boolean(),
    essential: z.boolean(),
    detail: z.string().max(500).optional(),
  })
);

/** The health document a node answers on GET /peer/v1/health. */
export const peerHealthSchema = z.lazy(() =>
  z.strictObject({
    protocol: z.number().int(),
    pairId: z.string().min(1).max(128),
    node: z.string().min(1).max(64),
    version: z.string().min(1).max(64),
    role: z.string().min(1).max(32),
    since: z.string().max(64).nullable(),
    takeoverPending: z.boolean(),
    /** The node hands its active role over (ha failover, maintenance): a held peer takes over. */
    handingOver: z.boolean(),
    health: z.strictObject({
      ok: z.boolean(),
      parts: z.record(z.string().max(64), peerPartSchema),
    }),
  })
);

/** A node's health document. */
export type PeerHealth = z.infer<typeof peerHealthSchema>;

/** Why a peer message was refused. */
export type PeerRefusal =
  | "unauthenticated"
  | "stale"
  | "replay"
  | "other_pair"
  | "malformed"
  | "incompatible";

/** Options of {@link peerRoutes}. */
export interface PeerServerOptions {
  secret: string;
  pairId: string;
  clock: Clock;
  /** This node's document. */
  health: () => PeerHealth;
  /** A refused request (counted and journalled by the caller). */
  onRefused: (reason: PeerRefusal, detail: string) => void;
  /** Routes of other modules (read per request: mounts added later are served). */
  mounts?: readonly PeerMount[];
  /**
   * Pairing (`POST /peer/v1/pair`, the one route without the HMAC: the pairing code
   * authenticates it); answers or throws a KeepwireError.
   */
  pair?: (body: unknown) => unknown | Promise<unknown>;
  /**
   * A node that left the pair: its signed notice for `GET /peer/v1/unpaired?nonce=`
   * (unauthenticated like pairing: the notice carries its own MAC), or null.
   */
  unpaired?: (nonce: string) => unknown | null;
}

/** Path of the unpaired notice (see {@link PeerServerOptions.unpaired}). */
export const PEER_UNPAIRED_PATH = "/peer/v1/unpaired";

/** Path of the pairing exchange. */
export const PEER_PAIR_PATH = "/peer/v1/pair";

/** The peer link's routes (its own listener serves them). */
export function peerRoutes(o: PeerServerOptions): Hono {
  const nonces = new NonceCache();
  const app = new Hono();
  app.post(PEER_PAIR_PATH, async (c) => {
    if (!o.pair) return c.json({ error: { code: "not_found", message: "no pairing here" } }, 404);
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return c.json({ error: { code: "pair_malformed", message: "not JSON" } }, 400);
    }
    try {
      return c.json(await o.pair(body) as Record<string, unknown>);
    } catch (e) {
      const err = e as { status?: number; code?: string; message?: string };
      if (typeof err.status !== "number" || typeof err.code !== "string") throw e;
      o.onRefused("unauthenticated", `pairing refused: ${err.message}`);
      return c.json(
        { error: { code: err.code, message: err.message } },
        err.status as 400 | 403 | 409 | 410,
      );
    }
  });
  app.get(PEER_UNPAIRED_PATH, (c) => {
    const nonce = c.req.query("nonce") ?? "";
    const n = /^[0-9a-f]{32}$/.test(nonce) ? o.unpaired?.(nonce) ?? null : null;
    if (!n) return c.json({ error: { code: "not_found", message: "no unpaired notice" } }, 404);
    return c.json(n as Record<string, unknown>);
  });
  app.use("*", async (c, next) => {
    const h = (k: string) => c.req.header(k) ?? "";
    const refuse = (reason: PeerRefusal, detail: string, status: 401 | 403) => {
      o.onRefused(reason, detail);
      return c.json({ error: { code: `peer_${reason}`, message: detail } }, status);
    };
    const time = h(H.time);
    const nonce = h(H.nonce);
    const auth = h(H.auth);
    const pair = h(H.pair);
    const node = h(H.node);
    if (!/^\d{1,16}$/.test(time) || !/^[A-Za-z0-9_-]{16,64}$/.test(nonce) || !auth) {
      return refuse("unauthenticated", "missing or malformed authentication headers", 401);
    }
    const path = new URL(c.req.url).pathname;
    const isDuplex = h(H.body) === "stream" && h(H.duplex) === "1";
    const streamed = h(H.body) === "stream" && !isDuplex;
    if (streamed && !(o.mounts ?? []).some((m) => m.streamed?.includes(path))) {
      return refuse("malformed", `${path} takes no streamed body`, 401);
    }
    const duplexMount = isDuplex
      ? (o.mounts ?? []).find((m) => m.duplex?.includes(path))
      : undefined;
    if (isDuplex && !duplexMount) {
      // worded as a node without duplex requests words it: the client falls back the same way
      return refuse(
        "malformed",
        `${path} opens no duplex request (it takes no streamed body)`,
        401,
      );
    }
    const body = streamed
      ? streamDigestInput(h(H.meta))
      : isDuplex
      ? duplexDigestInput(h(H.meta))
      : new Uint8Array(await c.req.arrayBuffer());
    const want = signPeerRequest(o.secret, {
      method: c.req.method,
      path,
      time,
      nonce,
      pair,
      node,
    }, body);
    if (!sameHex(auth, want)) {
      return refuse("unauthenticated", `bad signature (from node "${node.slice(0, 64)}")`, 401);
    }
    if (pair !== o.pairId) {
      return refuse("other_pair", `pair "${pair.slice(0, 128)}" is not this pair`, 403);
    }
    const now = o.clock.now();
    if (Math.abs(now - Number(time)) > PEER_MAX_SKEW_MS) {
      return refuse("stale", `time ${time} is more than 30 s off this node's clock`, 401);
    }
    if (!nonces.add(nonce, now)) return refuse("replay", `nonce ${nonce} seen before`, 401);
    if (duplexMount) {
      const raw = c.req.raw;
      const key = duplexKey(o.secret, nonce);
      const res = await duplexMount.fetch(
        new Request(raw.url, {
          method: raw.method,
          headers: raw.headers,
          body: raw.body?.pipeThrough(openMessages(key, TO_SERVER)),
          // @ts-ignore: a streamed request body needs duplex "half" (not in the DOM types)
          duplex: "half",
        }),
      );
      const headers = new Headers(res.headers);
      if (res.status !== 200 || !res.body) {
        const bytes = new Uint8Array(await res.arrayBuffer());
        headers.set(H.auth, signPeerAnswer(o.secret, nonce, bytes));
        return new Response(bytes, { status: res.status, headers });
      }
      headers.set(H.auth, signPeerAnswer(o.secret, nonce, duplexDigestInput("200")));
      return new Response(res.body.pipeThrough(sealMessages(key, TO_CLIENT)), { headers });
    }
    await next();
    // every answer is signed, bound to the request's nonce
    const res = c.res;
    const bytes = new Uint8Array(await res.arrayBuffer());
    const headers = new Headers(res.headers);
    headers.set(H.auth, signPeerAnswer(o.secret, nonce, bytes));
    c.res = undefined;
    c.res = new Response(bytes, { status: res.status, headers });
  });
  app.get(PEER_HEALTH_PATH, (c) => {
    const body = JSON.stringify(o.health());
    return c.body(body, 200, { "content-type": "application/json" });
  });
  app.all("*", async (c) => {
    const path = new URL(c.req.url).pathname;
    const m = (o.mounts ?? []).find((m) => path === m.prefix || path.startsWith(m.prefix + "/"));
    if (!m) return c.json({ error: { code: "not_found", message: `no route ${path}` } }, 404);
    const raw = c.req.raw;
    if (c.req.header(H.body) === "stream") return await m.fetch(raw);
    // the body was read for the signature: hand on a request that carries it again
    const body = ["GET", "HEAD"].includes(raw.method) ? undefined : await c.req.arrayBuffer();
    return await m.fetch(new Request(raw.url, { method: raw.method, headers: raw.headers, body }));
  });
  return app;
}

/** TLS material of a paired peer link: this node's certificate and the peer's (pinned). */
export interface PeerTls {
  /** This node's certificate (PEM). */
  cert: string;
  /** Its private key (PEM, PKCS#8). */
  key: string;
  /** The peer's certificate (PEM): the only one accepted, as client and as server. */
  peerCert: string;
  /**
   * The peer's next certificate during a rotation (`ha rotate-cert` on the peer): accepted
   * alongside `peerCert` until the peer confirms it switched.
   */
  peerCertNext?: string;
}

/** The peer certificates a TLS identity accepts (the pinned one, the next during a rotation). */
function peerCerts(tls: PeerTls): string[] {
  return tls.peerCertNext ? [tls.peerCert, tls.peerCertNext] : [tls.peerCert];
}

/**
 * Serve `fetch` over HTTPS with mutual authentication: the TLS handshake requires a
 * client certificate and accepts only `tls.peerCert` (pinned; it is not a CA, so
 * nothing chains to it). Deno.serve cannot ask for client certificates; node:https can.
 * Request and answer bodies are streamed.
 */
export async function servePeerTls(
  listen: { hostname: string; port: number },
  tls: PeerTls,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<{
  addr: { hostname: string; port: number };
  shutdown(): Promise<void>;
  /** Switch the identity or the accepted peers (new handshakes; open connections stay). */
  update(tls: PeerTls): void;
}> {
  const https = await import("node:https");
  const { Readable } = await import("node:stream");
  let pinned = new Set(peerCerts(tls).map(certSha256));
  const server = https.createServer({
    key: tls.key,
    cert: tls.cert,
    ca: peerCerts(tls),
    requestCert: true,
    rejectUnauthorized: true,
  }, async (req, res) => {
    try {
      const sock = req.socket as unknown as {
        getPeerCertificate?: () => { fingerprint256?: string };
      };
      const fp = (sock.getPeerCertificate?.().fingerprint256 ?? "").replaceAll(":", "")
        .toLowerCase();
      if (!pinned.has(fp)) {
        res.writeHead(403, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { code: "peer_unpinned", message: "not the pinned peer" } }),
        );
        return;
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
      }
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const r = await handler(
        new Request(`https://${listen.hostname}${req.url ?? "/"}`, {
          method: req.method,
          headers,
          body: hasBody ? Readable.toWeb(req) as unknown as ReadableStream<Uint8Array> : undefined,
          // @ts-ignore: a streamed request body needs duplex "half" (not in the DOM types)
          duplex: "half",
        }),
      );
      res.writeHead(r.status, Object.fromEntries(r.headers));
      res.flushHeaders();
      if (r.body) {
        for await (const chunk of r.body) {
          // back-pressure: a peer that does not read is not buffered without bound
          if (!res.write(chunk)) await new Promise((ok) => res.once("drain", ok));
          if (res.destroyed) break;
        }
      }
      res.end();
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "internal", message: String(e).slice(0, 200) } }));
    }
  });
  // small messages (a replication ack) leave at once, not when the last one was acked
  server.on("secureConnection", (sock: { setNoDelay?: (on: boolean) => void }) => {
    sock.setNoDelay?.(true);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.hostname, () => resolve());
  });
  const a = server.address() as { address: string; port: number };
  return {
    addr: { hostname: a.address, port: a.port },
    update: (t) => {
      server.setSecureContext({ key: t.key, cert: t.cert, ca: peerCerts(t) });
      pinned = new Set(peerCerts(t).map(certSha256));
    },
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/**
 * A fetch over HTTPS that trusts only the peer's certificate and presents this node's
 * (mutual authentication); `update()` switches to another identity or accepted peer
 * certificates for the next requests (rotation); `close()` releases its connections.
 */
export function peerTlsFetch(
  tls: PeerTls,
): { fetch: typeof fetch; close(): void; update(tls: PeerTls): void } {
  const make = (t: PeerTls) =>
    Deno.createHttpClient({ caCerts: peerCerts(t), cert: t.cert, key: t.key });
  let client = make(tls);
  const old = new Map<Deno.HttpClient, ReturnType<typeof setTimeout>>();
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    // requests in flight keep the client they started on; it is closed a minute later
    update: (t) => {
      const prev = client;
      client = make(t);
      old.set(prev, setTimeout(() => old.delete(prev) && prev.close(), 60_000));
    },
    close: () => {
      client.close();
      for (const [c, timer] of old) clearTimeout(timer), c.close();
      old.clear();
    },
  };
}

function certSha256(pem: string): string {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return createHash("sha256").update(Buffer.from(b64, "base64")).digest("hex");
}

/** Options of {@link createPeerFetch}. */
export interface PeerFetchOptions {
  /** The pair secret. */
  secret: string;
  /** The pair id. */
  pairId: string;
  /** This node's id. */
  node: string;
  /** Time for the request stamp. */
  clock: Clock;
  /** The underlying fetch (default: global fetch). */
  fetch?: typeof fetch;
}

/**
 * Read a peer route's answer: its JSON (null when it is not JSON) and, when it is not ok,
 * the refusal for a message: the `{error: {message}}` of the body, else the body's text,
 * at most 300 characters (null when ok).
 */
export async function peerAnswer(
  res: Response,
): Promise<{ json: unknown; refusal: string | null }> {
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  if (res.ok) return { json, refusal: null };
  const m = (json as { error?: { message?: unknown } } | null)?.error?.message;
  return { json, refusal: (typeof m === "string" ? m : text).slice(0, 300) };
}

/**
 * A `fetch` that authenticates to the peer link like {@link PeerMonitor} does and
 * refuses (throws) an answer that is not signed with the pair secret for this request.
 * A body given as a stream must come with `x-kw-peer-body: stream` and its
 * `x-kw-peer-meta`; other bodies must be bytes or a string.
 *
 * A duplex request (`x-kw-peer-body: stream`, `x-kw-peer-duplex: 1`, body a stream whose every
 * chunk is one message):
 * the messages are sealed on the way out, and a 200 answer's body is the peer's
 * messages, verified, one chunk each (it errors at the first that is not). The answer
 * resolves as soon as its headers arrive, while the body still flows.
 */
export function createPeerFetch(o: PeerFetchOptions): typeof fetch {
  const base = o.fetch ?? fetch;
  return async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init.method ?? "GET").toUpperCase();
    const headers = new Headers(init.headers);
    let digestInput: Uint8Array | string;
    const isDuplex = headers.get(H.body) === "stream" && headers.get(H.duplex) === "1";
    if (isDuplex && !(init.body instanceof ReadableStream)) {
      throw new TypeError("peer fetch: a duplex request's body must be a stream of messages");
    }
    if (headers.get(H.body) === "stream" && !isDuplex) {
      digestInput = streamDigestInput(headers.get(H.meta) ?? "");
    } else if (isDuplex) digestInput = duplexDigestInput(headers.get(H.meta) ?? "");
    else if (init.body === undefined || init.body === null) digestInput = "";
    else if (typeof init.body === "string") digestInput = init.body;
    else if (init.body instanceof Uint8Array) digestInput = init.body;
    else throw new TypeError("peer fetch: body must be bytes, a string, or a declared stream");
    const time = String(o.clock.now());
    const nonce = crypto.randomUUID().replaceAll("-", "");
    headers.set(H.time, time);
    headers.set(H.nonce, nonce);
    headers.set(H.pair, o.pairId);
    headers.set(H.node, o.node);
    headers.set(
      H.auth,
      signPeerRequest(o.secret, {
        method,
        path: url.pathname,
        time,
        nonce,
        pair: o.pairId,
        node: o.node,
      }, digestInput),
    );
    let res: Response;
    if (isDuplex) {
      const key = duplexKey(o.secret, nonce);
      const body = (init.body as ReadableStream<Uint8Array>).pipeThrough(
        sealMessages(key, TO_SERVER),
      );
      // @ts-ignore: a streamed request body needs duplex "half" (not in the DOM types)
      res = await base(url, { ...init, method, headers, body, duplex: "half" });
      if (res.status === 200 && res.body) {
        const want = signPeerAnswer(o.secret, nonce, duplexDigestInput("200"));
        if (!sameHex(res.headers.get(H.auth) ?? "", want)) {
          await res.body.cancel().catch(() => {});
          throw new Error(`duplex answer from ${url.host} not signed with the pair secret`);
        }
        return new Response(res.body.pipeThrough(openMessages(key, TO_CLIENT)), {
          status: 200,
          headers: res.headers,
        });
      }
    } else res = await base(url, { ...init, method, headers });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (res.status === 401 || res.status === 403) {
      throw new Error(
        `the peer refused this node (${res.status}: ${
          new TextDecoder().decode(bytes).slice(0, 200)
        })`,
      );
    }
    if (!sameHex(res.headers.get(H.auth) ?? "", signPeerAnswer(o.secret, nonce, bytes))) {
      throw new Error(
        `answer from ${url.host} not signed with the pair secret (HTTP ${res.status})`,
      );
    }
    return new Response(bytes, { status: res.status, headers: res.headers });
  };
}

/** What the monitor knows about the peer. */
export interface PeerView {
  /** The peer's id (configured, then as reported). */
  id: string | null;
  /** `unknown` until the first good answer; `unreachable` once lost. */
  role: string;
  /** A good answer arrived within the last `lostAfter` polls. */
  reachable: boolean;
  /** The last good answer (ISO), or null. */
  lastSeenAt: string | null;
  /** The peer's keepwire version, or null. */
  version: string | null;
  /** The peer's unhealthy parts (name: detail). */
  degraded: string[];
  /** The peer's own takeover-pending flag (manual failover). */
  takeoverPending: boolean;
  /** The peer hands its active role over (ha failover or maintenance on it). */
  handingOver: boolean;
  /** Why the last poll failed, or null. */
  lastError: string | null;
  /** Answers refused (not signed, malformed, other pair, incompatible). */
  refused: number;
  /** Requests from the peer this node refused. */
  refusedInbound: number;
}

/** Options of {@link PeerMonitor}. */
export interface PeerMonitorOptions {
  clock: Clock;
  /** Full URL of the peer's health document. */
  url: string;
  secret: string;
  pairId: string;
  /** This node's id (sent as x-kw-peer-node). */
  node: string;
  /** The configured peer id, if any. */
  peerId: string | null;
  /** This node's version (a different peer version is reported once). */
  version: string;
  intervalMs: number;
  timeoutMs: number;
  /** Failed polls in a row before the peer is lost. */
  lostAfter: number;
  fetch?: typeof fetch;
  /** Events (the module publishes them). */
  on: {
    lost(reason: string): void;
    degraded(parts: string[]): void;
    recovered(from: "lost" | "degraded"): void;
    version(peerVersion: string): void;
    refused(reason: PeerRefusal, detail: string, count: number): void;
    /** Every good answer (after the events above). */
    seen?(h: PeerHealth): void;
  };
}

/** Polls the peer's health and reports changes. */
export class PeerMonitor {
  #o: PeerMonitorOptions;
  #timer: TimerId | undefined;
  #fails = 0;
  #lost = false;
  #degraded: string[] = [];
  #versionSeen: string | null = null;
  #inFlight: Promise<void> | null = null;
  #stopped = false;
  #view: PeerView;

  /** Build one (not polling until start()). */
  constructor(o: PeerMonitorOptions) {
    this.#o = o;
    this.#view = {
      id: o.peerId,
      role: "unknown",
      reachable: false,
      lastSeenAt: null,
      version: null,
      degraded: [],
      takeoverPending: false,
      handingOver: false,
      lastError: null,
      refused: 0,
      refusedInbound: 0,
    };
  }

  /** The current view. */
  get view(): PeerView {
    return { ...this.#view, degraded: [...this.#view.degraded] };
  }

  /** Is the peer lost (lostAfter failed polls in a row)? */
  get lost(): boolean {
    return this.#lost;
  }

  /** Count a request from the peer this node refused. */
  countInbound(): void {
    this.#view.refusedInbound++;
  }

  /** Start polling (first poll at once). */
  start(): void {
    this.#stopped = false;
    this.#timer = this.#o.clock.setInterval(() => void this.poll(), this.#o.intervalMs);
    void this.poll();
  }

  /** Stop polling. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A fresh poll after the one in flight, if any (tests). */
  async pollNow(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
    await this.poll();
  }

  /** One poll (the timer calls it); joins the one in flight. */
  poll(): Promise<void> {
    // one request at a time: a poll while one is in flight waits for that one
    this.#inFlight ??= (async () => {
      try {
        const r = await this.#ask();
        if (this.#stopped) return;
        if (r.ok) this.#good(r.ok);
        else this.#bad(r.error);
      } finally {
        this.#inFlight = null;
      }
    })();
    return this.#inFlight;
  }

  async #ask(): Promise<{ ok: PeerHealth; error?: undefined } | { ok?: undefined; error: string }> {
    const o = this.#o;
    const url = new URL(o.url);
    const time = String(o.clock.now());
    const nonce = crypto.randomUUID().replaceAll("-", "");
    const auth = signPeerRequest(o.secret, {
      method: "GET",
      path: url.pathname,
      time,
      nonce,
      pair: o.pairId,
      node: o.node,
    });
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), o.timeoutMs);
    let text: string;
    let res: Response;
    try {
      res = await (o.fetch ?? fetch)(url, {
        signal: ac.signal,
        headers: {
          [H.time]: time,
          [H.nonce]: nonce,
          [H.pair]: o.pairId,
          [H.node]: o.node,
          [H.auth]: auth,
        },
      });
      text = await res.text();
    } catch (e) {
      const msg = ac.signal.aborted
        ? `no answer within ${o.timeoutMs} ms`
        : (e as Error).message.split("\n")[0];
      return { error: msg.slice(0, 300) };
    } finally {
      clearTimeout(t);
    }
    if (res.status === 401 || res.status === 403) {
      return { error: `the peer refused this node (${res.status}: ${text.slice(0, 200)})` };
    }
    if (res.status !== 200) return { error: `HTTP ${res.status}` };
    const sig = res.headers.get(H.auth) ?? "";
    if (!sameHex(sig, signPeerAnswer(o.secret, nonce, text))) {
      return this.#refuse("unauthenticated", "answer not signed with the pair secret");
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.#refuse("malformed", "answer is not JSON");
    }
    const proto = (json as { protocol?: unknown } | null)?.protocol;
    if (typeof proto === "number" && proto !== PEER_PROTOCOL) {
      return this.#refuse(
        "incompatible",
        `peer protocol ${proto}, this node speaks ${PEER_PROTOCOL}`,
      );
    }
    const p = peerHealthSchema.safeParse(json);
    if (!p.success) {
      const i = p.error.issues[0];
      return this.#refuse("malformed", `${i.path.join(".") || "(root)"}: ${i.message}`);
    }
    if (p.data.pairId !== o.pairId) {
      return this.#refuse("other_pair", `answer from pair "${p.data.pairId}"`);
    }
    return { ok: p.data };
  }

  #refuse(reason: PeerRefusal, detail: string): { error: string } {
    this.#view.refused++;
    this.#o.on.refused(reason, detail, this.#view.refused);
    return { error: `refused (${reason}): ${detail}` };
  }

  #good(h: PeerHealth): void {
    const v = this.#view;
    this.#fails = 0;
    v.reachable = true;
    v.lastError = null;
    v.lastSeenAt = new Date(this.#o.clock.now()).toISOString();
    v.id = h.node;
    v.role = h.role;
    v.version = h.version;
    v.takeoverPending = h.takeoverPending;
    v.handingOver = h.handingOver;
    if (this.#lost) {
      this.#lost = false;
      this.#o.on.recovered("lost");
    }
    if (h.version !== this.#o.version && this.#versionSeen !== h.version) {
      this.#o.on.version(h.version);
    }
    this.#versionSeen = h.version;
    const parts = Object.entries(h.health.parts).filter(([, p]) => !p.ok)
      .map(([n, p]) => `${n}: ${p.detail ?? "not ok"}`).sort();
    const changed = parts.join("\n") !== this.#degraded.join("\n");
    if (changed && parts.length > 0) this.#o.on.degraded(parts);
    else if (changed) this.#o.on.recovered("degraded");
    this.#degraded = parts;
    v.degraded = parts;
    this.#o.on.seen?.(h);
  }

  #bad(error: string): void {
    this.#fails++;
    this.#view.lastError = error;
    if (!this.#lost && this.#fails >= this.#o.lostAfter) {
      this.#lost = true;
      this.#view.reachable = false;
      this.#view.role = "unreachable";
      this.#o.on.lost(error);
    }
  }
}
