/**
 * The pair journal: the active node's event journal, carried to the standby by
 * replication (table `pair_journal`, group `logs`, async).
 *
 * Each node's own journal (`events`) stays node-local — both nodes journal their own
 * life all the time, and a replicated table is written by the primary only. So the
 * primary copies every event it journals into `pair_journal`; the session extension
 * ships those rows like any other replicated table. On the standby `pair_journal` is
 * read-only and holds what the active journalled, update events (its update history)
 * included; after a failover the new active continues it, so an administrator reads one
 * history of the pair across failovers on either node. A returning ex-primary's rows
 * that never reached the standby are in its set-aside tail, not merged.
 *
 * Bounded like the journal: the primary trims the oldest rows past `maxRows` and rows
 * older than `maxAgeDays` (the trims replicate as deletes).
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { z } from "zod";
import type { EventBus, KwEvent } from "../events/mod.ts";
import { SEVERITIES } from "../events/mod.ts";

/** The replicated table. */
export const PAIR_JOURNAL_TABLE = "pair_journal";
/** Its replication group (async: lag ≤ 1 s). */
export const PAIR_JOURNAL_GROUP = "logs";

/** One row of the pair journal as the API answers it. */
export const pairJournalRowSchema = z.lazy(() =>
  z.object({
    id: z.number().int().describe("position in the pair journal (continues across failovers)"),
    node: z.string().describe("the node that was active and journalled it"),
    eventId: z.number().int().describe("the event's id in that node's own journal"),
    time: z.number().describe("ms since the epoch"),
    module: z.string(),
    kind: z.string(),
    severity: z.enum(SEVERITIES),
    payload: z.record(z.string(), z.unknown()),
  })
);
/** One row of the pair journal. */
export type PairJournalRow = z.output<typeof pairJournalRowSchema>;

/** The answer of GET /api/repl/journal. */
export const pairJournalAnswerSchema = z.lazy(() =>
  z.object({
    replicating: z.boolean().describe("replication runs (the active copies its events here)"),
    role: z.enum(["primary", "standby", "idle"]).optional()
      .describe("primary: this node writes it; standby: it holds the active's copy"),
    count: z.number().int().describe("rows held"),
    rows: z.array(pairJournalRowSchema).describe("newest first"),
  })
);

/** Query of {@link PairJournal.rows}. */
export const pairJournalQuerySchema = z.lazy(() =>
  z.strictObject({
    after: z.coerce.number().int().min(0).optional().describe("only rows with id above this"),
    before: z.coerce.number().int().min(1).optional().describe("only rows with id below this"),
    limit: z.coerce.number().int().min(1).max(1000).default(100).describe("rows at most"),
    kind: z.string().max(64).optional().describe("kind prefix, e.g. update."),
  })
);
/** A query of the pair journal. */
export type PairJournalQuery = z.input<typeof pairJournalQuerySchema>;

/** Options of {@link PairJournal}. */
export interface PairJournalOptions {
  /** The store's connection (the one replication captures). */
  db: DatabaseSync;
  /** This node's id (`ha.node.id`). */
  node: string;
  /** Is this node the primary of the channel that carries {@link PAIR_JOURNAL_GROUP}? */
  isPrimary: () => boolean;
  /** Rows kept at most (default 100,000). */
  maxRows?: number;
  /** Rows older than this are dropped (default 90). */
  maxAgeDays?: number;
  /** Clock (ms). */
  now?: () => number;
}

/** Trim once per this many copied events. */
const TRIM_EVERY = 500;

/**
 * Copies this node's events into `pair_journal` while it is the primary, and reads it.
 *
 * @example
 * ```ts
 * const pj = new PairJournal({ db: store.db, node: "node1", isPrimary: () => repl.isPrimary });
 * const stop = pj.follow(bus);
 * pj.rows({ kind: "update.", limit: 20 });
 * ```
 */
export class PairJournal {
  #o: Required<PairJournalOptions>;
  #insert: StatementSync | null = null;
  #sinceTrim = 0;
  /** Events that could not be copied (the store refused, e.g. during a demotion). */
  failed = 0;
  /** Events copied since start. */
  copied = 0;

