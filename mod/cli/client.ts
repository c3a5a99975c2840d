/**
 * How CLI commands reach a running daemon: HTTP over the unix socket the daemon
 * writes into its data directory (mode 0600, root only), no password needed.
 * @module
 */
import { join } from "node:path";

/** File name of the control socket inside the data directory. */
export const CONTROL_SOCKET = "keepwire.sock";

/** Path of the control socket for a data directory. */
export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET);
}

/** No daemon answers on the control socket. */
export class DaemonUnreachable extends Error {
  /** Build for a socket path. */
  constructor(path: string, cause: string) {
    super(`no keepwire daemon answers at ${path} (${cause}); start one with "keepwire run"`);
    this.name = "DaemonUnreachable";
  }
}

/** An error answer from the daemon, with its JSON body. */
export class DaemonError extends Error {
  /** HTTP status. */
  readonly status: number;
  /** Decoded body. */
  readonly body: unknown;
  /** Build from status and body. */
  constructor(status: number, body: unknown) {
    const msg = typeof body === "object" && body && "error" in body
      ? String((body as { error: { message?: string } }).error?.message ?? JSON.stringify(body))
      : JSON.stringify(body);
    super(`daemon answered ${status}: ${msg}`);
    this.name = "DaemonError";
    this.status = status;
    this.body = body;
  }
}

/** Is a daemon listening on this data directory's control socket? */
export async function daemonRunning(dataDir: string): Promise<boolean> {
  try {
    await daemonRequest(dataDir, "GET", "/api/health", undefined, { okStatuses: [200, 503] });
    return true;
  } catch {
    return false;
  }
}

/** Send one request to the daemon; returns the decoded JSON body. */
export async function daemonRequest<T = unknown>(
  dataDir: string,
  method: string,
  path: string,
  body?: unknown,
  opts: { okStatuses?: number[]; raw?: BodyInit; headers?: Record<string, string> } = {},
): Promise<T> {
  const sock = controlSocketPath(dataDir);
  try {
    await Deno.stat(sock);
  } catch {
    throw new DaemonUnreachable(sock, "no socket");
  }
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: sock } });
  try {
    let res: Response;
    try {
      res = await fetch(`http://keepwire.local${path}`, {
        method,
        client,
        headers: {
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...opts.headers,
        },
        body: opts.raw ?? (body !== undefined ? JSON.stringify(body) : undefined),
      });
    } catch (e) {
      throw new DaemonUnreachable(sock, (e as Error).message);
    }
    const text = await res.text();
    let decoded: unknown = text;
    try {
      decoded = text ? JSON.parse(text) : null;
    } catch { /* not JSON */ }
    const ok = opts.okStatuses ? opts.okStatuses.includes(res.status) : res.ok;
    if (!ok) throw new DaemonError(res.status, decoded);
    return decoded as T;
  } finally {
    client.close();
  }
}
