/**
 * Byte sources (file, web stream, HTTP(S) with Range resume) and the overlapped
 * copy pipeline: reads, sha256 and writes of consecutive chunks are in flight at
 * the same time, with a fixed pool of buffers (never the whole image in memory).
 * @module
 */
import { createHash } from "node:crypto";
import { errorMessage, UpdateError } from "./errors.ts";

/** Something bytes are read from, in order. */
export interface ByteSource {
  /** Read up to `buf.length` bytes into `buf`; null at the end. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Total size when known in advance (files, HTTP Content-Length). */
  readonly size?: number;
  /** Bytes read so far. */
  readonly offset: number;
  /** Release the source. */
  close(): void;
}

/** Something bytes are written to, in order. */
export interface ByteSink {
  /** Write some of `p`; returns the count written. */
  write(p: Uint8Array): Promise<number>;
}

/** Read until `buf` is full or the source ends; returns the count read. */
export async function readFull(src: ByteSource, buf: Uint8Array): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const r = await src.read(buf.subarray(n));
    if (r === null) break;
    n += r;
  }
  return n;
}

/** Write all of `p` (loops over short writes). */
export async function writeAll(sink: ByteSink, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.length) {
    const n = await sink.write(p.subarray(off));
    if (n <= 0) throw new Error("write returned 0");
    off += n;
  }
}

/** A regular file (or block device) as a source; `size` from stat. */
export async function fileSource(path: string): Promise<ByteSource> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    throw new UpdateError("io", `cannot open ${path}: ${errorMessage(e)}`);
  }
  const st = await f.stat();
  let offset = 0;
  let closed = false;
  return {
    size: st.isFile ? st.size : undefined,
    get offset() {
      return offset;
    },
    async read(buf) {
      const n = await f.read(buf);
      if (n !== null) offset += n;
      return n;
    },
    close() {
      if (!closed) (closed = true, f.close());
    },
  };
}

/** A web stream (upload body, fetch body) as a source. */
export function streamSource(stream: ReadableStream<Uint8Array>, size?: number): ByteSource {
  const reader = stream.getReader();
  let chunk: Uint8Array | null = null;
  let pos = 0;
  let offset = 0;
  let done = false;
  return {
    size,
    get offset() {
      return offset;
    },
    async read(buf) {
      while (!chunk || pos >= chunk.length) {
        if (done) return null;
        const r = await reader.read();
        if (r.done) {
          done = true;
          return null;
        }
        chunk = r.value;
        pos = 0;
      }
      const n = Math.min(buf.length, chunk.length - pos);
      buf.set(chunk.subarray(pos, pos + n));
      pos += n;
      offset += n;
      return n;
    },
    close() {
      done = true;
      reader.cancel().catch(() => {});
    },
  };
}

/** Retry behaviour of {@link httpSource}. */
export interface HttpRetry {
  /** Resumes allowed before giving up. */
  retries: number;
  /** First delay before a resume (doubles). */
  retryDelayMs: number;
  /** Delay cap. */
  maxRetryDelayMs: number;
  /** No byte for this long = broken connection. */
  stallTimeoutMs: number;
}

/** Events of a download, for logs and tests. */
export interface HttpSourceEvents {
  /** A resume is about to be requested at `offset` after `error`. */
  onResume?: (info: { attempt: number; offset: number; error: string }) => void;
}

/**
 * An HTTP(S) URL as a source. A broken connection (error, early end, stall) is
 * resumed with `Range: bytes=<offset>-` (and `If-Range` when the server gave an
 * ETag or Last-Modified), up to `retries` times with a doubling delay.
 */
