/**
 * A small counting semaphore for password hashing. scrypt costs ~16 MiB and tens of
 * milliseconds of a core per hash; without a bound, a crowd of wrong logins pins every
 * core and the memory with it. At most `concurrent` hashes run, at most `queue` more
 * wait; anything beyond is refused at once so the caller can answer 503 with
 * Retry-After instead of queueing work that slows health checks.
 * @module
 */

/** A granted slot: call `release` exactly once. */
export interface GateTicket {
  /** Resolves when the slot is ours (at once when one was free). */
  ready: Promise<void>;
  /** Give the slot back (also when `ready` never settled because of an error). */
  release(): void;
}

/** Bounded concurrency with a bounded queue and immediate refusal beyond it. */
export class HashGate {
  readonly #concurrent: number;
  readonly #queue: number;
  #running = 0;
  #waiting: (() => void)[] = [];
  /** Requests refused because the gate was full (since start). */
  refused = 0;

  /** `concurrent` hashes at once, `queue` more waiting. */
  constructor(concurrent = 2, queue = 6) {
    this.#concurrent = Math.max(1, concurrent);
    this.#queue = Math.max(0, queue);
  }

  /** Hashes running now. */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Take a slot synchronously, or null when the gate and its queue are full. Being
   * synchronous, it can be combined with other synchronous decisions in one step.
   */
  tryEnter(): GateTicket | null {
    let released = false;
    let granted = false;
    const release = () => {
      if (released) return;
      released = true;
      if (!granted) {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        return;
      }
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    };
    let resolveReady: () => void = () => {};
    const ready = new Promise<void>((r) => (resolveReady = r));
    const grant = () => {
      granted = true;
      resolveReady();
    };
    if (this.#running < this.#concurrent) {
      this.#running++;
      grant();
      return { ready, release };
    }
    if (this.#waiting.length >= this.#queue) {
      this.refused++;
      return null;
    }
    this.#waiting.push(grant);
    return { ready, release };
  }

  /** Run `fn` inside a slot; throws {@link GateFullError} when none is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const t = this.tryEnter();
    if (!t) throw new GateFullError();
    try {
      await t.ready;
      return await fn();
    } finally {
      t.release();
    }
  }
}

/** The gate and its queue are full. */
export class GateFullError extends Error {
  /** Build one. */
  constructor() {
    super("too many password checks at once");
    this.name = "GateFullError";
  }
}
