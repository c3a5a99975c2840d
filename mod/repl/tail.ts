/**
 * The `.kwtail` reader: what a returning ex-primary set aside (engine.ts, `#saveTail`),
 * row by row, without applying any of it.
 *
 * A tail file is replication frames back to back (frame.ts), exactly as the primary
 * made them; each frame holds SQLite session changesets. A changeset is, per table, a
 * header (`'T'`, varint column count, one primary-key flag byte per column, the table
 * name NUL-terminated) followed by changes: an operation byte (18 INSERT, 9 DELETE,
 * 23 UPDATE), an "indirect" byte, then the old record (DELETE, UPDATE) and/or the new
 * one (INSERT, UPDATE). A record is one value per column: a type byte (0 undefined, i.e.
 * unchanged in an UPDATE; 1 integer, 8 bytes big-endian; 2 real, 8 bytes IEEE
 * big-endian; 3 text and 4 blob, varint length then bytes; 5 NULL). Varints are SQLite's
 * (7 bits a byte, high bit set on all but the last, the ninth byte whole).
 *
 * Changesets carry no column names: the caller may name the columns from the local
 * schema ({@link ReadTailOptions.columns}); otherwise they are `c0`, `c1`, …. A file
 * that is not frames, is cut short, fails a frame checksum or holds a changeset that does
 * not parse is refused with {@link ReplTailError} naming the frame, the byte offset and
 * what is wrong. The frames' replication channel (client set; `a` for version-1 frames)
 * is part of the summary.
 * @module
 */
import { basename, join } from "node:path";
import { KeepwireError } from "../errors.ts";
import { decodeFrame, type Frame } from "./frame.ts";
import { ReplFrameError } from "./errors.ts";

/** Where a node's set-aside tails are (`<dataDir>/repl/tails`). */
export function tailDirOf(dataDir: string): string {
  return join(dataDir, "repl", "tails");
}

/** A `.kwtail` file cannot be read: the message names the file and what is wrong. */
export class ReplTailError extends KeepwireError {
  /** Build one for `file` (a name) with the reason. */
  constructor(file: string, reason: string, status: 404 | 400 | 422 = 422) {
    super(
      status,
      status === 404 ? "repl_tail_not_found" : "repl_tail_invalid",
      `${file}: ${reason}`,
    );
  }
}

/**
 * One value of a row: null, a number, a string, `{ int }` for an integer beyond 2^53
 * (decimal text), `{ blob }` for a blob (hex).
 */
export type TailValue = null | number | string | { int: string } | { blob: string };

/** One change of a tail, as the primary recorded it. */
export interface TailChange {
  /** The frame's sequence number. */
  seq: number;
  /** The frame's epoch. */
  epoch: number;
  /** The table. */
  table: string;
  /** What the change did. */
  op: "insert" | "update" | "delete";
  /** The primary key columns and their values (the row the change is about). */
  key: Record<string, TailValue>;
  /** The row before (delete: all columns; update: the changed ones and the key). */
  old?: Record<string, TailValue>;
  /** The row after (insert: all columns; update: the changed ones). */
  new?: Record<string, TailValue>;
}

/** Per-table counts of a tail. */
export interface TailTableCount {
  insert: number;
  update: number;
  delete: number;
  /** Distinct rows (primary keys) touched. */
  rows: number;
}

/** What a tail holds, without its rows. */
export interface TailSummary {
  /** The file's name (in the tail directory). */
  name: string;
  /** Its size in bytes. */
  bytes: number;
  /** The pair the frames belong to. */
  pairId: string;
  /** Schema version of the replicated tables when the frames were made. */
  schemaVersion: string;
  /** The epoch(s) of the frames (normally one: the ex-primary's). */
  epochs: number[];
  /** The replication channel (client set) of the frames (`a` before channels). */
  channel: string | null;
  /** Frames in the file. */
  frames: number;
  /** First and last sequence number. */
  fromSeq: number;
  toSeq: number;
  /** Changes in all. */
  changes: number;
  /** Per table. */
  tables: Record<string, TailTableCount>;
}

/** A tail read whole. */
export interface TailContents {
  summary: TailSummary;
  changes: TailChange[];
}

/** Options of {@link readTail}. */
export interface ReadTailOptions {
  /** The file's name for messages and the summary. */
  name: string;
  /** Column names of a table (from the local schema), or null when unknown. */
  columns?: (table: string) => string[] | null;
}

