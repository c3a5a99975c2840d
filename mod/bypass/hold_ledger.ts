/**
 * The holds of one segment: named, counted, persisted. Each `take` of a reason
 * adds one, each `release` takes one away (or drops it when forced), so an update
 * and a supervisor escalation never fight over the relay. Every change is written
 * to the hold store before it is visible here (and so before the relay moves): a
 * restart of keepwire finds exactly the holds and counts it left.
 * @module
 */
import type { BypassMode } from "../../hw/bypass/types.ts";
import type { BypassHold, SegmentHoldStore } from "./types.ts";

const STRENGTH: Record<BypassMode, number> = { inline: 0, tap: 1, bypass: 2, disconnect: 3 };

/** What a release did. */
export interface HoldRelease {
  /** The hold as it was before the release. */
  hold: BypassHold;
  /** Count left (0 = gone). */
  remaining: number;
}

/** The holds of one segment. */
export class HoldLedger {
  readonly #segment: string;
  readonly #store: SegmentHoldStore;
  readonly #now: () => number;
  #holds = new Map<string, BypassHold>();

  /** Empty until `load`. */
  constructor(segment: string, store: SegmentHoldStore, now: () => number) {
    this.#segment = segment;
    this.#store = store;
    this.#now = now;
  }

  /** Read the persisted holds (replaces what is in memory). */
  load(): void {
    this.#holds = new Map(this.#store.load(this.#segment).map((h) => [h.reason, h]));
  }

  /** Is there a hold with this reason? */
  has(reason: string): boolean {
    return this.#holds.has(reason);
  }

  /** The holds (copies), oldest first. */
  list(): BypassHold[] {
    return [...this.#holds.values()].sort((x, y) =>
      x.since - y.since || x.reason.localeCompare(y.reason)
    ).map((h) => ({ ...h }));
  }

  /** `reason` or `reasonxN` for each hold (event payloads). */
  summary(): string[] {
    return this.list().map((h) => `${h.reason}x${h.count}`);
  }

  /** The wanted mode: inline without holds, else the strongest hold mode. */
  desired(): BypassMode {
    let best: BypassMode = "inline";
    for (const h of this.#holds.values()) {
      if (STRENGTH[h.mode] > STRENGTH[best]) best = h.mode;
    }
    return best;
  }

  /** Take a hold: count +1 (a new one asks for `mode`; an existing one keeps its mode). */
  take(reason: string, by: string, mode: BypassMode): BypassHold {
    const h = this.#holds.get(reason);
    return this.#write(
      h ? { ...h, count: h.count + 1, by } : { reason, count: 1, mode, by, since: this.#now() },
    );
  }

  /**
   * Make sure a hold with this reason asks for `mode` without counting it up: taken
   * with count 1 when absent, its mode changed when different. Returns the hold when
   * something changed, else null (the manual mode).
   */
  ensure(reason: string, by: string, mode: BypassMode): BypassHold | null {
    const h = this.#holds.get(reason);
    if (!h) return this.take(reason, by, mode);
    if (h.mode === mode) return null;
    return this.#write({ ...h, mode, by });
  }

  /** Release one count (`force`: all of them). Null when there is no such hold. */
  release(reason: string, force = false): HoldRelease | null {
    const h = this.#holds.get(reason);
    if (!h) return null;
    const remaining = force ? 0 : h.count - 1;
    if (remaining > 0) {
      this.#write({ ...h, count: remaining });
    } else {
      this.#store.remove(this.#segment, reason);
      this.#holds.delete(reason);
    }
    return { hold: { ...h }, remaining: Math.max(0, remaining) };
  }

  /** Persist first, then keep in memory. */
  #write(h: BypassHold): BypassHold {
    this.#store.put(this.#segment, h);
    this.#holds.set(h.reason, h);
    return { ...h };
  }
}
