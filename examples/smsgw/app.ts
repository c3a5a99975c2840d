/**
 * The example SMS gateway's logic, written against the keepwire SDK's surface (tables,
 * node role, queue handoff) so the same code runs as a supervised worker (mod.ts) and in
 * tests with two nodes in one process. README.md beside this file is the reference.
 *
 * - HTTP API: `POST /v1/messages` (submit; `x-api-key`), `GET /v1/messages/:id` (status).
 * - Every message is in replicated tables (group `sms`, `sync`): a submit is acknowledged
 *   only once the standby holds it.
 * - Idempotent submit: a `clientRef` seen before for the account returns the first
 *   message (200, `duplicate: true`) instead of a second one.
 * - A delivery loop hands queued messages to the SMSC over HTTP. Before each send it
 *   records the attempt (`smsgw_deliveries`, key message + node + epoch) in a sync write:
 *   within one node-epoch a message is never sent twice. A node that becomes active sends
 *   again what an earlier node-epoch left with no known outcome (duplicates possible then,
 *   and counted by the SMSC).
 * - Queue handoff: while keepwire says new work goes to the peer, new messages are
 *   assigned to the peer node; the peer's delivery loop sends them and records claims and
 *   outcomes through the active's internal API (the standby's copy is read-only).
 * @module
 */
import { z } from "zod";
import type {
  HandoffInfo,
  NodeInfo,
  Row,
  Statement,
  TablesSpec,
  WriteResult,
} from "../../mod/sdk/mod.ts";

/** The tables, as the SDK declares them. */
export const SMSGW_TABLES: TablesSpec = {
  group: "sms",
  durability: "sync",
  tables: [
    {
      name: "smsgw_accounts",
      columns: { name: "TEXT NOT NULL", key_hash: "TEXT NOT NULL", created: "INTEGER NOT NULL" },
      primaryKey: ["name"],
      indexes: { smsgw_accounts_key: ["key_hash"] },
    },
    {
      name: "smsgw_messages",
      columns: {
        id: "TEXT NOT NULL",
        account: "TEXT NOT NULL",
        client_ref: "TEXT",
        to_addr: "TEXT NOT NULL",
        from_addr: "TEXT",
        body: "TEXT NOT NULL",
        status: "TEXT NOT NULL",
        assigned: "TEXT NOT NULL",
        handoff: "TEXT",
        created: "INTEGER NOT NULL",
        updated: "INTEGER NOT NULL",
        attempts: "INTEGER NOT NULL DEFAULT 0",
        smsc_id: "TEXT",
        error: "TEXT",
      },
      primaryKey: ["id"],
      indexes: { smsgw_messages_queue: ["status", "assigned", "created"] },
    },
    {
      name: "smsgw_refs",
      columns: { account: "TEXT NOT NULL", client_ref: "TEXT NOT NULL", msg_id: "TEXT NOT NULL" },
      primaryKey: ["account", "client_ref"],
    },
    {
      name: "smsgw_deliveries",
      columns: {
        msg_id: "TEXT NOT NULL",
        node: "TEXT NOT NULL",
        epoch: "TEXT NOT NULL",
        at: "INTEGER NOT NULL",
        result: "TEXT NOT NULL",
      },
      primaryKey: ["msg_id", "node", "epoch"],
    },
  ],
};

/** The longest text (4 concatenated GSM segments of 153 characters). */
export const MAX_TEXT = 612;

/** A submit request. */
export const submitSchema = z.strictObject({
  to: z.string({ error: "required" }).regex(
    /^\+?[1-9][0-9]{6,14}$/,
    "an E.164 number, e.g. +4915123456789",
  ),
  text: z.string({ error: "required" }).min(1, "must not be empty").max(
    MAX_TEXT,
    `at most ${MAX_TEXT} characters`,
  ),
  from: z.string().regex(/^[A-Za-z0-9 +]{1,16}$/, "1-16 letters, digits or +").optional(),
  clientRef: z.string().min(1).max(64, "at most 64 characters").optional(),
});

