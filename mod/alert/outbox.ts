/**
 * The durable outbox: one row per (alert, recipient) in the store. A row is written in the
 * same transaction that moves the journal cursor, so an event is either in the outbox or
 * still after the cursor (replayed at start): nothing is lost to a kill -9, and with
 * `store.synchronous: FULL` nothing to a power loss. Rows are never deleted by delivery
 * failures; finished rows are trimmed by age.
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import type { Migration, Store } from "../store/mod.ts";

/** States of a delivery. */
export const DELIVERY_STATES = ["pending", "sent", "failed", "suppressed", "digest"] as const;
/** One state: pending (to send or retry), sent, failed (gave up), suppressed (folded into a
 * flap summary), digest (waits for the daily digest). */
export type DeliveryState = typeof DELIVERY_STATES[number];

/** The `alert` store migrations (their count is the module's schema version; a bundle declares it: mod/update/bundle_schema.ts). */
export const ALERT_MIGRATIONS: Migration[] = [
  `CREATE TABLE alert_outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     created INTEGER NOT NULL,
     event_id INTEGER NOT NULL,
     kind TEXT NOT NULL,
     severity TEXT NOT NULL,
     thing TEXT NOT NULL,
     recipient TEXT NOT NULL,
     channel TEXT NOT NULL,
     address TEXT,
     subject TEXT NOT NULL,
     text TEXT NOT NULL,
     html TEXT NOT NULL,
     short TEXT NOT NULL,
     event_time INTEGER NOT NULL,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER NOT NULL,
     inflight INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     answer TEXT,
     done_at INTEGER,
     folded_into TEXT
   );
   CREATE INDEX alert_outbox_queue ON alert_outbox(status, recipient, seq);
   CREATE INDEX alert_outbox_thing ON alert_outbox(recipient, thing, created);
   CREATE INDEX alert_outbox_event ON alert_outbox(event_id);
   CREATE INDEX alert_outbox_done ON alert_outbox(done_at);`,
];

/** One delivery as the API shows it. */
export interface Delivery {
  /** Stable id (the receivers' dedupe key). */
  id: string;
  /** Order of creation. */
  seq: number;
  /** Created (ms). */
  created: number;
  /** Journal id of the event (0: synthetic or journal down). */
  eventId: number;
  /** Event kind. */
  kind: string;
  /** Severity. */
  severity: string;
  /** What it is about (flap key). */
  thing: string;
  /** Recipient name. */
  recipient: string;
  /** Channel name. */
  channel: string;
  /** Address or phone number. */
  address: string | null;
  /** Subject. */
  subject: string;
  /** Text. */
  text: string;
  /** HTML. */
  html: string;
  /** One line. */
  short: string;
  /** Time of the event (ms). */
  eventTime: number;
  /** State. */
  status: DeliveryState;
  /** Attempts made. */
  attempts: number;
  /** Next attempt (ms), for pending. */
  nextAt: number;
  /** An attempt was under way (set before sending, cleared after). */
  inflight: boolean;
  /** The last failure. */
  lastError: string | null;
  /** The server's answer when sent. */
  answer: string | null;
  /** When it was sent or failed for good (ms). */
  doneAt: number | null;
  /** The summary or digest delivery it was folded into. */
  foldedInto: string | null;
}

/** What a new row needs. */
export type NewDelivery = Pick<
  Delivery,
  | "eventId"
  | "kind"
  | "severity"
  | "thing"
  | "recipient"
  | "channel"
  | "address"
  | "subject"
  | "text"
  | "html"
  | "short"
  | "eventTime"
  | "status"
>;

type Row = Record<string, SQLInputValue>;

function fromRow(r: Row): Delivery {
  return {
    id: String(r.id),
    seq: Number(r.seq),
    created: Number(r.created),
    eventId: Number(r.event_id),
    kind: String(r.kind),
    severity: String(r.severity),
    thing: String(r.thing),
    recipient: String(r.recipient),
    channel: String(r.channel),
    address: r.address === null ? null : String(r.address),
    subject: String(r.subject),
    text: String(r.text),
    html: String(r.html),
    short: String(r.short),
    eventTime: Number(r.event_time),
    status: String(r.status) as DeliveryState,
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    inflight: Number(r.inflight) === 1,
    lastError: r.last_error === null ? null : String(r.last_error),
    answer: r.answer === null ? null : String(r.answer),
    doneAt: r.done_at === null ? null : Number(r.done_at),
    foldedInto: r.folded_into === null ? null : String(r.folded_into),
  };
}

