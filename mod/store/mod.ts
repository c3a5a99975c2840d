/**
 * The appliance store: node:sqlite in WAL mode. Versioned migrations per module,
 * the event journal with bounded retention, and settings in two key/value tables:
 * `settings` (shared by the pair: replicated from the active to the standby when
 * replication is on) and `settings_local` (this node's own: never replicated). The key
 * decides the table ({@link isNodeLocalSetting}); callers use one API.
 *
 * The event journal (`events`) is node-local: each node journals its own life (the
 * standby writes its own events), so it is never a replicated table (docs/ha.md,
 * "What replicates"). The active copies its events into `pair_journal` (made here, written
 * by mod/repl/journal.ts), which replicates: the standby holds the active's journal too.
 *
 * Retention keeps a separate count budget per class of event, so a flood of one class
 * can never push another out: the audit trail (`auth.*`, `update.*`, `runtime.*`) has
 * its own budget, and events written on behalf of clients that have not signed in
 * (failed and refused logins) have a small one of their own.
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { dirname } from "node:path";
import type { Journal, KwEvent, Payload, Severity } from "../events/mod.ts";
import { SEVERITIES } from "../events/mod.ts";
import { Checkpointer, type CheckpointOptions } from "./checkpoint.ts";

/** Retention of the event journal. */
export interface Retention {
  /** Keep at most this many ordinary events (neither audit nor unauthenticated). */
  maxEvents: number;
  /** Drop events older than this many days (every class). */
  maxAgeDays: number;
  /** Keep at most this many audit events (default 50,000). */
  maxAuditEvents?: number;
  /** Keep at most this many events from unauthenticated clients (default 5,000). */
  maxUntrustedEvents?: number;
}

/** Retention classes of the journal (stored per row; the numbers are on disk). */
export const EVENT_CLASS = { ordinary: 0, audit: 1, untrusted: 2 } as const;
/** One retention class. */
export type EventClass = typeof EVENT_CLASS[keyof typeof EVENT_CLASS];

/** Kind prefixes of the audit trail: kept in their own budget. */
export const AUDIT_PREFIXES: readonly string[] = ["auth.", "update.", "runtime."];
/**
 * Kinds written on behalf of clients that have not signed in (rate-limited where they
 * are published, and kept in a small budget of their own here).
 */
export const UNTRUSTED_KINDS: readonly string[] = [
  "auth.login_failed",
  "auth.login_refused",
  "auth.locked",
  "auth.login_failures",
];

/** The retention class of an event kind. */
export function eventClass(kind: string): EventClass {
  if (UNTRUSTED_KINDS.includes(kind)) return EVENT_CLASS.untrusted;
  if (AUDIT_PREFIXES.some((p) => kind.startsWith(p))) return EVENT_CLASS.audit;
  return EVENT_CLASS.ordinary;
}

/** Options of the store. */
export interface StoreOptions {
  /** Database file, or ":memory:". */
  path: string;
  /** Journal retention. */
  retention?: Retention;
  /** SQLite `synchronous`: NORMAL survives a process crash, FULL a power loss too. */
  synchronous?: "NORMAL" | "FULL";
  /** Injected clock. */
  now?: () => number;
}

/** Query of the event journal. */
export interface EventQuery {
  /** Only events with id greater than this. */
  sinceId?: number;
  /** Only events at or after this time (ms). */
  sinceTime?: number;
  /** Only events before this time (ms). */
  untilTime?: number;
  /** Only events with id less than this (paging backwards). */
  beforeId?: number;
  /** Exact kind, or a prefix ending in `.` or `*`. */
  kind?: string;
  /** Exact module. */
  module?: string;
  /** Minimum severity. */
  severity?: Severity;
  /** Max rows (default 100). */
  limit?: number;
  /** Order: newest first (default) or oldest first. */
  order?: "asc" | "desc";
}