/** Read a tail's bytes: every frame checked, every changeset parsed; nothing applied. */
export function readTail(bytes: Uint8Array, o: ReadTailOptions): TailContents {
  if (bytes.length === 0) throw new ReplTailError(o.name, "the file is empty (no frames)");
  const changes: TailChange[] = [];
  const tables: Record<string, TailTableCount> = {};
  const keys = new Map<string, Set<string>>();
  const epochs = new Set<number>();
  let first: Frame | null = null;
  let last: Frame | null = null;
  let channel: string | null = null;
  let frames = 0;
  let off = 0;
  while (off < bytes.length) {
    let f: Frame, n: number;
    try {
      [f, n] = decodeFrame(bytes.subarray(off));
    } catch (e) {
      if (!(e instanceof ReplFrameError)) throw e;
      const what = e.reason === "truncated" ? "truncated" : "corrupt";
      throw new ReplTailError(
        o.name,
        `${what}: frame ${frames + 1} at byte ${off} of ${bytes.length}: ${
          e.message.replace(/^replication refused \([a-z_]+\): /, "")
        }${frames ? ` (after seq ${last!.seq})` : ""}`,
      );
    }
    if (first && f.pairId !== first.pairId) {
      throw new ReplTailError(
        o.name,
        `corrupt: frame ${
          frames + 1
        } at byte ${off} is of pair "${f.pairId}", the first of "${first.pairId}"`,
      );
    }
    first ??= f;
    last = f;
    frames++;
    epochs.add(f.epoch);
    channel ??= f.channel;
    f.changesets.forEach((cs, i) => {
      const where = `frame ${frames} (seq ${f.seq}) at byte ${off}, changeset ${i + 1}`;
      for (const c of parseChangeset(cs, o.name, where, o.columns)) {
        changes.push({ seq: f.seq, epoch: f.epoch, ...c });
        const t = tables[c.table] ??= { insert: 0, update: 0, delete: 0, rows: 0 };
        t[c.op]++;
        const k = keys.get(c.table) ?? new Set<string>();
        keys.set(c.table, k);
        k.add(JSON.stringify(c.key));
        t.rows = k.size;
      }
    });
    off += n;
  }
  return {
    summary: {
      name: o.name,
      bytes: bytes.length,
      pairId: first!.pairId,
      schemaVersion: first!.schemaVersion,
      epochs: [...epochs].sort((a, b) => a - b),
      channel,
      frames,
      fromSeq: first!.seq,
      toSeq: last!.seq,
      changes: changes.length,
      tables,
    },
    changes,
  };
}

const OPS: Record<number, TailChange["op"]> = { 18: "insert", 9: "delete", 23: "update" };

/**
 * Parse one SQLite changeset (see the module doc) into changes. `where` says which
 * frame and changeset for the error message.
 */
