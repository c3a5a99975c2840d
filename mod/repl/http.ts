/**
 * Replication over HTTP on the HA peer link: {@link HttpTransport} (the primary's side)
 * and {@link replRoutes} / {@link replPeerMount} (the standby's routes, mounted on the
 * peer link under `/peer/v1/repl`).
 *
 * There is ONE authentication scheme, the peer link's (mod/ha/peer.ts): the transport
 * sends through the link's signing fetch (`createPeerFetch`), the routes are reached only
 * through the link's authenticating middleware, and every answer is signed by it. These
 * routes authenticate nothing themselves: never serve them anywhere else.
 *
 * Routes: `POST /frames` (octet-stream body of frames back to back → {@link ReplAck}),
 * `POST /snapshot` (streamed octet-stream body; its meta, base64url JSON, in
 * `x-kw-peer-meta`, which the link signs in place of the streamed bytes; the engine
 * checks the bytes against the meta's SHA-256) → {@link ReplAck}).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { PEER_BODY_HEADER, PEER_META_HEADER, type PeerMount } from "../ha/peer.ts";
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
    "wrong_channel",
  ]).optional(),
  message: z.string().max(4000).optional(),
  needSnapshot: z.boolean().optional(),
});

const metaSchema = z.strictObject({
  pairId: z.string().min(1).max(128),
  channel: z.string().regex(/^[a-z][a-z0-9]{0,15}$/).optional(),
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

const META = PEER_META_HEADER;

/** Where the peer link serves replication. */
export const REPL_PEER_PREFIX = "/peer/v1/repl";

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
  /**
   * Base URL of the standby's mounted routes, e.g. `http://10.0.0.2:7440/peer/v1/repl`
   * (a function: read per request, as pairing moves the link to https).
   */
  baseUrl: string | (() => string);
  /** The peer link's authenticating fetch (`createPeerFetch`). */
  fetch: typeof fetch;
}

/** The primary's side over HTTP. */
export class HttpTransport implements ReplTransport {
  readonly #o: Required<HttpTransportOptions>;

  /** Build one. */
  constructor(o: HttpTransportOptions) {
    this.#o = o;
  }

  #base(): string {
    const b = this.#o.baseUrl;
    return (typeof b === "string" ? b : b()).replace(/\/+$/, "");
  }

  /** POST frames; the answer is the standby's ack. */
  async sendFrames(body: Uint8Array, signal?: AbortSignal): Promise<ReplAck> {
    return await this.#post(
      "/frames",
      { "content-type": "application/octet-stream" },
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
        [PEER_BODY_HEADER]: "stream",
        [META]: b64url(m),
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
      res = await f(this.#base() + path, { method: "POST", headers, body, signal });
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

/**
 * The standby's routes (under any prefix): each request is handed to `receiver`.
 * Authentication is the peer link's; see the module doc.
 */
export function replRoutes(receiver: ReplReceiver): Hono {
  const app = new Hono();
  app.post("/frames", async (c) => {
    const len = Number(c.req.header("content-length") ?? "0");
    if (len > MAX_FRAME_BYTES) {
      return c.json({ ok: false, epoch: 0, seq: 0, message: "body too large" }, 413);
    }
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.length > MAX_FRAME_BYTES) {
      return c.json({ ok: false, epoch: 0, seq: 0, message: "body too large" }, 413);
    }
    return c.json(receiver.receiveFrames(body));
  });
  app.post("/snapshot", async (c) => {
    let meta: SnapshotMeta;
    try {
      meta = metaSchema.parse(JSON.parse(unb64url(c.req.header(META) ?? "")));
    } catch (e) {
      return c.json({ ok: false, epoch: 0, seq: 0, message: `bad snapshot meta: ${e}` }, 400);
    }
    const body = c.req.raw.body;
    if (!body) return c.json({ ok: false, epoch: 0, seq: 0, message: "no body" }, 400);
    return c.json(await receiver.receiveSnapshot(meta, body));
  });
  return app;
}

/** The routes as a mount of the peer link (`/peer/v1/repl`, snapshot streamed). */
export function replPeerMount(receiver: ReplReceiver, prefix = REPL_PEER_PREFIX): PeerMount {
  const app = new Hono().basePath(prefix);
  app.route("/", replRoutes(receiver));
  return { prefix, fetch: (req) => app.fetch(req), streamed: [`${prefix}/snapshot`] };
}