/**
 * Settings that belong to this node and never replicate: exact keys, or prefixes ending
 * in `.`. Everything else in the settings table is shared by the pair. A key added here
 * later needs a core migration that moves existing rows (see migration 3).
 */
export const NODE_LOCAL_SETTINGS: readonly string[] = [
  "ha.maintenance", // maintenance is per node
  "ha.upgrade", // this node's part of a rolling upgrade (saved on the standby too; resumed here)
  "alert.cursor", // how far this node's alert module has read its own journal
  "alert.stopped.", // channels this node's outbox stopped (its own delivery state)
  "node.", // anything node-specific a module keeps (addresses, hostname, priority...)
];

/** True when `key` is one of this node's own settings ({@link NODE_LOCAL_SETTINGS}). */
export function isNodeLocalSetting(key: string): boolean {
  return NODE_LOCAL_SETTINGS.some((k) => k.endsWith(".") ? key.startsWith(k) : key === k);
}

/** The SQL condition on `key` matching {@link NODE_LOCAL_SETTINGS} (for migration 3). */
function localKeySql(): string {
  return NODE_LOCAL_SETTINGS.map((k) =>
    k.endsWith(".") ? `substr(key, 1, ${k.length}) = '${k}'` : `key = '${k}'`
  ).join(" OR ");
}

/** One migration step: SQL run once, in order, per module. */
export type Migration = string;

/** The `core` store migrations (their count is the module's schema version; a bundle declares it: mod/update/bundle_schema.ts). */
export const CORE_MIGRATIONS: Migration[] = [
  `CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL,
     module TEXT NOT NULL,
     kind TEXT NOT NULL,
     severity INTEGER NOT NULL,
     payload TEXT NOT NULL
   );
   CREATE INDEX events_time ON events(time);
   CREATE INDEX events_kind ON events(kind, id);
   CREATE INDEX events_module ON events(module, id);
   CREATE INDEX events_severity ON events(severity, id);
   CREATE TABLE settings (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated INTEGER NOT NULL
   );`,
  // retention class per row (see eventClass); existing rows are classified below
  `ALTER TABLE events ADD COLUMN class INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX events_class ON events(class, id);
   UPDATE events SET class = 1 WHERE kind LIKE 'auth.%' OR kind LIKE 'update.%'
     OR kind LIKE 'runtime.%';
   UPDATE events SET class = 2 WHERE kind IN
     ('auth.login_failed', 'auth.login_refused', 'auth.locked', 'auth.login_failures');`,
  // settings split: this node's own keys move to settings_local (never replicated)
  `CREATE TABLE settings_local (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated INTEGER NOT NULL
   );
   INSERT INTO settings_local (key, value, updated)
     SELECT key, value, updated FROM settings WHERE ${localKeySql()};
   DELETE FROM settings WHERE ${localKeySql()};`,
  // the pair journal: the active's events, replicated to the standby (mod/repl/journal.ts)
  `CREATE TABLE pair_journal (
     id INTEGER PRIMARY KEY,
     node TEXT NOT NULL,
     event_id INTEGER NOT NULL,
     time INTEGER NOT NULL,
     module TEXT NOT NULL,
     kind TEXT NOT NULL,
     severity TEXT NOT NULL,
     payload TEXT NOT NULL
   );
   CREATE INDEX pair_journal_time ON pair_journal(time);`,
];

/**
 * True when `e` says the data partition is full: SQLite's SQLITE_FULL ("database or disk is
 * full") or an ENOSPC from a file write. The web layer answers 507 `storage_full` for it.
 */
export function isStorageFull(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { errcode?: unknown }).errcode === 13) return true; // SQLITE_FULL
  return /No space left on device|database or disk is full/.test(String(e));
}

/** The table a setting's key lives in. */
function settingsTable(key: string): "settings" | "settings_local" {
  return isNodeLocalSetting(key) ? "settings_local" : "settings";
}

