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
 * Routes: `POST /stream` (a duplex request of the link, see mod/ha/peer.ts: one long-lived
 * request; each message of its body is a body of frames, each message of the answer the
 * {@link ReplAck} for it, in order — what {@link HttpTransport} sends frames over),
 * `POST /frames` (one body of frames → {@link ReplAck}; the fallback for a peer without
 * `/stream`, i.e. an older version during a rolling upgrade), `POST /snapshot` (streamed
 * octet-stream body; its meta, base64url JSON, in `x-kw-peer-meta`, which the link signs
 * in place of the streamed bytes; the engine checks the bytes against the meta's
 * SHA-256) → {@link ReplAck}).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import {
  PEER_BODY_HEADER,
  PEER_DUPLEX_HEADER,
  PEER_META_HEADER,
  type PeerMount,
} from "../ha/peer.ts";
import type { Clock } from "../module.ts";
import { MAX_FRAME_BYTES } from "./frame.ts";
import {
  type ReplAck,
  type ReplReceiver,
  type ReplTransport,
  type SnapshotMeta,
  TransportDownError,
} from "./transport.ts";

const ackSchema = z.lazy(() =>
  z.object({
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
  })
);

const metaSchema = z.lazy(() =>
  z.strictObject({
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
  })
);

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
  /**
   * Send frames over one long-lived stream (`/stream`; default true); false: one POST
   * per body, as a peer without `/stream` is served anyway.
   */
  stream?: boolean;
  /** After a peer answered that it has no `/stream`: POST only, for this long (60 s). */
  fallbackMs?: number;
  /** Time (the fallback's clock). */
  clock?: Pick<Clock, "now">;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function parseAck(text: string, what: string): ReplAck {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TransportDownError(`${what}: not JSON: ${text.slice(0, 200)}`);
  }
  const parsed = ackSchema.safeParse(json);
  if (!parsed.success) throw new TransportDownError(`${what}: not an ack: ${text.slice(0, 200)}`);
  return parsed.data;
}

/**
 * One open `/stream`: bodies of frames go out as they are sent, acks come back
 * in the same order. Dead (for good) once it ends, errors or a send is abandoned; the
 * transport then opens a new one on the next send.
 */
class FrameStream {
  /** Why it is dead, or null while it is usable. */
  dead: string | null = null;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #abort: AbortController;
  readonly #waiting: { resolve: (a: ReplAck) => void; reject: (e: Error) => void }[] = [];

  constructor(
    writer: WritableStreamDefaultWriter<Uint8Array>,
    acks: ReadableStream<Uint8Array>,
    abort: AbortController,
  ) {
    this.#writer = writer;
    this.#abort = abort;
    void this.#read(acks);
  }

