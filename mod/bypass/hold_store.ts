/**
 * Persistence of bypass holds in the store (table `bypass_holds`), so an
 * update's hold is still there when the new keepwire starts. Rows are checked
 * with zod when read; a bad row is reported and left in place, never deleted.
 * @module
 */
import { z } from "zod";
import { DatabaseSync } from "node:sqlite";
import type { Store } from "../store/mod.ts";
import { BYPASS_MODES } from "../../hw/bypass/types.ts";
import { type BypassHold, holdReasonSchema, type SegmentHoldStore } from "./types.ts";

/** Migrations of the bypass module. */
export const BYPASS_MIGRATIONS: string[] = [
  `CREATE TABLE bypass_holds (
     segment TEXT NOT NULL,
     reason TEXT NOT NULL,
     count INTEGER NOT NULL,
     mode TEXT NOT NULL,
     by TEXT NOT NULL,
     since INTEGER NOT NULL,
     updated INTEGER NOT NULL,
     PRIMARY KEY (segment, reason)
   );`,
];

const rowSchema = z.lazy(() =>
  z.object({
    segment: z.string().min(1),
    reason: holdReasonSchema,
    count: z.number().int().min(1),
    mode: z.enum(BYPASS_MODES).refine((m) => m !== "inline", "a hold cannot ask for inline"),
    by: z.string(),
    since: z.number().int(),
  })
);

/** A row that did not validate. */
export interface BadHoldRow {
  /** Segment column. */
  segment: string;
  /** Reason column. */
  reason: string;
  /** What is wrong. */
  problem: string;
}

type Row = Record<string, unknown>;

function toHold(r: Row): { hold?: BypassHold & { segment: string }; bad?: BadHoldRow } {
  const v = rowSchema.safeParse({ ...r, count: Number(r.count), since: Number(r.since) });
  if (v.success) return { hold: v.data };
  return {
    bad: {
      segment: String(r.segment),
      reason: String(r.reason),
      problem: v.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    },
  };
}

/** Holds in the store. */
export class BypassHoldStore implements SegmentHoldStore {
  #store: Store;
  #now: () => number;
  /** Rows that did not validate (kept in the table; reported by the module). */
  readonly bad: BadHoldRow[] = [];

  /** Migrate the table. */
  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
    store.migrate("bypass", BYPASS_MIGRATIONS);
  }

  /** Holds of a segment (bad rows go to `bad`). */
  load(segment: string): BypassHold[] {
    const rows = this.#store.db.prepare(
      "SELECT segment, reason, count, mode, by, since FROM bypass_holds WHERE segment = ? ORDER BY since, reason",
    ).all(segment) as Row[];
    const out: BypassHold[] = [];
    for (const r of rows) {
      const { hold, bad } = toHold(r);
      if (hold) {
        out.push({
          reason: hold.reason,
          count: hold.count,
          mode: hold.mode,
          by: hold.by,
          since: hold.since,
        });
      } else if (bad) this.bad.push(bad);
    }
    return out;
  }

  /** Segments that have holds. */
  segments(): string[] {
    return (this.#store.db.prepare("SELECT DISTINCT segment FROM bypass_holds ORDER BY segment")
      .all() as { segment: string }[]).map((r) => r.segment);
  }

  /** Insert or update. */
  put(segment: string, h: BypassHold): void {
    this.#store.db.prepare(
      `INSERT INTO bypass_holds (segment, reason, count, mode, by, since, updated)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(segment, reason) DO UPDATE SET count = excluded.count, mode = excluded.mode,
         by = excluded.by, updated = excluded.updated`,
    ).run(segment, h.reason, h.count, h.mode, h.by, h.since, this.#now());
  }

  /** Delete. */
  remove(segment: string, reason: string): void {
    this.#store.db.prepare("DELETE FROM bypass_holds WHERE segment = ? AND reason = ?").run(
      segment,
      reason,
    );
  }
}

/**
 * Read holds straight from a database file without a running daemon (the CLI's
 * offline status). Opens read-only; a missing file or table means no holds.
 */
export function readHoldsOffline(dbPath: string): Map<string, BypassHold[]> {
  const out = new Map<string, BypassHold[]>();
  try {
    Deno.statSync(dbPath);
  } catch {
    return out;
  }
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    const t = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(
      "bypass_holds",
    );
    if (!t) return out;
    const rows = db.prepare(
      "SELECT segment, reason, count, mode, by, since FROM bypass_holds ORDER BY since, reason",
    ).all() as Row[];
    for (const r of rows) {
      const { hold } = toHold(r);
      if (!hold) continue;
      const list = out.get(hold.segment) ?? [];
      list.push({
        reason: hold.reason,
        count: hold.count,
        mode: hold.mode,
        by: hold.by,
        since: hold.since,
      });
      out.set(hold.segment, list);
    }
    return out;
  } finally {
    db.close();
  }
}
