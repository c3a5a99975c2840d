/**
 * The keepwire SDK: what a vendor's worker subsystem imports.
 *
 * ```ts
 * import { heartbeat, onStop, ready, reportQueue, status } from "../mod/sdk/mod.ts";
 * // ... set up ...
 * ready();                 // start-up done; heartbeats are then sent automatically
 * status("serving 3 peers");
 * onStop(async () => { await flush(); });
 * ```
 *
 * `ready()` starts automatic heartbeats at the configured interval, so a worker
 * whose event loop is stuck (an endless loop) stops beating and is restarted.
 * Call `ready({ autoHeartbeat: false })` and then `heartbeat()` yourself to tie
 * liveness to your own work loop instead. Outside keepwire every call is a no-op.
 *
 * Heartbeats are written into a small SharedArrayBuffer slot that keepwire reads
 * when a heartbeat deadline comes due, so they cost keepwire's event loop nothing;
 * everything else (ready, status, queue, stop) travels over postMessage.
 * The state lives on `globalThis`, so a vendored copy of this file works too.
 * @module
 */

/** What keepwire tells a worker when it loads it. */
export interface SubsystemContext {
  /** Subsystem name. */
  name: string;
  /** The spec's `env`. */
  env: Record<string, string>;
  /** Expected heartbeat interval in ms, or null when heartbeats are off. */
  heartbeatIntervalMs: number | null;
}

type Handler = () => void | Promise<void>;

interface SdkState {
  ctx: SubsystemContext | null;
  beat: BigInt64Array | null;
  post: ((msg: unknown) => void) | null;
  readySent: boolean;
  auto: ReturnType<typeof setInterval> | undefined;
  suspended: boolean;
  onSuspend: Set<Handler>;
  onResume: Set<Handler>;
  onStop: Set<Handler>;
}

const KEY = Symbol.for("keepwire.sdk.v1");

function st(): SdkState {
  const g = globalThis as unknown as Record<symbol, SdkState | undefined>;
  return g[KEY] ??= {
    ctx: null,
    beat: null,
    post: null,
    readySent: false,
    auto: undefined,
    suspended: false,
    onSuspend: new Set(),
    onResume: new Set(),
    onStop: new Set(),
  };
}

function send(msg: Record<string, unknown>): void {
  st().post?.({ kw: msg.kw, ...msg });
}

async function runAll(set: Set<Handler>, what: string): Promise<void> {
  for (const fn of [...set]) {
    try {
      await fn();
    } catch (e) {
      send({ kw: "status", text: `${what} handler failed: ${(e as Error).message}` });
    }
  }
}

/** The subsystem this code runs as, or null outside keepwire. */
export function subsystem(): SubsystemContext | null {
  return st().ctx;
}

/** Start-up is done. Starts automatic heartbeats unless `autoHeartbeat: false`. */
export function ready(opts: { autoHeartbeat?: boolean } = {}): void {
  const s = st();
  if (!s.post || s.readySent) return;
  s.readySent = true;
  send({ kw: "ready" });
  const every = s.ctx?.heartbeatIntervalMs;
  if ((opts.autoHeartbeat ?? true) && every) {
    s.auto = setInterval(heartbeat, every);
  }
}

/** I am alive (call at least every heartbeat interval when automatic heartbeats are off). */
export function heartbeat(): void {
  const s = st();
  if (s.beat) Atomics.store(s.beat, 0, BigInt(Date.now()));
  else send({ kw: "heartbeat" });
}

/** One line of status text (shown by `keepwire sub list` and the UI). */
export function status(text: string): void {
  send({ kw: "status", text: String(text).slice(0, 1000) });
}

/** Report the work queue (the load governor reads it). */
export function reportQueue(depth: number, oldestAgeMs: number): void {
  if (!Number.isFinite(depth) || !Number.isFinite(oldestAgeMs)) return;
  send({ kw: "queue", depth: Math.max(0, depth), oldestAgeMs: Math.max(0, oldestAgeMs) });
}

/** Called when the governor suspends this subsystem (stop optional work). Returns an unsubscribe. */
export function onSuspend(fn: Handler): () => void {
  st().onSuspend.add(fn);
  return () => st().onSuspend.delete(fn);
}

/** Called when the governor resumes this subsystem. Returns an unsubscribe. */
export function onResume(fn: Handler): () => void {
  st().onResume.add(fn);
  return () => st().onResume.delete(fn);
}

/** Called on an orderly stop, before the stop timeout ends the worker. Returns an unsubscribe. */
export function onStop(fn: Handler): () => void {
  st().onStop.add(fn);
  return () => st().onStop.delete(fn);
}

/** True while suspended by the governor. */
export function suspended(): boolean {
  return st().suspended;
}

/** End this worker on purpose: code 0 is a clean exit (restart policy on-failure keeps it down). */
export function exit(code = 0): void {
  send({ kw: "exit", code });
  const s = st();
  if (s.auto !== undefined) clearInterval(s.auto);
}

/**
 * Internal: attach the SDK to keepwire's worker host. Called by
 * mod/supervisor/worker_host.ts before the vendor module loads.
 */
export function _attach(
  ctx: SubsystemContext,
  post: (msg: unknown) => void,
  listen: (fn: (data: unknown) => void) => void,
  beat?: SharedArrayBuffer,
): void {
  const s = st();
  s.ctx = ctx;
  s.post = post;
  s.beat = beat && beat.byteLength >= 8 ? new BigInt64Array(beat, 0, 1) : null;
  listen(async (data) => {
    const kw = (data as { kw?: unknown } | null)?.kw;
    if (kw === "suspend") {
      s.suspended = true;
      await runAll(s.onSuspend, "onSuspend");
      send({ kw: "suspended" });
    } else if (kw === "resume") {
      s.suspended = false;
      await runAll(s.onResume, "onResume");
      send({ kw: "resumed" });
    } else if (kw === "stop") {
      if (s.auto !== undefined) clearInterval(s.auto);
      await runAll(s.onStop, "onStop");
      send({ kw: "stopped" });
    }
  });
}
