/**
 * Replication over HTTP: {@link HttpTransport} (the primary's side, over `fetch`) and
 * {@link replRoutes} (a Hono app the standby mounts, e.g. under `/api/repl` on the HA
 * peer link).
 *
 * Authentication here is a stand-in until pairing credentials exist: every request
 * carries `x-kw-repl-time` and `x-kw-repl-auth`, an HMAC-SHA256 with the pair's shared
 * secret over `time \n path \n sha256(body or snapshot meta)`; requests more than
 * `maxSkewMs` off the receiver's clock are refused (a replay window, not a nonce). The
 * peer link is meant to add HTTPS with mutual authentication around it.
 *
 * Routes: `POST /frames` (octet-stream body of frames back to back → {@link ReplAck}),
 * `POST /snapshot` (streamed octet-stream body, meta in `x-kw-repl-meta` as base64url
 * JSON → {@link ReplAck}).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { MAX_FRAME_BYTES } from "./frame.ts";
import {
  type ReplAck,
  type ReplReceiver,
  type ReplTransport,
  type SnapshotMeta,
  TransportDownError,
} from "./transport.ts";

const ackSchema = z.object({
  ok: z.boolean(),
  epoch: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  reason: z.enum([
    "corrupt",
    "truncated",
    "other_pair",
    "epoch_mismatch",
    "stale_epoch",
    "gap",
    "schema_mismatch",
    "conflict",
    "snapshot_checksum",
    "not_standby",
    "unauthorized",
  ]).optional(),
  message: z.string().max(4000).optional(),
  needSnapshot: z.boolean().optional(),
});

const metaSchema = z.strictObject({
  pairId: z.string().min(1).max(128),
  epoch: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  schemaVersion: z.string().min(1).max(200),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative().max(64 * 1024 ** 3),
  history: z.array(z.strictObject({
    epoch: z.number().int().nonnegative(),
    startSeq: z.number().int().nonnegative(),
  })).max(100_000),
});

const AUTH = "x-kw-repl-auth";
const TIME = "x-kw-repl-time";
const META = "x-kw-repl-meta";

function sign(secret: string, time: string, path: string, digest: string): string {
  return createHmac("sha256", secret).update(`${time}\n${path}\n${digest}`).digest("hex");
}

function sha(b: Uint8Array | string): string {
  return createHash("sha256").update(b).digest("hex");
}

function b64url(s: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s))).replaceAll("+", "-")
    .replaceAll("/", "_").replaceAll("=", "");
}

function unb64url(s: string): string {
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** Options of {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** Base URL of the standby's mounted routes, e.g. `https://10.0.0.2:8443/api/repl`. */
  baseUrl: string;
  /** The pair's shared secret (stand-in for pairing credentials). */
  secret: string;
  /** fetch to use (the peer link's client with its TLS settings; default global fetch). */
  fetch?: typeof fetch;
  /** Injected time (ms). */
  now?: () => number;
}

/** The primary's side over HTTP. */
export class HttpTransport implements ReplTransport {
  readonly #o: Required<HttpTransportOptions>;

