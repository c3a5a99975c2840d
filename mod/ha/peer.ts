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
} as const;

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
export function signPeerAnswer(secret: string, nonce: string, body: string): string {
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
export const peerPartSchema = z.strictObject({
  ok: z.boolean(),
  essential: z.boolean(),
  detail: z.string().max(500).optional(),
});

/** The health document a node answers on GET /peer/v1/health. */
export const peerHealthSchema = z.strictObject({
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
});

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
}

/** The peer link's routes (its own listener serves them). */
export function peerRoutes(o: PeerServerOptions): Hono {
  const nonces = new NonceCache();
  const app = new Hono();
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
    const body = new Uint8Array(await c.req.arrayBuffer());
    const want = signPeerRequest(o.secret, {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
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
    await next();
  });
  app.get(PEER_HEALTH_PATH, (c) => {
    const nonce = c.req.header(H.nonce) ?? "";
    const body = JSON.stringify(o.health());
    return c.body(body, 200, {
      "content-type": "application/json",
      [H.auth]: signPeerAnswer(o.secret, nonce, body),
    });
  });
  return app;
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
