/**
 * The replication module: the runtime's one line builds it; it builds the
 * {@link Replicator} from `ha.replication` and the registry, mounts the standby's routes
 * on the HA peer link, sends to the peer through the link's authenticated fetch, and
 * follows the HA role (`ha.role_changed`): active → primary (a new epoch, or the same
 * one when only this process restarted), anything else → standby (replicated tables
 * read-only; a returning ex-primary's tail is set aside when the new primary's snapshot
 * comes).
 *
 * Active-active (`ha.activeActive`): one engine per client set — channel `a` follows
 * `ha.role_changed`, channel `b` follows set b's instance (`ha.set_changed`); each
 * replicates the tables of the groups on its set (channels.ts). Without
 * `ha.activeActive` every group is on channel `a`.
 *
 * Built once the runtime has started (`runtime.started`): by then every module's
 * migrations have run, so every registered table exists. Tables registered later (an
 * SDK subsystem) are added as they come.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { apiDoc, statusDoc } from "../web/openapi.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { Module, ModuleContext, PartHealth, TimerId } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import type { PeerMount } from "../ha/peer.ts";
import { Replicator, type ReplStatus, tableDigest, type WriteResult } from "./engine.ts";
import { type Channel, channelReceiver } from "./channels.ts";
import { HttpTransport, REPL_PEER_PREFIX, replPeerMount } from "./http.ts";
import { type GroupSpec, type ReplRegistry, replRegistry } from "./registry.ts";
import type { ReplAck, ReplReceiver } from "./transport.ts";
import { PairJournal, pairJournalAnswerSchema, pairJournalQuerySchema } from "./journal.ts";
import { parseOr400 } from "../web/errors.ts";
import { ReplNotPrimaryError } from "./errors.ts";
import { columnsOf, readTail, tailDirOf } from "./tail.ts";
import { concatFrames } from "./frame.ts";

/** Why replication is off after `ha unpair`. */
const UNPAIRED = "this node left the pair (ha unpair); pair again to replicate";
import { tailRoutes } from "./tail_routes.ts";
import "./events.ts";

/** What the HA module lends replication: its peer link. */
export interface PeerLinkAccess {
  /** Serve routes on the peer link (behind its authentication). */
  mount(m: PeerMount): void;
  /** The link's authenticating fetch, or null without a peer link. */
  fetch(): typeof fetch | null;
  /** The peer's link origin (`http://10.0.0.2:7440`), or null. */
  peerOrigin(): string | null;
  /** The pair id. */
  pairId(): string;
  /** This node's HA role now. */
  role(): string;
  /** Active-active: this node's role for set b, null when unknown or not active-active. */
  setRole?(set: "b"): "active" | "standby" | null;
}

/**
 * The replication the SDK's table service uses (mod/sdk `TableReplication`): every
 * channel behind one face, a group's writes going to the engine of its set.
 */
export interface ChannelSet {
  /** Replicate `tables` in `group` (on the channel of the group's set). */
  addTables(group: string, tables: readonly string[], spec?: GroupSpec): void;
  /** One transaction on the group's channel, with the group's durability. */
  write<T>(
    group: string,
    fn: Parameters<Replicator["write"]>[1],
  ): Promise<{ value: T; seq?: number; replicated: boolean }>;
  /** Channel a's role (the node's). */
  status(): { role: "primary" | "standby" | "idle" };
  /** The role of the channel a group writes on. */
  groupRole(group: string): "primary" | "standby" | "idle";
}

/** Dependencies of {@link createReplModule}. */
export interface ReplDeps {
  /** The HA module's peer link (absent: replication off). */
  peer?: PeerLinkAccess;
  /** Registry (default: the process's). */
  registry?: ReplRegistry;
  /** Called once the engines are built (the SDK host replicates its tables through them). */
  onBuilt?: (r: ChannelSet) => void;
}