export async function httpSource(
  url: string,
  retry: HttpRetry,
  events: HttpSourceEvents = {},
): Promise<ByteSource> {
  let offset = 0;
  let size: number | undefined;
  let validator: string | undefined;
  let body: ByteSource | null = null;
  let attempts = 0;
  let closed = false;
  let abort = new AbortController();

  const connect = async (from: number): Promise<void> => {
    abort = new AbortController();
    const headers: Record<string, string> = {};
    if (from > 0) {
      headers.range = `bytes=${from}-`;
      if (validator) headers["if-range"] = validator;
    }
    const res = await fetch(url, { headers, signal: abort.signal });
    if (from > 0 && res.status === 200) {
      // Server ignored the range (or the file changed): only a full restart would do.
      await res.body?.cancel();
      throw new UpdateError(
        "download",
        `${url}: server does not resume (answered 200 to a Range request), or the file changed`,
      );
    }
    if (!(res.status === 200 || (from > 0 && res.status === 206))) {
      await res.body?.cancel();
      throw new UpdateError("download", `${url}: HTTP ${res.status} ${res.statusText}`);
    }
    if (from === 0) {
      const len = res.headers.get("content-length");
      if (len && /^\d+$/.test(len)) size = Number(len);
      validator = res.headers.get("etag") ?? res.headers.get("last-modified") ?? undefined;
      if (validator?.startsWith("W/")) validator = undefined; // weak ETags cannot If-Range
    } else {
      const cr = res.headers.get("content-range") ?? "";
      const m = /^bytes (\d+)-/.exec(cr);
      if (!m || Number(m[1]) !== from) {
        await res.body?.cancel();
        throw new UpdateError("download", `${url}: bad Content-Range ${JSON.stringify(cr)}`);
      }
    }
    if (!res.body) throw new UpdateError("download", `${url}: empty response`);
    body = streamSource(res.body);
  };

  const fail = async (err: unknown): Promise<void> => {
    body?.close();
    body = null;
    if (err instanceof UpdateError && err.code === "download" && attempts === 0 && offset === 0) {
      throw err;
    }
    attempts++;
    if (attempts > retry.retries) {
      throw new UpdateError(
        "download",
        `${url}: connection broken at byte ${offset} and ${retry.retries} resume(s) failed: ${
          errorMessage(err)
        }`,
      );
    }
    events.onResume?.({ attempt: attempts, offset, error: errorMessage(err) });
    const delay = Math.min(retry.maxRetryDelayMs, retry.retryDelayMs * 2 ** (attempts - 1));
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    try {
      await connect(offset);
    } catch (e) {
      if (e instanceof UpdateError && /does not resume|Content-Range/.test(e.message)) throw e;
      await fail(e);
    }
  };

  try {
    await connect(0);
  } catch (e) {
    if (e instanceof UpdateError) throw e;
    throw new UpdateError("download", `${url}: ${errorMessage(e)}`);
  }

  return {
    get size() {
      return size;
    },
    get offset() {
      return offset;
    },
    async read(buf) {
      for (;;) {
        if (closed) return null;
        if (!body) await fail(new Error("not connected"));
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          const stall = new Promise<never>((_, rej) => {
            timer = setTimeout(() => {
              abort.abort();
              rej(new Error(`no data for ${retry.stallTimeoutMs} ms`));
            }, retry.stallTimeoutMs);
          });
          const n = await Promise.race([body!.read(buf), stall]);
          if (n === null) {
            if (size === undefined || offset >= size) return null;
            throw new Error(`connection closed at byte ${offset} of ${size}`);
          }
          offset += n;
          return n;
        } catch (e) {
          await fail(e);
        } finally {
          clearTimeout(timer);
        }
      }
    },
    close() {
      closed = true;
      body?.close();
      abort.abort();
    },
  };
}

/** Options of {@link hashCopy}. */
export interface HashCopyOptions {
  /** Bytes per buffer. */
  chunkSize: number;
  /** Buffers in flight (read ahead + hashing + writing); default 4. */
  depth?: number;
  /** Called after each chunk is written (or hashed, without a sink) with the running total. */
  onProgress?: (bytes: number) => void;
  /** Abort the copy. */
  signal?: AbortSignal;
  /** Name of what is read, for the "ended early" error. */
  what?: string;
}

/** Bounded channel between the reader and the hash/write stage. */
class Channel<T> {
  #items: T[] = [];
  #waiters: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  #error: unknown = undefined;
  #failed = false;

  push(v: T): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(v);
    else this.#items.push(v);
  }

  fail(e: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = e;
    for (const w of this.#waiters.splice(0)) w.reject(e);
  }

  shift(): Promise<T> {
    if (this.#items.length) return Promise.resolve(this.#items.shift()!);
    if (this.#failed) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}

/**
 * Copy exactly `length` bytes from `src` to `sink` (or only hash them when the
 * sink is null) and return their sha256 (hex). Chunk i+2 is read while chunk
 * i+1 is hashed and chunk i is written; writes stay in order.
 */
export async function hashCopy(
  src: ByteSource,
  length: number,
  sink: ByteSink | null,
  opts: HashCopyOptions,
): Promise<string> {
  const hash = createHash("sha256");
  const depth = Math.max(2, opts.depth ?? 4);
  const size = Math.max(1, Math.min(opts.chunkSize, length || 1));
  const free = new Channel<Uint8Array>();
  for (let i = 0; i < depth; i++) free.push(new Uint8Array(size));
  const filled = new Channel<{ buf: Uint8Array; n: number } | null>();
  const stop = (e: unknown) => {
    free.fail(e);
    filled.fail(e);
  };
  const onAbort = () => stop(new UpdateError("cancelled", "install cancelled"));
  opts.signal?.addEventListener("abort", onAbort);
  if (opts.signal?.aborted) onAbort();

  const producer = (async () => {
    let remaining = length;
    while (remaining > 0) {
      const buf = await free.shift();
      const want = Math.min(buf.length, remaining);
      const n = await readFull(src, buf.subarray(0, want));
      if (n < want) {
        throw new UpdateError(
          "truncated",
          `${opts.what ?? "input"} ended after ${length - remaining + n} of ${length} bytes ` +
            `(truncated)`,
        );
      }
      remaining -= n;
      filled.push({ buf, n });
    }
    filled.push(null);
  })().catch((e) => {
    stop(e);
    throw e;
  });
  producer.catch(() => {}); // observed below; never an unhandled rejection

  let done = 0;
  let pending: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      const item = await filled.shift();
      if (!item) break;
      const view = item.buf.subarray(0, item.n);
      hash.update(view);
      await pending;
      if (sink) {
        pending = writeAll(sink, view).then(() => {
          done += item.n;
          opts.onProgress?.(done);
          free.push(item.buf);
        });
        pending.catch((e) => stop(e));
      } else {
        done += item.n;
        opts.onProgress?.(done);
        free.push(item.buf);
      }
    }
    await pending;
    await producer;
  } catch (e) {
    stop(e);
    await Promise.allSettled([producer, pending]);
    throw e;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  return hash.digest("hex");
}