  /** Build one; the table is made by the store's core migrations. */
  constructor(o: PairJournalOptions) {
    this.#o = { maxRows: 100_000, maxAgeDays: 90, now: Date.now, ...o };
  }

  /** Copy every event published on `bus` from now on (while primary); returns the unsubscribe. */
  follow(bus: EventBus): () => void {
    return bus.subscribe((e) => this.copy(e));
  }

  /** Copy one event when this node is the primary (a standby copies nothing). */
  copy(e: KwEvent): void {
    if (!this.#o.isPrimary() || !this.#o.db.isOpen) return;
    try {
      this.#insert ??= this.#o.db.prepare(
        `INSERT INTO ${PAIR_JOURNAL_TABLE} (node, event_id, time, module, kind, severity, payload)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      this.#insert.run(
        this.#o.node,
        e.id,
        e.time,
        e.module,
        e.kind,
        e.severity,
        JSON.stringify(e.payload ?? {}),
      );
      this.copied++;
      if (++this.#sinceTrim >= TRIM_EVERY) {
        this.#sinceTrim = 0;
        this.trim();
      }
    } catch {
      // the store refused (closing, a demotion in between): this node's own journal has it
      this.failed++;
      this.#insert = null;
    }
  }

  /** Drop rows past the bounds (primary only); returns how many. */
  trim(): number {
    if (!this.#o.isPrimary()) return 0;
    const db = this.#o.db;
    const cutoff = this.#o.now() - this.#o.maxAgeDays * 86_400_000;
    let n = Number(
      db.prepare(`DELETE FROM ${PAIR_JOURNAL_TABLE} WHERE time < ?`).run(cutoff).changes,
    );
    const edge = db.prepare(
      `SELECT id FROM ${PAIR_JOURNAL_TABLE} ORDER BY id DESC LIMIT 1 OFFSET ?`,
    ).get(this.#o.maxRows) as { id: number } | undefined;
    if (edge) {
      n += Number(
        db.prepare(`DELETE FROM ${PAIR_JOURNAL_TABLE} WHERE id <= ?`).run(edge.id).changes,
      );
    }
    return n;
  }

  /** Rows, newest first. */
  rows(q: PairJournalQuery = {}): PairJournalRow[] {
    const p = pairJournalQuerySchema.parse(q);
    const where: string[] = [];
    const args: (number | string)[] = [];
    if (p.after !== undefined) (where.push("id > ?"), args.push(p.after));
    if (p.before !== undefined) (where.push("id < ?"), args.push(p.before));
    if (p.kind) (where.push("substr(kind, 1, ?) = ?"), args.push(p.kind.length, p.kind));
    const sql = `SELECT id, node, event_id, time, module, kind, severity, payload
      FROM ${PAIR_JOURNAL_TABLE} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY id DESC LIMIT ?`;
    const rows = this.#o.db.prepare(sql).all(...args, p.limit) as {
      id: number;
      node: string;
      event_id: number;
      time: number;
      module: string;
      kind: string;
      severity: string;
      payload: string;
    }[];
    return rows.map((r) => ({
      id: Number(r.id),
      node: r.node,
      eventId: Number(r.event_id),
      time: Number(r.time),
      module: r.module,
      kind: r.kind,
      severity: (SEVERITIES as readonly string[]).includes(r.severity)
        ? r.severity as PairJournalRow["severity"]
        : "info",
      payload: parsePayload(r.payload),
    }));
  }

  /** Number of rows. */
  count(): number {
    return Number(
      (this.#o.db.prepare(`SELECT COUNT(*) AS n FROM ${PAIR_JOURNAL_TABLE}`).get() as { n: number })
        .n,
    );
  }
}

function parsePayload(s: string): Record<string, unknown> {
  try {
    const v = JSON.parse(s);
    return v && typeof v === "object" && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { unreadable: s.slice(0, 200) };
  }
}
