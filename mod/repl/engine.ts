/**
 * Replication of the store from the primary to the standby: SQLite session-extension
 * changesets, batched, numbered, checksummed, applied on the standby one transaction per
 * frame; a full resync from a snapshot when anything does not line up; the unreplicated
 * tail of a returning ex-primary set aside in a file, never merged. docs/ha.md
 * ("Replication") is the reference.
 *
 * Transport-agnostic: the primary sends through a {@link ReplTransport}; the standby's
 * engine is the {@link ReplReceiver} the transport delivers to.
 * @module
 */
import { constants, type DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { EventBus } from "../events/mod.ts";
import { type Clock, systemClock, type TimerId } from "../module.ts";
import {
  type RefusalReason,
  ReplAckTimeoutError,
  ReplConfigError,
  ReplFrameError,
  ReplHandingOverError,
  ReplNoPrimaryKeyError,
  ReplNotPrimaryError,
  ReplReadOnlyError,
  ReplStandbyLostError,
} from "./errors.ts";
import { concatFrames, decodeFrames, encodeFrame, type Frame, hex } from "./frame.ts";
import type {
  EpochStart,
  ReplAck,
  ReplReceiver,
  ReplTransport,
  SnapshotMeta,
} from "./transport.ts";
import "./events.ts";
import type { GroupSpec } from "./registry.ts";

/** The last write to a replicated table the standby guard refused (process-wide). */
let lastRefusal: { table: string; at: number } | null = null;
const SQLITE_AUTH = 23;
/** `setAuthorizer` exists on Deno 2.9.6's DatabaseSync but not in its type declarations. */
interface AuthorizerDb {
  setAuthorizer(fn: ((action: number, arg1: string | null) => number) | null): void;
}
/** SQLite authorizer codes (missing from node:sqlite's type declarations). */
const AUTH = { ok: 0, deny: 1, delete: 9, insert: 18, update: 23 } as const;

/**
 * When `e` is SQLite's "not authorized" raised by a standby's guard (a write to a
 * replicated table), the {@link ReplReadOnlyError} to answer instead (409, naming the
 * table); else null. The web app maps errors through it.
 */
export function replicaRefusal(e: unknown): ReplReadOnlyError | null {
  if (e instanceof ReplReadOnlyError) return e;
  if (typeof e !== "object" || e === null) return null;
  if ((e as { errcode?: unknown }).errcode !== SQLITE_AUTH || !lastRefusal) return null;
  if (Date.now() - lastRefusal.at > 10_000) return null;
  return new ReplReadOnlyError(lastRefusal.table);
}

/** Options of a {@link Replicator}. */
export interface ReplOptions {
  /** The store's connection: the ONLY connection that writes replicated tables. */
  db: DatabaseSync;
  /** Identity of the pair (frames of another pair are refused). */
  pairId: string;
  /**
   * The channel: the client set whose role this engine follows (`a` by default; `b` in
   * an active-active pair). Its frames, snapshots, sequence, epochs and tail files are its
   * own; frames or snapshots of another channel are refused (`wrong_channel`).
   */
  channel?: string;
  /** Table groups by name. */
  groups: Record<string, GroupSpec>;
  /** Replicated tables → their group. Every table needs a PRIMARY KEY. */
  tables: Record<string, string>;
  /** Where a returning ex-primary writes its tail files. */
  tailDir: string;
  /** Where snapshots are staged while they arrive (default `tailDir`). */
  stagingDir?: string;
  /** Link to the standby (primary side). */
  transport?: ReplTransport;
  /** Event bus (journal). */
  bus?: EventBus;
  /** Injected time. */
  clock?: Clock;
  /** Longest time changes wait before they are shipped (default 50 ms). */
  batchMs?: number;
  /** A send not answered in this time marks the standby lost (default 2000 ms). */
  ackTimeoutMs?: number;
  /** Retry a lost standby this often (default 1000 ms). */
  retryMs?: number;
  /** Keep at most this many unacknowledged frames; beyond, the standby needs a resync. */
  maxLogFrames?: number;
  /** Snapshot chunk size (default 1 MiB). */
  chunkBytes?: number;
  /** Schema version of the replicated tables (default: a digest of `schema_versions`). */
  schemaVersion?: () => string;
}

/** What {@link Replicator.write} returns. */
export interface WriteResult<T> {
  /** What the callback returned. */
  value: T;
  /** The frame that carries the write (undefined when it changed nothing replicated yet). */
  seq?: number;
  /** For sync groups: true when the standby confirmed it. */
  replicated: boolean;
}

/** Engine status (for `ha status`, metrics, the HA page). */
export interface ReplStatus {
  /** The channel (client set) this engine replicates. */
  channel: string;
  /** Role of the engine. */
  role: "primary" | "standby" | "idle";
  /** Current epoch. */
  epoch: number;
  /** Primary: last frame made; standby: last frame applied. */
  seq: number;
  /** Primary: last seq the standby confirmed. */
  acked: number;
  /** Primary: is the standby answering. */
  link: "up" | "down" | "unknown";
  /** Primary: frames made and not confirmed. */
  pending: number;
  /** Primary: age of the oldest unconfirmed change (ms), 0 when none. */
  lagMs: number;
  /** Standby: a snapshot is being installed (bytes so far / total). */
  resync: { bytes: number; total: number } | null;
  /**
   * Primary: the standby has not installed this epoch's snapshot yet (after a promotion,
   * or when the log no longer holds what it misses): its copy is not this one, whatever
   * `pending` says. Standby: it needs a new snapshot (a table registered after the last
   * one, which held none of its rows here).
   */
  snapshotDue: boolean;
  /** Schema version. */
  schemaVersion: string;
}

type Session = ReturnType<DatabaseSync["createSession"]>;

interface Waiter {
  seq: number;
  group: string;
  resolve: (replicated: boolean) => void;
  reject: (e: Error) => void;
}

/**
 * The engine's local tables, per channel (`channel` is the client set: `a`, and `b` in an
 * active-active pair). `repl_log` and `repl_epochs` have a `channel` column (version 1 had
 * none: see {@link migrateState}); `repl_state` keeps its version-1 shape (`key` primary
 * key, so an older build rolled back to still writes it) and channel b's keys are prefixed
 * `b:` ({@link stateKey}).
 */
const STATE_DDL = `
CREATE TABLE IF NOT EXISTS repl_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS repl_log (channel TEXT NOT NULL DEFAULT 'a', seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL, made INTEGER NOT NULL, frame BLOB NOT NULL, PRIMARY KEY (channel, seq));
CREATE TABLE IF NOT EXISTS repl_epochs (channel TEXT NOT NULL DEFAULT 'a', epoch INTEGER NOT NULL,
  start_seq INTEGER NOT NULL, PRIMARY KEY (channel, epoch));
`;

/**
 * Bring the engine's local tables to the per-channel shape, keeping what they hold: a
 * store made before channels existed has `repl_state`/`repl_log`/`repl_epochs` without a
 * `channel` column; their rows become channel `a`'s (the only channel there was). One
 * transaction; idempotent.
 */
export function migrateState(db: DatabaseSync): void {
  const old = ["repl_log", "repl_epochs"].filter((t) => {
    const cols = tableColumns(db, t);
    return cols.length > 0 && !cols.some((c) => c.name === "channel");
  });
  // a development build keyed repl_state by (channel, key): back to key, prefixed
  const keyed = tableColumns(db, "repl_state").some((c) => c.name === "channel");
  if (!old.length && !keyed) {
    db.exec(STATE_DDL);
    return;
  }
  const copy: Record<string, string> = {
    repl_log: "seq, epoch, made, frame",
    repl_epochs: "epoch, start_seq",
  };
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const t of old) db.exec(`ALTER TABLE ${t} RENAME TO ${t}_v1`);
    if (keyed) db.exec("ALTER TABLE repl_state RENAME TO repl_state_ch");
    db.exec(STATE_DDL);
    for (const t of old) {
      db.exec(`INSERT INTO ${t} (channel, ${copy[t]}) SELECT 'a', ${copy[t]} FROM ${t}_v1`);
      db.exec(`DROP TABLE ${t}_v1`);
    }
    if (keyed) {
      db.exec(
        `INSERT INTO repl_state (key, value) SELECT CASE channel WHEN 'a' THEN key
           ELSE channel || ':' || key END, value FROM repl_state_ch`,
      );
      db.exec("DROP TABLE repl_state_ch");
    }
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

/** Prefix of the `repl_state` keys that list the tables whose copy is the pair's. */
const WHOLE = "whole:";

/** The `repl_state` key of a channel's `key`: as is for channel a, `b:key` for b. */
export function stateKey(channel: string, key: string): string {
  return channel === "a" ? key : `${channel}:${key}`;
}

/** A channel's name: the client set it follows (`a`, `b`). */
export const CHANNEL_RE = /^[a-z][a-z0-9]{0,15}$/;

/**
 * The standby guard is ONE SQLite authorizer per connection, shared by every channel's
 * engine on it: a write to a table is refused when the engine owning the table's channel
 * is the standby (guarded), unless some engine is applying (its own frames or snapshot,
 * synchronous on the connection, so nothing else runs meanwhile).
 */
interface GuardEntry {
  guarded: boolean;
  applying: boolean;
  owns(table: string): boolean;
}
const guards = new WeakMap<DatabaseSync, Set<GuardEntry>>();

/** (Re)install the connection's authorizer; setting it expires prepared statements. */
function installGuard(db: DatabaseSync): void {
  if (!db.isOpen) return;
  const set = guards.get(db);
  const on = set ? [...set].some((g) => g.guarded) : false;
  (db as unknown as AuthorizerDb).setAuthorizer(
    on
      ? (action: number, table: string | null) => {
        if (
          table === null ||
          (action !== AUTH.insert && action !== AUTH.update && action !== AUTH.delete)
        ) return AUTH.ok;
        let deny = false;
        for (const g of set!) {
          if (g.applying) return AUTH.ok;
          if (g.guarded && g.owns(table)) deny = true;
        }
        if (!deny) return AUTH.ok;
        lastRefusal = { table, at: Date.now() };
        return AUTH.deny;
      }
      : null,
  );
}
/** Tables of the engine itself: local to each node, never replicated. */
export const REPL_LOCAL_TABLES: readonly string[] = ["repl_state", "repl_log", "repl_epochs"];

/**
 * Default schema version: a digest of every module's migration version, so two nodes
 * running different migrations never exchange changesets.
 */
export function defaultSchemaVersion(db: DatabaseSync): string {
  const rows = db.prepare("SELECT module, version FROM schema_versions ORDER BY module").all() as {
    module: string;
    version: number;
  }[];
  const s = rows.map((r) => `${r.module}:${r.version}`).join(",");
  return "sv1-" + createHash("sha256").update(s).digest("hex").slice(0, 16);
}

/** Quote an SQL identifier. */
function q(id: string): string {
  return `"${id.replaceAll('"', '""')}"`;
}

/**
 * Hex SHA-256 of a table's rows in primary-key order (compare two nodes' copies).
 * `schema` is `main` or an attached database.
 */
export function tableDigest(db: DatabaseSync, table: string, schema = "main"): string {
  const cols = tableColumns(db, table, schema);
  const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => q(c.name));
  const order = pk.length ? pk.join(", ") : "rowid";
  const h = createHash("sha256");
  const it = db.prepare(
    `SELECT ${cols.map((c) => q(c.name)).join(", ")} FROM ${q(schema)}.${
      q(table)
    } ORDER BY ${order}`,
  );
  for (const row of it.iterate() as Iterable<Record<string, unknown>>) {
    for (const v of Object.values(row)) {
      if (v instanceof Uint8Array) h.update("b:" + hex(v));
      else h.update(typeof v + ":" + String(v));
      h.update("\x1f");
    }
    h.update("\x1e");
  }
  return h.digest("hex");
}

