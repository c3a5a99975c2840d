/**
 * Bounded file reads: every file keepwire takes as input (config, mdstat, traces, keyrings,
 * /proc and /sys files) is read through here, so an endless or huge file (`/dev/zero`, a
 * FIFO fed forever, a mistaken disk image) ends in a clear error naming the file and the
 * limit instead of a hang or an out-of-memory kill.
 * @module
 */
import { KeepwireError } from "./errors.ts";

/** Common limits, in bytes. */
export const READ_LIMITS = {
  /** A config file (JSON/JSONC). */
  config: 4 * 1024 * 1024,
  /** A /proc/mdstat capture or a sysfs attribute file. */
  mdstat: 1024 * 1024,
  /** A governor trace (JSON Lines; about 6 hours at 100 ms samples). */
  trace: 64 * 1024 * 1024,
  /** A small key or keyring file. */
  keyring: 1024 * 1024,
  /** One /proc or /sys file read by a signal source. */
  procfs: 256 * 1024,
} as const;

/** A file larger than the limit for its use. */
export class InputTooLargeError extends KeepwireError {
  /** The file. */
  readonly path: string;
  /** The limit (bytes). */
  readonly limit: number;
  /** Build; `what` names the use ("config file", "mdstat", ...). */
  constructor(path: string, limit: number, what: string) {
    super(
      413,
      "input_too_large",
      `${path} is larger than ${formatBytes(limit)}, the most keepwire reads as a ${what} ` +
        "(is it the right file?)",
    );
    this.path = path;
    this.limit = limit;
  }
}

/** `1.0 MiB`, `512 KiB`, `100 B`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}

/** Collects chunks up to a limit. */
class Collector {
  #out = new Uint8Array(0);
  #n = 0;
  constructor(readonly path: string, readonly limit: number, readonly what: string) {}
  add(chunk: Uint8Array): void {
    if (this.#n + chunk.length > this.limit) {
      throw new InputTooLargeError(this.path, this.limit, this.what);
    }
    if (this.#n + chunk.length > this.#out.length) {
      const size = Math.min(
        this.limit,
        Math.max(this.#out.length * 2, this.#n + chunk.length, 4096),
      );
      const grown = new Uint8Array(size);
      grown.set(this.#out.subarray(0, this.#n));
      this.#out = grown;
    }
    this.#out.set(chunk, this.#n);
    this.#n += chunk.length;
  }
  text(): string {
    return new TextDecoder().decode(this.#out.subarray(0, this.#n));
  }
}

/**
 * Read a text file of at most `limit` bytes. Reads at most about `limit` bytes whatever the
 * file is (a device, a pipe, a file that grows), then throws {@link InputTooLargeError}.
 * Other failures (missing file, no permission) throw Deno's error unchanged.
 */
export async function readTextFileBounded(
  path: string,
  limit: number,
  what = "file",
): Promise<string> {
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(Math.min(limit + 1, 64 * 1024));
  const c = new Collector(path, limit, what);
  for (;;) {
    const got = await f.read(buf);
    if (got === null) return c.text();
    c.add(buf.subarray(0, got));
  }
}

/** Synchronous {@link readTextFileBounded}, for /proc and /sys files read on a timer. */
export function readTextFileBoundedSync(path: string, limit: number, what = "file"): string {
  using f = Deno.openSync(path, { read: true });
  const buf = new Uint8Array(Math.min(limit + 1, 16 * 1024));
  const c = new Collector(path, limit, what);
  for (;;) {
    const got = f.readSync(buf);
    if (got === null) return c.text();
    c.add(buf.subarray(0, got));
  }
}
