/**
 * The metric history's tables in the store: one row per series (name, unit, kind, legend
 * label, threshold lines) and one per sample, kept bounded by age and by a count per series.
 * Queries return every matching series on one grid of time buckets (what a chart draws).
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import type { Migration, Store } from "../store/mod.ts";
import { type HistoryKind, type HistorySample, SERIES_NAME } from "./types.ts";

/** Migrations of the `history` module's tables. */
export const HISTORY_MIGRATIONS: Migration[] = [
  `CREATE TABLE history_series (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     unit TEXT NOT NULL,
     kind TEXT NOT NULL,
     label TEXT NOT NULL,
     thresholds TEXT,
     last_t INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE history_samples (
     series INTEGER NOT NULL REFERENCES history_series(id) ON DELETE CASCADE,
     t INTEGER NOT NULL,
     v REAL NOT NULL,
     PRIMARY KEY (series, t)
   ) WITHOUT ROWID;`,
];

/** How much history is kept. */
export interface HistoryBounds {
  /** Samples older than this (ms) are dropped. */
  maxAgeMs: number;
  /** At most this many samples per series (the newest). */
  maxSamplesPerSeries: number;
  /** At most this many series; samples of further new series are dropped. */
  maxSeries: number;
}

/** A series as stored (without its samples). */
export interface SeriesInfo {
  /** Name. */
  name: string;
  /** Unit. */
  unit: string;
  /** gauge | counter. */
  kind: HistoryKind;
  /** Legend label. */
  label: string;
  /** Threshold lines, or null. */
  thresholds: Record<string, number> | null;
  /** Time of the newest sample (ms). */
  lastT: number;
}

/** One series of a query result: its values on the result's time grid. */
export interface SeriesValues extends Omit<SeriesInfo, "lastT"> {
  /**
   * One value per entry of `times` (null: no sample in that bucket). A gauge bucket holds
   * its highest sample, a counter bucket the sum of the increases in it.
   */
  values: (number | null)[];
}

/** What a query answers. */
export interface HistoryResult {
  /** Start of the window (ms). */
  since: number;
  /** End of the window (ms, exclusive). */
  until: number;
  /** Width of a bucket (ms). */
  step: number;
  /** Start of each bucket that holds a sample of any series, oldest first (ms). */
  times: number[];
  /** The matching series, by name. */
  series: SeriesValues[];
}

/** What a query asks for. */
export interface HistoryQuery {
  /** Exact series name, or a prefix ending in `.` or `*` (every series under it). */
  series: string;
  /** Window start (ms). */
  since: number;
  /** Window end (ms, exclusive). */
  until: number;
  /** Bucket width (ms). */
  step: number;
}

/** At most this many series in one query answer. */
export const MAX_QUERY_SERIES = 64;

/** The history tables of one store. */
export class HistoryStore {
  readonly #store: Store;
  readonly #bounds: HistoryBounds;
  /** Series by name, as stored (loaded at construction, kept in step with the table). */
  readonly #series = new Map<string, SeriesInfo & { id: number; meta: string }>();
  /** Last total of each counter this process reported (a counter's first sample counts whole). */
  readonly #counters = new Map<string, number>();
  #dropped = 0;

