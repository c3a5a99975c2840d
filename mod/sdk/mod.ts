/**
 * The keepwire SDK: what a vendor's worker subsystem imports.
 *
 * ```ts
 * import { heartbeat, onStop, ready, reportQueue, status } from "../mod/sdk/mod.ts";
 * // ... set up ...
 * ready();                 // start-up done; heartbeats are then sent automatically
 * status("serving 3 peers");
 * onStop(async () => { await flush(); });
 * ```
 *
 * `ready()` starts automatic heartbeats at the configured interval, so a worker
 * whose event loop is stuck (an endless loop) stops beating and is restarted.
 * Call `ready({ autoHeartbeat: false })` and then `heartbeat()` yourself to tie
 * liveness to your own work loop instead. Outside keepwire every call is a no-op.
 *
 * Replicated tables (issue 13 §3; docs/ha.md "SDK tables"): declare a table group and
 * read and write it through keepwire; on an HA pair every write reaches the standby
 * (a `sync` group's write resolves only once the standby applied it):
 *
 * ```ts
 * const db = await tables({
 *   group: "sms", durability: "sync",
 *   tables: [{ name: "sms_messages", primaryKey: ["id"],
 *              columns: { id: "TEXT NOT NULL", body: "TEXT NOT NULL" } }],
 * });
 * await db.write({ sql: "INSERT INTO sms_messages (id, body) VALUES (?, ?)", params: [id, body] });
 * const rows = await db.query("SELECT * FROM sms_messages WHERE id = ?", [id]);
 * if (!node().writable) { ... }   // a standby: writes are refused (SdkError sdk_not_active)
 * ```
 *
 * Heartbeats are written into a small SharedArrayBuffer slot that keepwire reads
 * when a heartbeat deadline comes due, so they cost keepwire's event loop nothing;
 * everything else (ready, status, queue, stop) travels over postMessage.
 * The state lives on `globalThis`, so a vendored copy of this file works too.
 * @module
 */

/** What keepwire tells a worker when it loads it. */
export interface SubsystemContext {
  /** Subsystem name. */
  name: string;
  /** The spec's `env`. */
  env: Record<string, string>;
  /** Expected heartbeat interval in ms, or null when heartbeats are off. */
  heartbeatIntervalMs: number | null;
}

type Handler = () => void | Promise<void>;

/** A value a statement binds or a row holds. */
export type SqlValue = string | number | bigint | null | Uint8Array;
/** One result row, by column name. */
export type Row = Record<string, SqlValue>;

/** One table of a group. */
export interface TableSpec {
  /** Table name (letters, digits, _; not sqlite_/repl_/sdk_; unique in the store). */
  name: string;
  /** Column name → SQL type and constraints, e.g. `{ id: "TEXT NOT NULL" }`: the current shape. */
  columns: Record<string, string>;
  /** Primary key columns, in order. Required: a table without one is refused. */
  primaryKey: string[];
  /** Index name → columns (created on a fresh install; add later ones by migration). */
  indexes?: Record<string, string[]>;
}

/** A table group: its tables, its durability and its migrations. */
export interface TablesSpec {
  /** Group name (per subsystem). */
  group: string;
  /** `sync`: a write resolves once the standby applied it; `async`: shipped within ~50 ms. */
  durability: "sync" | "async";
  /** `sync` with the standby gone: commit locally (`continue`, default) or refuse the write. */
  onStandbyLost?: "continue" | "refuse";
  /**
   * The client set whose active node writes the group (`a`, default; `b` in an
   * active-active pair: the node active for set b writes it and replicates it to its peer).
   * Without active-active every group is written by the one active node.
   */
  set?: "a" | "b";
  /** The tables, as they are at the latest version. */
  tables: TableSpec[];
  /**
   * Steps from version 1 (the first declaration) upwards: step i takes the tables from
   * version i+1 to i+2. A fresh install creates `tables` as declared and skips them; an
   * older install runs the ones it has not run. Both nodes run them (DDL is never replicated).
   */
  migrations?: string[];
}

/** One statement. */
export interface Statement {
  /** One SQL statement: SELECT, INSERT, UPDATE or DELETE (RETURNING allowed). */
  sql: string;
  /** Positional (`?`) or named (`:name`) parameters. */
  params?: SqlValue[] | Record<string, SqlValue>;
}

/** What one statement of a write did. */
export interface StatementResult {
  /** Rows it returned (SELECT, RETURNING). */
  rows: Row[];
  /** Rows it changed. */
  changes: number;
  /** Last inserted rowid. */
  lastInsertRowid: number;
}

/** What a write returns once it is as durable as its group promises. */
export interface WriteResult {
  /** One result per statement. */
  results: StatementResult[];
  /**
   * `replicated`: the standby applied it (sync group); `local`: committed on this node only
   * (no pair, or the standby is gone and the group continues); `async`: committed, shipped later.
   */
  durable: "replicated" | "local" | "async";
  /** The replication sequence that carries it, when replicated. */
  seq: number | null;
}

/** A declared group. */
export interface TablesInfo {
  /** Group name. */
  group: string;
  /** Schema version reached. */
  version: number;
  /** Its tables. */
  tables: string[];
  /** Its durability. */
  durability: "sync" | "async";
}