/** One channel's part of the status. */
export const replChannelStatusSchema = z.lazy(() =>
  z.object({
    channel: z.enum(["a", "b"]).describe("the client set whose role it follows"),
    role: z.enum(["primary", "standby", "idle"]),
    epoch: z.number().int(),
    seq: z.number().int().describe("primary: last frame made; standby: last applied"),
    acked: z.number().int().describe("last frame the standby confirmed"),
    link: z.enum(["up", "down", "unknown"]).describe("primary: does the standby answer"),
    pending: z.number().int().describe("frames made and not confirmed"),
    lagMs: z.number().describe("age of the oldest unconfirmed change"),
    resync: z.object({ bytes: z.number(), total: z.number() }).nullable()
      .describe("standby: snapshot being installed"),
    snapshotDue: z.boolean().describe(
      "primary: the standby has not installed this epoch's snapshot yet (its copy is not this " +
        "one); standby: it needs a new snapshot (a table registered after the last one)",
    ),
    tables: z.array(z.string()).describe("its replicated tables"),
  })
);

/** The answer of GET /api/repl/status (`ha status`, the HA page). */
export const replStatusSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean().describe("replication configured and built"),
    reason: z.string().optional().describe("why it is off, or the last problem"),
    role: z.enum(["primary", "standby", "idle"]).optional(),
    epoch: z.number().int().optional(),
    seq: z.number().int().optional().describe("primary: last frame made; standby: last applied"),
    acked: z.number().int().optional().describe("last frame the standby confirmed"),
    link: z.enum(["up", "down", "unknown"]).optional().describe("primary: does the standby answer"),
    pending: z.number().int().optional().describe("frames made and not confirmed"),
    lagMs: z.number().optional().describe("age of the oldest unconfirmed change"),
    resync: z.object({ bytes: z.number(), total: z.number() }).nullable().optional()
      .describe("standby: snapshot being installed"),
    schemaVersion: z.string().optional(),
    tables: z.record(z.string(), z.string()).optional().describe("replicated table → group"),
    groups: z.record(
      z.string(),
      z.object({
        durability: z.enum(["sync", "async"]),
        onStandbyLost: z.enum(["continue", "refuse"]),
      }),
    ).optional(),
    syncMode: z.enum(["sync", "async"]).optional()
      .describe("sync when any group is sync (writes wait for the standby)"),
    config: z.object({ version: z.number().int(), hash: z.string() }).optional()
      .describe(
        "the synced configuration: the last replication seq (any group's frames move it) " +
          "and a hash of the config group's rows",
      ),
    channels: z.array(replChannelStatusSchema).optional().describe(
      "every channel (a; and b in an active-active pair); the top-level fields are channel a's",
    ),
  })
);

/** Status for `ha status`, the HA page and `/api/repl/status`. */
export type ReplModuleStatus = z.output<typeof replStatusSchema>;

statusDoc("repl", replStatusSchema);
apiDoc("GET", "/api/repl/status", {
  operationId: "getReplStatus",
  summary: "replication: role, epoch, sequence, lag, resync, sync mode, synced configuration",
  response: replStatusSchema,
});

apiDoc("GET", "/api/repl/journal", {
  operationId: "getPairJournal",
  summary: "the pair journal: the active's events as replicated to the standby",
  query: pairJournalQuerySchema,
  response: pairJournalAnswerSchema,
});

/** The module's API for other modules (the web's write barrier, the SDK). */
export interface ReplModule extends Module {
  /** Channel a's engine, once built. */
  readonly replicator: Replicator | null;
  /** A channel's engine (null before it is built, or `b` without ha.activeActive). */
  channel(ch: Channel): Replicator | null;
  /** Replicated write in one transaction (see {@link Replicator.write}). */
  write<T>(group: string, fn: Parameters<Replicator["write"]>[1]): Promise<WriteResult<T>>;
  /** Refuse a change up front when a `refuse` sync group has lost its standby. */
  admit(): void;
  /** Wait until the standby applied what the store's connection changed (see Replicator.barrier). */
  barrier(): Promise<boolean>;
  /** Status. */
  status(): ReplModuleStatus;
  /**
   * On the primary: the changes the standby has not acknowledged (frames, seq range, per
   * table the rows), or null when there are none (`ha unpair` says what it would drop).
   */
  unacknowledged(): UnackedChanges | null;
  /**
   * Before a graceful handover: refuse new writes on every channel this node is the
   * primary of and wait (≤ `ms`) until the standby confirmed everything. Null when it did
   * (hand over now: the writes stay refused until the demotion), else why not (writes are
   * taken again; do not hand over, or what was acknowledged here is lost).
   */
  prepareHandover(ms: number, channels?: readonly Channel[]): Promise<string | null>;
  /** A prepared handover that did not happen: take writes again. */
  cancelHandover(): void;
}

