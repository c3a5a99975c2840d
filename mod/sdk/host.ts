/**
 * The keepwire side of the SDK's replicated tables (issue 13 §3): subsystems declare
 * table groups (name, columns, primary key, durability) and read and write them through
 * this service — worker subsystems over postMessage (mod/supervisor/worker.ts), process
 * subsystems over their local socket (socket.ts). The vendor writes no replication code:
 * the tables live in the store and, when replication runs, each group is registered with
 * it, so a write of a `sync` group resolves only once the standby applied it.
 *
 * Every vendor statement is compiled under an SQLite authorizer that lets it touch only
 * the tables of its own subsystem (writes: only the group being written), and never DDL,
 * PRAGMA, ATTACH or transaction control; migrations may do DDL on their own tables only.
 * docs/ha.md ("SDK tables") is the reference.
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { KeepwireError } from "../errors.ts";
import { z } from "zod";
import type { EventBus } from "../events/mod.ts";
import { type Clock, systemClock } from "../module.ts";
import type { GroupSpec } from "../repl/mod.ts";
import { type ReplRegistry, replRegistry } from "../repl/registry.ts";
import { ReplNotPrimaryError } from "../repl/errors.ts";
import type { NodeInfo, Row, SqlValue, StatementResult, TablesInfo, WriteResult } from "./mod.ts";
import {
  SdkDeclarationError,
  SdkHandoffSettingsError,
  SdkNoPrimaryKeyError,
  SdkNotActiveError,
  SdkSqlError,
  SdkUnknownGroupError,
} from "./errors.ts";
import {
  HANDOFF_OFF,
  HandoffMachine,
  type HandoffSettings,
  handoffSettingsSchema,
  type HandoffState,
} from "./handoff.ts";
import "./events.ts";

export { SDK_EVENTS } from "./events.ts";
export * from "./errors.ts";
export * from "./handoff.ts";

/**
 * What the SDK needs of the replication engine (mod/repl `Replicator`): register a
 * group's tables, run a write in one transaction with the group's durability, and say
 * whether this node is the primary.
 */
export interface TableReplication {
  /**
   * Replicate these tables in `group` (created with `spec` when new); throws for a table
   * without a primary key. A primary captures them at once.
   */
  addTables(group: string, tables: readonly string[], spec?: GroupSpec): void;
  /** One transaction, replicated with the group's durability. */
  write<T>(
    group: string,
    fn: (db: DatabaseSync) => T,
  ): Promise<{ value: T; seq?: number; replicated: boolean }>;
  /** The engine's role (channel a's). */
  status(): { role: "primary" | "standby" | "idle" };
  /** Active-active: the role of the channel a group writes on (its set's). */
  groupRole?(group: string): "primary" | "standby" | "idle";
}

/** The HA view the SDK shows a subsystem. */
export interface HaView {
  /** The HA role (`disabled` when HA is off). */
  role: string;
  /** This node's id. */
  node: string;
  /** The peer's id, when known. */
  peer: string | null;
  /** Is the peer answering (peer link), when known. */
  peerUp?: boolean;
}

/** Options of the {@link SdkHost}. */
export interface SdkHostOptions {
  /** The store's connection and its migration runner (module "sdk" migrates here). */
  store: {
    db: DatabaseSync;
    migrate(module: string, steps: string[]): number;
  };
  /** Event bus (declarations, handoff changes); its `ha.role_changed` events refresh roles. */
  bus?: EventBus;
  /** Injected time. */
  clock?: Clock;
  /** The node's HA role (default: HA disabled, node "node1"). */
  ha?: () => HaView;
  /**
   * Where declared groups are registered for replication (default: the process's
   * registry, which the runtime's replication reads; tests pass their own).
   */
  registry?: Pick<ReplRegistry, "defineGroup" | "registerTables">;
}

