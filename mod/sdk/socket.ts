/**
 * The SDK for process subsystems: one local socket per subsystem (HTTP + JSON over a
 * unix stream socket, `DATA/sdk/<name>.sock`, mode 0600, owned by the subsystem's
 * user). The socket is what tells callers apart — like the notify sockets — so a
 * subsystem reaches only its own tables. Its path is passed as `KEEPWIRE_SDK_SOCKET`.
 *
 * Protocol (docs/ha.md "SDK tables"): `POST /v1/<op>` with a JSON body of the op's
 * arguments, answered `200 {"value": ...}` or `{"error": {code, message, fields?}}` with
 * the error's HTTP status. Ops: `declare` (a TablesSpec), `query` ({sql, params}),
 * `write` ({group, statements: [{sql, params}]}), `node`, `handoff`, `queue` ({depth}).
 * `GET /v1/node` and `GET /v1/handoff` read without a body. BLOB values travel as
 * `{"$base64": "..."}` both ways.
 *
 * Pushes: `GET /v1/events` answers a stream that never ends (`application/x-ndjson`,
 * one JSON object a line), the same messages a worker subsystem gets over postMessage:
 * `{"kw":"node","node":NodeInfo}` at once and whenever this node's role changes (per
 * client set too: `node.writableSets`), and `{"kw":"handoff","handoff":HandoffInfo}`
 * at once and whenever this subsystem's handoff state changes. A subsystem keeps it open
 * instead of polling `/v1/node`; it ends when keepwire stops (reconnect then).
 * @module
 */
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { KeepwireError } from "../errors.ts";
import type { SdkHost } from "./host.ts";

/** The JSON error body of a refused call (also the worker's reply). */
export function sdkErrorBody(
  e: unknown,
): { code: string; message: string; status: number; fields?: Record<string, string> } {
  if (e instanceof KeepwireError) {
    return {
      code: e.code,
      message: e.message,
      status: e.status,
      ...(e.fields ? { fields: e.fields } : {}),
    };
  }
  return { code: "internal", message: e instanceof Error ? e.message : String(e), status: 500 };
}

const MAX_BODY = 4 * 1024 * 1024;

function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === "bigint") return Number(x);
    if (x instanceof Uint8Array) return { $base64: Buffer.from(x).toString("base64") };
    return x;
  });
}

function fromJson(text: string): unknown {
  return JSON.parse(text, (_k, x) => {
    if (
      x && typeof x === "object" && !Array.isArray(x) && Object.keys(x).length === 1 &&
      typeof x.$base64 === "string"
    ) return new Uint8Array(Buffer.from(x.$base64, "base64"));
    return x;
  });
}

/** The per-subsystem sockets of one keepwire. */
export class SdkSockets {
  readonly #host: SdkHost;
  readonly #dir: string;
  readonly #servers = new Map<string, Deno.HttpServer<Deno.UnixAddr>>();
  /** Open event streams (closed before the servers shut down: they never end). */
  readonly #streams = new Set<() => void>();

  /** Sockets go to `dir` (created 0711: others may pass through to their own socket only). */
  constructor(host: SdkHost, dir: string) {
    this.#host = host;
    this.#dir = dir;
  }

  /**
   * The socket of `name` (opened on first use and kept across restarts), owned by
   * `ids` when the subsystem runs as another user.
   */
  open(name: string, ids?: { uid: number; gid: number }): string {
    const path = join(this.#dir, `${name}.sock`);
    if (this.#servers.has(name)) return path;
    Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o711 });
    try {
      Deno.removeSync(path);
    } catch { /* absent */ }
    const old = Deno.umask(0o177);
    try {
      this.#servers.set(
        name,
        Deno.serve(
          { path, transport: "unix", onListen: () => {} },
          (req) => this.#handle(name, req),
        ),
      );
    } finally {
      Deno.umask(old);
    }
    if (ids) Deno.chownSync(path, ids.uid, ids.gid);
    return path;
  }

  async #handle(name: string, req: Request): Promise<Response> {
    const url = new URL(req.url);
    const m = /^\/v1\/([a-z]+)$/.exec(url.pathname);
    const answer = (status: number, body: unknown) =>
      new Response(toJson(body), { status, headers: { "content-type": "application/json" } });
    if (!m) return answer(404, { error: { code: "not_found", message: "POST /v1/<op>" } });
    const op = m[1];
    if (op === "events") {
      if (req.method !== "GET") {
        return answer(405, { error: { code: "method", message: "GET /v1/events" } });
      }
      return this.#events(name);
    }
    let args: unknown = {};
    if (req.method === "POST") {
      const text = await req.text();
      if (text.length > MAX_BODY) {
        return answer(413, { error: { code: "too_large", message: "body over 4 MiB" } });
      }
      try {
        args = text ? fromJson(text) : {};
      } catch (e) {
        return answer(400, {
          error: { code: "bad_json", message: `body is not JSON: ${(e as Error).message}` },
        });
      }
    } else if (req.method !== "GET" || (op !== "node" && op !== "handoff")) {
      return answer(405, {
        error: { code: "method", message: "POST /v1/<op> (GET node, handoff)" },
      });
    }
    try {
      return answer(200, { value: await this.#host.call(name, op, args) });
    } catch (e) {
      const b = sdkErrorBody(e);
      const { status, ...error } = b;
      return answer(status, { error });
    }
  }

  /** The push stream of `name` (see the module doc). */
  #events(name: string): Response {
    const enc = new TextEncoder();
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        let last = { node: "", handoff: "" };
        const push = (kw: "node" | "handoff", v: unknown) => {
          const line = toJson({ kw, [kw]: v });
          if (last[kw] === line) return; // unchanged: a re-evaluation, not a change
          last = { ...last, [kw]: line };
          try {
            ctl.enqueue(enc.encode(line + "\n"));
          } catch {
            end();
          }
        };
        push("node", this.#host.node());
        push("handoff", this.#host.handoff(name));
        const unsubs = [
          this.#host.onNode((n) => push("node", n)),
          this.#host.onHandoff((sub, h) => sub === name && push("handoff", h)),
        ];
        end = () => {
          for (const u of unsubs) u();
          this.#streams.delete(end);
          try {
            ctl.close();
          } catch { /* closed already */ }
        };
        this.#streams.add(end);
      },
      cancel: () => end(),
    });
    return new Response(body, {
      headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" },
    });
  }

  /** Close every socket. */
  async close(): Promise<void> {
    for (const end of [...this.#streams]) end();
    const all = [...this.#servers.entries()];
    this.#servers.clear();
    await Promise.allSettled(all.map(([n, s]) =>
      s.shutdown().finally(() => {
        try {
          Deno.removeSync(join(this.#dir, `${n}.sock`));
        } catch { /* gone */ }
      })
    ));
  }
}