function tableColumns(
  db: DatabaseSync,
  table: string,
  schema = "main",
): { name: string; pk: number }[] {
  return db.prepare(`PRAGMA ${q(schema)}.table_info(${q(table)})`).all() as {
    name: string;
    pk: number;
  }[];
}

/**
 * The replication engine of one node. Both nodes run one; the HA role decides which
 * is {@link promote}d (primary: captures and sends) and which {@link demote}d (standby:
 * receives, applies, asks for a resync when anything is off).
 */
export class Replicator implements ReplReceiver {
  readonly #db: DatabaseSync;
  readonly #pairId: string;
  readonly #groups: Record<string, Required<GroupSpec>>;
  readonly #tables: string[];
  readonly #tableGroup: Record<string, string>;
  readonly #bus: EventBus | undefined;
  readonly #clock: Clock;
  readonly #batchMs: number;
  readonly #ackTimeoutMs: number;
  readonly #retryMs: number;
  readonly #maxLogFrames: number;
  readonly #chunkBytes: number;
  readonly #tailDir: string;
  readonly #stagingDir: string;
  readonly #schemaVersion: () => string;
  readonly #customSchema: boolean;
  #transport: ReplTransport | undefined;

  #role: "primary" | "standby" | "idle" = "idle";
  #epoch = 0;
  #seq = 0;
  #acked = 0;
  #sessions = new Map<string, Session>();
  #dirtySince = 0;
  #batchTimer: TimerId | undefined;
  #retryTimer: TimerId | undefined;
  #pumping: Promise<void> | undefined;
  #kick = false;
  #link: "up" | "down" | "unknown" = "unknown";
  #downSince = 0;
  #needSnapshot = false;
  #waiters: Waiter[] = [];
  #resync: { bytes: number; total: number } | null = null;
  #pendingTailFromEpoch: number | undefined;
  #epochFloor = 0;
  /**
   * Bumped at every role change (promote, resume, demote, stop): a send made in an earlier
   * term whose answer arrives late moves nothing (link, acked, waiters, snapshot flag).
   */
  #term = 0;
  readonly #channel: string;
  readonly #guard: GuardEntry;