/** This node as a subsystem sees it. */
export interface NodeInfo {
  /** `single` (no HA), `active`, or `standby` (any other HA role: writes refused). */
  role: "single" | "active" | "standby";
  /** The HA role as keepwire names it (`active`, `standby`, `fault`, `disabled`, ...). */
  ha: string;
  /** This node's id. */
  node: string;
  /** The peer's id, when configured. */
  peer: string | null;
  /** Writes to replicated tables (of set a's groups) are accepted here now. */
  writable: boolean;
  /**
   * The client sets whose groups this node writes now (`["a"]` on a single or active
   * node; in an active-active pair also `"b"` while it is active for set b).
   */
  writableSets?: ("a" | "b")[];
}

/** Where new work of this subsystem goes (queue handoff). */
export interface HandoffInfo {
  /** `peer`: the deciding (active) node hands new work to its peer. */
  target: "local" | "peer";
  /** Why, as a sentence. */
  reason: string;
  /** The node id that takes new work now. */
  to: string;
  /** The node that decided (the active). */
  decidedBy: string;
  /** Queue depth at the last report. */
  depth: number;
  /** Since (epoch ms). */
  since: number;
  /** The thresholds (set in the web UI). */
  settings: { enabled: boolean; onAt: number; offAt: number };
}

/** An error keepwire answered a call with (same codes as the HTTP API). */
export class SdkError extends Error {
  /** Stable code, e.g. `sdk_not_active`, `sdk_no_primary_key`, `sdk_sql_refused`. */
  readonly code: string;
  /** HTTP-like status. */
  readonly status: number;
  /** Per-field problems. */
  readonly fields?: Record<string, string>;
  /** Build one. */
  constructor(code: string, message: string, status = 500, fields?: Record<string, string>) {
    super(message);
    this.name = "SdkError";
    this.code = code;
    this.status = status;
    if (fields) this.fields = fields;
  }
}

/** A declared table group: read and write it. */
export interface Tables {
  /** Group name. */
  readonly group: string;
  /** Schema version reached. */
  readonly version: number;
  /** Read (any of this subsystem's tables; allowed on every node). */
  query(sql: string, params?: SqlValue[] | Record<string, SqlValue>): Promise<Row[]>;
  /**
   * Statements in ONE transaction on this group's tables; resolves when as durable as the
   * group promises. Rejects with {@link SdkError} (`sdk_not_active` on a standby).
   */
  write(statements: Statement | Statement[]): Promise<WriteResult>;
}

interface SdkState {
  ctx: SubsystemContext | null;
  beat: BigInt64Array | null;
  post: ((msg: unknown) => void) | null;
  readySent: boolean;
  auto: ReturnType<typeof setInterval> | undefined;
  suspended: boolean;
  onSuspend: Set<Handler>;
  onResume: Set<Handler>;
  onStop: Set<Handler>;
  calls: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
  nextCall: number;
  node: NodeInfo | null;
  onNode: Set<(n: NodeInfo) => void>;
  handoff: HandoffInfo | null;
  onHandoff: Set<(h: HandoffInfo) => void>;
}

const KEY = Symbol.for("keepwire.sdk.v1");

function st(): SdkState {
  const g = globalThis as unknown as Record<symbol, SdkState | undefined>;
  return g[KEY] ??= {
    ctx: null,
    beat: null,
    post: null,
    readySent: false,
    auto: undefined,
    suspended: false,
    onSuspend: new Set(),
    onResume: new Set(),
    onStop: new Set(),
    calls: new Map(),
    nextCall: 1,
    node: null,
    onNode: new Set(),
    handoff: null,
    onHandoff: new Set(),
  };
}

/** Call keepwire (table service); rejects with SdkError on its refusal. */
function call(op: string, args: unknown): Promise<unknown> {
  const s = st();
  if (!s.post) {
    return Promise.reject(
      new SdkError("sdk_not_attached", "not running under keepwire: no table service", 503),
    );
  }
  const id = s.nextCall++;
  return new Promise((resolve, reject) => {
    s.calls.set(id, { resolve, reject });
    s.post!({ kw: "call", id, op, args });
  });
}

function send(msg: Record<string, unknown>): void {
  st().post?.({ kw: msg.kw, ...msg });
}

async function runAll(set: Set<Handler>, what: string): Promise<void> {
  for (const fn of [...set]) {
    try {
      await fn();
    } catch (e) {
      send({ kw: "status", text: `${what} handler failed: ${(e as Error).message}` });
    }
  }
}

/** The subsystem this code runs as, or null outside keepwire. */
export function subsystem(): SubsystemContext | null {
  return st().ctx;
}

/** Start-up is done. Starts automatic heartbeats unless `autoHeartbeat: false`. */
export function ready(opts: { autoHeartbeat?: boolean } = {}): void {
  const s = st();
  if (!s.post || s.readySent) return;
  s.readySent = true;
  send({ kw: "ready" });
  const every = s.ctx?.heartbeatIntervalMs;
  if ((opts.autoHeartbeat ?? true) && every) {
    s.auto = setInterval(heartbeat, every);
  }
}

