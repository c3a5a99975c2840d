/**
 * WAL checkpoints off the write path. SQLite's auto-checkpoint runs inside the commit that
 * crosses its threshold (1,000 WAL pages), on the committing connection — in keepwire, on
 * the event loop — and its two fsyncs (the WAL, then the database file) took 15–35 ms on a
 * shared disk: the tail of the replicated `sync` write (the active's commit, the standby's
 * apply; docs/ha.md "Benchmark").
 *
 * The {@link Checkpointer} moves the fsyncs off the event loop without a Worker (a Deno
 * Worker costs 15–20 MB of RSS) and keeps only the page copy on the loop. Every `intervalMs`
 * (`busyIntervalMs` while frames keep coming) it reads the WAL index (the `-shm` file: frames
 * in the WAL, frames already copied into the database) and, when the WAL holds `stepPages`
 * frames not yet copied or nothing was committed since the last look (idle), runs a round:
 *
 * 1. **Pin**: a read transaction on a connection of its own. Its snapshot ends at the last
 *    frame M now in the WAL; while it is open, no checkpoint copies a frame beyond M and no
 *    writer restarts the WAL (both wait for readers).
 * 2. `fdatasync` the WAL on Deno's blocking-I/O threads (`FsFile.syncData`): frames up to M
 *    are on disk. Then the previous round's pin, if any, goes (the new one holds the WAL).
 * 3. `PRAGMA wal_checkpoint(PASSIVE)` on a third connection with `synchronous = OFF`: copies
 *    frames up to M into the database file (page-cache writes, on the loop), no fsync.
 *
 * The pin stays until a **release**: when nothing was committed since the last look, or the
 * WAL is past half its bound. A release syncs the database file in a helper process (`sh`
 * running coreutils' `sync -d`, started on first use and kept) and only then lets the pin
 * go, so the WAL may restart (the next write starts it again from its beginning when every
 * frame was copied). Past half the bound, the frames committed during the release are then
 * checkpointed on the loop with SQLite's own syncs (a few frames: small fsyncs), so that the
 * next write does start the WAL again although the writes never pause. Not `syncData` for
 * the database file: Deno runs an async file operation on a duplicate of the descriptor and
 * closes it after, and closing any descriptor of a file drops every POSIX lock the process
 * holds on it — SQLite's shared lock on the database file, which tells other processes (the
 * CLI) that the database is in use, so that one of them closing last would checkpoint and
 * delete the WAL under this one. The WAL file carries no lock: `syncData` is safe there.
 *
 * This is the order SQLite's own checkpoint keeps (WAL durable before its frames reach the
 * database, the database durable before the WAL is reused), so a power loss at any point
 * leaves a consistent database. The main connection keeps SQLite's auto-checkpoint only as
 * the bound (`maxWalBytes`, default 16 MiB): if no round runs, the commit that crosses it
 * checkpoints on the writer as before and the next write restarts the WAL;
 * `journal_size_limit` truncates a restarted WAL file to the bound. A held pin holds the WAL
 * too: the bound holds as long as the event loop turns, and a release's sync of the database
 * file ends, within the time writes take to fill half of it (0.5 s at the lab bench's
 * ~16 MB/s of WAL).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { Clock, TimerId } from "../clock.ts";

/** Options of the {@link Checkpointer}. */
export interface CheckpointOptions {
  /** How often the WAL index is looked at (default 250 ms). */
  intervalMs?: number;
  /**
   * The next look after one that found `stepPages` frames to copy (default 50 ms): under a
   * steady stream of writes the rounds follow each other closely, so that what is left for
   * the bound's checkpoint on the writer (below) stays small.
   */
  busyIntervalMs?: number;
  /** Checkpoint when this many WAL frames are not yet in the database (default 256). */
  stepPages?: number;
  /**
   * The WAL's bound in bytes (default 16 MiB): the rounds let the WAL go past half of it;
   * the commit that grows it past the bound checkpoints on the writer (SQLite's
   * auto-checkpoint), and a restarted WAL file is truncated to it.
   */
  maxWalBytes?: number;
  /** Injected timers (default the system's). */
  clock?: Pick<Clock, "setTimeout" | "clearTimeout">;
  /** The sync helper's command (tests; default `sh -c` running `sync -d` per line). */
  helper?: readonly string[];
}