/** Changes the standby has not acknowledged (see {@link ReplModule.unacknowledged}). */
export interface UnackedChanges {
  frames: number;
  fromSeq: number;
  toSeq: number;
  tables: Record<string, { rows: number; insert: number; update: number; delete: number }>;
}

/** Writes refused for a handover are taken again after this, if this node is still primary. */
export const HANDOVER_GIVE_UP_MS = 60_000;

/** Build the module (one line in the runtime). */
export function createReplModule(ctx: ModuleContext, deps: ReplDeps = {}): ReplModule {
  return new ReplModuleImpl(ctx, deps);
}

class ReplModuleImpl implements ReplModule {
  readonly name = "repl";
  #ctx: ModuleContext;
  #deps: ReplDeps;
  #repls = new Map<Channel, Replicator>();
  #giveUp: TimerId | undefined;
  /** Each channel's link to the standby (its stream is closed on stop and when it stands by). */
  #links = new Map<Channel, HttpTransport>();
  #unsubs: (() => void)[] = [];
  // subscriptions of one build (dropped on unpair: a pairing again builds anew)
  #buildUnsubs: (() => void)[] = [];
  #off: string | null = null;
  #firstRole = new Set<Channel>(["a", "b"]);
  #buildError: string | null = null;
  #journal: PairJournal | null = null;
  #built = false;

  constructor(ctx: ModuleContext, deps: ReplDeps) {
    this.#ctx = ctx;
    this.#deps = deps;
  }

  get replicator(): Replicator | null {
    return this.#repls.get("a") ?? null;
  }

  channel(ch: Channel): Replicator | null {
    return this.#repls.get(ch) ?? null;
  }