/** What the app needs of the SDK (the worker passes the real one; tests a direct host). */
export interface SmsgwSdk {
  /** The declared group's handle. */
  tables: {
    query(sql: string, params?: (string | number | null)[]): Promise<Row[]>;
    write(statements: Statement | Statement[]): Promise<WriteResult>;
  };
  /** This node. */
  node(): NodeInfo | null;
  /** Where new work goes. */
  handoff(): HandoffInfo | null;
  /** Report the queue (drives the handoff). */
  reportQueue(depth: number, oldestAgeMs: number): void;
  /** One status line. */
  status(text: string): void;
}

/** Settings (from the subsystem's env). */
export interface SmsgwOptions {
  /** The SMSC's submit URL (POST JSON). */
  smscUrl: string;
  /** The active node's smsgw URL (the service address), used by a standby serving handed-off work. */
  activeUrl?: string;
  /** Shared key of the two nodes' internal API (handoff); none: internal API off. */
  peerKey?: string;
  /** Delivery loop period (ms). */
  tickMs?: number;
  /** Messages sent at once. */
  concurrency?: number;
  /**
   * A claim of another node with no outcome after this long counts as lost, and its message
   * is sent again (ms). The claimer keeps within it: it starts sends for `staleMs / 6`
   * after its claim (the rest are released), a send times out after `staleMs * 2 / 3`,
   * which leaves `staleMs / 6` to record the outcome.
   */
  staleMs?: number;
}

/** The outcome of one send, until it is recorded in the tables. */
interface Outcome {
  id: string;
  ok: boolean;
  smscId?: string;
  error?: string;
  /** The claim it was sent under. */
  node: string;
  epoch: string;
}

/** Most messages one node claims at once (what a failover can send twice is at most this). */
export const DELIVERY_BATCH = 64;

/** Most ids or outcomes one call of the internal API (claim, result, release) takes. */
const INTERNAL_MAX = 256;

type Json = Record<string, unknown>;

function sha256hex(s: string): Promise<string> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)).then((b) =>
    [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("")
  );
}

function err(status: number, code: string, message: string, fields?: Record<string, string>) {
  return Response.json({ error: { code, message, ...(fields ? { fields } : {}) } }, { status });
}

/** Counters the status line and tests read. */
export interface SmsgwCounters {
  /** Messages accepted (new). */
  accepted: number;
  /** Submits answered with an earlier message (same clientRef). */
  duplicates: number;
  /** Sends to the SMSC that it accepted. */
  sent: number;
  /** Sends refused or failed. */
  failed: number;
  /** Messages of the peer this node sent (handoff). */
  servedForPeer: number;
}

/** The gateway of one node. */
export class Smsgw {
  readonly #sdk: SmsgwSdk;
  readonly #o: Required<Omit<SmsgwOptions, "activeUrl" | "peerKey">> & SmsgwOptions;
  #epoch = "";
  #epochRole = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  #reportTimer: ReturnType<typeof setInterval> | undefined;
  #busy = false;
  #stopped = false;
  /** Messages this process is sending now (never claimed again meanwhile). */
  readonly #inflight = new Set<string>();
  /**
   * Outcomes of sends not recorded yet (the write or the report to the active failed or is
   * under way): recorded as each send completes, retried every pass, written here once this
   * node is the active; never claimed again meanwhile.
   */
  readonly #unrecorded = new Map<string, Outcome>();
  #recording: Promise<void> | null = null;
  #recordAgain = false;
  /** Counters. */
  readonly counters: SmsgwCounters = {
    accepted: 0,
    duplicates: 0,
    sent: 0,
    failed: 0,
    servedForPeer: 0,
  };

  /** Build on the SDK surface. */
  constructor(sdk: SmsgwSdk, opts: SmsgwOptions) {
    this.#sdk = sdk;
    this.#o = { tickMs: 100, concurrency: 8, staleMs: 15_000, ...opts };
  }

  /** This node's id. */
  get me(): string {
    return this.#sdk.node()?.node ?? "node1";
  }