  /**
   * Check the registry (every table exists and has a PRIMARY KEY, every group is
   * declared) and create the engine's local tables. Throws {@link ReplNoPrimaryKeyError}
   * or {@link ReplConfigError}; nothing is replicated until {@link promote} or
   * {@link demote}.
   */
  constructor(opts: ReplOptions) {
    this.#db = opts.db;
    this.#pairId = opts.pairId;
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(opts.pairId)) {
      throw new ReplConfigError("pairId", "1–128 letters, digits, '.', '_' or '-'");
    }
    this.#channel = opts.channel ?? "a";
    if (!CHANNEL_RE.test(this.#channel)) {
      throw new ReplConfigError("channel", "a lower-case letter, then up to 15 letters or digits");
    }
    this.#groups = {};
    for (const [name, g] of Object.entries(opts.groups)) {
      if (g.durability !== "sync" && g.durability !== "async") {
        throw new ReplConfigError(`groups.${name}.durability`, "must be sync or async");
      }
      this.#groups[name] = { onStandbyLost: "continue", set: "a", ...g };
    }
    this.#tableGroup = { ...opts.tables };
    this.#tables = Object.keys(opts.tables);
    for (const [table, group] of Object.entries(opts.tables)) {
      if (!this.#groups[group]) {
        throw new ReplConfigError(`tables.${table}`, `unknown group "${group}"`);
      }
      this.#checkSet(table, group);
      this.#checkTable(table);
    }
    this.#bus = opts.bus;
    this.#clock = opts.clock ?? systemClock;
    this.#batchMs = opts.batchMs ?? 50;
    this.#ackTimeoutMs = opts.ackTimeoutMs ?? 2000;
    this.#retryMs = opts.retryMs ?? 1000;
    this.#maxLogFrames = opts.maxLogFrames ?? 10_000;
    this.#chunkBytes = opts.chunkBytes ?? 1024 * 1024;
    this.#tailDir = opts.tailDir;
    this.#stagingDir = opts.stagingDir ?? opts.tailDir;
    if (opts.schemaVersion) this.#schemaVersion = opts.schemaVersion;
    else {
      // recomputed only when SQLite's schema cookie moves (any DDL, i.e. a migration)
      const cookie = opts.db.prepare("PRAGMA schema_version");
      let seen = -1, cached = "";
      this.#schemaVersion = () => {
        const c = Number((cookie.get() as { schema_version: number }).schema_version);
        if (c !== seen) (cached = defaultSchemaVersion(opts.db), seen = c);
        return cached;
      };
    }
    this.#customSchema = opts.schemaVersion !== undefined;
    this.#transport = opts.transport;
    migrateState(this.#db);
    const tableGroup = this.#tableGroup;
    this.#guard = { guarded: false, applying: false, owns: (t) => t in tableGroup };
    let set = guards.get(this.#db);
    if (!set) guards.set(this.#db, set = new Set());
    set.add(this.#guard);
    this.#epoch = this.#getState("epoch");
    this.#seq = this.#getState("seq");
    this.#acked = this.#getState("acked");
  }

  /** Set (or replace) the link to the standby. */
  setTransport(t: ReplTransport | undefined): void {
    this.#transport = t;
  }

  /** The engine's state. */
  status(): ReplStatus {
    const oldest = this.#role === "primary" && this.#seq > this.#acked
      ? this.#db.prepare(
        "SELECT made FROM repl_log WHERE channel = ? AND seq > ? ORDER BY seq LIMIT 1",
      ).get(this.#channel, this.#acked) as { made: number } | undefined
      : undefined;
    return {
      channel: this.#channel,
      role: this.#role,
      epoch: this.#epoch,
      seq: this.#seq,
      acked: this.#role === "primary" ? this.#acked : this.#seq,
      link: this.#link,
      pending: this.#role === "primary" ? this.#seq - this.#acked : 0,
      lagMs: oldest ? Math.max(0, this.#clock.now() - oldest.made) : 0,
      resync: this.#resync ? { ...this.#resync } : null,
      snapshotDue: this.#role === "primary"
        ? this.#needSnapshot
        : this.#role === "standby" && this.#snapshotWanted !== null,
      schemaVersion: this.#schemaVersion(),
    };
  }

  /** The group of a replicated table (undefined when it is not replicated). */
  tableGroup(table: string): string | undefined {
    return this.#tableGroup[table];
  }

  /** The replicated tables, in registry order. */
  get tables(): readonly string[] {
    return this.#tables;
  }

  /**
   * Become the primary again at the SAME epoch, when this node was the primary of the
   * epoch it is at (a restart of the active's process with no failover in between): the
   * log of unacknowledged frames is kept and replayed, so the standby catches up without a
   * snapshot (if the standby moved to a newer epoch meanwhile, it refuses — `stale_epoch`).
   * Anything else is a {@link promote}. Returns the epoch.
   */
  resume(): number {
    if (this.#epoch === 0 || this.#getState("primary_epoch") !== this.#epoch) {
      return this.promote();
    }
    this.#stopTimers();
    this.#setGuard(false);
    this.#term++;
    this.#role = "primary";
    this.#link = "unknown";
    this.#needSnapshot = false;
    this.#markWhole(this.#tables);
    this.#persistedAcked = this.#acked;
    this.#openSessions();
    this.#batchTimer = this.#clock.setInterval(() => this.#tick(), this.#batchMs);
    this.#pump();
    return this.#epoch;
  }

  /**
   * Become the primary of a new epoch (epoch + 1): capture starts, the standby will be
   * resynced from a snapshot (its epoch differs). The local log of an older epoch is
   * dropped: its changes are in this node's data.
   */
  promote(): number {
    this.#handingOver = false;
    this.#stopTimers();
    const history = this.#history();
    const top = Math.max(this.#epoch, this.#epochFloor, ...history.map((h) => h.epoch));
    this.#epoch = top + 1;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#db.prepare(
        "INSERT OR REPLACE INTO repl_epochs (channel, epoch, start_seq) VALUES (?, ?, ?)",
      ).run(this.#channel, this.#epoch, this.#seq);
      this.#db.prepare("DELETE FROM repl_log WHERE channel = ?").run(this.#channel);
      this.#acked = this.#seq;
      this.#setState("epoch", this.#epoch);
      this.#setState("acked", this.#acked);
      this.#setState("primary_epoch", this.#epoch);
      this.#markWhole(this.#tables); // a primary's copy is the pair's
      this.#db.exec("COMMIT");
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
    this.#persistedAcked = this.#acked;
    this.#setGuard(false);
    this.#term++;
    this.#role = "primary";
    this.#link = "unknown";
    // the standby is at another epoch: it needs this epoch's snapshot (which is also
    // when a returning ex-primary sets its tail aside); sent as soon as it answers
    this.#needSnapshot = true;
    this.#openSessions();
    this.#batchTimer = this.#clock.setInterval(() => this.#tick(), this.#batchMs);
    this.#publish("repl.promoted", "notice", {
      pairId: this.#pairId,
      epoch: this.#epoch,
      startSeq: this.#seq,
    });
    this.#pump();
    return this.#epoch;
  }

  /**
   * Become (or stay) the standby. A node that was primary keeps its unacknowledged
   * frames in its log until the new primary's snapshot tells which of them it never
   * took; those are then set aside ({@link ReplStatus}, `repl.tail_saved`).
   */
  demote(): void {
    this.#handingOver = false;
    if (this.#role === "primary") {
      this.#flush();
      this.#persistAcked();
      this.#pendingTailFromEpoch = this.#epoch;
    }
    this.#stopTimers();
    this.#closeSessions();
    this.#term++;
    this.#role = "standby";
    this.#link = "unknown";
    this.#snapshotWanted = this.#notWhole();
    this.#setGuard(true);
    this.#failWaiters("this node is no longer the primary");
  }

  /**
   * On the standby, writes to replicated tables through this connection are refused
   * (SQLite authorizer: "not authorized", mapped by {@link replicaRefusal}); the engine's
   * own applies pass. Statements prepared earlier are re-checked (SQLite expires them
   * when the authorizer changes).
   */
  #setGuard(on: boolean): void {
    if (on === this.#guard.guarded || !this.#db.isOpen) return;
    this.#guard.guarded = on;
    installGuard(this.#db);
  }

  /** The channel (client set) this engine replicates. */
  get channel(): string {
    return this.#channel;
  }

  /**
   * Declare more replicated tables at run time (a module or an SDK subsystem that
   * starts later); checked like the constructor's. `spec` defines the group when it is
   * new (a configured group keeps the config's durability). A primary starts capturing them at
   * once; a standby accepts their frames from now on (before, a frame touching a table
   * it does not know is refused, `schema_mismatch`, and retried by the primary).
   */
  addTables(group: string, tables: readonly string[], spec?: GroupSpec): void {
    // a group the config (or an earlier declaration) defined keeps its durability
    if (spec && !this.#groups[group]) {
      this.#groups[group] = { onStandbyLost: "continue", set: "a", ...spec };
    }
    if (!this.#groups[group]) throw new ReplConfigError(`tables`, `unknown group "${group}"`);
    for (const t of tables) {
      const had = this.#tableGroup[t];
      if (had !== undefined && had !== group) {
        throw new ReplConfigError(`tables.${t}`, `already replicated in group "${had}"`);
      }
      this.#checkSet(t, group);
      this.#checkTable(t);
    }
    const added = [...new Set(tables)].filter((t) => this.#tableGroup[t] === undefined);
    for (const t of added) {
      this.#tableGroup[t] = group;
      this.#tables.push(t);
      if (this.#role === "primary") this.#sessions.set(t, this.#db.createSession({ table: t }));
    }
    if (this.#role === "primary") this.#markWhole(added);
    // a snapshot installed before copied none of a new table's rows: this copy of it is not
    // the primary's, and frames only carry later changes; ask for a new snapshot
    else if (this.#role === "standby") this.#snapshotWanted ??= this.#notWhole();
  }

  /** A table registered after the last snapshot: the next frames are answered with a resync. */
  #snapshotWanted: string | null = null;

  /**
   * The tables whose copy here is the pair's, kept in `repl_state` as `whole:<table>` (per
   * channel) so that a restart remembers them: those the last installed snapshot copied,
   * and those this node replicated as a primary. Null for a store that has no record yet
   * (no snapshot installed and never primary since this was kept): nothing is asked then.
   */
  #whole(): Set<string> | null {
    const prefix = stateKey(this.#channel, WHOLE);
    const rows = this.#stmt("SELECT key FROM repl_state WHERE key >= ? AND key < ?")
      .all(prefix, prefix + "\uffff") as { key: string }[];
    return rows.length ? new Set(rows.map((r) => r.key.slice(prefix.length))) : null;
  }

  /** The first replicated table not known to be whole here, or null. */
  #notWhole(): string | null {
    const whole = this.#whole();
    return whole === null ? null : this.#tables.find((t) => !whole.has(t)) ?? null;
  }

  /** Record `tables` as whole here; with `only`, they are the only ones (a snapshot). */
  #markWhole(tables: readonly string[], only = false): void {
    const prefix = stateKey(this.#channel, WHOLE);
    if (only) {
      this.#stmt("DELETE FROM repl_state WHERE key >= ? AND key < ?").run(
        prefix,
        prefix + "\uffff",
      );
    }
    const ins = this.#stmt("INSERT OR IGNORE INTO repl_state (key, value) VALUES (?, 1)");
    for (const t of tables) ins.run(prefix + t);
  }

  /** Change a group's durability (config). */
  setGroup(name: string, spec: GroupSpec): void {
    if (spec.durability !== "sync" && spec.durability !== "async") {
      throw new ReplConfigError(`groups.${name}.durability`, "must be sync or async");
    }
    this.#groups[name] = {
      onStandbyLost: "continue",
      set: this.#groups[name]?.set ?? "a",
      ...spec,
    };
  }

  /** The groups and their durability. */
  groups(): Record<string, Required<GroupSpec>> {
    return Object.fromEntries(Object.entries(this.#groups).map(([n, g]) => [n, { ...g }]));
  }

  /** A table replicates on the channel of its group's client set. */
  #checkSet(table: string, group: string): void {
    const set = this.#groups[group].set;
    if (set !== this.#channel) {
      throw new ReplConfigError(
        `tables.${table}`,
        `group "${group}" is on set ${set}, this engine replicates channel ${this.#channel}`,
      );
    }
  }

  #checkTable(table: string): void {
    if (REPL_LOCAL_TABLES.includes(table)) {
      throw new ReplConfigError(`tables.${table}`, "is the engine's own local table");
    }
    const cols = tableColumns(this.#db, table);
    if (!cols.length) {
      throw new ReplConfigError(`tables.${table}`, "no such table (run its migration first)");
    }
    if (!cols.some((c) => c.pk > 0)) throw new ReplNoPrimaryKeyError(table);
  }

  /** Stop everything (shutdown); state stays on disk. */
  stop(): void {
    if (this.#role === "primary" && this.#db.isOpen) this.#flush(), this.#persistAcked();
    this.#stopTimers();
    this.#closeSessions();
    this.#setGuard(false);
    guards.get(this.#db)?.delete(this.#guard);
    this.#term++;
    this.#role = "idle";
    this.#failWaiters("replication stopped");
  }

  /**
   * Run `fn` in one transaction on the store and replicate it with the group's
   * durability. `sync`: resolves after the standby applied it (`replicated: true`), or,
   * with the standby gone, `replicated: false` (`continue`) or a rejection
   * (`refuse`: {@link ReplStandbyLostError} before anything is written, or
   * {@link ReplAckTimeoutError} when the standby vanished while the write waited —
   * committed locally, not confirmed). `async`: resolves at once.
   */
  async write<T>(group: string, fn: (db: DatabaseSync) => T): Promise<WriteResult<T>> {
    const g = this.#groups[group];
    if (!g) throw new ReplConfigError("group", `unknown group "${group}"`);
    if (g.set !== this.#channel) {
      throw new ReplConfigError(
        "group",
        `group "${group}" is on channel ${g.set}, not ${this.#channel}`,
      );
    }
    if (this.#role !== "primary") throw new ReplNotPrimaryError(this.#role);
    if (this.#handingOver) throw new ReplHandingOverError();
    const refuse = g.durability === "sync" && g.onStandbyLost === "refuse";
    if (refuse && this.#link === "down") {
      throw new ReplStandbyLostError(group, "the last send to it failed");
    }
    if (refuse && !this.#transport) throw new ReplStandbyLostError(group, "no link to a standby");
    let value: T;
    let seq: number | undefined;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      value = fn(this.#db);
      if (typeof (value as { then?: unknown } | null)?.then === "function") {
        throw new ReplConfigError(
          "write",
          "the callback returned a promise: a replicated write is one synchronous transaction (rolled back)",
        );
      }
      if (g.durability === "sync") seq = this.#flushInTransaction();
      this.#db.exec("COMMIT");
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      // a rolled-back transaction leaves nothing in the sessions (SQLite re-reads rows)
      throw e;
    }
    if (g.durability === "async") {
      this.#markDirty();
      return { value, replicated: false };
    }
    if (seq === undefined) return { value, replicated: true }; // nothing replicated changed
    if (!this.#transport || this.#link === "down") {
      return { value, seq, replicated: false };
    }
    const replicated = await new Promise<boolean>((resolve, reject) => {
      this.#waiters.push({ seq, group, resolve, reject });
      this.#pump();
    });
    return { value, seq, replicated };
  }

  /**
   * Refuse up front what a `refuse` sync group would refuse: throws
   * {@link ReplStandbyLostError} when some sync group (or `group`) refuses writes while
   * the standby is gone and it is gone now. For writers that do not go through
   * {@link write} (the web API checks it before a change).
   */
  admit(group?: string): void {
    if (this.#role !== "primary") return;
    if (this.#handingOver) throw new ReplHandingOverError();
    for (const [name, g] of Object.entries(this.#groups)) {
      if (group !== undefined && name !== group) continue;
      if (g.set !== this.#channel) continue;
      if (g.durability !== "sync" || g.onStandbyLost !== "refuse") continue;
      if (this.#link === "down") throw new ReplStandbyLostError(name, "the last send to it failed");
      if (!this.#transport) throw new ReplStandbyLostError(name, "no link to a standby");
    }
  }

  /**
   * Seal whatever the store's connection changed in replicated tables since the last
   * frame (writes made outside {@link write}, e.g. by the web API) and wait until the
   * standby applied it. Resolves true when confirmed (or nothing was pending), false when
   * the standby is gone (the changes stay committed locally and are shipped when it
   * returns). Never rejects on the standby's account.
   */
  #handingOver = false;

  /**
   * A graceful handover begins (primary only): from now on writes are refused
   * ({@link ReplHandingOverError}) until this node is demoted (or {@link endHandover});
   * resolves true once the standby confirmed everything made before, false when it did
   * not within `ms` or is gone (the handover must then not happen: call endHandover).
   */
  async beginHandover(ms: number): Promise<boolean> {
    if (this.#role !== "primary") return true;
    this.#handingOver = true;
    let timer: TimerId | undefined;
    try {
      return await Promise.race([
        this.barrier(),
        new Promise<boolean>((r) => timer = this.#clock.setTimeout(() => r(false), ms)),
      ]);
    } finally {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
  }

  /** Writes are taken again (a handover that did not happen). */
  endHandover(): void {
    this.#handingOver = false;
  }

  /** True between {@link beginHandover} and the demotion (or {@link endHandover}). */
  get handingOver(): boolean {
    return this.#handingOver;
  }

  async barrier(): Promise<boolean> {
    if (this.#role !== "primary") return false;
    const seq = this.#flush() ?? this.#seq;
    // a standby still owed this epoch's snapshot has confirmed nothing of this epoch, even
    // when no frame was made since the promotion (acked starts at the promotion's seq)
    if (seq <= this.#acked && !this.#needSnapshot) return true;
    if (!this.#transport || this.#link === "down") return false;
    return await new Promise<boolean>((resolve) => {
      this.#waiters.push({ seq, group: "", resolve, reject: () => resolve(false) });
      this.#pump();
    });
  }

  /** Ship what is pending now (async changes included); resolves when the pump is idle. */
  async flushNow(): Promise<void> {
    if (this.#role !== "primary") return;
    this.#flush();
    await this.#pump();
  }

  // ---------------------------------------------------------------- primary: capture

  #openSessions(): void {
    this.#closeSessions();
    for (const t of this.#tables) this.#sessions.set(t, this.#db.createSession({ table: t }));
  }

  #closeSessions(): void {
    for (const s of this.#sessions.values()) {
      try {
        s.close();
      } catch { /* already closed with the db */ }
    }
    this.#sessions.clear();
  }

  #markDirty(): void {
    if (!this.#dirtySince) this.#dirtySince = this.#clock.now();
  }

  #tick(): void {
    if (this.#role !== "primary" || this.#db.isTransaction) return;
    this.#persistAcked();
    const seq = this.#flush();
    if (seq !== undefined || this.#seq > this.#acked || this.#needSnapshot) this.#pump();
  }

  #persistedAcked = -1;

  /** Prune acknowledged frames from the log and store `acked` (once per batch window). */
  #persistAcked(): void {
    if (this.#acked === this.#persistedAcked || this.#db.isTransaction) return;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#db.prepare("DELETE FROM repl_log WHERE channel = ? AND seq <= ?").run(
        this.#channel,
        this.#acked,
      );
      this.#setState("acked", this.#acked);
      this.#db.exec("COMMIT");
      this.#persistedAcked = this.#acked;
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  /** Seal captured changes into a frame in its own transaction. */
  #flush(): number | undefined {
    if (this.#role !== "primary" || !this.#db.isOpen) return undefined;
    if (this.#db.isTransaction) return this.#flushInTransaction();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const seq = this.#flushInTransaction();
      this.#db.exec("COMMIT");
      return seq;
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  /**
   * Take every session's changeset, restart the sessions, and log the frame — inside the
   * caller's transaction, so a frame exists exactly when its changes are committed.
   */
  #flushInTransaction(): number | undefined {
    const changesets: Uint8Array[] = [];
    for (const [t, s] of this.#sessions) {
      const cs = s.changeset();
      if (cs.length) {
        changesets.push(cs);
        s.close();
        this.#sessions.set(t, this.#db.createSession({ table: t }));
      }
    }
    this.#dirtySince = 0;
    if (!changesets.length) return undefined;
    const seq = this.#seq + 1;
    const frame = encodeFrame({
      pairId: this.#pairId,
      channel: this.#channel,
      epoch: this.#epoch,
      seq,
      schemaVersion: this.#schemaVersion(),
      changesets,
    });
    this.#stmt(
      "INSERT INTO repl_log (channel, seq, epoch, made, frame) VALUES (?, ?, ?, ?, ?)",
    ).run(
      this.#channel,
      seq,
      this.#epoch,
      this.#clock.now(),
      frame,
    );
    if (seq - this.#acked > this.#maxLogFrames) {
      // the standby is too far behind for catch-up: it will get a snapshot
      this.#db.prepare("DELETE FROM repl_log WHERE channel = ? AND seq <= ?").run(
        this.#channel,
        seq - this.#maxLogFrames,
      );
    }
    this.#seq = seq;
    this.#setState("seq", seq);
    return seq;
  }

  // ---------------------------------------------------------------- primary: sending

  /** Send unacknowledged frames (and a snapshot when needed) until caught up or down. */
  #pump(): Promise<void> {
    if (this.#role !== "primary" || !this.#transport) return Promise.resolve();
    if (this.#pumping) {
      this.#kick = true; // the running loop may be past its last check
      return this.#pumping;
    }
    this.#kick = false;
    this.#pumping = this.#pumpLoop().finally(() => {
      this.#pumping = undefined;
      if (this.#kick) this.#pump();
    });
    return this.#pumping;
  }

  async #pumpLoop(): Promise<void> {
    const t = this.#transport!;
    const term = this.#term;
    // an answer to a send of an earlier term (this node was demoted meanwhile, perhaps
    // promoted again) or over a replaced link says nothing about the standby now
    const stale = () => this.#term !== term || this.#role !== "primary" || this.#transport !== t;
    // a lost standby is tried again by the retry timer only
    if (this.#link === "down" && !this.#retryDue) return;
    this.#retryDue = false;
    while (!stale()) {
      try {
        if (this.#needSnapshot) {
          const ack = await this.#sendSnapshot(t, stale);
          if (stale()) return;
          this.#onAck(ack);
          if (!ack.ok) return this.#lost(`snapshot refused: ${ack.reason}: ${ack.message}`);
          continue;
        }
        if (this.#acked >= this.#seq) return;
        const rows = this.#stmt(
          "SELECT seq, frame FROM repl_log WHERE channel = ? AND seq > ? ORDER BY seq LIMIT 256",
        ).all(this.#channel, this.#acked) as { seq: number; frame: Uint8Array }[];
        if (!rows.length || rows[0].seq !== this.#acked + 1) {
          this.#needSnapshot = true; // the log no longer holds what the standby needs
          continue;
        }
        const ack = await this.#withTimeout((signal) =>
          t.sendFrames(concatFrames(rows.map((r) => r.frame)), signal)
        );
        if (stale()) return;
        this.#onAck(ack);
        if (!ack.ok && ack.reason === "stale_epoch" && ack.epoch >= this.#epoch) {
          // the standby saw a newer epoch than ours (it was promoted while this node's
          // process was away, then this node became active again): this node is the
          // active now, so it starts an epoch above the standby's and resyncs it (the
          // standby sets its own tail aside)
          this.#epochFloor = ack.epoch;
          queueMicrotask(() => this.#role === "primary" && this.promote());
          return;
        }
        if (!ack.ok && !ack.needSnapshot) {
          return this.#lost(`refused: ${ack.reason}: ${ack.message ?? ""}`);
        }
      } catch (e) {
        // a send that failed after this node was demoted (or its link replaced) says
        // nothing about the standby: no repl.standby_lost from a node that is one now
        if (stale()) return;
        return this.#lost(e instanceof Error ? e.message : String(e));
      }
    }
  }

  #retryDue = false;

  async #withTimeout<T>(
    fn: (signal: AbortSignal) => Promise<T>,
    ms = this.#ackTimeoutMs,
  ): Promise<T> {
    const ac = new AbortController();
    let timer: TimerId | undefined;
    try {
      return await Promise.race([
        fn(ac.signal),
        new Promise<never>((_, reject) => {
          timer = this.#clock.setTimeout(() => {
            ac.abort();
            reject(new Error(`no answer within ${ms} ms`));
          }, ms);
        }),
      ]);
    } finally {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
  }

  #onAck(ack: ReplAck): void {
    if (ack.needSnapshot) this.#needSnapshot = true;
    if (!ack.ok && !ack.needSnapshot) return;
    if (this.#link !== "up") {
      if (this.#link === "down") {
        this.#publish("repl.standby_back", "notice", {
          pairId: this.#pairId,
          acked: ack.seq,
          downMs: this.#clock.now() - this.#downSince,
        });
      }
      this.#link = "up";
    }
    if (ack.ok && ack.epoch === this.#epoch && ack.seq <= this.#seq) {
      // the log is pruned and `acked` persisted by the next tick (one transaction per
      // batch window, not per ack: a lagging persisted `acked` only keeps acked frames
      // in the log a little longer; the tail of an ex-primary is cut at the new epoch's
      // start seq, not at `acked`)
      if (ack.seq > this.#acked) this.#acked = ack.seq;
      // waiters resolve once the standby holds this epoch's copy (a snapshot's ack with no
      // frame made since the promotion moves no `acked`, and still confirms the barrier)
      if (!this.#needSnapshot) {
        const done = this.#waiters.filter((w) => w.seq <= this.#acked);
        this.#waiters = this.#waiters.filter((w) => w.seq > this.#acked);
        for (const w of done) w.resolve(true);
      }
    }
  }

  #lost(reason: string): void {
    if (this.#link !== "down") {
      this.#link = "down";
      this.#downSince = this.#clock.now();
      this.#publish("repl.standby_lost", "warning", {
        pairId: this.#pairId,
        reason,
        acked: this.#acked,
        pending: this.#seq - this.#acked,
      });
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (this.#groups[w.group]?.onStandbyLost === "refuse") {
        w.reject(new ReplAckTimeoutError(w.group, w.seq, reason));
      } else w.resolve(false);
    }
    if (this.#retryTimer === undefined && this.#role === "primary") {
      this.#retryTimer = this.#clock.setTimeout(() => {
        this.#retryTimer = undefined;
        this.#retryDue = true;
        this.#pump();
      }, this.#retryMs);
    }
  }

  async #sendSnapshot(t: ReplTransport, stale: () => boolean): Promise<ReplAck> {
    const started = this.#clock.now();
    this.#flush();
    const bytes = this.#db.serialize();
    const meta: SnapshotMeta = {
      pairId: this.#pairId,
      // named only off channel a: a peer from before channels reads channel a's as before
      ...(this.#channel !== "a" ? { channel: this.#channel } : {}),
      epoch: this.#epoch,
      seq: this.#seq,
      schemaVersion: this.#schemaVersion(),
      sha256: createHash("sha256").update(bytes).digest("hex"),
      bytes: bytes.length,
      history: this.#history(),
    };
    const chunk = this.#chunkBytes;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < bytes.length; o += chunk) yield bytes.subarray(o, o + chunk);
    }
    // bounded too: the ack timeout plus 1 s per MiB (a link slower than 1 MiB/s is lost)
    const ack = await this.#withTimeout(
      (signal) => t.sendSnapshot(meta, chunks(), signal),
      this.#ackTimeoutMs + Math.ceil(bytes.length / (1024 * 1024)) * 1000,
    );
    if (ack.ok && !stale()) {
      this.#needSnapshot = false;
      this.#publish("repl.snapshot_sent", "notice", {
        pairId: this.#pairId,
        epoch: meta.epoch,
        seq: meta.seq,
        bytes: meta.bytes,
        ms: this.#clock.now() - started,
      });
    }
    return ack;
  }

  #failWaiters(reason: string): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new ReplAckTimeoutError(w.group, w.seq, reason));
  }

  #stopTimers(): void {
    if (this.#batchTimer !== undefined) this.#clock.clearInterval(this.#batchTimer);
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    this.#batchTimer = this.#retryTimer = undefined;
  }

  // ---------------------------------------------------------------- standby: apply

  /**
   * Verify and apply frames, each in one transaction (all or nothing). Duplicates (seq
   * already applied) are skipped. Refusals are journalled (`repl.refused`, `repl.gap`).
   */
  receiveFrames(body: Uint8Array): ReplAck {
    if (this.#role !== "standby") {
      return this.#refuse("not_standby", `this node is ${this.#role}`, false);
    }
    if (this.#snapshotWanted !== null) {
      return this.#refuse(
        "schema_mismatch",
        `table "${this.#snapshotWanted}" was registered after the last snapshot (which held none ` +
          "of its rows here): a new snapshot is needed",
        true,
      );
    }
    let frames: Frame[];
    try {
      frames = decodeFrames(body);
    } catch (e) {
      if (e instanceof ReplFrameError) return this.#refuse(e.reason, e.message, true);
      throw e;
    }
    const sv = this.#schemaVersion();
    for (const f of frames) {
      if (f.pairId !== this.#pairId) {
        return this.#refuse("other_pair", `frame of pair "${f.pairId}"`, false);
      }
      if (f.channel !== this.#channel) {
        return this.#refuse(
          "wrong_channel",
          `frame of channel ${f.channel} delivered to channel ${this.#channel}`,
          false,
        );
      }
      if (f.schemaVersion !== sv) {
        return this.#refuse(
          "schema_mismatch",
          `frame schema ${f.schemaVersion}, this node ${sv}: run the same migrations on both nodes`,
          false,
        );
      }
      if (f.epoch < this.#epoch) {
        return this.#refuse("stale_epoch", `frame of epoch ${f.epoch} < ${this.#epoch}`, false);
      }
      if (f.epoch !== this.#epoch) {
        return this.#refuse("epoch_mismatch", `frame epoch ${f.epoch}, mine ${this.#epoch}`, true);
      }
      if (f.seq <= this.#seq) continue; // already applied (an ack was lost)
      if (f.seq !== this.#seq + 1) {
        this.#publish("repl.gap", "warning", {
          pairId: this.#pairId,
          expected: this.#seq + 1,
          got: f.seq,
          epoch: f.epoch,
        });
        return this.#refuse("gap", `expected seq ${this.#seq + 1}, got ${f.seq}`, true);
      }
      const err = this.#applyFrame(f);
      if (err instanceof ReplFrameError) return this.#refuse(err.reason, err.message, false);
      if (err) return this.#refuse("conflict", err, true);
    }
    return { ok: true, epoch: this.#epoch, seq: this.#seq };
  }

  #applyFrame(f: Frame): string | ReplFrameError | undefined {
    let conflict = "";
    let unknown = "";
    this.#guard.applying = true;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const cs of f.changesets) {
        const ok = this.#db.applyChangeset(cs, {
          filter: (t) => {
            if (t in this.#tableGroup) return true;
            unknown ||= t;
            return false;
          },
          onConflict: (type) => {
            conflict ||= CONFLICT_NAMES[type] ?? `type ${type}`;
            return constants.SQLITE_CHANGESET_ABORT;
          },
        });
        if (!ok) throw new Error(`apply conflict (${conflict || "aborted"})`);
        if (unknown) {
          throw new ReplFrameError(
            "schema_mismatch",
            `table "${unknown}" is not replicated on this node (its module has not registered it)`,
          );
        }
      }
      this.#setState("seq", f.seq);
      this.#db.exec("COMMIT");
      this.#seq = f.seq;
      return undefined;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      if (e instanceof ReplFrameError) return e;
      return `frame seq ${f.seq} not applied: ${e instanceof Error ? e.message : e}`;
    } finally {
      this.#guard.applying = false;
    }
  }

  #refuse(reason: RefusalReason, message: string, resync: boolean): ReplAck {
    this.#publish("repl.refused", resync ? "warning" : "error", {
      pairId: this.#pairId,
      reason,
      message,
      epoch: this.#epoch,
      seq: this.#seq,
      resync,
    });
    return {
      ok: false,
      epoch: this.#epoch,
      seq: this.#seq,
      reason,
      message,
      needSnapshot: resync,
    };
  }

  /**
   * Receive a snapshot: staged in a file while its checksum is computed; refused when
   * the checksum, size, pair or schema differ; else the replicated tables are replaced
   * from it in one transaction (local tables untouched). A node with an unreplicated
   * tail sets it aside first.
   */
  async receiveSnapshot(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<ReplAck> {
    if (this.#role !== "standby") {
      return this.#refuse("not_standby", `this node is ${this.#role}`, false);
    }
    if (meta.pairId !== this.#pairId) {
      return this.#refuse("other_pair", `snapshot of pair "${meta.pairId}"`, false);
    }
    if ((meta.channel ?? "a") !== this.#channel) {
      return this.#refuse(
        "wrong_channel",
        `snapshot of channel ${meta.channel ?? "a"} delivered to channel ${this.#channel}`,
        false,
      );
    }
    const sv = this.#schemaVersion();
    if (meta.schemaVersion !== sv) {
      return this.#refuse(
        "schema_mismatch",
        `snapshot schema ${meta.schemaVersion}, this node ${sv}`,
        false,
      );
    }
    if (meta.epoch < this.#epoch) {
      return this.#refuse("stale_epoch", `snapshot of epoch ${meta.epoch} < ${this.#epoch}`, false);
    }
    const started = this.#clock.now();
    this.#publish("repl.resync_started", "notice", {
      pairId: this.#pairId,
      epoch: meta.epoch,
      seq: meta.seq,
      bytes: meta.bytes,
    });
    await Deno.mkdir(this.#stagingDir, { recursive: true });
    const file = join(this.#stagingDir, `.snapshot-${crypto.randomUUID()}.db`);
    const fh = await Deno.open(file, { write: true, createNew: true });
    this.#resync = { bytes: 0, total: meta.bytes };
    try {
      const h = createHash("sha256");
      let got = 0;
      let nextReport = meta.bytes / 10;
      // small network chunks are gathered into large file writes
      const pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const spill = async () => {
        const buf = pending.length === 1 ? pending[0] : concatFrames(pending);
        pending.length = 0;
        pendingBytes = 0;
        let o = 0;
        while (o < buf.length) o += await fh.write(buf.subarray(o));
      };
      try {
        for await (const c of chunks) {
          got += c.length;
          if (got > meta.bytes) break;
          h.update(c);
          pending.push(c);
          pendingBytes += c.length;
          if (pendingBytes >= 8 * 1024 * 1024) await spill();
          this.#resync.bytes = got;
          if (got >= nextReport && got < meta.bytes) {
            while (nextReport <= got) nextReport += meta.bytes / 10;
            this.#publish("repl.resync_progress", "info", {
              pairId: this.#pairId,
              bytes: got,
              total: meta.bytes,
              percent: Math.floor((got / meta.bytes) * 100),
            });
          }
        }
        if (pendingBytes) await spill();
      } finally {
        fh.close();
      }
      const sha = h.digest("hex");
      if (got !== meta.bytes || sha !== meta.sha256) {
        return this.#refuse(
          "snapshot_checksum",
          got !== meta.bytes
            ? `snapshot has ${got} bytes, announced ${meta.bytes}`
            : `snapshot sha256 ${sha} ≠ announced ${meta.sha256}`,
          true,
        );
      }
      // a serialized WAL database says "WAL" in its header; staged copies are plain files
      const patch = await Deno.open(file, { write: true });
      try {
        await patch.seek(18, Deno.SeekMode.Start);
        await patch.write(new Uint8Array([1, 1]));
      } finally {
        patch.close();
      }
      this.#saveTail(meta.history);
      const err = this.#install(file, meta);
      if (err) return this.#refuse(err.reason, err.message, err.reason !== "schema_mismatch");
      this.#publish("repl.resync_finished", "notice", {
        pairId: this.#pairId,
        epoch: this.#epoch,
        seq: this.#seq,
        bytes: meta.bytes,
        ms: this.#clock.now() - started,
        tables: this.#tables.length,
      });
      return { ok: true, epoch: this.#epoch, seq: this.#seq };
    } finally {
      this.#resync = null;
      await Deno.remove(file).catch(() => {});
    }
  }

  #install(file: string, meta: SnapshotMeta): { reason: RefusalReason; message: string } | null {
    const db = this.#db;
    db.prepare("ATTACH DATABASE ? AS kw_snapshot").run(file);
    try {
      let snapSv: string;
      try {
        const rows = db.prepare(
          "SELECT module, version FROM kw_snapshot.schema_versions ORDER BY module",
        ).all() as { module: string; version: number }[];
        const s = rows.map((r) => `${r.module}:${r.version}`).join(",");
        snapSv = "sv1-" + createHash("sha256").update(s).digest("hex").slice(0, 16);
      } catch (e) {
        return { reason: "corrupt", message: `snapshot is not a keepwire store: ${e}` };
      }
      if (!this.#customSchema && snapSv !== this.#schemaVersion()) {
        return {
          reason: "schema_mismatch",
          message: `snapshot's schema_versions give ${snapSv}, this node ${this.#schemaVersion()}`,
        };
      }
      this.#guard.applying = true;
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec("PRAGMA defer_foreign_keys = ON");
        for (const t of this.#tables) {
          const cols = tableColumns(db, t).map((c) => q(c.name)).join(", ");
          if (!tableColumns(db, t, "kw_snapshot").length) {
            throw new ReplFrameError("schema_mismatch", `snapshot has no table ${t}`);
          }
          db.exec(`DELETE FROM main.${q(t)}`);
          db.exec(`INSERT INTO main.${q(t)} (${cols}) SELECT ${cols} FROM kw_snapshot.${q(t)}`);
        }
        db.prepare("DELETE FROM repl_log WHERE channel = ?").run(this.#channel);
        db.prepare("DELETE FROM repl_epochs WHERE channel = ?").run(this.#channel);
        const ins = db.prepare(
          "INSERT INTO repl_epochs (channel, epoch, start_seq) VALUES (?, ?, ?)",
        );
        for (const h of meta.history) ins.run(this.#channel, h.epoch, h.startSeq);
        this.#setState("epoch", meta.epoch);
        this.#setState("seq", meta.seq);
        this.#setState("acked", meta.seq);
        this.#markWhole(this.#tables, true); // what this snapshot copied
        db.exec("COMMIT");
      } catch (e) {
        db.exec("ROLLBACK");
        if (e instanceof ReplFrameError) return { reason: e.reason, message: e.message };
        return { reason: "corrupt", message: `snapshot not installed: ${e}` };
      } finally {
        this.#guard.applying = false;
      }
      this.#epoch = meta.epoch;
      this.#seq = meta.seq;
      this.#acked = meta.seq;
      this.#pendingTailFromEpoch = undefined;
      this.#snapshotWanted = null;
      return null;
    } finally {
      db.exec("DETACH DATABASE kw_snapshot");
    }
  }

  /**
   * Set aside the frames this node made as primary that the new primary never took:
   * those of its own epoch above the seq where the next epoch started (or above its last
   * acknowledged seq when the history does not say). They go to a file, never into the
   * data the snapshot brings.
   */
  #saveTail(history: EpochStart[]): void {
    const rows = this.#db.prepare(
      "SELECT seq, epoch, frame FROM repl_log WHERE channel = ? ORDER BY seq",
    ).all(this.#channel) as { seq: number; epoch: number; frame: Uint8Array }[];
    if (!rows.length) return;
    const myEpoch = this.#pendingTailFromEpoch ?? this.#epoch;
    const next = history.filter((h) => h.epoch > myEpoch).sort((a, b) => a.epoch - b.epoch)[0];
    const fork = next ? next.startSeq : this.#acked;
    const tail = rows.filter((r) => r.epoch <= myEpoch && r.seq > fork);
    if (!tail.length) return;
    Deno.mkdirSync(this.#tailDir, { recursive: true });
    const stamp = new Date(this.#clock.now()).toISOString().replaceAll(":", "");
    const file = join(
      this.#tailDir,
      `tail-${this.#pairId}${this.#channel === "a" ? "" : `-ch${this.#channel}`}-e${myEpoch}-s${
        tail[0].seq
      }-${tail.at(-1)!.seq}-${stamp}.kwtail`,
    );
    Deno.writeFileSync(file, concatFrames(tail.map((r) => r.frame)), { createNew: true });
    this.#publish("repl.tail_saved", "warning", {
      pairId: this.#pairId,
      file,
      frames: tail.length,
      fromSeq: tail[0].seq,
      toSeq: tail.at(-1)!.seq,
      epoch: myEpoch,
    });
  }

  // ---------------------------------------------------------------- state

  #history(): EpochStart[] {
    return (this.#db.prepare(
      "SELECT epoch, start_seq FROM repl_epochs WHERE channel = ? ORDER BY epoch",
    ).all(this.#channel) as {
      epoch: number;
      start_seq: number;
    }[]).map((r) => ({ epoch: Number(r.epoch), startSeq: Number(r.start_seq) }));
  }

  #stmts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();

  /** A prepared statement, cached (the hot path runs a few per write). */
  #stmt(sql: string): ReturnType<DatabaseSync["prepare"]> {
    let st = this.#stmts.get(sql);
    if (!st) this.#stmts.set(sql, st = this.#db.prepare(sql));
    return st;
  }

  #getState(key: string): number {
    const r = this.#db.prepare("SELECT value FROM repl_state WHERE key = ?").get(
      stateKey(this.#channel, key),
    ) as
      | { value: number }
      | undefined;
    return r ? Number(r.value) : 0;
  }

  #setState(key: string, value: number): void {
    this.#stmt(
      "INSERT INTO repl_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ).run(stateKey(this.#channel, key), value);
  }

  #publish<
    K extends
      | "repl.gap"
      | "repl.refused"
      | "repl.resync_started"
      | "repl.resync_progress"
      | "repl.resync_finished"
      | "repl.tail_saved"
      | "repl.standby_lost"
      | "repl.standby_back"
      | "repl.promoted"
      | "repl.snapshot_sent",
  >(
    kind: K,
    severity: "info" | "notice" | "warning" | "error",
    payload: import("../events/mod.ts").EventMap[K],
  ): void {
    this.#bus?.publish({
      module: "repl",
      kind,
      severity,
      payload: { ...payload, channel: this.#channel },
    });
  }
}

const CONFLICT_NAMES: Record<number, string> = {
  [constants.SQLITE_CHANGESET_DATA]: "data",
  [constants.SQLITE_CHANGESET_NOTFOUND]: "notfound",
  [constants.SQLITE_CHANGESET_CONFLICT]: "conflict",
  4: "constraint", // SQLITE_CHANGESET_CONSTRAINT (missing from the type declarations)
  [constants.SQLITE_CHANGESET_FOREIGN_KEY]: "foreign_key",
};
