/**
 * keepalived as keepwire's child process: render and check its config, create the
 * notify FIFO and read it, write the track files atomically, spawn keepalived in
 * the foreground (with a parent-death signal), tell the module when it exits, and
 * stop it (SIGTERM: priority-0 advert, addresses removed; SIGKILL after a deadline).
 * The module decides about restarts; this file only runs one keepalived at a time.
 * @module
 */
import { stopEngineChild } from "./child.ts";
import { HaEngineError } from "./errors.ts";
import {
  ALIVE_SCRIPT,
  keepalivedCommand,
  type KeepalivedPaths,
  keepalivedPaths,
  renderKeepalivedConf,
} from "./keepalived.ts";
import type { HaConfig } from "./config.ts";
import type { TrackValues } from "./track.ts";

/** What the engine tells the module. */
export interface EngineEvents {
  /** A line from the notify FIFO (trimmed, non-empty). */
  onLine(line: string): void;
  /** keepalived exited (not after `stop`). */
  onExit(reason: string): void;
  /** A line keepalived logged (stderr/stdout). */
  onLog?(line: string): void;
}

/** One keepalived, as the module drives it (tests pass a fake). */
export interface Engine {
  /** Render, check (`keepalived -t`), create the FIFO, spawn. Throws HaEngineError. */
  start(): Promise<{ pid: number }>;
  /** Stop keepalived (graceful, then forced) and close the FIFO. */
  stop(): Promise<void>;
  /** Write the track files (atomically: temp file + rename). */
  writeTrack(v: TrackValues): void;
  /** The rendered configuration (after start). */
  readonly config: string | null;
  /** keepalived's pid while running. */
  readonly pid: number | null;
}

/** Builds the engine of a module. */
export type EngineFactory = (ha: HaConfig, dataDir: string, ev: EngineEvents) => Engine;

/** Options of the real engine (the lab runs it inside a network namespace with `wrap`). */
export interface KeepalivedEngineOptions {
  /** Command prefix, e.g. `["ip","netns","exec","lab_n1"]` (tests). */
  wrap?: string[];
  /** Use setpriv's parent-death signal when found (default true). */
  deathSignal?: boolean;
  /** ms to wait for keepalived to stop after SIGTERM before SIGKILL (default 5000). */
  stopTimeoutMs?: number;
}

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"];

function findSetpriv(): string | null {
  for (const p of SETPRIV) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

/** Write `text` to `path` atomically (same directory temp file, then rename). */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, text);
  Deno.renameSync(tmp, path);
}

/** Run a short command; returns its exit status and output (`spawned` false: it could not run). */
async function run(cmd: string[]): Promise<{ ok: boolean; out: string; spawned: boolean }> {
  try {
    const o = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return {
      ok: o.success,
      out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim(),
      spawned: true,
    };
  } catch (e) {
    return { ok: false, out: (e as Error).message, spawned: false };
  }
}

/** Check a rendered configuration with `keepalived -t` (throws HaEngineError with its output). */
export async function checkKeepalivedConf(
  binary: string,
  file: string,
  wrap: string[] = [],
): Promise<void> {
  const r = await run([...wrap, binary, "-t", "-f", file, "-l"]);
  if (!r.spawned) throw new HaEngineError(`cannot run ${binary}: ${r.out}`);
  if (!r.ok) {
    throw new HaEngineError(`configuration refused by keepalived -t: ${r.out || "no output"}`);
  }
}

/** The real engine: keepalived as a child process. */
export class KeepalivedEngine implements Engine {
  #ha: HaConfig;
  #paths: KeepalivedPaths;
  #ev: EngineEvents;
  #opts: KeepalivedEngineOptions;
  #child: Deno.ChildProcess | null = null;
  #fifo: Deno.FsFile | null = null;
  #fifoLoop: Promise<void> | null = null;
  #stopping = false;
  #config: string | null = null;
  #aliveTimer: ReturnType<typeof setInterval> | undefined;

  /** Build (nothing runs until start). */
  constructor(
    ha: HaConfig,
    dataDir: string,
    ev: EngineEvents,
    opts: KeepalivedEngineOptions = {},
  ) {
    this.#ha = ha;
    this.#paths = keepalivedPaths(dataDir);
    this.#ev = ev;
    this.#opts = opts;
  }

  /** The paths it uses. */
  get paths(): KeepalivedPaths {
    return this.#paths;
  }

  /** The rendered configuration. */
  get config(): string | null {
    return this.#config;
  }