  #registry(): ReplRegistry {
    return this.#deps.registry ?? replRegistry;
  }

  /** Active-active: is there a set b (and so a channel b)? */
  #activeActive(): boolean {
    return !!this.#ctx.config.ha.activeActive;
  }

  /** A group's spec as this node replicates it: the config's durability, the code's set. */
  #spec(group: string, declared?: GroupSpec): GroupSpec | undefined {
    const rc = this.#ctx.config.ha.replication!;
    const code = this.#registry().groups()[group] ?? declared;
    const conf = rc.groups[group] as GroupSpec | undefined;
    if (!code && !conf) return undefined;
    const spec = { ...code, ...conf } as GroupSpec;
    // without set b, the whole pair is one set: every group is on channel a
    spec.set = this.#activeActive() ? (code?.set ?? "a") : "a";
    return spec;
  }

  start(): Promise<void> {
    const ha = this.#ctx.config.ha;
    const rc = ha.replication;
    const ret = this.#ctx.config.store.retention;
    this.#journal = new PairJournal({
      db: this.#ctx.store.db,
      node: ha.node.id,
      // not while handing over: the handover's own events made after the drain would be a
      // frame the peer never gets, set aside (and alerted on) at every planned handover
      isPrimary: () => {
        const a = this.#repls.get("a");
        return a?.status().role === "primary" && !a.handingOver;
      },
      maxRows: ret.maxEvents,
      maxAgeDays: ret.maxAgeDays,
      now: () => this.#ctx.clock.now(),
    });
    if (!ha.enabled) this.#off = "ha is not enabled";
    else if (!rc || !rc.enabled) this.#off = "ha.replication is not configured";
    else if (!this.#deps.peer || !ha.peerLink) this.#off = "no peer link (ha.peerLink)";
    if (this.#off) return Promise.resolve();
    // the standby's side is reachable from the start; it answers not_standby until built
    const waiting: ReplReceiver = {
      receiveFrames: () => notReady(),
      receiveSnapshot: () => Promise.resolve(notReady()),
    };
    const receiver = channelReceiver((ch) =>
      this.#repls.get(ch as Channel) ?? (this.#built ? undefined : waiting)
    );
    this.#deps.peer!.mount(replPeerMount(receiver));
    this.#unsubs.push(
      this.#ctx.bus.subscribe((e) => {
        if (e.kind === "runtime.started") this.#build();
      }, { kindPrefix: "runtime." }),
      this.#ctx.bus.subscribe((e) => {
        if (e.kind === "ha.unpaired") return this.#unpaired();
        if (e.kind === "ha.paired") return this.#paired();
        if (!this.#built) return;
        if (e.kind === "ha.role_changed") {
          this.#follow("a", String((e.payload as { to?: unknown }).to));
        } else if (e.kind === "ha.set_changed") {
          this.#follow("b", String((e.payload as { to?: unknown }).to));
        }
      }, { kindPrefix: "ha." }),
    );
    return Promise.resolve();
  }

  #build(): void {
    if (this.#built || this.#off) return;
    const rc = this.#ctx.config.ha.replication!;
    const peer = this.#deps.peer!;
    const reg = this.#registry();
    const groups: Record<string, GroupSpec> = {};
    for (const n of new Set([...Object.keys(reg.groups()), ...Object.keys(rc.groups)])) {
      groups[n] = this.#spec(n)!;
    }
    const channels: Channel[] = this.#activeActive() ? ["a", "b"] : ["a"];
    try {
      for (const ch of channels) {
        const tables = Object.fromEntries(
          Object.entries(reg.tables()).filter(([, g]) => (groups[g]?.set ?? "a") === ch),
        );
        this.#repls.set(
          ch,
          new Replicator({
            db: this.#ctx.store.db,
            pairId: peer.pairId(),
            channel: ch,
            groups,
            tables,
            tailDir: tailDirOf(this.#ctx.config.dataDir),
            stagingDir: join(this.#ctx.config.dataDir, "repl"),
            // read per request (per stream opened): pairing moves the link to https with
            // other credentials, and restarts it, which cuts the open stream
            transport: this.#linkOf(ch, {
              baseUrl: () =>
                (peer.peerOrigin() ?? "http://peer-link-not-started") + REPL_PEER_PREFIX,
              fetch: (input, init) => {
                const f = peer.fetch();
                if (!f) {
                  return Promise.reject(
                    new Error(
                      "the peer link has no credentials (not paired, no ha.peerLink.secret)",
                    ),
                  );
                }
                return f(input, init);
              },
            }),
            bus: this.#ctx.bus,
            clock: this.#ctx.clock,
            batchMs: rc.batchMs,
            ackTimeoutMs: rc.ackTimeoutMs,
          }),
        );
      }
    } catch (e) {
      for (const r of this.#repls.values()) r.stop();
      this.#repls.clear();
      this.#buildError = (e as Error).message;
      return;
    }
    this.#built = true;
    this.#buildUnsubs.push(reg.onRegister((group, tables) => {
      try {
        this.#addTables(group, tables);
      } catch (e) {
        this.#buildError = (e as Error).message;
      }
    }));
    this.#follow("a", peer.role());
    const b = peer.setRole?.("b");
    if (b) this.#follow("b", b);
    this.#buildUnsubs.push(this.#journal!.follow(this.#ctx.bus));
    try {
      this.#deps.onBuilt?.(this.#channelSet());
    } catch (e) {
      this.#buildError = `tables declared through the SDK: ${(e as Error).message}`;
    }
  }

  /**
   * This node was paired: the engines are rebuilt under the pair's id. Engines built
   * before (unpaired, or on a configured secret) carry the old id in their frames, and a
   * peer that restarts builds its engines with the pair's: every frame would then be
   * refused as another pair's.
   */
  #paired(): void {
    if (this.#off === UNPAIRED) this.#off = null;
    else if (this.#off || !this.#built) return; // not built yet: built under the pair's id
    else this.#unpaired();
    this.#off = null;
    this.#build();
  }

  /** This node left the pair: replication stops until it is paired again. */
  #unpaired(): void {
    if (this.#off) return;
    this.#off = UNPAIRED;
    for (const u of this.#buildUnsubs.splice(0)) u();
    if (this.#ctx.store.db.isOpen) { for (const r of this.#repls.values()) r.stop(); }
    for (const l of this.#links.values()) l.close();
    this.#repls.clear();
    this.#links.clear();
    this.#built = false;
  }

  unacknowledged(): UnackedChanges | null {
    // every channel this node is the primary of (active-active: both after a failover)
    let out: UnackedChanges | null = null;
    for (const r of this.#repls.values()) {
      const u = this.#unackedOf(r);
      if (!u) continue;
      if (!out) {
        out = u;
        continue;
      }
      out.frames += u.frames;
      out.toSeq = Math.max(out.toSeq, u.toSeq);
      out.fromSeq = Math.min(out.fromSeq, u.fromSeq);
      out.tables = { ...out.tables, ...u.tables };
    }
    return out;
  }

  #unackedOf(r: Replicator): UnackedChanges | null {
    const s = r.status();
    if (s.role !== "primary" || s.pending === 0) return null;
    const rows = this.#ctx.store.db.prepare(
      "SELECT frame FROM repl_log WHERE channel = ? AND seq > ? ORDER BY seq",
    ).all(s.channel, s.acked) as { frame: Uint8Array }[];
    const fallback = { frames: s.pending, fromSeq: s.acked + 1, toSeq: s.seq, tables: {} };
    if (!rows.length) return fallback;
    try {
      const t = readTail(concatFrames(rows.map((x) => x.frame)), {
        name: "unacknowledged changes",
      });
      return {
        frames: t.summary.frames,
        fromSeq: t.summary.fromSeq,
        toSeq: t.summary.toSeq,
        tables: t.summary.tables,
      };
    } catch {
      return fallback;
    }
  }

  #linkOf(ch: Channel, o: ConstructorParameters<typeof HttpTransport>[0]): HttpTransport {
    const l = new HttpTransport(o);
    this.#links.set(ch, l);
    return l;
  }

  /** The engine a group writes through (its set's channel). */
  #engineOf(group: string, declared?: GroupSpec): Replicator {
    const ch = (this.#spec(group, declared)?.set ?? "a") as Channel;
    const r = this.#repls.get(ch);
    if (!r) throw new ReplNotPrimaryError(`not replicating channel ${ch}`);
    return r;
  }

  #addTables(group: string, tables: readonly string[], declared?: GroupSpec): void {
    const spec = this.#spec(group, declared);
    this.#engineOf(group, declared).addTables(group, tables, spec);
  }

  #channelSet(): ChannelSet {
    return {
      addTables: (group, tables, spec) => this.#addTables(group, tables, spec),
      write: <T>(group: string, fn: Parameters<Replicator["write"]>[1]) =>
        this.#engineOf(group).write(group, fn) as Promise<WriteResult<T>>,
      status: () => ({ role: this.#repls.get("a")?.status().role ?? "idle" }),
      groupRole: (group) => {
        try {
          return this.#engineOf(group).status().role;
        } catch {
          return "idle";
        }
      },
    };
  }

  #follow(ch: Channel, role: string): void {
    const r = this.#repls.get(ch);
    if (!r) return;
    const first = this.#firstRole.has(ch);
    if (role === "stopped") return;
    this.#firstRole.delete(ch);
    if (role === "active") {
      if (r.status().role === "primary") return;
      // a restart of this process with no failover between keeps the epoch (resume
      // decides: only when this node was the primary of the epoch it is at)
      if (first) r.resume();
      else r.promote();
      return;
    }
    if (r.status().role !== "standby") r.demote();
    this.#links.get(ch)?.close(); // a standby sends nothing: no stream held open to the primary
  }

  stop(): Promise<void> {
    if (this.#giveUp !== undefined) this.#ctx.clock.clearTimeout(this.#giveUp);
    this.#giveUp = undefined;
    for (const u of this.#unsubs.splice(0)) u();
    for (const u of this.#buildUnsubs.splice(0)) u();
    if (this.#ctx.store.db.isOpen) { for (const r of this.#repls.values()) r.stop(); }
    for (const l of this.#links.values()) l.close();
    return Promise.resolve();
  }

  health(): PartHealth {
    if (this.#off) return { ok: true, essential: false, detail: `off: ${this.#off}` };
    if (this.#buildError) return { ok: false, essential: false, detail: this.#buildError };
    if (!this.#built) {
      return { ok: true, essential: false, detail: "waiting for the runtime to start" };
    }
    const all = [...this.#repls.values()].map((r) => r.status());
    const lost = all.filter((s) => s.role === "primary" && s.link === "down");
    if (lost.length) {
      return {
        ok: false,
        essential: false,
        detail: lost.map((s) => `channel ${s.channel}: standby gone; ${s.pending} frames pending`)
          .join("; "),
      };
    }
    const detail = all.map((s) =>
      `${all.length > 1 ? `channel ${s.channel} ` : ""}${s.role}, epoch ${s.epoch}, seq ${s.seq}`
    ).join("; ");
    return { ok: true, essential: false, detail };
  }

  write<T>(group: string, fn: Parameters<Replicator["write"]>[1]): Promise<WriteResult<T>> {
    if (!this.#built) throw new ReplNotPrimaryError("not replicating");
    return this.#engineOf(group).write(group, fn) as Promise<WriteResult<T>>;
  }

  admit(): void {
    for (const r of this.#repls.values()) r.admit();
  }

  async prepareHandover(ms: number, channels?: readonly Channel[]): Promise<string | null> {
    const prim = [...this.#repls.entries()].filter(([ch, r]) =>
      r.status().role === "primary" && (!channels || channels.includes(ch))
    );
    const done = await Promise.all(prim.map(([, r]) => r.beginHandover(ms)));
    // a handover that never completes (the peer did not take over) must not leave writes
    // refused for good: take them again after the longest hold
    if (this.#giveUp !== undefined) this.#ctx.clock.clearTimeout(this.#giveUp);
    this.#giveUp = this.#ctx.clock.setTimeout(() => {
      this.#giveUp = undefined;
      for (const [, r] of prim) if (r.status().role === "primary") r.endHandover();
    }, HANDOVER_GIVE_UP_MS);
    const behind = prim.filter((_, i) => !done[i]).map(([ch, r]) => {
      const s = r.status();
      return `channel ${ch}: ${s.pending} frames unconfirmed, link ${s.link}`;
    });
    if (!behind.length) return null;
    this.cancelHandover();
    return `the standby did not confirm every change within ${ms} ms (${behind.join("; ")})`;
  }

  cancelHandover(): void {
    for (const r of this.#repls.values()) r.endHandover();
  }

  async barrier(): Promise<boolean> {
    if (!this.#repls.size) return false;
    const all = await Promise.all(
      [...this.#repls.values()].filter((r) => r.status().role === "primary").map((r) =>
        r.barrier()
      ),
    );
    return all.length > 0 && all.every((x) => x);
  }

  status(): ReplModuleStatus {
    if (this.#off) return { enabled: false, reason: this.#off };
    const a = this.#repls.get("a");
    if (!a) return { enabled: false, reason: this.#buildError ?? "starting" };
    const s = a.status();
    const groups = a.groups();
    const tables: Record<string, string> = {};
    for (const r of this.#repls.values()) {
      for (const t of r.tables) tables[t] = r.tableGroup(t) ?? "";
    }
    const h = createHash("sha256");
    for (const t of Object.keys(tables).filter((t) => tables[t] === "config").sort()) {
      h.update(`${t}:${tableDigest(this.#ctx.store.db, t)}\n`);
    }
    const { channel: _ch, ...top } = s;
    return {
      enabled: true,
      ...top,
      ...(this.#buildError ? { reason: this.#buildError } : {}),
      tables,
      groups,
      syncMode: Object.values(groups).some((g) => g.durability === "sync") ? "sync" : "async",
      config: { version: s.seq, hash: h.digest("hex").slice(0, 16) },
      channels: [...this.#repls.values()].map((r) => channelStatus(r.status(), r.tables)),
    };
  }

  routes(): Hono {
    const app = new Hono();
    app.get("/repl/status", (c) => c.json(this.status()));
    // tails are read whether or not replication runs now (a node unpaired since keeps them)
    app.route(
      "/",
      tailRoutes(tailDirOf(this.#ctx.config.dataDir), () => columnsOf(this.#ctx.store.db)),
    );
    app.get("/repl/journal", (c) => {
      const q = parseOr400(pairJournalQuerySchema, c.req.query(), "pair journal query");
      const j = this.#journal;
      const role = this.#repls.get("a")?.status().role;
      return c.json({
        replicating: this.#repls.size > 0,
        ...(role ? { role } : {}),
        count: j?.count() ?? 0,
        rows: j?.rows(q) ?? [],
      });
    });
    return app;
  }

  metrics(): MetricFamily[] {
    const all = [...this.#repls.values()].map((r) => r.status());
    if (!all.length) return [];
    const roles = ["primary", "standby", "idle"] as const;
    const per = (f: (s: ReplStatus) => number) =>
      all.map((s) => ({ labels: { channel: s.channel }, value: f(s) }));
    return [
      {
        name: "repl_role",
        help: "replication role of this node per channel (1 for the current one)",
        type: "gauge",
        samples: all.flatMap((s) =>
          roles.map((r) => ({
            labels: { channel: s.channel, role: r },
            value: s.role === r ? 1 : 0,
          }))
        ),
      },
      {
        name: "repl_epoch",
        help: "replication epoch",
        type: "gauge",
        samples: per((s) => s.epoch),
      },
      {
        name: "repl_seq",
        help: "primary: last frame made; standby: last frame applied",
        type: "gauge",
        samples: per((s) => s.seq),
      },
      {
        name: "repl_acked_seq",
        help: "last frame the standby confirmed (primary)",
        type: "gauge",
        samples: per((s) => s.acked),
      },
      {
        name: "repl_pending_frames",
        help: "frames made and not confirmed by the standby",
        type: "gauge",
        samples: per((s) => s.pending),
      },
      {
        name: "repl_lag_seconds",
        help: "age of the oldest change the standby has not confirmed",
        type: "gauge",
        samples: per((s) => s.lagMs / 1000),
      },
      {
        name: "repl_link_up",
        help: "1 when the standby answers (primary)",
        type: "gauge",
        samples: per((s) => s.link === "up" ? 1 : 0),
      },
      {
        name: "repl_resync_bytes",
        help: "bytes of the snapshot being installed so far (standby; 0 when none)",
        type: "gauge",
        samples: per((s) => s.resync?.bytes ?? 0),
      },
      {
        name: "repl_resync_total_bytes",
        help: "size of the snapshot being installed (standby; 0 when none)",
        type: "gauge",
        samples: per((s) => s.resync?.total ?? 0),
      },
    ];
  }
}

function channelStatus(
  s: ReplStatus,
  tables: readonly string[],
): z.output<typeof replChannelStatusSchema> {
  return {
    channel: s.channel as Channel,
    role: s.role,
    epoch: s.epoch,
    seq: s.seq,
    acked: s.acked,
    link: s.link,
    pending: s.pending,
    lagMs: s.lagMs,
    resync: s.resync,
    snapshotDue: s.snapshotDue,
    tables: [...tables],
  };
}

function notReady(): ReplAck {
  return {
    ok: false,
    epoch: 0,
    seq: 0,
    reason: "not_standby",
    message: "replication is not running yet on this node",
  };
}
