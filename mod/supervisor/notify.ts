/**
 * The sd_notify protocol (sd_notify(3)): one unix datagram socket per subsystem
 * (a Deno receiver gets no SCM_CREDENTIALS, so the socket is what tells senders
 * apart), message parsing, and a small client for keepwire's own notifications to
 * systemd. Needs `--unstable-net` (deno.json "unstable": ["net"]).
 *
 * Datagrams carry newline-separated KEY=VALUE assignments. `systemd-notify` also
 * sends BARRIER=1 with a file descriptor and waits until that fd is closed; the
 * kernel closes it when Deno reads the datagram without taking the fd, so the
 * real `systemd-notify` works unchanged.
 * @module
 */

/** One parsed notification datagram: the keys keepwire acts on. */
export interface NotifyMessage {
  /** READY=1. */
  ready?: true;
  /** WATCHDOG=1. */
  watchdog?: true;
  /** WATCHDOG=trigger. */
  trigger?: true;
  /** STATUS=text. */
  status?: string;
  /** STOPPING=1. */
  stopping?: true;
  /** RELOADING=1. */
  reloading?: true;
  /** ERRNO=n. */
  errno?: number;
  /** EXTEND_TIMEOUT_USEC=n, in microseconds. */
  extendTimeoutUsec?: number;
  /** WATCHDOG_USEC=n, in microseconds. */
  watchdogUsec?: number;
  /** MAINPID=n. */
  mainPid?: number;
  /** X_QUEUE_DEPTH=n (keepwire extension). */
  queueDepth?: number;
  /** X_QUEUE_OLDEST_MS=n (keepwire extension). */
  queueOldestMs?: number;
  /** Lines that are not KEY=VALUE or have a bad value (reported, otherwise ignored). */
  problems: string[];
}

const UINT = /^\d{1,15}$/;

/** Parse one datagram. Unknown keys are ignored, as the protocol says. */
export function parseNotify(text: string): NotifyMessage {
  const m: NotifyMessage = { problems: [] };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      m.problems.push(`not KEY=VALUE: ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const num = (): number | undefined => {
      if (UINT.test(value)) return Number(value);
      m.problems.push(`${key}: expected a non-negative integer, got ${JSON.stringify(value)}`);
      return undefined;
    };
    switch (key) {
      case "READY":
        if (value === "1") m.ready = true;
        break;
      case "WATCHDOG":
        if (value === "1") m.watchdog = true;
        else if (value === "trigger") m.trigger = true;
        else m.problems.push(`WATCHDOG: expected 1 or trigger, got ${JSON.stringify(value)}`);
        break;
      case "STATUS":
        m.status = value.slice(0, 1000);
        break;
      case "STOPPING":
        if (value === "1") m.stopping = true;
        break;
      case "RELOADING":
        if (value === "1") m.reloading = true;
        break;
      case "ERRNO":
        m.errno = num();
        break;
      case "EXTEND_TIMEOUT_USEC":
        m.extendTimeoutUsec = num();
        break;
      case "WATCHDOG_USEC":
        m.watchdogUsec = num();
        break;
      case "MAINPID": {
        const p = num();
        if (p !== undefined && p > 0) m.mainPid = p;
        break;
      }
      case "X_QUEUE_DEPTH":
        m.queueDepth = num();
        break;
      case "X_QUEUE_OLDEST_MS":
        m.queueOldestMs = num();
        break;
      default:
        break; // BARRIER, FDSTORE, MONOTONIC_USEC, unknown and X_ keys: ignored
    }
  }
  return m;
}

/** Turn a NOTIFY_SOCKET value into a Deno unix address path (`@name` = abstract). */
export function socketPath(notifySocket: string): string {
  if (notifySocket.startsWith("@")) return "\0" + notifySocket.slice(1);
  if (notifySocket.startsWith("/")) return notifySocket;
  throw new Error(
    `NOTIFY_SOCKET ${JSON.stringify(notifySocket)}: only /path and @abstract are supported`,
  );
}

let serial = 0;

const PING = new TextEncoder().encode("WATCHDOG=1");

/** Is this datagram exactly `WATCHDOG=1` (optionally with a newline)? The common case, kept cheap. */
function isWatchdogPing(b: Uint8Array): boolean {
  if (b.length !== PING.length && !(b.length === PING.length + 1 && b[PING.length] === 10)) {
    return false;
  }
  for (let i = 0; i < PING.length; i++) if (b[i] !== PING[i]) return false;
  return true;
}

/** A bound notification socket for one subsystem run. */
export class NotifyServer {
  readonly #conn: Deno.DatagramConn;
  /** Value for the child's NOTIFY_SOCKET (`@keepwire-...`, abstract: no file left behind). */
  readonly address: string;
  #closed = false;

  private constructor(conn: Deno.DatagramConn, address: string) {
    this.#conn = conn;
    this.address = address;
  }

  /** Bind a fresh abstract socket named after the subsystem. */
  static open(name: string): NotifyServer {
    const id = `keepwire-${Deno.pid}-${name}-${++serial}-${
      Math.floor(Math.random() * 0xffffffff).toString(16)
    }`;
    const conn = Deno.listenDatagram({ transport: "unixpacket", path: "\0" + id });
    return new NotifyServer(conn, "@" + id);
  }

  /** Deliver every datagram to `fn` until closed. */
  async serve(fn: (m: NotifyMessage, raw: string) => void): Promise<void> {
    const buf = new Uint8Array(65536);
    const dec = new TextDecoder();
    while (!this.#closed) {
      let n: Uint8Array;
      try {
        [n] = await this.#conn.receive(buf);
      } catch {
        return; // closed
      }
      const fastBeat = isWatchdogPing(n);
      const raw = fastBeat ? "WATCHDOG=1" : dec.decode(n);
      try {
        fn(fastBeat ? { watchdog: true, problems: [] } : parseNotify(raw), raw);
      } catch (e) {
        console.error("supervisor: notify handler failed:", e);
      }
    }
  }

  /** Close the socket (serve() returns). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/** Sends notifications to a NOTIFY_SOCKET (keepwire's own READY=1 / WATCHDOG=1 to systemd). */
export class NotifyClient {
  readonly #target: string;
  #conn: Deno.DatagramConn | undefined;

  /** Build for a NOTIFY_SOCKET value (`/path` or `@abstract`). */
  constructor(notifySocket: string) {
    this.#target = socketPath(notifySocket);
  }

  /** Send one datagram (e.g. `READY=1\nSTATUS=up`). Returns false when it could not be sent. */
  async send(text: string): Promise<boolean> {
    try {
      // Deno has no unbound datagram socket: bind a private abstract name first.
      this.#conn ??= Deno.listenDatagram({
        transport: "unixpacket",
        path: `\0keepwire-notify-client-${Deno.pid}-${++serial}`,
      });
      await this.#conn.send(new TextEncoder().encode(text), {
        transport: "unixpacket",
        path: this.#target,
      });
      return true;
    } catch {
      return false;
    }
  }

  /** Close the client socket. */
  close(): void {
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = undefined;
  }
}