  async #read(acks: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const msg of acks) {
        const w = this.#waiting.shift();
        if (!w) throw new Error("an ack nobody waits for");
        try {
          w.resolve(parseAck(dec.decode(msg), "/stream"));
        } catch (e) {
          w.reject(e as Error);
          throw e;
        }
      }
      this.kill("the peer closed the stream");
    } catch (e) {
      this.kill(`stream broken: ${e instanceof Error ? e.message : e}`);
    }
  }

  /** Send one body; resolves with its ack. A send abandoned (signal) kills the stream. */
  async send(body: Uint8Array, signal?: AbortSignal): Promise<ReplAck> {
    if (this.dead) throw new TransportDownError(this.dead);
    const ack = new Promise<ReplAck>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
    // a kill while this send waits for back-pressure rejects `ack` before it is awaited:
    // mark it handled (the await below still sees the rejection) so it cannot end the process
    ack.catch(() => {});
    // an ack given up on would pair every later ack with the wrong send
    const onAbort = () => this.kill("a send was abandoned (no ack in time)");
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#writer.ready; // back-pressure: the peer reads what was sent before
      this.#writer.write(body).catch((e) => this.kill(`write failed: ${e}`));
      return await ack;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** End it: pending sends fail with {@link TransportDownError}. */
  kill(reason: string): void {
    if (!this.dead) this.dead = reason;
    for (const w of this.#waiting.splice(0)) w.reject(new TransportDownError(this.dead));
    this.#writer.close().catch(() => {});
    this.#abort.abort();
  }
}

/** The primary's side over HTTP. */
export class HttpTransport implements ReplTransport {
  readonly #o: HttpTransportOptions;
  #stream: FrameStream | null = null;
  #opening: Promise<FrameStream | null> | null = null;
  #postUntil = 0;
  // bumped by close(): an opening begun before it must not leave a stream behind
  #closes = 0;
  #openAbort: AbortController | null = null;
  /** Streams opened so far (a reconnect opens one more). */
  opened = 0;

  /** Build one. */
  constructor(o: HttpTransportOptions) {
    this.#o = o;
  }

  /** Close the open stream, if any (shutdown; a later send opens a new one). */
  close(): void {
    this.#closes++;
    this.#openAbort?.abort(); // a stream being opened is not held either
    this.#stream?.kill("closed by this node");
    this.#stream = null;
  }

  #base(): string {
    const b = this.#o.baseUrl;
    return (typeof b === "string" ? b : b()).replace(/\/+$/, "");
  }

  /**
   * Send frames over the stream (opened on first use and after it broke); POST them
   * when the peer has no `/stream`. The answer is the standby's ack.
   */
  async sendFrames(body: Uint8Array, signal?: AbortSignal): Promise<ReplAck> {
    const now = (this.#o.clock ?? Date).now();
    if (this.#o.stream !== false && now >= this.#postUntil) {
      const ch = this.#stream?.dead === null ? this.#stream : await this.#open(signal);
      if (ch) return await ch.send(body, signal);
    }
    return await this.#post(
      "/frames",
      { "content-type": "application/octet-stream" },
      body as Uint8Array<ArrayBuffer>,
      signal,
    );
  }

  #open(signal?: AbortSignal): Promise<FrameStream | null> {
    this.#opening ??= this.#openNow(signal).finally(() => this.#opening = null);
    return this.#opening;
  }

  async #openNow(signal?: AbortSignal): Promise<FrameStream | null> {
    this.#stream?.kill("replaced");
    this.#stream = null;
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const abort = new AbortController();
    const closes = this.#closes;
    this.#openAbort = abort;
    const onAbort = () => abort.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    // a stream not opened ends its request body (the peer's server waits for it else)
    const drop = () => {
      abort.abort();
      pipe.writable.close().catch(() => {});
    };
    let res: Response;
    try {
      res = await this.#o.fetch(this.#base() + "/stream", {
        method: "POST",
        headers: {
          "content-type": "application/octet-stream",
          [PEER_BODY_HEADER]: "stream",
          [PEER_DUPLEX_HEADER]: "1",
          [META]: b64url(JSON.stringify({ stream: "frames", v: 1 })),
        },
        body: pipe.readable,
        signal: abort.signal,
      });
    } catch (e) {
      drop();
      const msg = e instanceof Error ? e.message : String(e);
      if (msg.includes("takes no streamed body")) return this.#olderPeer();
      throw new TransportDownError(`/stream: ${msg}`);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (this.#openAbort === abort) this.#openAbort = null;
    }
    if (closes !== this.#closes) {
      // closed while it opened (this node became the standby, or stops)
      await res.body?.cancel().catch(() => {});
      drop();
      throw new TransportDownError("closed by this node");
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text().catch(() => "");
      drop();
      if (res.status === 404) return this.#olderPeer();
      throw new TransportDownError(`/stream: HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    this.opened++;
    return this.#stream = new FrameStream(pipe.writable.getWriter(), res.body, abort);
  }

  /** A peer of a version without `/stream` (a rolling upgrade): POST for a while. */
  #olderPeer(): null {
    this.#postUntil = (this.#o.clock ?? Date).now() + (this.#o.fallbackMs ?? 60_000);
    return null;
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
  app.post("/stream", (c) => {
    const body = c.req.raw.body;
    if (!body) return c.json({ ok: false, epoch: 0, seq: 0, message: "no body" }, 400);
    const frames = body.getReader();
    // one ack per message, in order; the next message is read only when the ack before
    // it was taken (back-pressure to the sender)
    const acks = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await frames.read();
        } catch {
          // cut (inside a message or not), or a message that failed its check: nothing of
          // it was applied; the sender reconnects
          ctl.close();
          return;
        }
        if (r.done) return ctl.close();
        const ack = r.value.length > MAX_FRAME_BYTES
          ? { ok: false, epoch: 0, seq: 0, message: "body too large" }
          : receiver.receiveFrames(r.value);
        ctl.enqueue(enc.encode(JSON.stringify(ack)));
      },
      cancel(reason) {
        return frames.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 });
    return c.body(acks, 200, { "content-type": "application/octet-stream" });
  });
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

/** The routes as a mount of the peer link (`/peer/v1/repl`, snapshot streamed, `/stream` duplex). */
export function replPeerMount(receiver: ReplReceiver, prefix = REPL_PEER_PREFIX): PeerMount {
  const app = new Hono().basePath(prefix);
  app.route("/", replRoutes(receiver));
  return {
    prefix,
    fetch: (req) => app.fetch(req),
    streamed: [`${prefix}/snapshot`],
    duplex: [`${prefix}/stream`],
  };
}