  /** keepalived's pid while it runs. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  async start(): Promise<{ pid: number }> {
    this.#stopping = false;
    const p = this.#paths;
    await Deno.mkdir(p.dir, { recursive: true });
    this.#config = renderKeepalivedConf(this.#ha, p);
    writeAtomic(p.config, this.#config);
    // keepalived starts in FAULT until keepwire has evaluated its conditions and writes 0
    writeAtomic(p.faultFile, "1\n");
    writeAtomic(p.priorityFile, "0\n");
    if (this.#ha.activeActive) {
      writeAtomic(p.releaseFile.a, "0\n");
      writeAtomic(p.releaseFile.b, "0\n");
    }
    // the heartbeat keepalived checks every second: written by this (main) event loop,
    // so a stuck keepwire stops it and keepalived goes to FAULT
    writeAtomic(p.aliveScript, ALIVE_SCRIPT);
    Deno.chmodSync(p.aliveScript, 0o755);
    this.#beat();
    if (this.#aliveTimer === undefined) this.#aliveTimer = setInterval(() => this.#beat(), 500);
    const wrap = this.#opts.wrap ?? [];
    try {
      await checkKeepalivedConf(this.#ha.keepalived.command, p.config, wrap);
    } catch (e) {
      clearInterval(this.#aliveTimer);
      this.#aliveTimer = undefined;
      throw e;
    }
    await this.#openFifo();
    const setpriv = this.#opts.deathSignal === false ? null : findSetpriv();
    const { command, args } = keepalivedCommand(this.#ha.keepalived.command, p, setpriv);
    const full = [...wrap, command, ...args];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(full[0], {
        args: full.slice(1),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      clearInterval(this.#aliveTimer);
      this.#aliveTimer = undefined;
      await this.#closeFifo();
      throw new HaEngineError(`cannot run ${full[0]}: ${(e as Error).message}`, e);
    }
    this.#child = child;
    void this.#pump(child.stdout);
    void this.#pump(child.stderr);
    void child.status.then((s) => {
      if (this.#child === child) this.#child = null;
      if (this.#stopping) return;
      const why = s.signal ? `killed by ${s.signal}` : `exited with code ${s.code}`;
      this.#ev.onExit(`keepalived ${why}`);
    });
    return { pid: child.pid };
  }

  #beat(): void {
    try {
      writeAtomic(this.#paths.aliveFile, `${Date.now()}\n`);
    } catch { /* keepalived sees a stale heartbeat: FAULT, which is right when we cannot write */ }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#aliveTimer !== undefined) clearInterval(this.#aliveTimer);
    this.#aliveTimer = undefined;
    const child = this.#child;
    if (child) {
      await stopEngineChild(child, this.#opts.stopTimeoutMs ?? 5000);
      this.#child = null;
    }
    await this.#closeFifo();
  }

  writeTrack(v: TrackValues): void {
    writeAtomic(this.#paths.faultFile, `${v.fault}\n`);
    writeAtomic(this.#paths.priorityFile, `${v.priority}\n`);
    if (this.#ha.activeActive && v.release) {
      writeAtomic(this.#paths.releaseFile.a, `${v.release.a}\n`);
      writeAtomic(this.#paths.releaseFile.b, `${v.release.b}\n`);
    }
  }

  async #openFifo(): Promise<void> {
    const p = this.#paths.fifo;
    // one FIFO per engine, kept across keepalived restarts (which open the same path):
    // recreating it leaked the old handle and its pending read
    if (this.#fifo) {
      try {
        if (Deno.statSync(p).isFifo) return;
      } catch { /* removed: make a new one */ }
      await this.#closeFifo();
    }
    try {
      await Deno.remove(p);
    } catch { /* absent */ }
    const r = await run(["mkfifo", "-m", "0600", p]);
    if (!r.ok) throw new HaEngineError(`cannot create the notify FIFO ${p}: ${r.out}`);
    // read and write: a FIFO opened this way never reports end-of-file when keepalived
    // closes its end, and writing a newline wakes the reader on stop
    this.#fifo = await Deno.open(p, { read: true, write: true });
    const file = this.#fifo;
    this.#fifoLoop = (async () => {
      const buf = new Uint8Array(4096);
      const dec = new TextDecoder();
      let pending = "";
      while (true) {
        let n: number | null;
        try {
          n = await file.read(buf);
        } catch {
          return;
        }
        if (n === null || this.#fifo !== file) return;
        pending += dec.decode(buf.subarray(0, n), { stream: true });
        let i: number;
        while ((i = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, i).trim();
          pending = pending.slice(i + 1);
          if (line) this.#ev.onLine(line);
        }
      }
    })();
  }

  async #closeFifo(): Promise<void> {
    const f = this.#fifo;
    if (!f) return;
    this.#fifo = null;
    // wake the pending read through a second handle (reads and writes of one
    // handle may be queued behind each other)
    try {
      const w = await Deno.open(this.#paths.fifo, { write: true });
      try {
        await w.write(new TextEncoder().encode("\n"));
      } finally {
        w.close();
      }
    } catch { /* closed */ }
    await this.#fifoLoop;
    try {
      f.close();
    } catch { /* closed */ }
    try {
      await Deno.remove(this.#paths.fifo);
    } catch { /* gone */ }
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of stream) {
        pending += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, i).trimEnd();
          pending = pending.slice(i + 1);
          if (line) this.#ev.onLog?.(line);
        }
      }
    } catch { /* the process went away */ }
  }
}

/** Path helpers re-exported for the CLI and tests. */
export { keepalivedPaths };
