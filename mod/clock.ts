/**
 * The injected clock: time and timers, so that state machines are tested without sleeping.
 * A leaf module (it imports nothing), so that the store and anything under the module
 * contract can use it without an import circle; `module.ts` re-exports it.
 * @module
 */

/** A timer handle as returned by setTimeout/setInterval. */
export type TimerId = ReturnType<typeof setTimeout>;

/** Injected clock. Tests pass a fake one. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** setTimeout. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** clearTimeout. */
  clearTimeout(id: TimerId): void;
  /** setInterval. */
  setInterval(fn: () => void, ms: number): TimerId;
  /** clearInterval. */
  clearInterval(id: TimerId): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (id) => clearInterval(id),
};
