/**
 * Crash-safe file replacement for the boot env backends: the full content goes
 * to a temp file in the same directory, is fsynced, renamed over the target and
 * the directory is fsynced. A crash at any point leaves either the old or the new
 * file, never a mix. Writers of one file are serialized with flock on its directory.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { BootEnvError } from "./types.ts";

/** The most any boot env file (grubenv, JSON env, fw_env.config) may hold. */
export const BOOT_FILE_LIMIT = 1024 * 1024;

/**
 * Read a whole file of at most `limit` bytes, reading no more than that whatever
 * the file is (`/dev/zero`, a pipe): a larger one is a `too-large` error naming it.
 * Other failures (missing file, no permission) throw Deno's error unchanged.
 */
export async function readFileBounded(
  path: string,
  what: string,
  limit = BOOT_FILE_LIMIT,
): Promise<Uint8Array> {
  using f = await Deno.open(path, { read: true });
  const chunks: Uint8Array[] = [];
  let n = 0;
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const got = await f.read(buf);
    if (got === null) break;
    n += got;
    if (n > limit) {
      throw new BootEnvError(
        "too-large",
        `${path} is larger than ${limit} bytes, the most keepwire reads as a ${what} ` +
          `(is it the right file?)`,
      );
    }
    chunks.push(buf.slice(0, got));
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Prefix of the temp files a write leaves behind when it crashes. */
export function bootTempPrefix(path: string): string {
  return `.${basename(path)}.keepwire-tmp-`;
}

/** Write all of `data` to `file` (loops over short writes). */
async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = await file.write(data.subarray(off));
    if (n <= 0) throw new Error("write returned 0");
    off += n;
  }
}

/**
 * Replace `path` with `data` crash-safely: temp file (full content, never sparse),
 * fsync, rename, fsync the directory. `mode` defaults to the old file's mode or 0644.
 */
export async function atomicReplaceFile(
  path: string,
  data: Uint8Array,
  mode?: number,
): Promise<void> {
  const dir = dirname(path);
  if (mode === undefined) {
    try {
      const st = await Deno.stat(path);
      mode = st.mode !== null ? st.mode & 0o7777 : 0o644;
    } catch {
      mode = 0o644;
    }
  }
  const tmp = join(dir, bootTempPrefix(path) + crypto.randomUUID().slice(0, 8));
  let renamed = false;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      await writeAll(f, data);
      await f.sync();
    } finally {
      f.close();
    }
    // createNew applies the umask; set the intended mode explicitly.
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
    renamed = true;
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } finally {
    if (!renamed) await Deno.remove(tmp).catch(() => {});
  }
}

/** Remove temp files a crashed earlier write of `path` left behind. */
export async function removeStaleTemps(path: string): Promise<number> {
  const prefix = bootTempPrefix(path);
  let n = 0;
  try {
    for await (const e of Deno.readDir(dirname(path))) {
      if (e.isFile && e.name.startsWith(prefix)) {
        await Deno.remove(join(dirname(path), e.name)).catch(() => {});
        n++;
      }
    }
  } catch {
    // directory unreadable: the write itself reports the real error
  }
  return n;
}

/**
 * Run `fn` holding an exclusive flock on the directory of `path`, so that two
 * processes (daemon and CLI) never interleave read-modify-write cycles.
 */
export async function withDirLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const d = await Deno.open(dirname(path), { read: true });
  try {
    await d.lock(true);
    return await fn();
  } finally {
    d.close(); // closing releases the lock
  }
}

/** A promise chain that runs tasks one after another (in-process serialization). */
export class BootSerial {
  #tail: Promise<unknown> = Promise.resolve();
  /** Run `fn` after every earlier task settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => {});
    return next;
  }
}