  /** Migrate and load the series list. */
  constructor(store: Store, bounds: HistoryBounds) {
    this.#store = store;
    this.#bounds = bounds;
    store.migrate("history", HISTORY_MIGRATIONS);
    const rows = store.db.prepare(
      "SELECT id, name, unit, kind, label, thresholds, last_t FROM history_series",
    ).all() as {
      id: number;
      name: string;
      unit: string;
      kind: string;
      label: string;
      thresholds: string | null;
      last_t: number;
    }[];
    for (const r of rows) {
      this.#series.set(r.name, {
        id: Number(r.id),
        name: r.name,
        unit: r.unit,
        kind: r.kind === "counter" ? "counter" : "gauge",
        label: r.label,
        thresholds: r.thresholds ? JSON.parse(r.thresholds) : null,
        lastT: Number(r.last_t),
        meta: metaKey(r.unit, r.kind, r.label, r.thresholds),
      });
    }
  }

  /** Samples refused since start (a new series beyond `maxSeries`, a bad name or value). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Store one round of samples taken at `now`, in one transaction. A counter is stored as
   * its increase since the previous sample of this process (its whole value the first
   * time: counters count from keepwire's start); a sample whose `t` is not newer than the
   * series' last one is skipped. Returns how many were stored.
   */
  record(samples: HistorySample[], now: number): number {
    const db = this.#store.db;
    let stored = 0;
    this.#store.transaction(() => {
      const insert = db.prepare(
        "INSERT OR REPLACE INTO history_samples (series, t, v) VALUES (?, ?, ?)",
      );
      const touch = db.prepare("UPDATE history_series SET last_t = ? WHERE id = ?");
      for (const s of samples) {
        if (!SERIES_NAME.test(s.series) || !Number.isFinite(s.value)) {
          this.#dropped++;
          continue;
        }
        const t = Math.round(s.t ?? now);
        const info = this.#ensure(s);
        if (!info) {
          this.#dropped++;
          continue;
        }
        if (s.t !== undefined && t <= info.lastT) continue;
        let v = s.value;
        if (info.kind === "counter") {
          const prev = this.#counters.get(s.series);
          this.#counters.set(s.series, s.value);
          // a total below the last one: the counter started again from 0
          v = prev === undefined || s.value < prev ? s.value : s.value - prev;
        }
        insert.run(info.id, t, v);
        if (t > info.lastT) {
          info.lastT = t;
          touch.run(t, info.id);
        }
        stored++;
      }
    });
    return stored;
  }

  /** The stored row of a series, created or updated to the sample's metadata; null when full. */
  #ensure(s: HistorySample): (SeriesInfo & { id: number; meta: string }) | null {
    const kind: HistoryKind = s.kind ?? "gauge";
    const label = s.label ?? s.series;
    const th = s.thresholds && Object.keys(s.thresholds).length
      ? JSON.stringify(s.thresholds)
      : null;
    const meta = metaKey(s.unit, kind, label, th);
    const db = this.#store.db;
    let info = this.#series.get(s.series);
    if (!info) {
      if (this.#series.size >= this.#bounds.maxSeries) return null;
      const r = db.prepare(
        "INSERT INTO history_series (name, unit, kind, label, thresholds) VALUES (?, ?, ?, ?, ?)",
      ).run(s.series, s.unit, kind, label, th);
      info = {
        id: Number(r.lastInsertRowid),
        name: s.series,
        unit: s.unit,
        kind,
        label,
        thresholds: th ? JSON.parse(th) : null,
        lastT: 0,
        meta,
      };
      this.#series.set(s.series, info);
    } else if (info.meta !== meta) {
      db.prepare(
        "UPDATE history_series SET unit = ?, kind = ?, label = ?, thresholds = ? WHERE id = ?",
      ).run(s.unit, kind, label, th, info.id);
      Object.assign(info, {
        unit: s.unit,
        kind,
        label,
        thresholds: th ? JSON.parse(th) : null,
        meta,
      });
    }
    return info;
  }

  /**
   * Apply the bounds now: drop samples older than `maxAgeMs`, then the oldest of each series
   * beyond `maxSamplesPerSeries`, then series left without samples. Returns samples dropped.
   */
  trim(now: number): number {
    const db = this.#store.db;
    const cutoff = now - this.#bounds.maxAgeMs;
    let dropped = 0;
    this.#store.transaction(() => {
      const old = db.prepare("DELETE FROM history_samples WHERE series = ? AND t < ?");
      const edge = db.prepare(
        "SELECT t FROM history_samples WHERE series = ? ORDER BY t DESC LIMIT 1 OFFSET ?",
      );
      const over = db.prepare("DELETE FROM history_samples WHERE series = ? AND t <= ?");
      for (const info of this.#series.values()) {
        dropped += Number(old.run(info.id, cutoff).changes);
        const e = edge.get(info.id, this.#bounds.maxSamplesPerSeries) as
          | { t: number }
          | undefined;
        if (e) dropped += Number(over.run(info.id, e.t).changes);
      }
      const gone = db.prepare(
        "SELECT id, name FROM history_series s WHERE NOT EXISTS (SELECT 1 FROM history_samples WHERE series = s.id)",
      ).all() as { id: number; name: string }[];
      const del = db.prepare("DELETE FROM history_series WHERE id = ?");
      for (const g of gone) {
        del.run(g.id);
        this.#series.delete(g.name);
      }
    });
    return dropped;
  }

  /** Every stored series (without samples), by name. */
  list(): SeriesInfo[] {
    return [...this.#series.values()]
      .map(({ id: _id, meta: _meta, ...rest }) => rest)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Names matching `series`: the exact name, or every name under a prefix ending `.` or `*`. */
  match(series: string): string[] {
    if (series.endsWith("*") || series.endsWith(".")) {
      const prefix = series.replace(/\*$/, "");
      return [...this.#series.keys()].filter((n) => n.startsWith(prefix)).sort();
    }
    return this.#series.has(series) ? [series] : [];
  }

  /** Samples kept now (all series). */
  sampleCount(): number {
    return Number(
      (this.#store.db.prepare("SELECT COUNT(*) AS n FROM history_samples").get() as {
        n: number;
      }).n,
    );
  }

  /** The series `names` in the window, bucketed by `step`, on one time grid. */
  query(names: string[], q: Omit<HistoryQuery, "series">): HistoryResult {
    const db = this.#store.db;
    const stmt = db.prepare(
      `SELECT (t / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS b, MAX(v) AS hi, SUM(v) AS total FROM history_samples
       WHERE series = ? AND t >= ? AND t < ? GROUP BY b ORDER BY b`,
    );
    const perSeries = names.slice(0, MAX_QUERY_SERIES).flatMap((name) => {
      const info = this.#series.get(name);
      if (!info) return [];
      const args: SQLInputValue[] = [q.step, q.step, info.id, q.since, q.until];
      const rows = stmt.all(...args) as { b: number; hi: number; total: number }[];
      const by = new Map(
        rows.map((r) => [Number(r.b), info.kind === "counter" ? r.total : r.hi] as const),
      );
      return [{ info, by }];
    });
    const times = [...new Set(perSeries.flatMap((s) => [...s.by.keys()]))].sort((a, b) => a - b);
    return {
      since: q.since,
      until: q.until,
      step: q.step,
      times,
      series: perSeries.map(({ info, by }) => ({
        name: info.name,
        unit: info.unit,
        kind: info.kind,
        label: info.label,
        thresholds: info.thresholds,
        values: times.map((t) => by.get(t) ?? null),
      })),
    };
  }
}

function metaKey(unit: string, kind: string, label: string, thresholds: string | null): string {
  return JSON.stringify([unit, kind, label, thresholds]);
}