export function parseChangeset(
  cs: Uint8Array,
  file: string,
  where: string,
  columns?: (table: string) => string[] | null,
): Omit<TailChange, "seq" | "epoch">[] {
  const dv = new DataView(cs.buffer, cs.byteOffset, cs.byteLength);
  const out: Omit<TailChange, "seq" | "epoch">[] = [];
  let o = 0;
  const bad = (what: string): never => {
    throw new ReplTailError(file, `corrupt: ${where}, byte ${o}: ${what}`);
  };
  const need = (n: number, what: string) => {
    if (o + n > cs.length) bad(`the changeset ends inside ${what}`);
  };
  const varint = (what: string): number => {
    let v = 0;
    for (let i = 0; i < 9; i++) {
      need(1, what);
      const b = cs[o++];
      if (i === 8) return v * 256 + b;
      v = v * 128 + (b & 0x7f);
      if (!(b & 0x80)) return v;
    }
    return v;
  };
  const dec = new TextDecoder("utf-8", { fatal: true });
  const value = (table: string): TailValue | undefined => {
    need(1, `a value of table "${table}"`);
    const t = cs[o++];
    switch (t) {
      case 0:
        return undefined;
      case 5:
        return null;
      case 1: {
        need(8, `an integer of table "${table}"`);
        const v = dv.getBigInt64(o);
        o += 8;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(v)
          : { int: v.toString() };
      }
      case 2: {
        need(8, `a real of table "${table}"`);
        const v = dv.getFloat64(o);
        o += 8;
        return v;
      }
      case 3:
      case 4: {
        const n = varint(`a length in table "${table}"`);
        need(n, `a ${t === 3 ? "text" : "blob"} of ${n} bytes in table "${table}"`);
        const b = cs.subarray(o, o += n);
        if (t === 4) {
          return { blob: Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("") };
        }
        try {
          return dec.decode(b);
        } catch {
          return bad(`a text value of table "${table}" is not UTF-8`);
        }
      }
      default:
        return bad(`unknown value type ${t} in table "${table}"`);
    }
  };
  let table = "";
  let names: string[] = [];
  let pk: boolean[] = [];
  while (o < cs.length) {
    const b = cs[o];
    if (b === 0x54 /* T */) {
      o++;
      const n = varint("a table header");
      if (n < 1 || n > 32767) bad(`a table header declares ${n} columns`);
      need(n, "the primary key flags");
      pk = Array.from(cs.subarray(o, o += n), (x) => x !== 0);
      const end = cs.indexOf(0, o);
      if (end < 0) bad("the changeset ends inside a table name");
      try {
        table = dec.decode(cs.subarray(o, end));
      } catch {
        bad("a table name is not UTF-8");
      }
      o = end + 1;
      const known = columns?.(table) ?? null;
      names = known && known.length === n ? known : Array.from({ length: n }, (_, i) => `c${i}`);
      continue;
    }
    if (b === 0x50 /* P */) bad("a patchset, not a changeset");
    if (!table) bad(`byte ${b} where a table header ('T') was expected`);
    const op = OPS[b];
    if (!op) bad(`unknown operation ${b} in table "${table}"`);
    o++;
    need(1, "the indirect flag");
    o++;
    const record = (): Record<string, TailValue> => {
      const r: Record<string, TailValue> = {};
      for (const name of names) {
        const v = value(table);
        if (v !== undefined) r[name] = v;
      }
      return r;
    };
    const oldRow = op === "insert" ? undefined : record();
    const newRow = op === "delete" ? undefined : record();
    const keyFrom = oldRow ?? newRow!;
    const key: Record<string, TailValue> = {};
    names.forEach((name, i) => {
      if (pk[i] && name in keyFrom) key[name] = keyFrom[name];
    });
    out.push({
      table,
      op,
      key,
      ...(oldRow ? { old: oldRow } : {}),
      ...(newRow ? { new: newRow } : {}),
    });
  }
  return out;
}

/** One file of the tail directory (GET /api/repl/tails). */
export interface TailListEntry {
  name: string;
  bytes: number;
  /** When the file was written (ISO). */
  savedAt: string | null;
  /** What it holds, or null when it cannot be read (see `error`). */
  summary: TailSummary | null;
  /** Why it cannot be read. */
  error: string | null;
}

/** The tail files in `dir`, newest first (an absent directory: none). */
export function listTails(
  dir: string,
  columns?: (table: string) => string[] | null,
): TailListEntry[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: TailListEntry[] = [];
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".kwtail")) continue;
    const path = join(dir, e.name);
    const st = Deno.statSync(path);
    let summary: TailSummary | null = null;
    let error: string | null = null;
    try {
      summary = readTail(Deno.readFileSync(path), { name: e.name, columns }).summary;
    } catch (err) {
      error = (err as Error).message;
    }
    out.push({
      name: e.name,
      bytes: st.size,
      savedAt: st.mtime?.toISOString() ?? null,
      summary,
      error,
    });
  }
  return out.sort((a, b) => (b.savedAt ?? "").localeCompare(a.savedAt ?? ""));
}

/**
 * The path of tail `name` in `dir`: a bare file name ending in `.kwtail` (anything else,
 * a path or `..`, is refused) that exists.
 */
export function tailPath(dir: string, name: string): string {
  if (name !== basename(name) || !/^[A-Za-z0-9._:+-]+\.kwtail$/.test(name) || name[0] === ".") {
    throw new ReplTailError(name, "not a tail file name (a name ending in .kwtail, no path)", 400);
  }
  const path = join(dir, name);
  try {
    Deno.statSync(path);
  } catch {
    throw new ReplTailError(name, `no such tail in ${dir}`, 404);
  }
  return path;
}

/** Column names of the tables of a SQLite database (for {@link ReadTailOptions.columns}). */
export function columnsOf(
  db: { prepare(sql: string): { all(...a: unknown[]): unknown[] } },
): (table: string) => string[] | null {
  const cache = new Map<string, string[] | null>();
  return (table) => {
    if (!cache.has(table)) {
      try {
        const rows = db.prepare("SELECT name FROM pragma_table_info(?) ORDER BY cid").all(
          table,
        ) as { name: string }[];
        cache.set(table, rows.length ? rows.map((r) => r.name) : null);
      } catch {
        cache.set(table, null);
      }
    }
    return cache.get(table)!;
  };
}