/** SQLite authorizer answers and action codes (sqlite3.h; missing from node:sqlite's types). */
const A = {
  SQLITE_OK: 0,
  SQLITE_DENY: 1,
  SQLITE_CREATE_INDEX: 1,
  SQLITE_CREATE_TABLE: 2,
  SQLITE_DELETE: 9,
  SQLITE_DROP_INDEX: 10,
  SQLITE_DROP_TABLE: 11,
  SQLITE_INSERT: 18,
  SQLITE_READ: 20,
  SQLITE_SELECT: 21,
  SQLITE_UPDATE: 23,
  SQLITE_ALTER_TABLE: 26,
  SQLITE_REINDEX: 27,
  SQLITE_FUNCTION: 31,
  SQLITE_RECURSIVE: 33,
} as const;
type AuthFn = (code: number, a1: string | null, a2: string | null) => number;
/** `setAuthorizer` exists on Deno 2.9.6's DatabaseSync but not in its type declarations. */
function setAuthorizer(db: DatabaseSync, fn: AuthFn | null): void {
  (db as unknown as { setAuthorizer(f: AuthFn | null): void }).setAuthorizer(fn);
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
/** SQL column definitions: a type and constraints, one clause, no statement separator. */
const COLDEF_RE = /^[A-Za-z][A-Za-z0-9_ (),.'<>=!+\-*/]{0,200}$/;
const RESERVED = /^(sqlite_|repl_|sdk_)/i;

const sqlValue = z.union([
  z.string(),
  z.number(),
  z.bigint(),
  z.null(),
  z.instanceof(Uint8Array),
  z.boolean().transform((b) => (b ? 1 : 0)),
]);

const tableSpecSchema = z.lazy(() =>
  z.strictObject({
    name: z.string().regex(NAME_RE, "letters, digits and _ (max 63), starting with a letter")
      .refine((n) => !RESERVED.test(n), "sqlite_, repl_ and sdk_ names belong to keepwire"),
    columns: z.record(
      z.string().regex(NAME_RE, "column names: letters, digits and _, starting with a letter"),
      z.string().regex(COLDEF_RE, 'a type and constraints, e.g. "TEXT NOT NULL" (no ";")'),
    ).refine((c) => Object.keys(c).length > 0, "at least one column"),
    primaryKey: z.array(z.string()).max(16).optional(),
    indexes: z.record(z.string().regex(NAME_RE), z.array(z.string()).min(1).max(16)).optional(),
  })
);

/** What a subsystem may declare (validated: the subsystem is vendor code). */
export const tablesSpecSchema = z.lazy(() =>
  z.strictObject({
    group: z.string().regex(NAME_RE, "letters, digits and _ (max 63), starting with a letter"),
    durability: z.enum(["sync", "async"]),
    onStandbyLost: z.enum(["continue", "refuse"]).optional(),
    set: z.enum(["a", "b"]).optional(),
    tables: z.array(tableSpecSchema).min(1).max(64),
    migrations: z.array(z.string().min(1).max(100_000)).max(1000).optional(),
  })
);

const statementSchema = z.lazy(() =>
  z.strictObject({
    sql: z.string().min(1).max(100_000),
    params: z.union([z.array(sqlValue).max(999), z.record(z.string(), sqlValue)]).optional(),
  })
);

const queryArgs = statementSchema;
const writeArgs = z.strictObject({
  group: z.string().min(1).max(63),
  statements: z.array(statementSchema).min(1).max(1000),
});
const queueArgs = z.strictObject({
  depth: z.number().finite().min(0),
  oldestAgeMs: z.number().finite().min(0).optional(),
});

/** Operations a subsystem may call, with their argument schemas. */
export const SDK_OPS = ["declare", "query", "write", "node", "handoff", "queue"] as const;
/** One operation. */
export type SdkOp = typeof SDK_OPS[number];

interface Group {
  name: string;
  spec: z.infer<typeof tablesSpecSchema>;
  tables: Set<string>;
  replName: string;
  version: number;
  registered: boolean;
}

/** The `sdk` store migrations (their count is the module's schema version; a bundle declares it: mod/update/bundle_schema.ts). */
export const SDK_MIGRATIONS = [
  `CREATE TABLE sdk_tables (
     name TEXT PRIMARY KEY,
     subsystem TEXT NOT NULL,
     grp TEXT NOT NULL,
     declared INTEGER NOT NULL
   );
   CREATE TABLE sdk_handoff (
     subsystem TEXT PRIMARY KEY,
     enabled INTEGER NOT NULL,
     on_at INTEGER NOT NULL,
     off_at INTEGER NOT NULL,
     updated INTEGER NOT NULL,
     by TEXT NOT NULL
   );
   CREATE TABLE sdk_handoff_state (
     subsystem TEXT PRIMARY KEY,
     node TEXT NOT NULL,
     target TEXT NOT NULL,
     reason TEXT NOT NULL,
     depth INTEGER NOT NULL,
     since INTEGER NOT NULL
   );`,
];

/** The replicated group of keepwire's own SDK tables (handoff settings and state). */
export const SDK_SETTINGS_GROUP = "sdk";
/** Tables of {@link SDK_SETTINGS_GROUP}: written on the active, replicated (`sync`). */
export const SDK_REPLICATED_TABLES: readonly string[] = ["sdk_handoff", "sdk_handoff_state"];
/** Local to each node (which subsystem owns which table). */
export const SDK_LOCAL_TABLES: readonly string[] = ["sdk_tables"];

function q(id: string): string {
  return `"${id.replaceAll('"', '""')}"`;
}

function fieldsOf(e: z.ZodError): [string, string] {
  const i = e.issues[0];
  const path = i.path.map((p, n) => typeof p === "number" ? `[${p}]` : (n ? "." : "") + String(p))
    .join("");
  return [path || "(root)", i.message];
}

/** Where new work goes as one node sees it ({@link SdkHost.handoff}). */
export interface HandoffView extends HandoffState {
  /** The node that decides (the active), or `none` before it reported. */
  decidedBy: string;
  /** The node id that takes new work now. */
  to: string;
}

/** The SDK's table and handoff service, one per keepwire. */
export class SdkHost {
  readonly #db: DatabaseSync;
  readonly #bus: EventBus | undefined;
  readonly #clock: Clock;
  readonly #ha: () => HaView;
  #repl: TableReplication | undefined;
  readonly #groups = new Map<string, Map<string, Group>>();
  readonly #stmts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  readonly #nodeListeners = new Set<(n: NodeInfo) => void>();
  readonly #handoffListeners = new Set<(subsystem: string, s: HandoffView) => void>();
  readonly #handoff = new Map<string, HandoffMachine>();
  #lastNode = "";
  #unsub: (() => void) | undefined;
  #changes: ReturnType<DatabaseSync["prepare"]>;
  readonly #checker: DatabaseSync;
  readonly #registry: Pick<ReplRegistry, "defineGroup" | "registerTables">;

  /** Run the SDK's own migrations and follow HA role changes on the bus. */
  constructor(opts: SdkHostOptions) {
    this.#db = opts.store.db;
    opts.store.migrate("sdk", SDK_MIGRATIONS);
    this.#bus = opts.bus;
    this.#clock = opts.clock ?? systemClock;
    this.#ha = opts.ha ?? (() => ({ role: "disabled", node: "node1", peer: null }));
    this.#changes = this.#db.prepare("SELECT changes() AS c, last_insert_rowid() AS r");
    // vendor SQL is compiled here first, under an authorizer (see #prepare)
    const file = this.#db.location();
    this.#checker = file ? new DatabaseSync(file) : this.#db;
    if (file) this.#checker.exec("PRAGMA busy_timeout = 5000");
    // the role comes from HA and replication: re-read it on their events, and every
    // 500 ms (a promotion may follow the HA event it reacts to)
    const unsubs = [
      opts.bus?.subscribe(() => this.refreshNode(), { kindPrefix: "ha." }),
      opts.bus?.subscribe(() => this.refreshNode(), { kindPrefix: "repl." }),
    ];
    const timer = this.#clock.setInterval(() => this.refreshNode(), 500);
    this.#unsub = () => {
      for (const u of unsubs) u?.();
      this.#clock.clearInterval(timer);
    };
    this.#registry = opts.registry ?? replRegistry;
    this.#registry.defineGroup(SDK_SETTINGS_GROUP, { durability: "sync" });
    this.#registry.registerTables(SDK_SETTINGS_GROUP, SDK_REPLICATED_TABLES);
    this.#lastNode = JSON.stringify(this.node());
  }

  /** Stop following the bus. */
  close(): void {
    this.#unsub?.();
    this.#unsub = undefined;
    if (this.#checker !== this.#db && this.#checker.isOpen) this.#checker.close();
  }

  /**
   * Connect (or disconnect) the replication engine: every group declared so far, and the
   * SDK's own settings group, is registered with it.
   */
  setReplication(r: TableReplication | undefined): void {
    this.#repl = r;
    if (r) {
      r.addTables(SDK_SETTINGS_GROUP, SDK_REPLICATED_TABLES, { durability: "sync" });
      for (const m of this.#groups.values()) {
        for (const g of m.values()) this.#register(g);
      }
    }
    this.refreshNode();
  }

  /** This node as subsystems see it. */
  node(): NodeInfo {
    const ha = this.#ha();
    const role = ha.role === "disabled" ? "single" : ha.role === "active" ? "active" : "standby";
    const replRole = this.#repl?.status().role;
    const writable = role !== "standby" && (replRole === undefined || replRole === "primary");
    const sets: ("a" | "b")[] = writable ? ["a"] : [];
    if (this.#repl?.groupRole ? this.#setBWritable() : writable) sets.push("b");
    return { role, ha: ha.role, node: ha.node, peer: ha.peer, writable, writableSets: sets };
  }

  /**
   * Does this node write set b's groups now (the engine they write on is the primary:
   * channel b in an active-active pair, else the one channel)?
   */
  #setBWritable(): boolean {
    const r = this.#repl;
    if (!r?.groupRole) return false;
    for (const m of this.#groups.values()) {
      for (const g of m.values()) {
        if (g.spec.set === "b") return r.groupRole(g.replName) === "primary";
      }
    }
    return false;
  }

  /** Re-read the role; tells listeners when it changed. */
  refreshNode(): void {
    const n = this.node();
    const key = JSON.stringify(n);
    if (key === this.#lastNode) return;
    this.#lastNode = key;
    for (const fn of [...this.#nodeListeners]) fn(n);
    for (const [sub, m] of this.#handoff) this.#evaluate(sub, m, true);
  }

  /** Called with the new node info when it changes. Returns an unsubscribe. */
  onNode(fn: (n: NodeInfo) => void): () => void {
    this.#nodeListeners.add(fn);
    return () => this.#nodeListeners.delete(fn);
  }

  /** Called when a subsystem's handoff target changes. Returns an unsubscribe. */
  onHandoff(fn: (subsystem: string, s: HandoffView) => void): () => void {
    this.#handoffListeners.add(fn);
    return () => this.#handoffListeners.delete(fn);
  }

  /**
   * One call from a subsystem (`op` and its arguments, validated here). The answer is
   * plain data (structured-clone and JSON safe, but BLOBs as Uint8Array).
   */
  async call(subsystem: string, op: string, args: unknown): Promise<unknown> {
    const parse = <T extends z.ZodType>(schema: T, what: string): z.infer<T> => {
      const r = schema.safeParse(args ?? {});
      if (!r.success) {
        const [f, m] = fieldsOf(r.error);
        throw new SdkDeclarationError(`${what}.${f}`, m);
      }
      return r.data;
    };
    switch (op) {
      case "declare":
        return this.declare(subsystem, args);
      case "query": {
        const a = parse(queryArgs, "query");
        return this.query(subsystem, a.sql, a.params);
      }
      case "write": {
        const a = parse(writeArgs, "write");
        return await this.write(subsystem, a.group, a.statements);
      }
      case "node":
        return this.node();
      case "handoff":
        return this.handoff(subsystem);
      case "queue": {
        const a = parse(queueArgs, "queue");
        this.queue(subsystem, a.depth);
        return this.handoff(subsystem);
      }
      default:
        throw new SdkDeclarationError("op", `unknown operation "${op}" (${SDK_OPS.join(", ")})`);
    }
  }

  /**
   * Declare a table group: validate, refuse a table without a primary key, run the
   * migrations (a fresh install creates the declared tables and indexes; an older one runs
   * the `migrations` steps it has not run), check the result matches the declaration, and
   * register the group with replication. Idempotent.
   */
  declare(subsystem: string, spec: unknown): TablesInfo {
    const parsed = tablesSpecSchema.safeParse(spec);
    if (!parsed.success) {
      const [f, m] = fieldsOf(parsed.error);
      throw this.#refused(subsystem, "?", new SdkDeclarationError(f, m));
    }
    const s = parsed.data;
    try {
      return this.#declare(subsystem, s);
    } catch (e) {
      throw this.#refused(subsystem, s.group, e);
    }
  }

  #refused(subsystem: string, group: string, e: unknown): unknown {
    this.#bus?.publish({
      module: "sdk",
      kind: "sdk.tables_refused",
      severity: "error",
      payload: {
        subsystem,
        group,
        code: (e as { code?: string }).code ?? "error",
        message: e instanceof Error ? e.message : String(e),
      },
    });
    return e;
  }

  #declare(subsystem: string, s: z.infer<typeof tablesSpecSchema>): TablesInfo {
    const names = new Set<string>();
    s.tables.forEach((t, i) => {
      if (names.has(t.name)) throw new SdkDeclarationError(`tables[${i}].name`, "declared twice");
      names.add(t.name);
      if (!t.primaryKey?.length) throw new SdkNoPrimaryKeyError(t.name, `tables[${i}].primaryKey`);
      t.primaryKey.forEach((c, j) => {
        if (!(c in t.columns)) {
          throw new SdkDeclarationError(`tables[${i}].primaryKey[${j}]`, `no column "${c}"`);
        }
      });
      for (const [ix, cols] of Object.entries(t.indexes ?? {})) {
        for (const c of cols) {
          if (!(c in t.columns)) {
            throw new SdkDeclarationError(`tables[${i}].indexes.${ix}`, `no column "${c}"`);
          }
        }
      }
    });
    const mine = this.#groups.get(subsystem) ?? new Map<string, Group>();
    // ownership: a table belongs to one subsystem and group; keepwire's own are refused
    for (const [i, t] of s.tables.entries()) {
      const owner = this.#db.prepare("SELECT subsystem, grp FROM sdk_tables WHERE name = ?")
        .get(t.name) as { subsystem: string; grp: string } | undefined;
      const exists = this.#tableInfo(t.name).length > 0;
      if (owner && (owner.subsystem !== subsystem || owner.grp !== s.group)) {
        throw new SdkDeclarationError(
          `tables[${i}].name`,
          `table "${t.name}" belongs to subsystem "${owner.subsystem}", group "${owner.grp}"`,
        );
      }
      if (!owner && exists) {
        throw new SdkDeclarationError(
          `tables[${i}].name`,
          `"${t.name}" is one of keepwire's own tables: choose another name`,
        );
      }
    }
    const module = `sdk_${subsystem.replaceAll(/[^A-Za-z0-9_]/g, "_")}_${s.group}`;
    const target = 1 + (s.migrations?.length ?? 0);
    const row = this.#db.prepare("SELECT version FROM schema_versions WHERE module = ?").get(
      module,
    ) as { version: number } | undefined;
    const from = row ? Number(row.version) : 0;
    if (from > target) {
      throw new SdkDeclarationError(
        "migrations",
        `the tables are at version ${from}, newer than this declaration (${target}): refusing to run older code on newer tables`,
      );
    }
    let migrated = "none";
    if (from < target) {
      const own = new Set(names);
      for (
        const r of this.#db.prepare("SELECT name FROM sdk_tables WHERE subsystem = ?").all(
          subsystem,
        ) as { name: string }[]
      ) own.add(r.name);
      const steps: string[] = [];
      if (from === 0) {
        // a fresh install: the declaration is the current shape
        for (const t of s.tables) {
          const cols = Object.entries(t.columns).map(([c, def]) => `${q(c)} ${def}`);
          cols.push(`PRIMARY KEY (${t.primaryKey!.map(q).join(", ")})`);
          steps.push(`CREATE TABLE ${q(t.name)} (${cols.join(", ")})`);
          for (const [ix, ic] of Object.entries(t.indexes ?? {})) {
            steps.push(`CREATE INDEX ${q(ix)} ON ${q(t.name)} (${ic.map(q).join(", ")})`);
          }
        }
        migrated = `created at version ${target}`;
      } else {
        steps.push(...s.migrations!.slice(from - 1, target - 1));
        migrated = `migrated ${from} → ${target}`;
      }
      this.#checkDdl(steps, own);
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        for (const step of steps) this.#db.exec(step);
        const ins = this.#db.prepare(
          "INSERT INTO sdk_tables (name, subsystem, grp, declared) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET declared = excluded.declared",
        );
        for (const t of s.tables) ins.run(t.name, subsystem, s.group, this.#clock.now());
        this.#db.prepare(
          "INSERT INTO schema_versions (module, version) VALUES (?, ?) ON CONFLICT(module) DO UPDATE SET version = excluded.version",
        ).run(module, target);
        this.#verify(s);
        this.#db.exec("COMMIT");
      } catch (e) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        if (e instanceof KeepwireError) throw e;
        throw new SdkDeclarationError("migrations", `${(e as Error).message}`);
      }
    } else {
      this.#verify(s);
    }
    const g: Group = {
      name: s.group,
      spec: s,
      tables: names,
      replName: module,
      version: target,
      registered: false,
    };
    mine.set(s.group, g);
    this.#groups.set(subsystem, mine);
    this.#register(g);
    this.#bus?.publish({
      module: "sdk",
      kind: "sdk.tables_declared",
      severity: migrated === "none" ? "info" : "notice",
      payload: {
        subsystem,
        group: s.group,
        durability: s.durability,
        tables: [...names],
        version: target,
        migrated,
      },
    });
    return { group: s.group, version: target, tables: [...names], durability: s.durability };
  }

  #register(g: Group): void {
    const spec = {
      durability: g.spec.durability,
      onStandbyLost: g.spec.onStandbyLost ?? "continue",
      set: g.spec.set ?? "a",
    } as const;
    this.#registry.defineGroup(g.replName, spec);
    this.#registry.registerTables(g.replName, [...g.tables]);
    if (!this.#repl) return;
    this.#repl.addTables(g.replName, [...g.tables], spec);
    g.registered = true;
  }

  #tableInfo(table: string): { name: string; pk: number }[] {
    return this.#db.prepare(`PRAGMA table_info(${q(table)})`).all() as {
      name: string;
      pk: number;
    }[];
  }

  /** The migrated tables must be what the declaration says (columns and primary key). */
  #verify(s: z.infer<typeof tablesSpecSchema>): void {
    s.tables.forEach((t, i) => {
      const info = this.#tableInfo(t.name);
      if (!info.length) {
        throw new SdkDeclarationError(
          `tables[${i}]`,
          `table "${t.name}" does not exist after the migrations: add a migration that creates it`,
        );
      }
      const have = info.map((c) => c.name).sort();
      const want = Object.keys(t.columns).sort();
      if (have.join(",") !== want.join(",")) {
        throw new SdkDeclarationError(
          `tables[${i}].columns`,
          `table "${t.name}" has columns ${
            have.join(", ")
          } after the migrations, the declaration says ${
            want.join(", ")
          }: add a migration (or fix the declaration)`,
        );
      }
      const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
      if (!pk.length) throw new SdkNoPrimaryKeyError(t.name, `tables[${i}].primaryKey`);
      if (pk.join(",") !== t.primaryKey!.join(",")) {
        throw new SdkDeclarationError(
          `tables[${i}].primaryKey`,
          `table "${t.name}" has primary key (${pk.join(", ")}), the declaration says (${
            t.primaryKey!.join(", ")
          })`,
        );
      }
    });
  }

  /**
   * Check migration steps before they run: on the checking connection, in a transaction
   * that is rolled back, under an authorizer that allows DDL on the subsystem's `own`
   * tables only (and no data changes: a migration runs on both nodes, data is written on
   * the active through write()).
   */
  #checkDdl(steps: string[], own: Set<string>): void {
    const master = (t: string | null) =>
      t === "sqlite_master" || t === "sqlite_schema" || t === "sqlite_temp_master";
    let denied = "";
    const auth = (code: number, a1: string | null, a2: string | null) => {
      let ok = false;
      switch (code) {
        case A.SQLITE_SELECT:
        case A.SQLITE_FUNCTION:
        case A.SQLITE_RECURSIVE:
        case A.SQLITE_REINDEX: // CREATE INDEX asks for it (the new index)
          ok = true;
          break;
        case A.SQLITE_READ:
          ok = own.has(a1 ?? "") || master(a1);
          break;
        case A.SQLITE_INSERT:
        case A.SQLITE_UPDATE:
        case A.SQLITE_DELETE:
          // SQLite records DDL in sqlite_master through these
          ok = master(a1);
          if (!ok) denied ||= `"${a1}": migrations change the schema only, not data`;
          break;
        case A.SQLITE_CREATE_TABLE:
        case A.SQLITE_DROP_TABLE:
          ok = own.has(a1 ?? "");
          if (!ok) denied ||= `"${a1}" is not a declared table of this subsystem`;
          break;
        case A.SQLITE_CREATE_INDEX:
        case A.SQLITE_DROP_INDEX:
        case A.SQLITE_ALTER_TABLE:
          ok = own.has(a2 ?? "");
          if (!ok) denied ||= `"${a2}" is not a declared table of this subsystem`;
          break;
        default:
          denied ||=
            `only CREATE/ALTER/DROP of this subsystem's tables and indexes (action ${code})`;
      }
      return ok ? A.SQLITE_OK : A.SQLITE_DENY;
    };
    const c = this.#checker;
    let step = "";
    c.exec("BEGIN");
    setAuthorizer(c, auth);
    try {
      for (step of steps) c.exec(step);
    } catch (e) {
      throw new SdkDeclarationError(
        "migrations",
        `${denied || (e as Error).message}: ${step.slice(0, 160)}`,
      );
    } finally {
      setAuthorizer(c, null);
      if (c.isTransaction) c.exec("ROLLBACK");
    }
  }

  #group(subsystem: string, group: string): Group {
    const g = this.#groups.get(subsystem)?.get(group);
    if (!g) throw new SdkUnknownGroupError(group);
    return g;
  }

  /** Tables a subsystem may read (every group it declared). */
  #readable(subsystem: string): Set<string> {
    const s = new Set<string>();
    for (const g of this.#groups.get(subsystem)?.values() ?? []) for (const t of g.tables) s.add(t);
    return s;
  }

  /**
   * Prepare a vendor statement: reads of `read`, writes of `write` only. It is compiled
   * first on the checking connection under an authorizer (so this connection's own
   * authorizer, e.g. the replication guard of a standby, is never replaced), then on the
   * store's connection to run.
   */
  #prepare(
    sql: string,
    read: Set<string>,
    write: Set<string>,
    key: string,
  ): ReturnType<DatabaseSync["prepare"]> {
    const cached = this.#stmts.get(key + "\0" + sql);
    if (cached) return cached;
    let why = "";
    const c = this.#checker;
    setAuthorizer(c, (code, a1) => {
      let ok = false;
      switch (code) {
        case A.SQLITE_SELECT:
        case A.SQLITE_FUNCTION:
        case A.SQLITE_RECURSIVE:
          ok = true;
          break;
        case A.SQLITE_READ:
          ok = read.has(a1 ?? "") || write.has(a1 ?? "");
          if (!ok) why ||= `table "${a1}" is not one of this subsystem's tables`;
          break;
        case A.SQLITE_INSERT:
        case A.SQLITE_UPDATE:
        case A.SQLITE_DELETE:
          ok = write.has(a1 ?? "");
          if (!ok) {
            why ||= write.size
              ? `table "${a1}" is not in the group being written`
              : "a query only reads: write through write()";
          }
          break;
        default:
          why ||=
            "only SELECT, INSERT, UPDATE and DELETE (transactions, DDL and PRAGMA are keepwire's)";
      }
      return ok ? A.SQLITE_OK : A.SQLITE_DENY;
    });
    try {
      c.prepare(sql);
    } catch (e) {
      throw new SdkSqlError(sql, why || (e as Error).message, e);
    } finally {
      setAuthorizer(c, null);
    }
    try {
      const st = this.#db.prepare(sql);
      if (this.#stmts.size > 500) this.#stmts.clear();
      this.#stmts.set(key + "\0" + sql, st);
      return st;
    } catch (e) {
      throw new SdkSqlError(sql, (e as Error).message, e);
    }
  }

  #run(
    st: ReturnType<DatabaseSync["prepare"]>,
    sql: string,
    params: SqlValue[] | Record<string, SqlValue> | undefined,
  ): StatementResult {
    try {
      const p = params ?? [];
      const rows = (Array.isArray(p) ? st.all(...(p as SQLInputValue[])) : st.all(
        p as Record<string, SQLInputValue>,
      )) as Row[];
      const c = this.#changes.get() as { c: number; r: number };
      // plain objects (node:sqlite rows have a null prototype)
      return {
        rows: rows.map((r) => ({ ...r })),
        changes: Number(c.c),
        lastInsertRowid: Number(c.r),
      };
    } catch (e) {
      throw new SdkSqlError(sql, (e as Error).message, e);
    }
  }

  /** A read of the subsystem's tables (allowed on every node: the standby reads its copy). */
  query(
    subsystem: string,
    sql: string,
    params?: SqlValue[] | Record<string, SqlValue>,
  ): Row[] {
    const read = this.#readable(subsystem);
    if (!read.size) throw new SdkUnknownGroupError("(none declared yet)");
    const st = this.#prepare(sql, read, new Set(), `${subsystem}\0r`);
    return this.#run(st, sql, params).rows;
  }

  /**
   * Statements in one transaction on a group's tables, replicated with the group's
   * durability. Refused on a node that is not the active one ({@link SdkNotActiveError}).
   */
  async write(
    subsystem: string,
    group: string,
    statements: { sql: string; params?: SqlValue[] | Record<string, SqlValue> }[],
  ): Promise<WriteResult> {
    const g = this.#group(subsystem, group);
    const n = this.node();
    const setB = g.spec.set === "b" && this.#repl?.groupRole && g.registered;
    if (setB) {
      // active-active: set b's groups are written where channel b is the primary
      const r = this.#repl!.groupRole!(g.replName);
      if (r !== "primary") throw new SdkNotActiveError(`${r} for set b`);
    } else if (!n.writable) {
      throw new SdkNotActiveError(n.ha === "active" ? "not yet primary" : n.ha);
    }
    const read = this.#readable(subsystem);
    const prepared = statements.map((s) => ({
      st: this.#prepare(s.sql, read, g.tables, `${subsystem}\0w\0${group}`),
      s,
    }));
    const fn = () => prepared.map(({ st, s }) => this.#run(st, s.sql, s.params));
    const repl = this.#repl;
    if (repl && g.registered) {
      try {
        const r = await repl.write(g.replName, fn);
        return {
          results: r.value,
          durable: g.spec.durability === "async" ? "async" : r.replicated ? "replicated" : "local",
          seq: r.seq ?? null,
        };
      } catch (e) {
        if (e instanceof ReplNotPrimaryError) throw new SdkNotActiveError(n.ha);
        throw e;
      }
    }
    return { results: this.#localTx(fn), durable: "local", seq: null };
  }

  #localTx<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const v = fn();
      this.#db.exec("COMMIT");
      return v;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  // ------------------------------------------------------------------ handoff

  #machine(subsystem: string): HandoffMachine {
    let m = this.#handoff.get(subsystem);
    if (!m) {
      m = new HandoffMachine(this.handoffSettings(subsystem), this.#clock.now());
      this.#handoff.set(subsystem, m);
    }
    return m;
  }

  /** The thresholds of a subsystem (replicated table; default off). */
  handoffSettings(subsystem: string): HandoffSettings {
    const r = this.#db.prepare(
      "SELECT enabled, on_at, off_at FROM sdk_handoff WHERE subsystem = ?",
    ).get(subsystem) as { enabled: number; on_at: number; off_at: number } | undefined;
    return r ? { enabled: !!r.enabled, onAt: r.on_at, offAt: r.off_at } : { ...HANDOFF_OFF };
  }

  /**
   * Set a subsystem's thresholds (validated; on the active node, replicated with `sync`
   * durability so the peer shows the same). Returns the state after re-evaluation.
   */
  async setHandoff(subsystem: string, input: unknown, by: string): Promise<HandoffView> {
    const r = handoffSettingsSchema.safeParse(input);
    if (!r.success) {
      const [f, m] = fieldsOf(r.error);
      throw new SdkHandoffSettingsError(f, m);
    }
    const s = r.data;
    const n = this.node();
    if (!n.writable) throw new SdkNotActiveError(n.ha);
    const fn = (db: DatabaseSync) =>
      db.prepare(
        "INSERT INTO sdk_handoff (subsystem, enabled, on_at, off_at, updated, by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(subsystem) DO UPDATE SET enabled = excluded.enabled, on_at = excluded.on_at, off_at = excluded.off_at, updated = excluded.updated, by = excluded.by",
      ).run(subsystem, s.enabled ? 1 : 0, s.onAt, s.offAt, this.#clock.now(), by);
    if (this.#repl) await this.#repl.write(SDK_SETTINGS_GROUP, fn);
    else this.#localTx(() => fn(this.#db));
    this.#bus?.publish({
      module: "sdk",
      kind: "sdk.handoff_settings",
      severity: "notice",
      payload: { subsystem, enabled: s.enabled, onAt: s.onAt, offAt: s.offAt, by },
    });
    const m = this.#machine(subsystem);
    m.configure(s, this.#clock.now());
    this.#evaluate(subsystem, m, true);
    return this.handoff(subsystem);
  }

  /** A queue report of a subsystem (SDK reportQueue, X_QUEUE_DEPTH): drives the handoff. */
  queue(subsystem: string, depth: number): void {
    const m = this.#handoff.get(subsystem) ??
      (this.handoffSettings(subsystem).enabled ? this.#machine(subsystem) : undefined);
    if (!m) return;
    this.#evaluate(subsystem, m, false, depth);
  }

  #evaluate(subsystem: string, m: HandoffMachine, force: boolean, depth?: number): void {
    const n = this.node();
    const ha = this.#ha();
    const peerAvailable = n.role === "active" && ha.peer !== null && ha.peerUp !== false;
    const changed = m.report(depth ?? m.state().depth, this.#clock.now(), force, peerAvailable);
    if (!changed && !force) return;
    const st = m.state();
    if (changed) {
      this.#bus?.publish({
        module: "sdk",
        kind: "sdk.handoff_changed",
        severity: "notice",
        payload: {
          subsystem,
          target: st.target,
          reason: st.reason,
          depth: st.depth,
          onAt: st.settings.onAt,
          offAt: st.settings.offAt,
        },
      });
    }
    // the active records where new work goes, so the peer shows it too
    if (changed && n.writable) void this.#recordState(subsystem, n.node, st).catch(() => {});
    for (const fn of [...this.#handoffListeners]) fn(subsystem, this.handoff(subsystem));
  }

  async #recordState(subsystem: string, node: string, st: HandoffState): Promise<void> {
    const fn = (db: DatabaseSync) =>
      db.prepare(
        "INSERT INTO sdk_handoff_state (subsystem, node, target, reason, depth, since) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(subsystem) DO UPDATE SET node = excluded.node, target = excluded.target, reason = excluded.reason, depth = excluded.depth, since = excluded.since",
      ).run(subsystem, node, st.target, st.reason, st.depth, st.since);
    if (this.#repl && this.#repl.status().role === "primary") {
      await this.#repl.write(SDK_SETTINGS_GROUP, fn);
    } else if (!this.#repl) this.#localTx(() => fn(this.#db));
  }

  /**
   * Where a subsystem's new work goes, as this node sees it. On the active: its own
   * machine. On a standby: what the active recorded (replicated), from this node's side.
   */
  handoff(subsystem: string): HandoffView {
    const n = this.node();
    if (n.role === "standby") {
      const r = this.#db.prepare(
        "SELECT node, target, reason, depth, since FROM sdk_handoff_state WHERE subsystem = ?",
      ).get(subsystem) as
        | { node: string; target: string; reason: string; depth: number; since: number }
        | undefined;
      const settings = this.handoffSettings(subsystem);
      if (!r) {
        return {
          target: "local",
          reason: "the active node has not reported a handoff",
          depth: 0,
          since: 0,
          settings,
          decidedBy: "none",
          to: n.peer ?? "",
        };
      }
      return {
        target: r.target === "peer" ? "peer" : "local",
        reason: r.target === "peer"
          ? `the active (${r.node}) hands new work to this node: ${r.reason}`
          : `the active (${r.node}) keeps new work: ${r.reason}`,
        depth: r.depth,
        since: r.since,
        settings,
        decidedBy: r.node,
        to: r.target === "peer" ? n.node : r.node,
      };
    }
    const st = this.#machine(subsystem).state();
    return {
      ...st,
      decidedBy: n.node,
      to: st.target === "peer" && n.peer ? n.peer : n.node,
    };
  }

  /** Every subsystem with declared tables or handoff settings, with its handoff view. */
  overview(): { subsystem: string; groups: TablesInfo[]; handoff: HandoffView }[] {
    const subs = new Set<string>(this.#groups.keys());
    for (
      const r of this.#db.prepare("SELECT subsystem FROM sdk_handoff").all() as {
        subsystem: string;
      }[]
    ) subs.add(r.subsystem);
    return [...subs].sort().map((s) => ({
      subsystem: s,
      groups: [...(this.#groups.get(s)?.values() ?? [])].map((g) => ({
        group: g.name,
        version: g.version,
        tables: [...g.tables],
        durability: g.spec.durability,
      })),
      handoff: this.handoff(s),
    }));
  }
}
