/**
 * The updater's tables in the store: per slot what was installed (version,
 * sha256, installed at, status), the install/activation history, and the
 * update state record (state.ts; survives restarts, shared by both slots'
 * runtimes).
 * @module
 */
import type { Store } from "../store/mod.ts";
import {
  type SlotStatus,
  UPDATE_STATES,
  type UpdateState,
  type UpdateStateRecord,
  type UpdateStateStore,
} from "./state.ts";

export type { SlotStatus } from "./state.ts";

/** One slot record. */
export interface SlotRecord {
  /** Bootname. */
  bootname: string;
  /** Slot class. */
  slotClass: string;
  /** Device. */
  device: string;
  /** Status. */
  status: SlotStatus;
  /** Bundle version in the slot. */
  version: string | null;
  /** Bundle compatible string. */
  compatible: string | null;
  /** sha256 of the image. */
  sha256: string | null;
  /** Image size. */
  size: number | null;
  /** Key that signed the bundle. */
  keyId: string | null;
  /** When it was installed (ms). */
  installedAt: number | null;
  /** When it was marked good last (ms). */
  goodAt: number | null;
  /** Last failure or note. */
  detail: string | null;
}

/** One history line. */
export interface HistoryEntry {
  /** Row id. */
  id: number;
  /** Time (ms). */
  time: number;
  /** install | activate | commit | rollback | mark-good | mark-bad | gate-failed. */
  action: string;
  /** Slot. */
  bootname: string | null;
  /** Version. */
  version: string | null;
  /** ok | failed | ... */
  result: string;
  /** Details. */
  detail: string | null;
}

/** The `update` store migrations (their count is the module's schema version; a bundle declares it: mod/update/bundle_schema.ts). */
export const UPDATE_MIGRATIONS = [
  `CREATE TABLE update_slots (
     bootname TEXT NOT NULL,
     slot_class TEXT NOT NULL,
     device TEXT NOT NULL,
     status TEXT NOT NULL,
     version TEXT,
     compatible TEXT,
     sha256 TEXT,
     size INTEGER,
     key_id TEXT,
     installed_at INTEGER,
     good_at INTEGER,
     detail TEXT,
     PRIMARY KEY (bootname, slot_class)
   );
   CREATE TABLE update_history (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL,
     action TEXT NOT NULL,
     bootname TEXT,
     version TEXT,
     result TEXT NOT NULL,
     detail TEXT
   );
   CREATE TABLE update_activation (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     target TEXT NOT NULL,
     from_slot TEXT NOT NULL,
     version TEXT,
     state TEXT NOT NULL,
     since INTEGER NOT NULL,
     detail TEXT
   );`,
];

type Row = Record<string, string | number | null>;

function toSlot(r: Row): SlotRecord {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    bootname: String(r.bootname),
    slotClass: String(r.slot_class),
    device: String(r.device),
    status: String(r.status) as SlotStatus,
    version: r.version as string | null,
    compatible: r.compatible as string | null,
    sha256: r.sha256 as string | null,
    size: num(r.size),
    keyId: r.key_id as string | null,
    installedAt: num(r.installed_at),
    goodAt: num(r.good_at),
    detail: r.detail as string | null,
  };
}

/** Access to the update tables (runs the `update` migrations on construction). */
export class UpdateRecords {
  readonly #store: Store;
  readonly #now: () => number;