/** I am alive (call at least every heartbeat interval when automatic heartbeats are off). */
export function heartbeat(): void {
  const s = st();
  if (s.beat) Atomics.store(s.beat, 0, BigInt(Date.now()));
  else send({ kw: "heartbeat" });
}

/** One line of status text (shown by `keepwire sub list` and the UI). */
export function status(text: string): void {
  send({ kw: "status", text: String(text).slice(0, 1000) });
}

/**
 * Declare a table group (created or migrated on this node) and get its handle. Rejects
 * with {@link SdkError}: `sdk_no_primary_key` for a table without a primary key,
 * `sdk_invalid_tables` naming the field otherwise.
 */
export async function tables(spec: TablesSpec): Promise<Tables> {
  const info = await call("declare", spec) as TablesInfo;
  return {
    group: info.group,
    version: info.version,
    query: async (sql, params) => await call("query", { sql, params }) as Row[],
    write: async (statements) =>
      await call("write", {
        group: info.group,
        statements: Array.isArray(statements) ? statements : [statements],
      }) as WriteResult,
  };
}

/** This node's role (null before keepwire told it, or outside keepwire). */
export function node(): NodeInfo | null {
  return st().node;
}

/** Called when this node's role changes (failover). Returns an unsubscribe. */
export function onNode(fn: (n: NodeInfo) => void): () => void {
  st().onNode.add(fn);
  return () => st().onNode.delete(fn);
}

/** Where new work goes (queue handoff), null before keepwire told it. */
export function handoff(): HandoffInfo | null {
  return st().handoff;
}

/** Called when the handoff target changes. Returns an unsubscribe. */
export function onHandoff(fn: (h: HandoffInfo) => void): () => void {
  st().onHandoff.add(fn);
  return () => st().onHandoff.delete(fn);
}

/** Report the work queue (the load governor reads it; it drives the queue handoff). */
export function reportQueue(depth: number, oldestAgeMs: number): void {
  if (!Number.isFinite(depth) || !Number.isFinite(oldestAgeMs)) return;
  send({ kw: "queue", depth: Math.max(0, depth), oldestAgeMs: Math.max(0, oldestAgeMs) });
}

/** Called when the governor suspends this subsystem (stop optional work). Returns an unsubscribe. */
export function onSuspend(fn: Handler): () => void {
  st().onSuspend.add(fn);
  return () => st().onSuspend.delete(fn);
}

/** Called when the governor resumes this subsystem. Returns an unsubscribe. */
export function onResume(fn: Handler): () => void {
  st().onResume.add(fn);
  return () => st().onResume.delete(fn);
}

/** Called on an orderly stop, before the stop timeout ends the worker. Returns an unsubscribe. */
export function onStop(fn: Handler): () => void {
  st().onStop.add(fn);
  return () => st().onStop.delete(fn);
}

/** True while suspended by the governor. */
export function suspended(): boolean {
  return st().suspended;
}

/** End this worker on purpose: code 0 is a clean exit (restart policy on-failure keeps it down). */
export function exit(code = 0): void {
  send({ kw: "exit", code });
  const s = st();
  if (s.auto !== undefined) clearInterval(s.auto);
}

/**
 * Internal: attach the SDK to keepwire's worker host. Called by
 * mod/supervisor/worker_host.ts before the vendor module loads.
 */
export function _attach(
  ctx: SubsystemContext,
  post: (msg: unknown) => void,
  listen: (fn: (data: unknown) => void) => void,
  beat?: SharedArrayBuffer,
): void {
  const s = st();
  s.ctx = ctx;
  s.post = post;
  s.beat = beat && beat.byteLength >= 8 ? new BigInt64Array(beat, 0, 1) : null;
  listen(async (data) => {
    const d = data as Record<string, unknown> | null;
    const kw = d?.kw;
    if (kw === "reply") {
      const c = s.calls.get(Number(d!.id));
      if (!c) return;
      s.calls.delete(Number(d!.id));
      if (d!.ok) c.resolve(d!.value);
      else {
        const e = (d!.error ?? {}) as {
          code?: string;
          message?: string;
          status?: number;
          fields?: Record<string, string>;
        };
        c.reject(new SdkError(e.code ?? "error", e.message ?? "error", e.status, e.fields));
      }
    } else if (kw === "node") {
      s.node = d!.node as NodeInfo;
      for (const fn of [...s.onNode]) fn(s.node);
    } else if (kw === "handoff") {
      s.handoff = d!.handoff as HandoffInfo;
      for (const fn of [...s.onHandoff]) fn(s.handoff);
    } else if (kw === "suspend") {
      s.suspended = true;
      await runAll(s.onSuspend, "onSuspend");
      send({ kw: "suspended" });
    } else if (kw === "resume") {
      s.suspended = false;
      await runAll(s.onResume, "onResume");
      send({ kw: "resumed" });
    } else if (kw === "stop") {
      if (s.auto !== undefined) clearInterval(s.auto);
      await runAll(s.onStop, "onStop");
      send({ kw: "stopped" });
    }
  });
}