  /** The node-epoch: a new one each time this node's role changes (or the process starts). */
  epoch(): string {
    const n = this.#sdk.node();
    const role = `${n?.role}:${n?.writable}`;
    if (role !== this.#epochRole || !this.#epoch) {
      this.#epochRole = role;
      this.#epoch = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
    }
    return this.#epoch;
  }

  /** Create accounts from `name:key` pairs (on the active; idempotent). */
  async seedAccounts(pairs: [string, string][]): Promise<void> {
    if (!pairs.length || !this.#sdk.node()?.writable) return;
    const st: Statement[] = [];
    for (const [name, key] of pairs) {
      st.push({
        sql:
          "INSERT INTO smsgw_accounts (name, key_hash, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET key_hash = excluded.key_hash",
        params: [name, await sha256hex(key), Date.now()],
      });
    }
    await this.#sdk.tables.write(st);
  }

  /** Start the delivery loop. */
  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.tickMs);
    // the queue is reported on its own beat: a delivery pass may take long (slow SMSC)
    this.#reportTimer = setInterval(
      () =>
        void this.#report().catch((e) =>
          this.#sdk.status(`queue report failed: ${e instanceof Error ? e.message : e}`)
        ),
      this.#o.tickMs,
    );
  }

  /** Stop the delivery loop (waits for a running pass, then records what it can). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#reportTimer !== undefined) clearInterval(this.#reportTimer);
    while (this.#busy) await new Promise((r) => setTimeout(r, 10));
    await this.#record();
  }

  /** Outcomes of sends this process has not recorded yet. */
  get unrecorded(): number {
    return this.#unrecorded.size;
  }

  /** The HTTP API. */
  async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/health") {
        return Response.json({ node: this.me, role: this.#sdk.node()?.role ?? "single" });
      }
      if (url.pathname === "/v1/messages" && req.method === "POST") return await this.#submit(req);
      const m = /^\/v1\/messages\/([A-Za-z0-9-]{1,64})$/.exec(url.pathname);
      if (m && req.method === "GET") return await this.#get(req, m[1]);
      if (url.pathname === "/v1/routing" && req.method === "GET") return this.#routing();
      if (url.pathname.startsWith("/internal/") && req.method === "POST") {
        return await this.#internal(req, url.pathname.slice(10));
      }
      return err(404, "not_found", `no route for ${req.method} ${url.pathname}`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "sdk_not_active") {
        return err(
          503,
          "not_active",
          `this node does not take messages now: ${(e as Error).message}`,
        );
      }
      return err(500, "internal", e instanceof Error ? e.message : String(e));
    }
  }

  async #account(req: Request): Promise<string | Response> {
    const key = req.headers.get("x-api-key") ??
      req.headers.get("authorization")?.replace(/^Bearer\s+/i, "");
    if (!key) {
      return err(401, "missing_api_key", "send the account's API key in x-api-key", {
        "x-api-key": "required",
      });
    }
    const rows = await this.#sdk.tables.query(
      "SELECT name FROM smsgw_accounts WHERE key_hash = ?",
      [await sha256hex(key)],
    );
    if (!rows.length) {
      return err(401, "unknown_account", "no account has this API key", {
        "x-api-key": "unknown account",
      });
    }
    return String(rows[0].name);
  }

  #routing(): Response {
    const h = this.#sdk.handoff();
    return Response.json({
      node: this.me,
      role: this.#sdk.node()?.role ?? "single",
      newMessagesTo: h?.to || this.me,
      handoff: h,
    });
  }

  async #submit(req: Request): Promise<Response> {
    const n = this.#sdk.node();
    if (n && !n.writable) {
      return err(
        503,
        "not_active",
        `node ${n.node} is ${n.ha}: submit to the active node (the service address)`,
      );
    }
    const account = await this.#account(req);
    if (account instanceof Response) return account;
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      return err(400, "bad_json", "the body must be a JSON object", { body: "not JSON" });
    }
    const r = submitSchema.safeParse(body);
    if (!r.success) {
      const fields: Record<string, string> = {};
      for (const i of r.error.issues) {
        const f = i.path.join(".") || "body";
        const missing = i.code === "invalid_type" && (body as Json | null)?.[f] === undefined;
        fields[f] ??= missing ? "required" : i.message;
      }
      const first = Object.keys(fields)[0];
      return err(422, "invalid_message", `${first}: ${fields[first]}`, fields);
    }
    const msg = r.data;
    const id = crypto.randomUUID();
    const now = Date.now();
    const h = this.#sdk.handoff();
    const toPeer = h !== null && h.target === "peer" && h.to !== "" && h.to !== this.me;
    const assigned = toPeer ? h!.to : this.me;
    const ref = msg.clientRef ?? null;
    const st: Statement[] = [];
    if (ref !== null) {
      st.push({
        sql:
          "INSERT INTO smsgw_refs (account, client_ref, msg_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        params: [account, ref, id],
      });
    }
    st.push({
      sql:
        `INSERT INTO smsgw_messages (id, account, client_ref, to_addr, from_addr, body, status, assigned, handoff, created, updated)
            SELECT ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?
            WHERE ? IS NULL OR (SELECT msg_id FROM smsgw_refs WHERE account = ? AND client_ref = ?) = ?`,
      params: [
        id,
        account,
        ref,
        msg.to,
        msg.from ?? null,
        msg.text,
        assigned,
        toPeer ? h!.reason : null,
        now,
        now,
        ref,
        account,
        ref,
        id,
      ],
    });
    st.push({
      sql: ref === null
        ? "SELECT id, status, assigned FROM smsgw_messages WHERE id = ?"
        : "SELECT m.id, m.status, m.assigned FROM smsgw_messages m JOIN smsgw_refs r ON m.id = r.msg_id WHERE r.account = ? AND r.client_ref = ?",
      params: ref === null ? [id] : [account, ref],
    });
    const w = await this.#sdk.tables.write(st);
    const row = w.results.at(-1)!.rows[0];
    const duplicate = row.id !== id;
    if (duplicate) this.counters.duplicates++;
    else this.counters.accepted++;
    return Response.json({
      id: row.id,
      status: row.status,
      assigned: row.assigned,
      duplicate,
      durable: w.durable,
    }, { status: duplicate ? 200 : 201 });
  }

  async #get(req: Request, id: string): Promise<Response> {
    const account = await this.#account(req);
    if (account instanceof Response) return account;
    const rows = await this.#sdk.tables.query(
      "SELECT id, client_ref, to_addr, status, assigned, attempts, smsc_id, error, created, updated FROM smsgw_messages WHERE id = ? AND account = ?",
      [id, account],
    );
    if (!rows.length) {
      return err(404, "unknown_message", `no message ${id} for this account`, { id: "unknown" });
    }
    const r = rows[0];
    return Response.json({
      id: r.id,
      clientRef: r.client_ref,
      to: r.to_addr,
      status: r.status,
      assigned: r.assigned,
      attempts: r.attempts,
      smscId: r.smsc_id,
      error: r.error,
      created: r.created,
      updated: r.updated,
    });
  }

  // ---------------------------------------------------------------- delivery

  /** This node writes the tables (the active, or no HA): it delivers and records itself. */
  #writable(): boolean {
    return this.#sdk.node()?.writable ?? true;
  }

  /** One delivery pass (the loop calls it; tests may too). */
  async tick(): Promise<void> {
    if (this.#busy || this.#stopped) return;
    this.#busy = true;
    try {
      await this.#record(); // outcomes of earlier sends first
      if (this.#writable()) await this.#deliverAsActive();
      else if (this.#o.activeUrl && this.#o.peerKey) await this.#deliverAsPeer();
    } catch (e) {
      this.#sdk.status(`delivery pass failed: ${e instanceof Error ? e.message : e}`);
    } finally {
      this.#busy = false;
    }
  }

  async #report(): Promise<void> {
    const n = this.#sdk.node();
    if (n && !n.writable) {
      this.#sdk.reportQueue(0, 0);
      return;
    }
    const r = (await this.#sdk.tables.query(
      "SELECT count(*) AS n, min(created) AS oldest FROM smsgw_messages WHERE status IN ('queued', 'sending') AND assigned = ?",
      [this.me],
    ))[0];
    const depth = Number(r.n);
    this.#sdk.reportQueue(
      depth,
      r.oldest === null ? 0 : Math.max(0, Date.now() - Number(r.oldest)),
    );
    const c = this.counters;
    this.#sdk.status(
      `${
        n?.role ?? "single"
      }: queue ${depth}, sent ${c.sent}, failed ${c.failed}, accepted ${c.accepted}, duplicate submits ${c.duplicates}, sent for the peer ${c.servedForPeer}`,
    );
  }

  /**
   * Claim a batch in one sync write: status → sending and one delivery record per message
   * for (node, epoch). A message with a record of this node-epoch is never claimed again.
   */
  #claimStatements(ids: string[], node: string, epoch: string): Statement[] {
    const now = Date.now();
    const stale = now - this.#o.staleMs;
    const st: Statement[] = [];
    for (const id of ids) {
      st.push({
        sql:
          "INSERT INTO smsgw_deliveries (msg_id, node, epoch, at, result) VALUES (?, ?, ?, ?, 'sending') ON CONFLICT DO NOTHING",
        params: [id, node, epoch, now],
      });
      st.push({
        sql:
          // queued; or sending with no outcome, claimed only by this node's earlier epochs
          // (their process or role is gone) or long enough ago (another node's send is over)
          `UPDATE smsgw_messages SET status = 'sending', attempts = attempts + 1, updated = ?
           WHERE id = ? AND changes() = 1 AND (status = 'queued' OR (status = 'sending' AND
             (updated < ? OR NOT EXISTS (SELECT 1 FROM smsgw_deliveries d
               WHERE d.msg_id = smsgw_messages.id AND d.node <> ?))))
           RETURNING id, to_addr, from_addr, body`,
        params: [now, id, stale, node],
      });
    }
    return st;
  }

  async #claim(ids: string[], node: string, epoch: string): Promise<Row[]> {
    if (!ids.length) return [];
    const w = await this.#sdk.tables.write(this.#claimStatements(ids, node, epoch));
    return w.results.filter((_, i) => i % 2 === 1).flatMap((r) => r.rows);
  }

  #resultStatements(results: Outcome[]): Statement[] {
    const now = Date.now();
    return results.flatMap((r) => [
      {
        sql: r.ok
          ? "UPDATE smsgw_messages SET status = 'delivered', smsc_id = ?, error = NULL, updated = ? WHERE id = ?"
          : "UPDATE smsgw_messages SET status = 'failed', error = ?, updated = ? WHERE id = ?",
        params: [r.ok ? r.smscId ?? null : r.error ?? "refused", now, r.id],
      },
      {
        sql: "UPDATE smsgw_deliveries SET result = ? WHERE msg_id = ? AND node = ? AND epoch = ?",
        params: [r.ok ? "delivered" : "refused", r.id, r.node, r.epoch],
      },
    ]);
  }

  /**
   * Give claimed messages back (never sent): queued again, this claim's record removed so
   * this node-epoch may claim them again.
   */
  #releaseStatements(ids: string[], node: string, epoch: string): Statement[] {
    const now = Date.now();
    return ids.flatMap((id) => [
      {
        sql:
          "DELETE FROM smsgw_deliveries WHERE msg_id = ? AND node = ? AND epoch = ? AND result = 'sending'",
        params: [id, node, epoch],
      },
      {
        sql:
          "UPDATE smsgw_messages SET status = 'queued', attempts = max(attempts - 1, 0), updated = ? WHERE id = ? AND status = 'sending' AND changes() = 1",
        params: [now, id],
      },
    ]);
  }

  /** Not sent now: in flight, or sent with the outcome not recorded yet. */
  #busyWith(id: string): boolean {
    return this.#inflight.has(id) || this.#unrecorded.has(id);
  }

  async #deliverAsActive(): Promise<void> {
    const me = this.me;
    const epoch = this.epoch();
    const stale = Date.now() - this.#o.staleMs;
    // queued for me; handed-off work the peer has not taken for a while; sends of an
    // earlier node-epoch with no outcome (that node is gone or restarted)
    const rows = await this.#sdk.tables.query(
      `SELECT m.id FROM smsgw_messages m
       WHERE (m.status = 'queued' AND (m.assigned = ? OR m.updated < ?))
          OR (m.status = 'sending' AND NOT EXISTS (SELECT 1 FROM smsgw_deliveries d
                WHERE d.msg_id = m.id AND d.node = ? AND d.epoch = ?)
              AND (m.assigned = ? OR m.updated < ?))
       ORDER BY m.created LIMIT ${DELIVERY_BATCH}`,
      [me, stale, me, epoch, me, stale],
    );
    const ids = rows.map((r) => String(r.id)).filter((id) => !this.#busyWith(id));
    if (!ids.length) return;
    const startBy = Date.now() + this.#o.staleMs / 6;
    const claimed = await this.#claim(ids, me, epoch);
    if (!claimed.length) return;
    // stop starting sends once this node is no longer the active one
    const unsent = await this.#sending(
      claimed,
      startBy,
      epoch,
      () => this.#writable(),
    );
    await this.#record();
    if (unsent.length && this.#writable()) {
      await this.#sdk.tables.write(this.#releaseStatements(unsent, me, epoch));
    }
  }

  /**
   * Send under a claim made just before `startBy` was set: no send starts after `startBy`
   * or once `entitled()` is false (the ids not sent are returned); each outcome is
   * recorded as it comes. The ids are in flight until this returns.
   */
  async #sending(
    msgs: Row[],
    startBy: number,
    epoch: string,
    entitled: () => boolean,
  ): Promise<string[]> {
    for (const m of msgs) this.#inflight.add(String(m.id));
    try {
      return await this.#send(msgs, startBy, epoch, entitled);
    } finally {
      for (const m of msgs) this.#inflight.delete(String(m.id));
    }
  }

  async #send(
    msgs: Row[],
    startBy: number,
    epoch: string,
    entitled: () => boolean,
  ): Promise<string[]> {
    let i = 0;
    const node = this.me;
    const done = (o: Omit<Outcome, "node" | "epoch">) => {
      this.#unrecorded.set(o.id, { ...o, node, epoch });
      void this.#record();
    };
    const worker = async () => {
      while (i < msgs.length && Date.now() < startBy && entitled()) {
        const m = msgs[i++];
        try {
          const res = await fetch(this.#o.smscUrl, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              id: m.id,
              to: m.to_addr,
              from: m.from_addr,
              text: m.body,
              node,
            }),
            signal: AbortSignal.timeout(Math.max(1000, (this.#o.staleMs * 2) / 3)),
          });
          const b = await res.json().catch(() => ({})) as { smscId?: string; error?: string };
          if (res.ok) {
            this.counters.sent++;
            done({ id: String(m.id), ok: true, smscId: b.smscId ?? "" });
          } else {
            this.counters.failed++;
            done({ id: String(m.id), ok: false, error: `SMSC ${res.status}: ${b.error ?? ""}` });
          }
        } catch (e) {
          // outcome unknown: the message stays "sending" for this node-epoch (never
          // sent again by it); a later node-epoch sends it again
          this.counters.failed++;
          this.#sdk.status(`SMSC unreachable: ${e instanceof Error ? e.message : e}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.concurrency, msgs.length) }, worker));
    return msgs.slice(i).map((m) => String(m.id));
  }

  /**
   * Record the outcomes not recorded yet: in the tables on the active, through the active's
   * internal API on the peer. One recording at a time; a failure leaves them for the next
   * pass (this node never sends them again meanwhile).
   */
  #record(): Promise<void> {
    this.#recordAgain = true;
    if (!this.#recording) {
      const p: Promise<void> = this.#recordAll().then((ok) => {
        this.#recording = null;
        // an outcome that came in as the last write ended: its own write now
        if (ok && this.#recordAgain && this.#unrecorded.size) void this.#record();
      });
      this.#recording = p;
    }
    return this.#recording;
  }

  async #recordAll(): Promise<boolean> {
    try {
      while (this.#recordAgain && this.#unrecorded.size) {
        this.#recordAgain = false;
        const batch = [...this.#unrecorded.values()];
        if (this.#writable()) {
          await this.#sdk.tables.write(this.#resultStatements(batch));
        } else if (this.#o.activeUrl && this.#o.peerKey) {
          for (const [epoch, os] of Map.groupBy(batch, (o) => o.epoch)) {
            for (let i = 0; i < os.length; i += INTERNAL_MAX) {
              await this.#callActive("result", {
                node: this.me,
                epoch,
                results: os.slice(i, i + INTERNAL_MAX),
              });
            }
          }
        } else return false;
        for (const o of batch) {
          if (this.#unrecorded.get(o.id) === o) this.#unrecorded.delete(o.id);
        }
      }
      return true;
    } catch (e) {
      this.#sdk.status(`outcomes not recorded yet: ${e instanceof Error ? e.message : e}`);
      return false;
    }
  }

  // ---------------------------------------------------------------- handed-off work

  async #callActive(path: string, body: Json): Promise<Json> {
    const res = await fetch(`${this.#o.activeUrl}/internal/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-smsgw-peer-key": this.#o.peerKey! },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const b = await res.json() as Json;
    if (!res.ok) {
      throw new Error(`active answered ${res.status}: ${JSON.stringify(b).slice(0, 200)}`);
    }
    return b;
  }

  /** A standby sends what the active handed to it; claims and outcomes are written by the active. */
  async #deliverAsPeer(): Promise<void> {
    const me = this.me;
    const epoch = this.epoch();
    const rows = await this.#sdk.tables.query(
      `SELECT id FROM smsgw_messages WHERE status = 'queued' AND assigned = ? ORDER BY created LIMIT ${DELIVERY_BATCH}`,
      [me],
    );
    const ids = rows.map((r) => String(r.id)).filter((id) => !this.#busyWith(id));
    if (!ids.length) return;
    // the active stamps the claim after this: our window ends before its staleMs does
    const startBy = Date.now() + this.#o.staleMs / 6;
    const claimed = await this.#callActive("claim", { ids, node: me, epoch });
    const msgs = (claimed.messages ?? []) as Row[];
    if (!msgs.length) return;
    const before = this.counters.sent;
    const unsent = await this.#sending(msgs, startBy, epoch, () => true);
    this.counters.servedForPeer += this.counters.sent - before;
    await this.#record();
    if (unsent.length) await this.#callActive("release", { node: me, epoch, ids: unsent });
  }

  async #internal(req: Request, op: string): Promise<Response> {
    if (!this.#o.peerKey || req.headers.get("x-smsgw-peer-key") !== this.#o.peerKey) {
      return err(403, "forbidden", "internal API: wrong or missing x-smsgw-peer-key");
    }
    const body = await req.json() as Json;
    const node = String(body.node ?? "");
    const epoch = String(body.epoch ?? "");
    if (!node || !epoch) {
      return err(422, "invalid", "node and epoch are required", { node: "required" });
    }
    if (op === "claim") {
      const ids = z.array(z.string().max(64)).max(INTERNAL_MAX).parse(body.ids);
      return Response.json({ messages: await this.#claim(ids, node, epoch) });
    }
    if (op === "result") {
      const results = z.array(z.object({
        id: z.string().max(64),
        ok: z.boolean(),
        smscId: z.string().max(128).optional(),
        error: z.string().max(500).optional(),
      })).max(INTERNAL_MAX).parse(body.results);
      if (results.length) {
        await this.#sdk.tables.write(
          this.#resultStatements(results.map((r) => ({ ...r, node, epoch }))),
        );
      }
      return Response.json({ ok: true });
    }
    if (op === "release") {
      const ids = z.array(z.string().max(64)).max(INTERNAL_MAX).parse(body.ids);
      if (ids.length) await this.#sdk.tables.write(this.#releaseStatements(ids, node, epoch));
      return Response.json({ ok: true });
    }
    return err(404, "not_found", `no internal op ${op}`);
  }
}