  /** Migrate and wrap. */
  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
    store.migrate("update", UPDATE_MIGRATIONS);
  }

  /** All slot records. */
  slots(): SlotRecord[] {
    return (this.#store.db.prepare("SELECT * FROM update_slots ORDER BY slot_class, bootname")
      .all() as Row[]).map(toSlot);
  }

  /** One slot record. */
  slot(bootname: string, slotClass: string): SlotRecord | undefined {
    const r = this.#store.db.prepare(
      "SELECT * FROM update_slots WHERE bootname = ? AND slot_class = ?",
    ).get(bootname, slotClass) as Row | undefined;
    return r ? toSlot(r) : undefined;
  }

  /** Version installed in a bootname (any class), or null. */
  versionOf(bootname: string): string | null {
    const r = this.#store.db.prepare(
      "SELECT version FROM update_slots WHERE bootname = ? AND version IS NOT NULL ORDER BY installed_at DESC LIMIT 1",
    ).get(bootname) as { version: string } | undefined;
    return r?.version ?? null;
  }

  /** Insert or replace a whole slot record. */
  put(r: Omit<SlotRecord, "goodAt"> & { goodAt?: number | null }): void {
    this.#store.db.prepare(
      `INSERT INTO update_slots (bootname, slot_class, device, status, version, compatible, sha256,
         size, key_id, installed_at, good_at, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(bootname, slot_class) DO UPDATE SET device = excluded.device,
         status = excluded.status, version = excluded.version, compatible = excluded.compatible,
         sha256 = excluded.sha256, size = excluded.size, key_id = excluded.key_id,
         installed_at = excluded.installed_at, good_at = excluded.good_at, detail = excluded.detail`,
    ).run(
      r.bootname,
      r.slotClass,
      r.device,
      r.status,
      r.version,
      r.compatible,
      r.sha256,
      r.size,
      r.keyId,
      r.installedAt,
      r.goodAt ?? null,
      r.detail,
    );
  }

  /** Set the status of every record of a bootname (and note), creating none. */
  setStatus(bootname: string, status: SlotStatus, detail: string | null = null): void {
    const good = status === "good" ? this.#now() : null;
    this.#store.db.prepare(
      `UPDATE update_slots SET status = ?, detail = ?, good_at = COALESCE(?, good_at)
       WHERE bootname = ?`,
    ).run(status, detail, good, bootname);
  }

  /** Add a history line. */
  addHistory(
    action: string,
    bootname: string | null,
    version: string | null,
    result: string,
    detail: string | null = null,
  ): void {
    this.#store.db.prepare(
      "INSERT INTO update_history (time, action, bootname, version, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(this.#now(), action, bootname, version, result, detail);
  }

  /** Newest history first. */
  history(limit = 50): HistoryEntry[] {
    return (this.#store.db.prepare("SELECT * FROM update_history ORDER BY id DESC LIMIT ?")
      .all(limit) as Row[]).map((r) => ({
        id: Number(r.id),
        time: Number(r.time),
        action: String(r.action),
        bootname: r.bootname as string | null,
        version: r.version as string | null,
        result: String(r.result),
        detail: r.detail as string | null,
      }));
  }

  /** The update state record, or null (idle). A row written before state.ts says `failed` for `gate-failed`. */
  state(): UpdateStateRecord | null {
    const r = this.#store.db.prepare("SELECT * FROM update_activation WHERE id = 1").get() as
      | Row
      | undefined;
    if (!r) return null;
    const raw = String(r.state);
    const state = raw === "failed"
      ? "gate-failed"
      : (UPDATE_STATES as readonly string[]).includes(raw)
      ? raw as UpdateState
      : "idle";
    return {
      state,
      target: r.target === "" ? null : String(r.target),
      from: r.from_slot === "" ? null : String(r.from_slot),
      version: r.version as string | null,
      since: Number(r.since),
      detail: r.detail as string | null,
    };
  }

  /** Write the update state record (tests set up states with it; the updater goes through the machine). */
  putState(a: Omit<UpdateStateRecord, "since"> & { since?: number }): void {
    this.#store.db.prepare(
      `INSERT INTO update_activation (id, target, from_slot, version, state, since, detail)
       VALUES (1, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET target = excluded.target, from_slot = excluded.from_slot,
         version = excluded.version, state = excluded.state, since = excluded.since,
         detail = excluded.detail`,
    ).run(a.target ?? "", a.from ?? "", a.version, a.state, a.since ?? this.#now(), a.detail);
  }

  /** The state record as the machine's store. */
  stateStore(): UpdateStateStore {
    return { get: () => this.state(), put: (r) => this.putState(r) };
  }

  /** Run `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.#store.transaction(fn);
  }
}
