/**
 * The replication module: the runtime's one line builds it; it builds the
 * {@link Replicator} from `ha.replication` and the registry, mounts the standby's routes
 * on the HA peer link, sends to the peer through the link's authenticated fetch, and
 * follows the HA role (`ha.role_changed`): active → primary (a new epoch, or the same
 * one when only this process restarted), anything else → standby (replicated tables
 * read-only; a returning ex-primary's tail is set aside when the new primary's snapshot
 * comes).
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
import type { Module, ModuleContext, PartHealth } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import type { PeerMount } from "../ha/peer.ts";
import { Replicator, tableDigest, type WriteResult } from "./engine.ts";
import { HttpTransport, REPL_PEER_PREFIX, replPeerMount } from "./http.ts";
import { type GroupSpec, type ReplRegistry, replRegistry } from "./registry.ts";
import type { ReplAck, ReplReceiver, SnapshotMeta } from "./transport.ts";
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
}

/** Dependencies of {@link createReplModule}. */
export interface ReplDeps {
  /** The HA module's peer link (absent: replication off). */
  peer?: PeerLinkAccess;
  /** Registry (default: the process's). */
  registry?: ReplRegistry;
  /** Called once the engine is built (the SDK host replicates its tables through it). */
  onBuilt?: (r: Replicator) => void;
}

/** The answer of GET /api/repl/status (`ha status`, the HA page). */
export const replStatusSchema = z.object({
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
});

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
  /** The engine, once built. */
  readonly replicator: Replicator | null;
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
}

/** Changes the standby has not acknowledged (see {@link ReplModule.unacknowledged}). */
export interface UnackedChanges {
  frames: number;
  fromSeq: number;
  toSeq: number;
  tables: Record<string, { rows: number; insert: number; update: number; delete: number }>;
}

/** Build the module (one line in the runtime). */
export function createReplModule(ctx: ModuleContext, deps: ReplDeps = {}): ReplModule {
  return new ReplModuleImpl(ctx, deps);
}

class ReplModuleImpl implements ReplModule {
  readonly name = "repl";
  #ctx: ModuleContext;
  #deps: ReplDeps;
  #repl: Replicator | null = null;
  /** The link to the standby (its stream is closed on stop and when this node stands by). */
  #link: HttpTransport | null = null;
  #unsubs: (() => void)[] = [];
  #off: string | null = null;
  #firstRole = true;
  #buildError: string | null = null;
  #journal: PairJournal | null = null;

  constructor(ctx: ModuleContext, deps: ReplDeps) {
    this.#ctx = ctx;
    this.#deps = deps;
  }

  get replicator(): Replicator | null {
    return this.#repl;
  }

