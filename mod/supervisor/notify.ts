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

/** Slots of beat times a hub holds (one per open socket). */
const HUB_SLOTS = 4096;

/** Messages from the hub thread. */
type FromHub =
  | { t: "opened"; id: number; error?: string }
  | { t: "msg"; id: number; gen: number; raw: string };

/**
 * The notification sockets of many subsystems received on one thread of their own.
 * Each `WATCHDOG=1` only stamps the subsystem's slot in shared memory (Date.now ms);
 * the supervisor reads that slot when it checks for a hang (Runner.lastHeartbeat), so a
 * heartbeat costs the main thread nothing and hang detection is as exact as before.
 * Every other datagram (READY=1, STATUS=, ...) is handed to the main thread as it comes.
 * The thread starts with the first socket and ends at {@link NotifyHub.close}.
 */
export class NotifyHub {
  #worker: Worker | undefined;
  readonly #beats = new BigInt64Array(new SharedArrayBuffer(8 * HUB_SLOTS));
  readonly #free: number[] = Array.from({ length: HUB_SLOTS }, (_, i) => HUB_SLOTS - 1 - i);
  readonly #pending = new Map<number, (error?: string) => void>();
  readonly #handlers = new Map<number, { gen: number; fn: (raw: string) => void }>();
  #gen = 0;

  #start(): Worker {
    const src = URL.createObjectURL(
      new Blob([`(${notifyHubThread.toString()})();`], { type: "text/javascript" }),
    );
    const w = new Worker(src, { type: "module", name: "keepwire-notify" });
    URL.revokeObjectURL(src);
    w.onmessage = (e: MessageEvent<FromHub>) => {
      const m = e.data;
      if (m.t === "opened") {
        this.#pending.get(m.id)?.(m.error);
        this.#pending.delete(m.id);
      } else {
        const h = this.#handlers.get(m.id);
        if (h?.gen === m.gen) h.fn(m.raw);
      }
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      console.error(`supervisor: the notify thread failed: ${e.message}`);
    };
    w.postMessage({ t: "init", beats: this.#beats });
    return w;
  }

  /** Bind a fresh abstract socket named after the subsystem, received by the hub thread. */
  async open(name: string): Promise<HubNotify> {
    const slot = this.#free.pop();
    if (slot === undefined) throw new Error(`more than ${HUB_SLOTS} notify sockets open`);
    const gen = ++this.#gen;
    const id = `keepwire-${Deno.pid}-${name}-${++serial}-${
      Math.floor(Math.random() * 0xffffffff).toString(16)
    }`;
    this.#worker ??= this.#start();
    const { promise, resolve } = Promise.withResolvers<string | undefined>();
    this.#pending.set(slot, resolve);
    this.#worker.postMessage({ t: "open", id: slot, gen, path: "\0" + id });
    const error = await promise;
    if (error !== undefined) {
      this.#free.push(slot);
      throw new Error(`cannot bind notify socket: ${error}`);
    }
    return new HubNotify(this, slot, gen, "@" + id);
  }

  /** @internal Deliver non-ping datagrams of `slot` to `fn`. */
  listen(slot: number, gen: number, fn: (raw: string) => void): void {
    this.#handlers.set(slot, { gen, fn });
  }

  /** @internal Last WATCHDOG=1 of `slot` (Date.now ms), or null. */
  lastBeat(slot: number): number | null {
    const v = Number(Atomics.load(this.#beats, slot));
    return v > 0 ? v : null;
  }

  /** @internal Close one socket and free its slot. */
  release(slot: number): void {
    this.#handlers.delete(slot);
    this.#worker?.postMessage({ t: "close", id: slot });
    this.#free.push(slot);
  }

  /** End the hub thread (every socket closes with it; a later open starts a new one). */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const r of this.#pending.values()) r("hub closed");
    this.#pending.clear();
    this.#handlers.clear();
  }
}

/** One subsystem's socket on a {@link NotifyHub}. */
export class HubNotify {
  readonly #hub: NotifyHub;
  readonly #slot: number;
  readonly #gen: number;
  /** Value for the child's NOTIFY_SOCKET (`@keepwire-...`, abstract). */
  readonly address: string;
  #closed = false;

  /** @internal Made by {@link NotifyHub.open}. */
  constructor(hub: NotifyHub, slot: number, gen: number, address: string) {
    this.#hub = hub;
    this.#slot = slot;
    this.#gen = gen;
    this.address = address;
  }

  /**
   * Deliver every datagram other than a bare `WATCHDOG=1` to `fn`; those only stamp
   * {@link HubNotify.lastBeat}.
   */
  serve(fn: (m: NotifyMessage, raw: string) => void): void {
    this.#hub.listen(this.#slot, this.#gen, (raw) => {
      try {
        fn(parseNotify(raw), raw);
      } catch (e) {
        console.error("supervisor: notify handler failed:", e);
      }
    });
  }

  /** Time of the last bare `WATCHDOG=1` (Date.now ms), or null. */
  lastBeat(): number | null {
    return this.#closed ? null : this.#hub.lastBeat(this.#slot);
  }

  /** Close the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.release(this.#slot);
  }
}

/**
 * The hub thread. Its source text is the whole worker (it runs from a blob: URL, the
 * same from source and from the bundled file): it must use nothing from outside its body.
 */
function notifyHubThread(): void {
  const scope = self as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(m: unknown): void;
  };
  const ping = new TextEncoder().encode("WATCHDOG=1");
  const isPing = (b: Uint8Array) => {
    if (b.length !== ping.length && !(b.length === ping.length + 1 && b[ping.length] === 10)) {
      return false;
    }
    for (let i = 0; i < ping.length; i++) if (b[i] !== ping[i]) return false;
    return true;
  };
  const dec = new TextDecoder();
  const conns = new Map<number, Deno.DatagramConn>();
  let beats: BigInt64Array;
  const serve = async (id: number, gen: number, conn: Deno.DatagramConn) => {
    const buf = new Uint8Array(65536);
    for (;;) {
      let n: Uint8Array;
      try {
        [n] = await conn.receive(buf);
      } catch {
        return; // closed
      }
      if (conns.get(id) !== conn) return;
      if (isPing(n)) Atomics.store(beats, id, BigInt(Date.now()));
      else scope.postMessage({ t: "msg", id, gen, raw: dec.decode(n) });
    }
  };
  scope.onmessage = (e: MessageEvent) => {
    const m = e.data;
    if (m.t === "init") beats = m.beats;
    else if (m.t === "open") {
      try {
        const c = Deno.listenDatagram({ transport: "unixpacket", path: m.path });
        conns.set(m.id, c);
        Atomics.store(beats, m.id, 0n);
        scope.postMessage({ t: "opened", id: m.id });
        serve(m.id, m.gen, c);
      } catch (err) {
        scope.postMessage({ t: "opened", id: m.id, error: (err as Error).message });
      }
    } else if (m.t === "close") {
      const c = conns.get(m.id);
      conns.delete(m.id);
      try {
        c?.close();
      } catch { /* closed */ }
    }
  };
}