/** A new stable delivery id. */
export function newDeliveryId(): string {
  return `kwa_${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The outbox over the store. */
export class Outbox {
  readonly #store: Store;
  readonly #now: () => number;

  /** Open (migrating the tables). */
  constructor(store: Store, now: () => number) {
    this.#store = store;
    this.#now = now;
    store.migrate("alert", ALERT_MIGRATIONS);
  }

  /** Run `fn` in one transaction. */
  tx<T>(fn: () => T): T {
    return this.#store.transaction(fn);
  }

  /** Insert one delivery (inside or outside a transaction); returns its id. */
  insert(d: NewDelivery, id = newDeliveryId()): string {
    const now = this.#now();
    this.#store.db.prepare(
      `INSERT INTO alert_outbox (id, created, event_id, kind, severity, thing, recipient, channel,
         address, subject, text, html, short, event_time, status, next_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      now,
      d.eventId,
      d.kind,
      d.severity,
      d.thing,
      d.recipient,
      d.channel,
      d.address,
      d.subject,
      d.text,
      d.html,
      d.short,
      d.eventTime,
      d.status,
      now,
    );
    return id;
  }

  /** Has any delivery been made from this journal event? */
  hasEvent(eventId: number): boolean {
    return !!this.#store.db.prepare("SELECT 1 FROM alert_outbox WHERE event_id = ? LIMIT 1").get(
      eventId,
    );
  }

  /** Creation times of alerts about `thing` to `recipient` since `since`, not suppressed. */
  recentAbout(recipient: string, thing: string, since: number): number[] {
    const rows = this.#store.db.prepare(
      `SELECT created FROM alert_outbox WHERE recipient = ? AND thing = ? AND created >= ?
         AND status != 'suppressed' ORDER BY created`,
    ).all(recipient, thing, since) as { created: number }[];
    return rows.map((r) => Number(r.created));
  }

  /** The oldest pending delivery of each recipient (the head of its queue: order is kept). */
  heads(): Delivery[] {
    const rows = this.#store.db.prepare(
      `SELECT o.* FROM alert_outbox o JOIN (
         SELECT MIN(seq) AS seq FROM alert_outbox WHERE status = 'pending' GROUP BY recipient
       ) h ON o.seq = h.seq ORDER BY o.seq`,
    ).all() as Row[];
    return rows.map(fromRow);
  }

  /** One delivery by id. */
  get(id: string): Delivery | undefined {
    const r = this.#store.db.prepare("SELECT * FROM alert_outbox WHERE id = ?").get(id) as
      | Row
      | undefined;
    return r ? fromRow(r) : undefined;
  }

  /** Mark an attempt as started (durable before anything is sent). */
  startAttempt(id: string): void {
    this.#store.db.prepare(
      "UPDATE alert_outbox SET inflight = 1, attempts = attempts + 1 WHERE id = ?",
    ).run(id);
  }

  /** The attempt was accepted. */
  markSent(id: string, answer: string): void {
    this.#store.db.prepare(
      `UPDATE alert_outbox SET status = 'sent', inflight = 0, answer = ?, done_at = ?, last_error = NULL
       WHERE id = ?`,
    ).run(answer, this.#now(), id);
  }

  /** The attempt failed: retry at `nextAt`, or give up (`nextAt` null). */
  markFailed(id: string, error: string, nextAt: number | null): void {
    if (nextAt === null) {
      this.#store.db.prepare(
        `UPDATE alert_outbox SET status = 'failed', inflight = 0, last_error = ?, done_at = ?
         WHERE id = ?`,
      ).run(error, this.#now(), id);
    } else {
      this.#store.db.prepare(
        "UPDATE alert_outbox SET inflight = 0, last_error = ?, next_at = ? WHERE id = ?",
      ).run(error, nextAt, id);
    }
  }

  /** Fail every pending delivery over a channel (its endpoint is gone). */
  failChannel(channel: string, error: string): number {
    return Number(
      this.#store.db.prepare(
        `UPDATE alert_outbox SET status = 'failed', inflight = 0, last_error = ?, done_at = ?
         WHERE channel = ? AND status = 'pending'`,
      ).run(error, this.#now(), channel).changes,
    );
  }

  /** Put a failed delivery back in its queue. */
  retry(id: string): void {
    this.#store.db.prepare(
      `UPDATE alert_outbox SET status = 'pending', next_at = ?, done_at = NULL, attempts = 0
       WHERE id = ?`,
    ).run(this.#now(), id);
  }

  /** Deliveries left in flight by a process that was killed: cleared, returned. */
  recoverInflight(): string[] {
    const rows = this.#store.db.prepare(
      "SELECT id FROM alert_outbox WHERE inflight = 1 AND status = 'pending'",
    ).all() as { id: string }[];
    this.#store.db.prepare("UPDATE alert_outbox SET inflight = 0, next_at = ? WHERE inflight = 1")
      .run(this.#now());
    return rows.map((r) => String(r.id));
  }

  /** Groups of suppressed deliveries not yet summarised. */
  suppressedGroups(): {
    recipient: string;
    thing: string;
    first: number;
    count: number;
    lastId: string;
  }[] {
    const rows = this.#store.db.prepare(
      `SELECT recipient, thing, MIN(created) AS first, COUNT(*) AS n, MAX(seq) AS last
       FROM alert_outbox WHERE status = 'suppressed' AND folded_into IS NULL
       GROUP BY recipient, thing`,
    ).all() as { recipient: string; thing: string; first: number; n: number; last: number }[];
    return rows.map((r) => {
      const last = this.#store.db.prepare("SELECT id FROM alert_outbox WHERE seq = ?").get(
        r.last,
      ) as { id: string };
      return {
        recipient: String(r.recipient),
        thing: String(r.thing),
        first: Number(r.first),
        count: Number(r.n),
        lastId: String(last.id),
      };
    });
  }

  /** Rows of a status not yet folded, for one recipient (and thing), oldest first. */
  unfolded(status: "suppressed" | "digest", recipient: string, thing?: string): Delivery[] {
    const rows = (thing === undefined
      ? this.#store.db.prepare(
        `SELECT * FROM alert_outbox WHERE status = ? AND recipient = ? AND folded_into IS NULL
         ORDER BY seq`,
      ).all(status, recipient)
      : this.#store.db.prepare(
        `SELECT * FROM alert_outbox WHERE status = ? AND recipient = ? AND thing = ?
           AND folded_into IS NULL ORDER BY seq`,
      ).all(status, recipient, thing)) as Row[];
    return rows.map(fromRow);
  }

  /** Mark rows as folded into a summary or digest. */
  fold(ids: string[], into: string): void {
    const st = this.#store.db.prepare("UPDATE alert_outbox SET folded_into = ? WHERE id = ?");
    for (const id of ids) st.run(into, id);
  }

  /** Recipients with digest rows waiting. */
  digestRecipients(): string[] {
    const rows = this.#store.db.prepare(
      "SELECT DISTINCT recipient FROM alert_outbox WHERE status = 'digest' AND folded_into IS NULL",
    ).all() as { recipient: string }[];
    return rows.map((r) => String(r.recipient));
  }

  /** Deliveries, newest first. */
  list(q: { status?: DeliveryState; recipient?: string; limit?: number } = {}): Delivery[] {
    const where: string[] = [];
    const args: SQLInputValue[] = [];
    if (q.status) (where.push("status = ?"), args.push(q.status));
    if (q.recipient) (where.push("recipient = ?"), args.push(q.recipient));
    args.push(Math.max(1, Math.min(q.limit ?? 100, 10_000)));
    const rows = this.#store.db.prepare(
      `SELECT * FROM alert_outbox ${
        where.length ? "WHERE " + where.join(" AND ") : ""
      } ORDER BY seq DESC LIMIT ?`,
    ).all(...args) as Row[];
    return rows.map(fromRow);
  }

  /** Count per state. */
  counts(): Record<DeliveryState, number> {
    const out = Object.fromEntries(DELIVERY_STATES.map((s) => [s, 0])) as Record<
      DeliveryState,
      number
    >;
    const rows = this.#store.db.prepare(
      "SELECT status, COUNT(*) AS n FROM alert_outbox GROUP BY status",
    ).all() as { status: DeliveryState; n: number }[];
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  /** Creation time of the oldest pending delivery, or null. */
  oldestPending(): number | null {
    const r = this.#store.db.prepare(
      "SELECT MIN(created) AS t FROM alert_outbox WHERE status = 'pending'",
    ).get() as { t: number | null };
    return r.t === null ? null : Number(r.t);
  }

  /** Sent times per channel since `since` (seeds the rate limiter at start). */
  sentSince(since: number): { channel: string; t: number }[] {
    const rows = this.#store.db.prepare(
      "SELECT channel, done_at AS t FROM alert_outbox WHERE status = 'sent' AND done_at >= ?",
    ).all(since) as { channel: string; t: number }[];
    return rows.map((r) => ({ channel: String(r.channel), t: Number(r.t) }));
  }

  /** Drop finished rows older than `before` (ms). */
  trim(before: number): number {
    return Number(
      this.#store.db.prepare(
        `DELETE FROM alert_outbox WHERE status IN ('sent', 'failed', 'suppressed')
         AND COALESCE(done_at, created) < ? AND (status != 'suppressed' OR folded_into IS NOT NULL)`,
      ).run(before).changes,
    );
  }
}