  #registry(): ReplRegistry {
    return this.#deps.registry ?? replRegistry;
  }

  start(): Promise<void> {
    const ha = this.#ctx.config.ha;
    const rc = ha.replication;
    const ret = this.#ctx.config.store.retention;
    this.#journal = new PairJournal({
      db: this.#ctx.store.db,
      node: ha.node.id,
      isPrimary: () => this.#repl?.status().role === "primary",
      maxRows: ret.maxEvents,
      maxAgeDays: ret.maxAgeDays,
      now: () => this.#ctx.clock.now(),
    });
    if (!ha.enabled) this.#off = "ha is not enabled";
    else if (!rc || !rc.enabled) this.#off = "ha.replication is not configured";
    else if (!this.#deps.peer || !ha.peerLink) this.#off = "no peer link (ha.peerLink)";
    if (this.#off) return Promise.resolve();
    // the standby's side is reachable from the start; it answers not_standby until built
    const receiver: ReplReceiver = {
      receiveFrames: (body) => this.#repl?.receiveFrames(body) ?? notReady(),
      receiveSnapshot: (meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>) =>
        this.#repl ? this.#repl.receiveSnapshot(meta, chunks) : Promise.resolve(notReady()),
    };
    this.#deps.peer!.mount(replPeerMount(receiver));
    this.#unsubs.push(
      this.#ctx.bus.subscribe((e) => {
        if (e.kind === "runtime.started") this.#build();
      }, { kindPrefix: "runtime." }),
      this.#ctx.bus.subscribe((e) => {
        if (e.kind === "ha.unpaired") return this.#unpaired();
        if (e.kind === "ha.paired" && this.#off === UNPAIRED) {
          this.#off = null;
          return this.#build();
        }
        if (e.kind !== "ha.role_changed" || !this.#repl) return;
        this.#follow(String((e.payload as { to?: unknown }).to));
      }, { kindPrefix: "ha." }),
    );
    return Promise.resolve();
  }

  #build(): void {
    if (this.#repl || this.#off) return;
    const rc = this.#ctx.config.ha.replication!;
    const peer = this.#deps.peer!;
    const reg = this.#registry();
    const groups = reg.groups();
    for (const [n, g] of Object.entries(rc.groups)) groups[n] = g as GroupSpec;
    try {
      this.#repl = new Replicator({
        db: this.#ctx.store.db,
        pairId: peer.pairId(),
        groups,
        tables: reg.tables(),
        tailDir: tailDirOf(this.#ctx.config.dataDir),
        stagingDir: join(this.#ctx.config.dataDir, "repl"),
        // read per request (per stream opened): pairing moves the link to https with
        // other credentials, and restarts it, which cuts the open stream
        transport: this.#link = new HttpTransport({
          baseUrl: () => (peer.peerOrigin() ?? "http://peer-link-not-started") + REPL_PEER_PREFIX,
          fetch: (input, init) => {
            const f = peer.fetch();
            if (!f) {
              return Promise.reject(
                new Error("the peer link has no credentials (not paired, no ha.peerLink.secret)"),
              );
            }
            return f(input, init);
          },
        }),
        bus: this.#ctx.bus,
        clock: this.#ctx.clock,
        batchMs: rc.batchMs,
        ackTimeoutMs: rc.ackTimeoutMs,
      });
    } catch (e) {
      this.#buildError = (e as Error).message;
      return;
    }
    this.#unsubs.push(reg.onRegister((group, tables) => {
      try {
        const spec = rc.groups[group] ?? reg.groups()[group];
        this.#repl?.addTables(group, tables, spec);
      } catch (e) {
        this.#buildError = (e as Error).message;
      }
    }));
    this.#follow(peer.role());
    this.#unsubs.push(this.#journal!.follow(this.#ctx.bus));
    try {
      this.#deps.onBuilt?.(this.#repl);
    } catch (e) {
      this.#buildError = `tables declared through the SDK: ${(e as Error).message}`;
    }
  }

  /** This node left the pair: replication stops until it is paired again. */
  #unpaired(): void {
    if (this.#off) return;
    this.#off = UNPAIRED;
    if (this.#ctx.store.db.isOpen) this.#repl?.stop();
    this.#repl = null;
  }

  unacknowledged(): UnackedChanges | null {
    const r = this.#repl;
    const s = r?.status();
    if (!r || !s || s.role !== "primary" || s.pending === 0) return null;
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

  #follow(role: string): void {
    const r = this.#repl!;
    const first = this.#firstRole;
    if (role === "stopped") return;
    this.#firstRole = false;
    if (role === "active") {
      if (r.status().role === "primary") return;
      // a restart of this process with no failover between keeps the epoch (resume
      // decides: only when this node was the primary of the epoch it is at)
      if (first) r.resume();
      else r.promote();
      return;
    }
    if (r.status().role !== "standby") r.demote();
    this.#link?.close(); // a standby sends nothing: no stream held open to the primary
  }

  stop(): Promise<void> {
    for (const u of this.#unsubs.splice(0)) u();
    if (this.#ctx.store.db.isOpen) this.#repl?.stop();
    this.#link?.close();
    return Promise.resolve();
  }

  health(): PartHealth {
    if (this.#off) return { ok: true, essential: false, detail: `off: ${this.#off}` };
    if (this.#buildError) return { ok: false, essential: false, detail: this.#buildError };
    const s = this.#repl?.status();
    if (!s) return { ok: true, essential: false, detail: "waiting for the runtime to start" };
    if (s.role === "primary" && s.link === "down") {
      return { ok: false, essential: false, detail: `standby gone; ${s.pending} frames pending` };
    }
    return { ok: true, essential: false, detail: `${s.role}, epoch ${s.epoch}, seq ${s.seq}` };
  }

  write<T>(group: string, fn: Parameters<Replicator["write"]>[1]): Promise<WriteResult<T>> {
    if (!this.#repl) throw new ReplNotPrimaryError("not replicating");
    return this.#repl.write(group, fn) as Promise<WriteResult<T>>;
  }

  admit(): void {
    this.#repl?.admit();
  }

  async barrier(): Promise<boolean> {
    return this.#repl ? await this.#repl.barrier() : false;
  }

  status(): ReplModuleStatus {
    if (this.#off) return { enabled: false, reason: this.#off };
    if (!this.#repl) return { enabled: false, reason: this.#buildError ?? "starting" };
    const s = this.#repl.status();
    const groups = this.#repl.groups();
    const tables = Object.fromEntries(
      this.#repl.tables.map((t) => [t, this.#repl!.tableGroup(t) ?? ""]),
    );
    const h = createHash("sha256");
    for (const t of Object.keys(tables).filter((t) => tables[t] === "config").sort()) {
      h.update(`${t}:${tableDigest(this.#ctx.store.db, t)}\n`);
    }
    return {
      enabled: true,
      ...s,
      ...(this.#buildError ? { reason: this.#buildError } : {}),
      tables,
      groups,
      syncMode: Object.values(groups).some((g) => g.durability === "sync") ? "sync" : "async",
      config: { version: s.seq, hash: h.digest("hex").slice(0, 16) },
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
      const role = this.#repl?.status().role;
      return c.json({
        replicating: this.#repl !== null,
        ...(role ? { role } : {}),
        count: j?.count() ?? 0,
        rows: j?.rows(q) ?? [],
      });
    });
    return app;
  }

  metrics(): MetricFamily[] {
    const s = this.#repl?.status();
    if (!s) return [];
    const roles = ["primary", "standby", "idle"] as const;
    return [
      {
        name: "repl_role",
        help: "replication role of this node (1 for the current one)",
        type: "gauge",
        samples: roles.map((r) => ({ labels: { role: r }, value: s.role === r ? 1 : 0 })),
      },
      {
        name: "repl_epoch",
        help: "replication epoch",
        type: "gauge",
        samples: [{ value: s.epoch }],
      },
      {
        name: "repl_seq",
        help: "primary: last frame made; standby: last frame applied",
        type: "gauge",
        samples: [{ value: s.seq }],
      },
      {
        name: "repl_acked_seq",
        help: "last frame the standby confirmed (primary)",
        type: "gauge",
        samples: [{ value: s.acked }],
      },
      {
        name: "repl_pending_frames",
        help: "frames made and not confirmed by the standby",
        type: "gauge",
        samples: [{ value: s.pending }],
      },
      {
        name: "repl_lag_seconds",
        help: "age of the oldest change the standby has not confirmed",
        type: "gauge",
        samples: [{ value: s.lagMs / 1000 }],
      },
      {
        name: "repl_link_up",
        help: "1 when the standby answers (primary)",
        type: "gauge",
        samples: [{ value: s.link === "up" ? 1 : 0 }],
      },
      {
        name: "repl_resync_bytes",
        help: "bytes of the snapshot being installed so far (standby; 0 when none)",
        type: "gauge",
        samples: [{ value: s.resync?.bytes ?? 0 }],
      },
      {
        name: "repl_resync_total_bytes",
        help: "size of the snapshot being installed (standby; 0 when none)",
        type: "gauge",
        samples: [{ value: s.resync?.total ?? 0 }],
      },
    ];
  }
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