/** The store. */
export class Store implements Journal {
  /** The underlying database (modules use it for their own tables). */
  readonly db: DatabaseSync;
  readonly #retention: Required<Retention>;
  readonly #now: () => number;
  #insert;
  #sinceTrim = 0;
  #count: number | undefined;
  readonly #path: string;
  // the -shm file for commitProbe; false: none (or closed)
  #walIndexFile: Deno.FsFile | false | undefined;
  #checkpointer: Checkpointer | undefined;

  /** Open (creating when needed) the database at `opts.path` and run core migrations. */
  constructor(opts: StoreOptions) {
    this.#path = opts.path;
    if (opts.path !== ":memory:") Deno.mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new DatabaseSync(opts.path);
    this.#retention = {
      maxEvents: 100_000,
      maxAgeDays: 90,
      maxAuditEvents: 50_000,
      maxUntrustedEvents: 5_000,
      ...opts.retention,
    };
    this.#now = opts.now ?? Date.now;
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec(`PRAGMA synchronous = ${opts.synchronous ?? "NORMAL"}`);
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.db.exec("PRAGMA foreign_keys = ON");
    this.db.exec(
      "CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    );
    this.migrate("core", CORE_MIGRATIONS);
    this.#insert = this.db.prepare(
      "INSERT INTO events (time, module, kind, severity, payload, class) VALUES (?, ?, ?, ?, ?, ?)",
    );
  }

  /**
   * Run the migrations of `module` that have not run yet, each in a transaction.
   * Returns the schema version reached.
   */
  migrate(module: string, steps: Migration[]): number {
    const row = this.db.prepare("SELECT version FROM schema_versions WHERE module = ?").get(
      module,
    ) as { version: number } | undefined;
    let version = row?.version ?? 0;
    if (version > steps.length) {
      throw new Error(
        `store: schema of "${module}" is version ${version}, newer than this build knows (${steps.length}); refusing to run an older keepwire on a newer database`,
      );
    }
    while (version < steps.length) {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        this.db.exec(steps[version]);
        version++;
        this.db.prepare(
          "INSERT INTO schema_versions (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version",
        ).run(module, version);
        this.db.exec("COMMIT");
      } catch (e) {
        this.db.exec("ROLLBACK");
        throw new Error(`store: migration ${version + 1} of "${module}" failed: ${e}`);
      }
    }
    return version;
  }

  /** Schema version of a module (0 when never migrated). */
  schemaVersion(module: string): number {
    const row = this.db.prepare("SELECT version FROM schema_versions WHERE module = ?").get(
      module,
    ) as { version: number } | undefined;
    return row?.version ?? 0;
  }

  /** Journal sink: store an event and return its id. Durable when it returns. */
  append(e: Omit<KwEvent, "id">): number {
    const r = this.#insert.run(
      e.time,
      e.module,
      e.kind,
      SEVERITIES.indexOf(e.severity),
      JSON.stringify(e.payload),
      eventClass(e.kind),
    );
    if (this.#count !== undefined) this.#count++;
    if (++this.#sinceTrim >= 1000) {
      this.#sinceTrim = 0;
      this.trim();
    }
    return Number(r.lastInsertRowid);
  }

  /**
   * Apply retention now: drop events older than the age bound, then the oldest of each
   * class beyond that class's count budget. Returns rows dropped.
   */
  trim(): number {
    const cutoff = this.#now() - this.#retention.maxAgeDays * 86_400_000;
    let dropped = Number(this.db.prepare("DELETE FROM events WHERE time < ?").run(cutoff).changes);
    const budgets: [EventClass, number][] = [
      [EVENT_CLASS.ordinary, this.#retention.maxEvents],
      [EVENT_CLASS.audit, this.#retention.maxAuditEvents],
      [EVENT_CLASS.untrusted, this.#retention.maxUntrustedEvents],
    ];
    for (const [cls, keep] of budgets) {
      const edge = this.db.prepare(
        "SELECT id FROM events WHERE class = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
      ).get(cls, keep) as { id: number } | undefined;
      if (edge) {
        dropped += Number(
          this.db.prepare("DELETE FROM events WHERE class = ? AND id <= ?").run(cls, edge.id)
            .changes,
        );
      }
    }
    this.#count = undefined;
    return dropped;
  }

  /** Query the journal. */
  events(q: EventQuery = {}): KwEvent[] {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (q.sinceId !== undefined) (where.push("id > ?"), args.push(q.sinceId));
    if (q.beforeId !== undefined) (where.push("id < ?"), args.push(q.beforeId));
    if (q.sinceTime !== undefined) (where.push("time >= ?"), args.push(q.sinceTime));
    if (q.untilTime !== undefined) (where.push("time < ?"), args.push(q.untilTime));
    if (q.module) (where.push("module = ?"), args.push(q.module));
    if (q.severity) (where.push("severity >= ?"), args.push(SEVERITIES.indexOf(q.severity)));
    if (q.kind) {
      if (q.kind.endsWith("*") || q.kind.endsWith(".")) {
        const prefix = q.kind.replace(/\*$/, "");
        where.push("kind >= ? AND kind < ?");
        args.push(prefix, prefix + "\uffff");
      } else {
        where.push("kind = ?");
        args.push(q.kind);
      }
    }
    const order = q.order === "asc" ? "ASC" : "DESC";
    const sql = `SELECT id, time, module, kind, severity, payload FROM events ${
      where.length ? "WHERE " + where.join(" AND ") : ""
    } ORDER BY id ${order} LIMIT ?`;
    args.push(Math.max(1, Math.min(q.limit ?? 100, 10_000)));
    const rows = this.db.prepare(sql).all(...args) as {
      id: number;
      time: number;
      module: string;
      kind: string;
      severity: number;
      payload: string;
    }[];
    return rows.map((r) => ({
      id: Number(r.id),
      time: Number(r.time),
      module: r.module,
      kind: r.kind,
      severity: SEVERITIES[r.severity] ?? "info",
      payload: JSON.parse(r.payload) as Payload,
    }));
  }

  /** Number of events in the journal. */
  eventCount(): number {
    return Number((this.db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n);
  }

  /** Events journalled at `sinceTime` ≤ time < `untilTime`, by severity (the history's event rate). */
  eventCountsBySeverity(sinceTime: number, untilTime: number): Record<Severity, number> {
    const out = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
    const rows = this.db.prepare(
      "SELECT severity, COUNT(*) AS n FROM events WHERE time >= ? AND time < ? GROUP BY severity",
    ).all(sinceTime, untilTime) as { severity: number; n: number }[];
    for (const r of rows) {
      const s = SEVERITIES[r.severity];
      if (s) out[s] = Number(r.n);
    }
    return out;
  }

  /**
   * Number of events, counted once after each trim and then kept up by this process's
   * appends (events appended by another process, e.g. the CLI, show after the next
   * trim). Used where exactness does not matter (status).
   */
  eventCountFast(): number {
    this.#count ??= this.eventCount();
    return this.#count;
  }

  /**
   * Read a setting (JSON-decoded), or undefined. Node-local keys
   * ({@link isNodeLocalSetting}) come from `settings_local`, the others from `settings`.
   */
  getSetting<T = unknown>(key: string): T | undefined {
    const row = this.db.prepare(`SELECT value FROM ${settingsTable(key)} WHERE key = ?`).get(
      key,
    ) as
      | { value: string }
      | undefined;
    return row ? JSON.parse(row.value) as T : undefined;
  }

  /**
   * Write a setting (JSON-encoded) to the table its key belongs to. On a standby with
   * replication on, a shared key is refused (the shared table is written on the active).
   */
  setSetting(key: string, value: unknown): void {
    this.db.prepare(
      `INSERT INTO ${
        settingsTable(key)
      } (key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
    ).run(key, JSON.stringify(value), this.#now());
  }

  /** Delete a setting. */
  deleteSetting(key: string): void {
    this.db.prepare(`DELETE FROM ${settingsTable(key)} WHERE key = ?`).run(key);
  }

  /** All settings (both tables) with a key prefix. */
  settings(prefix = ""): Record<string, unknown> {
    const rows = this.db.prepare(
      `SELECT key, value FROM settings WHERE key >= ?1 AND key < ?2
       UNION ALL SELECT key, value FROM settings_local WHERE key >= ?1 AND key < ?2
       ORDER BY key`,
    ).all(prefix, prefix + "\uffff") as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key, JSON.parse(r.value)]));
  }

  /** Run `fn` in one IMMEDIATE transaction. */
  transaction<T>(fn: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const r = fn();
      this.db.exec("COMMIT");
      return r;
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }

  /**
   * A probe that answers whether any connection, of this process or another, may have
   * committed to the database since the probe last looked (true the first time, and
   * whenever unsure). It reads the header of the WAL index, the `-shm` file that SQLite
   * rewrites on every commit (frame count, salts, checksum: see the WAL-index header in
   * https://sqlite.org/walformat.html), and compares it with the one it saw last: ~3 µs,
   * where any query through node:sqlite costs 11–16 µs. An in-memory store has no WAL
   * index: its probe always says true. For values read on every request that another
   * process may change (the revocation generation of API tokens).
   */
  commitProbe(): () => boolean {
    const seen = new Uint8Array(WAL_INDEX_HEADER), now = new Uint8Array(WAL_INDEX_HEADER);
    return () => {
      const f = this.#walIndex();
      if (!f) return true;
      try {
        f.seekSync(0, Deno.SeekMode.Start);
        if (f.readSync(now) !== WAL_INDEX_HEADER) return true;
      } catch {
        return true;
      }
      let same = true;
      for (let i = 0; i < WAL_INDEX_HEADER; i++) {
        if (now[i] !== seen[i]) {
          same = false;
          break;
        }
      }
      if (same) return false;
      seen.set(now);
      return true;
    };
  }

  /**
   * The WAL index, opened on first use (this connection keeps it in place) and closed only
   * after the database (see close()).
   */
  #walIndex(): Deno.FsFile | undefined {
    if (this.#walIndexFile !== undefined) return this.#walIndexFile || undefined;
    this.#walIndexFile = false;
    if (this.#path === ":memory:" || !this.db.isOpen) return undefined;
    try {
      this.#walIndexFile = Deno.openSync(`${this.#path}-shm`, { read: true });
    } catch { /* no WAL index: every probe says true */ }
    return this.#walIndexFile || undefined;
  }

  /**
   * Take WAL checkpoints off the write path (mod/store/checkpoint.ts): from now on they run
   * in rounds whose fsyncs are off the event loop, SQLite's auto-checkpoint only past a hard
   * bound on the WAL. The daemon calls it; short-lived processes (the CLI) keep SQLite's
   * default. Returns the checkpointer (the same one when called again), or undefined for an
   * in-memory store.
   */
  startCheckpoints(opts: CheckpointOptions = {}): Checkpointer | undefined {
    if (this.#path === ":memory:" || !this.db.isOpen) return undefined;
    this.#checkpointer ??= new Checkpointer(this.#path, this.db, () => this.#walIndex(), opts);
    return this.#checkpointer;
  }

  /** The checkpointer, once {@link startCheckpoints} ran. */
  get checkpoints(): Checkpointer | undefined {
    return this.#checkpointer;
  }

  /** Close the database (checkpoints the WAL). */
  close(): void {
    this.#checkpointer?.stop();
    if (this.db.isOpen) this.db.close();
    // Only now: closing any descriptor of a file drops every POSIX lock this process holds
    // on it, and the connection holds its WAL-index locks until it closes.
    this.#checkpointer?.closeFiles();
    if (this.#walIndexFile) this.#walIndexFile.close();
    this.#walIndexFile = false;
  }
}

/** Bytes of the first copy of the WAL-index header (walformat.html). */
const WAL_INDEX_HEADER = 48;
