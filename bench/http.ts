/**
 * The HTTP side of the benchmarks, shared by all of them: a lean keep-alive HTTP/1.1
 * client for open-loop generators ({@link RawHttp}), waiting for a server to answer
 * ({@link waitHttp}), and running `wrk` with its output parsed ({@link runWrk}).
 * @module
 */

/**
 * A lean HTTP/1.1 client over raw TCP with a keep-alive pool: much cheaper per
 * request than fetch, so the generator keeps its schedule at 10x C on one core.
 */
export class RawHttp {
  #host: string;
  #port: number;
  #idle: Deno.TcpConn[] = [];
  #enc = new TextEncoder();
  #reqs = new Map<string, Uint8Array>();

  /** A client for `base` (`http://host:port`). */
  constructor(base: string) {
    const u = new URL(base);
    this.#host = u.hostname;
    this.#port = Number(u.port);
  }

  #req(path: string): Uint8Array {
    let r = this.#reqs.get(path);
    if (!r) {
      r = this.#enc.encode(`GET ${path} HTTP/1.1\r\nHost: ${this.#host}\r\n\r\n`);
      this.#reqs.set(path, r);
    }
    return r;
  }

  /** One request; resolves to the status, 0 on deadline, -1 on error. */
  async get(path: string, deadlineAt: number): Promise<number> {
    let conn: Deno.TcpConn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    try {
      const left = deadlineAt - performance.now();
      if (left <= 0) return 0;
      timer = setTimeout(() => {
        timedOut = true;
        try {
          conn?.close();
        } catch { /* closed */ }
      }, left);
      conn = this.#idle.pop() ??
        await Deno.connect({ hostname: this.#host, port: this.#port });
      if (timedOut) {
        conn.close();
        return 0;
      }
      const req = this.#req(path);
      let w = 0;
      while (w < req.length) w += await conn.write(req.subarray(w));
      const buf = new Uint8Array(16384);
      let got = 0;
      let headerEnd = -1;
      let need = -1;
      let status = -1;
      let close = false;
      for (;;) {
        const n = await conn.read(buf.subarray(got));
        if (n === null) throw new Error("closed");
        got += n;
        if (headerEnd < 0) {
          for (let i = 3; i < got; i++) {
            if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
              headerEnd = i + 1;
              break;
            }
          }
          if (headerEnd < 0) continue;
          const head = String.fromCharCode(...buf.subarray(0, headerEnd)).toLowerCase();
          status = Number(head.slice(9, 12));
          const cl = /content-length:\s*(\d+)/.exec(head);
          close = /connection:\s*close/.test(head);
          if (cl) need = headerEnd + Number(cl[1]);
          else if (/transfer-encoding:\s*chunked/.test(head)) need = -2;
          else need = headerEnd;
        }
        if (need === -2) {
          const tail = String.fromCharCode(...buf.subarray(Math.max(headerEnd, got - 5), got));
          if (tail.endsWith("0\r\n\r\n")) break;
        } else if (got >= need) break;
        if (got === buf.length) throw new Error("response too large");
      }
      if (close) conn.close();
      else this.#idle.push(conn);
      conn = undefined;
      return status;
    } catch {
      try {
        conn?.close();
      } catch { /* closed */ }
      return timedOut ? 0 : -1;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Close the idle connections. */
  close(): void {
    for (const c of this.#idle.splice(0)) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}

/** Options of {@link waitHttp}. */
export interface WaitHttpOptions {
  /** Request headers. */
  headers?: Record<string, string>;
  /** Which status counts as up (default: any below 500). */
  ok?: (status: number) => boolean;
  /** Give up after this long (ms, default 30000). */
  timeoutMs?: number;
  /** Pause between tries (ms, default 50). */
  intervalMs?: number;
}

/**
 * Poll `url` until it answers with an accepted status; resolves to the ms waited
 * (measured with performance.now from the call). Throws after the timeout.
 */
export async function waitHttp(url: string, opts: WaitHttpOptions = {}): Promise<number> {
  const t0 = performance.now();
  const ok = opts.ok ?? ((s: number) => s < 500);
  const timeout = opts.timeoutMs ?? 30_000;
  while (performance.now() - t0 < timeout) {
    try {
      const r = await fetch(url, { headers: opts.headers });
      await r.body?.cancel();
      if (ok(r.status)) return performance.now() - t0;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
  throw new Error(`${url} did not come up within ${timeout} ms`);
}

/** Options of {@link runWrk}. */
export interface WrkOptions {
  /** Threads (`-t`, default 2). */
  threads?: number;
  /** Connections (`-c`, default 64). */
  connections?: number;
  /** Duration in seconds (`-d`, default 8). */
  seconds?: number;
  /** Request timeout (`--timeout`, e.g. "2s"). */
  timeout?: string;
  /** Request headers. */
  headers?: Record<string, string>;
}

/** What `wrk --latency` printed. */
export interface WrkResult {
  /** Requests completed. */
  requests: number;
  /** Requests per second. */
  rps: number;
  /** 99th percentile latency (ms). */
  p99Ms: number;
  /** Non-2xx/3xx responses. */
  non2xx: number;
  /** Seconds run. */
  seconds: number;
  /** wrk's output. */
  raw: string;
}

/** Run `wrk --latency` (a closed-loop load) against `url` and parse its output. */
export async function runWrk(url: string, o: WrkOptions = {}): Promise<WrkResult> {
  const seconds = o.seconds ?? 8;
  const args = [`-t${o.threads ?? 2}`, `-c${o.connections ?? 64}`, `-d${seconds}s`, "--latency"];
  if (o.timeout) args.push("--timeout", o.timeout);
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push("-H", `${k}: ${v}`);
  const out = await new Deno.Command("wrk", {
    args: [...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const raw = new TextDecoder().decode(out.stdout);
  const m = /99%\s+([\d.]+)(us|ms|s)/.exec(raw);
  return {
    requests: Number(/(\d+) requests in/.exec(raw)?.[1] ?? NaN),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(raw)?.[1] ?? NaN),
    p99Ms: m ? Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1) : NaN,
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(raw)?.[1] ?? 0),
    seconds,
    raw,
  };
}
