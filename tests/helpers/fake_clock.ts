/** Test helper: a manual Clock for state machines tested on fake time. */
import type { Clock, TimerId } from "../../mod/module.ts";

/** Let pending promise continuations run (20 microtask turns). */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** A manual clock starting at t = 1,000,000 ms: timers fire only in advance(). */
export class FakeClock implements Clock {
  t = 1_000_000;
  #timers = new Map<number, { at: number; fn: () => void; every?: number }>();
  #id = 1;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number): TimerId => this.#add(fn, ms);
  setInterval = (fn: () => void, ms: number): TimerId => this.#add(fn, ms, ms);
  clearTimeout = (id: TimerId) => void this.#timers.delete(id as unknown as number);
  clearInterval = (id: TimerId) => void this.#timers.delete(id as unknown as number);
  #add(fn: () => void, ms: number, every?: number): TimerId {
    const id = this.#id++;
    this.#timers.set(id, { at: this.t + ms, fn, every });
    return id as unknown as TimerId;
  }
  /** Advance by `ms`, firing due timers in order and letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, x]) => x.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, x] = due;
      this.t = Math.max(this.t, x.at);
      if (x.every) x.at += x.every;
      else this.#timers.delete(id);
      x.fn();
      await flushMicrotasks();
    }
    this.t = end;
    await flushMicrotasks();
  }
}
