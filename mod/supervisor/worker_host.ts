/**
 * Runs inside a subsystem's Worker: waits for keepwire's `load` message, attaches
 * the SDK, then imports the vendor module. A spare Worker sits here, already
 * started, so a worker restart costs an import instead of a new isolate.
 * @module
 */
import { _attach } from "../sdk/mod.ts";

interface LoadMessage {
  kw: "load";
  url: string;
  name: string;
  env: Record<string, string>;
  heartbeatIntervalMs: number | null;
  beat?: SharedArrayBuffer;
}

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  addEventListener(t: "message", fn: (e: MessageEvent) => void): void;
  removeEventListener(t: "message", fn: (e: MessageEvent) => void): void;
};

const onLoad = async (e: MessageEvent) => {
  const d = e.data as LoadMessage | null;
  if (d?.kw !== "load" || typeof d.url !== "string") return;
  scope.removeEventListener("message", onLoad);
  _attach(
    { name: String(d.name), env: { ...d.env }, heartbeatIntervalMs: d.heartbeatIntervalMs },
    (m) => scope.postMessage(m),
    (fn) => scope.addEventListener("message", (ev) => fn(ev.data)),
    d.beat instanceof SharedArrayBuffer ? d.beat : undefined,
  );
  // Tell keepwire which OS thread runs this Worker: Deno 2.9's worker.terminate()
  // does not stop a JS endless loop, so keepwire demotes a leaked thread by its tid.
  try {
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0) scope.postMessage({ kw: "thread", tid });
  } catch { /* no /proc or no read permission */ }
  try {
    await import(d.url);
  } catch (err) {
    scope.postMessage({
      kw: "fatal",
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
  }
};
scope.addEventListener("message", onLoad);

// Uncaught errors and unhandled rejections of the vendor code: report them to
// keepwire (journaled with the message) and let it end this Worker.
const fatal = (what: string, err: unknown) =>
  scope.postMessage({
    kw: "fatal",
    error: `${what} ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
  });
globalThis.addEventListener("error", (e: ErrorEvent) => {
  e.preventDefault();
  fatal("uncaught", e.error ?? e.message);
});
globalThis.addEventListener("unhandledrejection", (e: PromiseRejectionEvent) => {
  e.preventDefault();
  fatal("unhandled rejection", e.reason);
});