  /** Build one. */
  constructor(o: HttpTransportOptions) {
    if (o.secret.length < 16) throw new Error("replication secret: at least 16 characters");
    this.#o = {
      ...o,
      fetch: o.fetch ?? ((input, init) => fetch(input, init)),
      now: o.now ?? Date.now,
      baseUrl: o.baseUrl.replace(/\/+$/, ""),
    };
  }

  /** POST frames; the answer is the standby's ack. */
  async sendFrames(body: Uint8Array, signal?: AbortSignal): Promise<ReplAck> {
    const time = String(this.#o.now());
    return await this.#post(
      "/frames",
      {
        "content-type": "application/octet-stream",
        [TIME]: time,
        [AUTH]: sign(this.#o.secret, time, "/frames", sha(body)),
      },
      body as Uint8Array<ArrayBuffer>,
      signal,
    );
  }

  /** POST a snapshot as a streamed body. */
  async sendSnapshot(
    meta: SnapshotMeta,
    chunks: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<ReplAck> {
    const time = String(this.#o.now());
    const m = JSON.stringify(meta);
    const it = chunks[Symbol.asyncIterator]();
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const r = await it.next();
        if (r.done) ctl.close();
        else ctl.enqueue(r.value);
      },
    });
    return await this.#post(
      "/snapshot",
      {
        "content-type": "application/octet-stream",
        [TIME]: time,
        [META]: b64url(m),
        [AUTH]: sign(this.#o.secret, time, "/snapshot", sha(m)),
      },
      stream,
      signal,
    );
  }

  async #post(
    path: string,
    headers: Record<string, string>,
    body: BodyInit,
    signal?: AbortSignal,
  ): Promise<ReplAck> {
    let res: Response;
    try {
      const f = this.#o.fetch;
      res = await f(this.#o.baseUrl + path, { method: "POST", headers, body, signal });
    } catch (e) {
      throw new TransportDownError(`${path}: ${e instanceof Error ? e.message : e}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new TransportDownError(`${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
    }
    const parsed = ackSchema.safeParse(json);
    if (!parsed.success) {
      throw new TransportDownError(
        `${path}: HTTP ${res.status}, not an ack: ${text.slice(0, 200)}`,
      );
    }
    return parsed.data;
  }
}

/** Options of {@link replRoutes}. */
export interface ReplRoutesOptions {
  /** The pair's shared secret. */
  secret: string;
  /** Refuse requests whose time is further than this from ours (default 30 s). */
  maxSkewMs?: number;
  /** Injected time (ms). */
  now?: () => number;
}

/**
 * The standby's routes, to mount on the peer link: each request is authenticated, then
 * handed to `receiver`. Unauthenticated requests get 401 and are never looked at.
 */
export function replRoutes(receiver: ReplReceiver, o: ReplRoutesOptions): Hono {
  const maxSkew = o.maxSkewMs ?? 30_000;
  const now = o.now ?? Date.now;
  const app = new Hono();
  const unauthorized = (message: string) =>
    Response.json(
      { ok: false, epoch: 0, seq: 0, reason: "unauthorized", message } satisfies ReplAck,
      { status: 401 },
    );
  const check = (req: Request, path: string, digest: string): string | null => {
    const time = req.headers.get(TIME) ?? "";
    const auth = req.headers.get(AUTH) ?? "";
    if (!/^\d{1,16}$/.test(time)) return `missing or bad ${TIME}`;
    if (Math.abs(now() - Number(time)) > maxSkew) {
      return `${TIME} is off by more than ${maxSkew} ms`;
    }
    const want = Buffer.from(sign(o.secret, time, path, digest), "hex");
    const got = /^[0-9a-f]{64}$/.test(auth) ? Buffer.from(auth, "hex") : Buffer.alloc(0);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return "bad signature";
    return null;
  };
  app.post("/frames", async (c) => {
    const len = Number(c.req.header("content-length") ?? "0");
    if (len > MAX_FRAME_BYTES) {
      return c.json({ ok: false, epoch: 0, seq: 0, message: "body too large" }, 413);
    }
    const body = new Uint8Array(await c.req.arrayBuffer());
    const bad = check(c.req.raw, "/frames", sha(body));
    if (bad) return unauthorized(bad);
    const ack = receiver.receiveFrames(body);
    return c.json(ack);
  });
  app.post("/snapshot", async (c) => {
    const raw = c.req.header(META) ?? "";
    let metaText: string;
    try {
      metaText = unb64url(raw);
    } catch {
      return unauthorized(`bad ${META}`);
    }
    const bad = check(c.req.raw, "/snapshot", sha(metaText));
    if (bad) return unauthorized(bad);
    let meta: SnapshotMeta;
    try {
      meta = metaSchema.parse(JSON.parse(metaText));
    } catch (e) {
      return c.json({ ok: false, epoch: 0, seq: 0, message: `bad snapshot meta: ${e}` }, 400);
    }
    const body = c.req.raw.body;
    if (!body) return c.json({ ok: false, epoch: 0, seq: 0, message: "no body" }, 400);
    const ack = await receiver.receiveSnapshot(meta, body);
    return c.json(ack);
  });
  return app;
}