/** What the checkpointer has done (status, tests). */
export interface CheckpointStats {
  /** Rounds that copied frames into the database file. */
  rounds: number;
  /** Frames copied by those rounds. */
  frames: number;
  /** Times the database file was synced and the WAL let go (idle, or past half the bound). */
  releases: number;
  /** The longest page copy of a round, on the event loop (ms). */
  maxCopyMs: number;
  /** Rounds that failed (the error is kept in `lastError`; the next look tries again). */
  errors: number;
  /** The last failure. */
  lastError?: string;
}

/** The WAL index's counters (https://sqlite.org/walformat.html). */
export interface WalIndexState {
  /** The header's bytes (first copy): unchanged when nothing committed. */
  header: Uint8Array;
  /** Frames in the WAL. */
  mxFrame: number;
  /** Frames of the WAL already copied into the database. */
  nBackfill: number;
  /** Page size in bytes. */
  pageSize: number;
}

/** Bytes of the WAL index read: two header copies (48 each) and the checkpoint info (40). */
const WAL_INDEX_READ = 136;

/**
 * Read the WAL index's header and checkpoint info from `shm`, or null when it is not
 * readable or its two header copies differ (a commit was writing it: look again later).
 */
export function readWalIndex(shm: Deno.FsFile): WalIndexState | null {
  const buf = new Uint8Array(WAL_INDEX_READ);
  try {
    shm.seekSync(0, Deno.SeekMode.Start);
    let got = 0;
    while (got < WAL_INDEX_READ) {
      const n = shm.readSync(buf.subarray(got));
      if (n === null || n === 0) return null;
      got += n;
    }
  } catch {
    return null;
  }
  for (let i = 0; i < 48; i++) if (buf[i] !== buf[48 + i]) return null;
  if (buf[12] !== 1) return null; // isInit
  // the WAL index is in the host's byte order
  const v = new DataView(buf.buffer);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const sz = v.getUint16(14, le);
  return {
    header: buf.slice(0, 48),
    mxFrame: v.getUint32(16, le),
    nBackfill: v.getUint32(96, le),
    pageSize: sz === 1 ? 65536 : sz,
  };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checkpoints of one database file, run in rounds off the write path (see the module's
 * documentation). Built by {@link Store.startCheckpoints}; the store closes it.
 */
export class Checkpointer {
  readonly #path: string;
  readonly #shm: () => Deno.FsFile | undefined;
  readonly #clock: Pick<Clock, "setTimeout" | "clearTimeout">;
  readonly #intervalMs: number;
  readonly #busyIntervalMs: number;
  readonly #stepPages: number;
  readonly #releaseBytes: number;
  readonly #helper: readonly string[] | undefined;
  #retired: FileSyncer[] = [];
  #busy = false;
  /** Two pin connections: a round takes its pin on one before it lets the other's go. */
  #pins: DatabaseSync[] = [];
  /** The pin held (an index of #pins), or undefined. */
  #held: number | undefined;
  /** A pin taken and not yet the held one (its round is under way). */
  #fresh: number | undefined;
  #ckpt: DatabaseSync | undefined;
  #wal: Deno.FsFile | undefined;
  #dbFile: Deno.FsFile | undefined;
  /** The sync helper; null once it could not be started or failed (see #run). */
  #syncer: FileSyncer | null | undefined;
  #timer: TimerId | undefined;
  #last: Uint8Array | undefined;
  #round: Promise<void> | undefined;
  /** Pages copied into the database file and not synced since. */
  #dirty = false;
  #stopped = false;
  readonly #stats: CheckpointStats = {
    rounds: 0,
    frames: 0,
    releases: 0,
    errors: 0,
    maxCopyMs: 0,
  };

  /**
   * Set the main connection's WAL bound and open the connections of the rounds (two pins,
   * one checkpointer). `shm` gives the store's open `-shm` file.
   */
  constructor(
    path: string,
    main: DatabaseSync,
    shm: () => Deno.FsFile | undefined,
    opts: CheckpointOptions = {},
  ) {
    this.#path = path;
    this.#shm = shm;
    this.#clock = opts.clock ?? { setTimeout, clearTimeout };
    this.#intervalMs = opts.intervalMs ?? 250;
    this.#busyIntervalMs = opts.busyIntervalMs ?? 50;
    this.#stepPages = opts.stepPages ?? 256;
    this.#helper = opts.helper;
    const maxWal = opts.maxWalBytes ?? 16 * 1024 * 1024;
    this.#releaseBytes = maxWal / 2;
    const pageSize = Number(
      (main.prepare("PRAGMA page_size").get() as { page_size: number }).page_size,
    );
    // the hard bound: SQLite's own checkpoint, on the writer, past it
    main.exec(`PRAGMA wal_autocheckpoint = ${Math.max(1, Math.ceil(maxWal / pageSize))}`);
    main.exec(`PRAGMA journal_size_limit = ${maxWal}`);
    this.#pins = [new DatabaseSync(path), new DatabaseSync(path)];
    this.#ckpt = new DatabaseSync(path);
    // its checkpoints sync nothing: the rounds sync the files themselves, off the loop
    this.#ckpt.exec("PRAGMA synchronous = OFF");
    this.#ckpt.exec("PRAGMA wal_autocheckpoint = 0");
    this.#schedule();
  }

  /** What it has done. */
  stats(): CheckpointStats {
    return { ...this.#stats };
  }

  /**
   * Resolves when no round is under way and, once stopped, the sync helper has exited
   * (tests; a round in flight at close ends by itself).
   */
  async settled(): Promise<void> {
    while (this.#round) await this.#round;
    for (const h of this.#retired) await h.exited();
    if (this.#stopped) await this.#syncer?.exited();
  }

  /** Look at the WAL now, as the timer does (tests). Resolves when a round it started ended. */
  async look(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#tick();
  }

  #schedule(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, this.#busy ? this.#busyIntervalMs : this.#intervalMs);
  }

  async #tick(): Promise<void> {
    if (this.#stopped || this.#round) return;
    const shm = this.#shm();
    const s = shm ? readWalIndex(shm) : null;
    if (s) {
      const pending = s.mxFrame - s.nBackfill;
      const idle = this.#last !== undefined && same(this.#last, s.header);
      this.#last = s.header;
      this.#busy = pending >= this.#stepPages;
      // past half the bound the WAL is let go and started again (see #run)
      const full = s.mxFrame * (s.pageSize + 24) >= this.#releaseBytes;
      const copy = pending > 0 && (idle || this.#busy || full);
      const release = (idle || full) && (copy || this.#held !== undefined);
      if (copy || release) {
        this.#round = this.#run(shm!, s, copy, release, full);
        try {
          await this.#round;
        } finally {
          this.#round = undefined;
        }
      }
    }
    this.#schedule();
  }

  /**
   * One round (see the module's documentation): `copy` the frames the WAL holds now (pin
   * them, sync the WAL, let the previous pin go, copy), then, on `release`, sync the
   * database file and let the pin go; when the WAL is past half its bound (`full`), also
   * copy what was committed meanwhile (a few frames, on the loop with SQLite's own syncs)
   * so that the next write starts the WAL again.
   */
  async #run(
    shm: Deno.FsFile,
    before: WalIndexState,
    copy: boolean,
    release: boolean,
    full: boolean,
  ): Promise<void> {
    const ckpt = this.#ckpt!;
    try {
      if (copy) {
        const i = this.#held === 0 ? 1 : 0;
        const pin = this.#pins[i];
        pin.exec("BEGIN");
        this.#fresh = i;
        pin.prepare("SELECT 1 FROM sqlite_schema LIMIT 1").get();
        // the pin's snapshot is `before` only if nothing committed around its start, and
        // it holds back checkpoints and the WAL's restart only if the WAL had frames to copy
        const now = readWalIndex(shm);
        if (!now || !same(now.header, before.header) || now.nBackfill >= now.mxFrame) return;
        this.#wal ??= await Deno.open(`${this.#path}-wal`, { read: true });
        if (this.#stopped) return;
        await this.#wal.syncData();
        if (this.#stopped) return;
        // the new pin holds the WAL from here: the previous one may go
        this.#unpin(this.#held);
        this.#held = i;
        this.#fresh = undefined;
        const t = performance.now();
        const r = ckpt.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as {
          checkpointed: number;
        };
        this.#stats.maxCopyMs = Math.max(this.#stats.maxCopyMs, performance.now() - t);
        this.#dirty = true;
        this.#stats.rounds++;
        this.#stats.frames += Math.max(0, Number(r.checkpointed) - before.nBackfill);
      }
      if (release && this.#held !== undefined) {
        if (this.#dirty) {
          // opened, never closed while the database is (see closeFiles); synced only by
          // syncDataSync, which uses this descriptor itself
          this.#dbFile ??= Deno.openSync(this.#path, { read: true });
          try {
            if (this.#syncer === null) throw new Error("no sync helper");
            this.#syncer ??= new FileSyncer(this.#helper);
            await this.#syncer.sync(this.#path);
          } catch (e) {
            if (this.#stopped) return;
            // no helper (no `sh` or `sync` here, or it died): sync on the loop, as SQLite
            // would have, rather than hold the WAL
            if (this.#syncer !== null) {
              this.#stats.lastError = `sync helper: ${e}; syncing on the event loop`;
              if (this.#syncer) this.#retired.push(this.#syncer);
              this.#syncer?.close();
              this.#syncer = null;
            }
            this.#dbFile.syncDataSync();
          }
          if (this.#stopped) return;
          this.#dirty = false;
        }
        this.#unpin(this.#held);
        this.#held = undefined;
        this.#stats.releases++;
        if (full) {
          ckpt.exec("PRAGMA synchronous = NORMAL");
          try {
            ckpt.prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
          } finally {
            ckpt.exec("PRAGMA synchronous = OFF");
          }
        }
      }
    } catch (e) {
      if (this.#stopped) return;
      this.#stats.errors++;
      this.#stats.lastError = String(e);
    } finally {
      if (this.#fresh !== undefined) this.#unpin(this.#fresh);
      this.#fresh = undefined;
    }
  }

  #unpin(i: number | undefined): void {
    if (i === undefined) return;
    try {
      if (this.#pins[i]?.isTransaction) this.#pins[i].exec("ROLLBACK");
    } catch { /* closed */ }
  }

  /**
   * Stop: no more rounds. When pages were copied and the database file not synced since,
   * it is synced here (blocking) before the pins go, so that the main connection's closing
   * checkpoint, which syncs only what it copies itself, cannot reuse the WAL ahead of them.
   * Then its connections close. Call before the main connection closes; {@link closeFiles}
   * after.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dirty) {
      try {
        (this.#dbFile ??= Deno.openSync(this.#path, { read: true })).syncDataSync();
      } catch { /* the closing checkpoint's own sync is what is left */ }
      this.#dirty = false;
    }
    for (const c of [...this.#pins, this.#ckpt]) {
      try {
        if (c?.isOpen) c.close();
      } catch { /* already closed */ }
    }
    this.#pins = [];
    this.#held = this.#fresh = this.#ckpt = undefined;
    this.#syncer?.close();
  }

  /**
   * Close the WAL and database files the rounds sync. Only once no connection of this
   * process has the database open: closing any descriptor of a file drops every POSIX lock
   * the process holds on it.
   */
  closeFiles(): void {
    for (const f of [this.#wal, this.#dbFile]) {
      try {
        f?.close();
      } catch { /* closed */ }
    }
    this.#wal = this.#dbFile = undefined;
  }
}

/** The sync helper: a shell reading paths, one a line, answering 0 when `sync -d` synced it. */
const SYNC_HELPER: readonly string[] = [
  "sh",
  "-c",
  'while IFS= read -r f; do if sync -d -- "$f"; then echo 0; else echo 1; fi; done',
];

/**
 * `fdatasync` of files by path in a helper process: `sh` reading one path a line and
 * answering `0` when coreutils' `sync -d` synced it. Started on first use; its own opens and
 * closes of the file do not touch this process's locks.
 */
class FileSyncer {
  readonly #child: Deno.ChildProcess;
  readonly #in: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out: ReadableStreamDefaultReader<string>;
  #buf = "";
  #closed = false;

  constructor(command: readonly string[] = SYNC_HELPER) {
    this.#child = new Deno.Command(command[0], {
      args: command.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#in = this.#child.stdin.getWriter();
    this.#out = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Sync `path`'s data; throws when the helper could not. */
  async sync(path: string): Promise<void> {
    if (path.includes("\n")) throw new Error(`checkpoint: cannot sync a path with a newline`);
    await this.#in.write(new TextEncoder().encode(path + "\n"));
    while (!this.#buf.includes("\n")) {
      const r = await this.#out.read();
      if (r.done) throw new Error("checkpoint: the sync helper exited");
      this.#buf += r.value;
    }
    const i = this.#buf.indexOf("\n");
    const answer = this.#buf.slice(0, i);
    this.#buf = this.#buf.slice(i + 1);
    if (answer !== "0") throw new Error(`checkpoint: sync -d ${path} failed`);
  }

  /** End the helper (its input closes; its shell loop ends). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#in.close().catch(() => {});
  }

  /** Resolves when the helper has exited. */
  async exited(): Promise<void> {
    await this.#out.cancel().catch(() => {});
    await this.#child.status;
  }
}
