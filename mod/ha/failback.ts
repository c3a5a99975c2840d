/**
 * Automatic failback with replication: `ha.preempt` (a plain pair) or
 * `ha.activeActive.failback: "auto"` together with `ha.replication`.
 *
 * keepalived must not preempt there: a returning owner would take its address (or set)
 * back as soon as it is up, before its replication channel resynced, and promote its
 * stale copy (the survivor's changes of that set would be set aside). So keepalived is
 * rendered `nopreempt` (keepalived.ts), and keepwire does the failback:
 *
 * - the **returning owner** (this file's {@link FailbackDriver}) stays BACKUP and asks the
 *   holder for its view of the set (`GET /peer/v1/failback?set=`) every peer-link interval;
 *   it waits while anything in {@link catchUpBlocker} holds (its own channel of the set is
 *   not at the holder's epoch, installs the holder's snapshot, the holder's standby link is
 *   not up or more than {@link FAILBACK_LAG_MS} of changes are unconfirmed), then for
 *   `failbackDelayMs` / `preemptDelayMs` more with the channel caught up all along, then
 *   asks the holder to hand over (`POST /peer/v1/failback {"set"}`);
 * - the **holder** checks the same of its own channel ({@link holderBlocker}) and hands
 *   over gracefully (HaModule.handOver: writes refused, the drain until the owner confirmed
 *   every change, then FAULT for `failoverHoldMs` on that set's instance: a priority-0
 *   advert, and the owner, BACKUP with the higher priority, becomes MASTER).
 *
 * Status (`failback` in `ha status`, the HA page, `keepwire ha status`) says per set what
 * the owner waits for; `ha.failback_waiting`, `ha.failback_requested` and
 * `ha.failback_refused` are journalled. Time is injected (the delay, the retry).
 * @module
 */
import { z } from "zod";
import type { Clock, TimerId } from "../module.ts";
import type { HaConfig } from "./config.ts";

/** A client set: `a` (ha.virtualAddresses), `b` (ha.activeActive.virtualAddresses). */
export type FailbackSet = "a" | "b";

/** Path of the failback routes on the peer link. */
export const FAILBACK_PEER_PATH = "/peer/v1/failback";

/** The holder's unconfirmed changes may be at most this old for the owner to be caught up. */
export const FAILBACK_LAG_MS = 1000;

/** After a refused request the owner asks again after this (each try refuses writes there). */
export const FAILBACK_RETRY_MS = 10_000;

/**
 * A channel of replication as the gate reads it (the repl module's channel status). The
 * schemas here are z.lazy: built on their first parse, not at import (the start path).
 */
export const failbackChannelSchema = z.lazy(() =>
  z.object({
    role: z.enum(["primary", "standby", "idle"]),
    epoch: z.number().int(),
    seq: z.number().int(),
    pending: z.number().int(),
    lagMs: z.number(),
    link: z.enum(["up", "down", "unknown"]),
    resync: z.object({ bytes: z.number(), total: z.number() }).nullable(),
    snapshotDue: z.boolean().optional(),
  })
);

/** A channel as the gate reads it. */
export type FailbackChannel = z.infer<typeof failbackChannelSchema>;

/** The holder's answer to `GET /peer/v1/failback?set=` (read tolerantly: newer fields dropped). */
export const failbackViewSchema = z.lazy(() =>
  z.object({
    node: z.string().max(64),
    set: z.enum(["a", "b"]),
    /** The answering node is active for the set. */
    holding: z.boolean(),
    /** It hands over (ha failover, maintenance, a release of the set). */
    handingOver: z.boolean(),
    /** Its replication channel of the set, null when replication does not run there. */
    channel: failbackChannelSchema.nullable(),
  })
);

/** The holder's view of a set. */
export type FailbackView = z.infer<typeof failbackViewSchema>;

/** Body of `POST /peer/v1/failback`. */
export const failbackRequestSchema = z.lazy(() =>
  z.strictObject({
    set: z.enum(["a", "b"]),
    node: z.string().min(1).max(64),
  })
);

/**
 * The sets this node takes back automatically once caught up (empty: none, or keepalived
 * preempts by itself because nothing replicates). A plain pair: set `a` with ha.preempt
 * when this node has the higher priority. Active-active with failback "auto": the set whose
 * instance has this node's higher priority (a: ha.node.priority, b: ha.peers[0].priority).
 */
export function failbackSets(ha: HaConfig): FailbackSet[] {
  if (!ha.replication?.enabled) return [];
  const peer = ha.peers[0]?.priority;
  if (peer === undefined) return [];
  if (ha.activeActive) {
    if (ha.activeActive.failback !== "auto") return [];
    return [ha.node.priority > peer ? "a" : "b"];
  }
  return ha.preempt && ha.node.priority > peer ? ["a"] : [];
}

/** keepwire, not keepalived, fails back (ha.preempt / failback auto with replication). */
export function failbackGated(ha: HaConfig): boolean {
  return !!ha.replication?.enabled &&
    (ha.activeActive ? ha.activeActive.failback === "auto" : ha.preempt);
}

/** The delay after catching up before the owner asks (ms). */
export function failbackDelayMs(ha: HaConfig): number {
  return ha.activeActive ? ha.activeActive.failbackDelayMs : ha.preemptDelayMs;
}

/** Why the holder should not hand the set over now (its own channel), or null. */
export function holderBlocker(ch: FailbackChannel | null): string | null {
  if (ch === null) return "replication does not run on the holder";
  if (ch.role !== "primary") return `the holder's channel is ${ch.role}, not primary`;
  if (ch.link !== "up") return "the holder's link to this channel's standby is not up";
  if (ch.snapshotDue) return "the standby has not installed the holder's snapshot yet";
  if (ch.lagMs > FAILBACK_LAG_MS) {
    return `${ch.pending} frames unconfirmed (the oldest ${Math.round(ch.lagMs)} ms old)`;
  }
  return null;
}

/**
 * Why this node's copy of the set is not caught up with the holder's, or null: it must
 * be the standby of the holder's epoch (the holder's snapshot installed) and the holder
 * must see it confirm (link up, no snapshot due, unconfirmed changes younger than
 * {@link FAILBACK_LAG_MS}).
 */
export function catchUpBlocker(own: FailbackChannel | null, holder: FailbackView): string | null {
  if (own === null) return "replication does not run on this node yet";
  if (own.role !== "standby") return `this node's channel is ${own.role}, not standby`;
  if (own.resync) {
    return `installing the holder's snapshot (${own.resync.bytes} of ${own.resync.total} bytes)`;
  }
  if (own.snapshotDue) {
    return "a table was registered here after the holder's snapshot: waiting for a new one";
  }
  const h = holder.channel;
  if (h === null) return `replication does not run on ${holder.node}`;
  if (own.epoch !== h.epoch) {
    return `at epoch ${own.epoch}, ${holder.node} at ${h.epoch}: waiting for its snapshot`;
  }
  const b = holderBlocker(h);
  return b === null ? null : `not caught up: ${b}`;
}

/** The states of a set's failback ({@link FailbackStatus}), listed once for the schema and the metric. */
export const FAILBACK_STATES = ["holding", "waiting", "delay", "requesting", "taking"] as const;

/** One set's failback as the status shows it. */
export interface FailbackStatus {
  set: FailbackSet;
  /**
   * `holding`: this node has the set (nothing to do); `waiting`: not caught up, or the
   * peer cannot be asked (`reason`); `delay`: caught up, asking at `askAt`;
   * `requesting`: the holder drains; `taking`: the holder released the set, this node's
   * keepalived takes it.
   */
  state: (typeof FAILBACK_STATES)[number];
  /** Why it waits (or what it does), for a person. */
  reason: string;
  /** Since when in this state (ISO). */
  since: string;
  /** `delay`: when the owner asks the holder (ISO); `waiting` after a refusal: when it asks again. */
  askAt: string | null;
  /** The holder's last refusal, or null. */
  lastRefusal: string | null;
}

/** What the driver needs of the module. */
export interface FailbackDriverOptions {
  clock: Clock;
  /** The sets to take back ({@link failbackSets}). */
  sets: readonly FailbackSet[];
  /** failbackDelayMs / preemptDelayMs. */
  delayMs: number;
  /** How often to look (the peer link's interval). */
  pollMs: number;
  /** After the holder accepted, how long to wait for keepalived to make this node MASTER. */
  takeMs: number;
  /** Is this node active for the set now? */
  holding(set: FailbackSet): boolean;
  /** Why this node cannot take a set now (fault, maintenance, keepalived down), or null. */
  local(): string | null;
  /** Why the peer cannot be asked now (link not up), or null. */
  peer(): string | null;
  /** This node's channel of the set. */
  own(set: FailbackSet): FailbackChannel | null;
  /** The holder's view (GET); rejects with the reason. */
  ask(set: FailbackSet): Promise<FailbackView>;
  /**
   * Why this node does not ask yet though caught up (the catch-up hold still holds
   * keepalived in FAULT: the holder's release would find it unable to take the set), or null.
   */
  ready?(): string | null;
  /** Ask the holder to hand over (POST); rejects with its reason. */
  request(set: FailbackSet): Promise<void>;
  /** Journal. */
  publish(
    kind: "waiting" | "requested" | "refused",
    set: FailbackSet,
    reason: string,
  ): void;
}

interface SetState {
  status: Omit<FailbackStatus, "since" | "askAt"> & { since: number; askAtMs: number | null };
  /** The holder was seen holding the set since this node last held it (an episode). */
  episode: boolean;
  /** ha.failback_waiting published in this episode. */
  told: boolean;
  busy: boolean;
  takeUntil: number;
  retryAt: number;
}

/** The returning owner's side: waits, then asks the holder to hand the set over. */
export class FailbackDriver {
  #o: FailbackDriverOptions;
  #sets = new Map<FailbackSet, SetState>();
  #timer: TimerId | undefined;
  /** Stopped: a look still under way when it stopped asks the holder nothing. */
  #stopped = false;

  /** Build (nothing runs until start). */
  constructor(o: FailbackDriverOptions) {
    this.#o = o;
    const now = o.clock.now();
    for (const set of o.sets) {
      this.#sets.set(set, {
        status: {
          set,
          state: "waiting",
          reason: "starting",
          since: now,
          askAtMs: null,
          lastRefusal: null,
        },
        episode: false,
        told: false,
        busy: false,
        takeUntil: 0,
        retryAt: 0,
      });
    }
  }

  /** Look every pollMs. */
  start(): void {
    if (this.#timer !== undefined || this.#sets.size === 0) return;
    this.#stopped = false;
    this.#timer = this.#o.clock.setInterval(() => void this.tick(), this.#o.pollMs);
  }

  /** Stop looking (a look under way ends without asking the holder to hand over). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Each set's state (a set this node holds now shows so before the next look). */
  status(): FailbackStatus[] {
    for (const st of this.#sets.values()) {
      if (st.status.state !== "holding" && this.#o.holding(st.status.set)) {
        this.#go(st, "holding", "this node is active for the set", null);
      }
    }
    return [...this.#sets.values()].map(({ status: s }) => ({
      set: s.set,
      state: s.state,
      reason: s.reason,
      since: new Date(s.since).toISOString(),
      askAt: s.askAtMs === null ? null : new Date(s.askAtMs).toISOString(),
      lastRefusal: s.lastRefusal,
    }));
  }

  /** Look at every set now (the timer calls it; tests too). */
  async tick(): Promise<void> {
    await Promise.all([...this.#sets.keys()].map((set) => this.#tickSet(set)));
  }

  #go(st: SetState, state: FailbackStatus["state"], reason: string, askAtMs: number | null) {
    const s = st.status;
    if (s.state !== state) s.since = this.#o.clock.now();
    s.state = state;
    s.reason = reason;
    s.askAtMs = askAtMs;
  }

  #wait(set: FailbackSet, st: SetState, reason: string, askAtMs: number | null = null): void {
    this.#go(st, "waiting", reason, askAtMs);
    if (st.episode && !st.told) {
      st.told = true;
      this.#o.publish("waiting", set, reason);
    }
  }

  async #tickSet(set: FailbackSet): Promise<void> {
    const st = this.#sets.get(set)!;
    if (st.busy) return;
    st.busy = true;
    try {
      await this.#look(set, st);
    } finally {
      st.busy = false;
    }
  }

  async #look(set: FailbackSet, st: SetState): Promise<void> {
    const o = this.#o;
    const now = o.clock.now();
    if (o.holding(set)) {
      this.#go(st, "holding", "this node is active for the set", null);
      st.episode = false;
      st.told = false;
      st.status.lastRefusal = null;
      st.retryAt = 0;
      return;
    }
    if (st.status.state === "taking" && now < st.takeUntil) return;
    const why = o.local() ?? o.peer();
    if (why !== null) return this.#wait(set, st, why);
    let view: FailbackView;
    try {
      view = await o.ask(set);
    } catch (e) {
      return this.#wait(set, st, `the holder's view: ${(e as Error).message}`);
    }
    // stopped while asking (the module stops): a handover now would release the set to a
    // node that is going away
    if (this.#stopped) return;
    if (!view.holding) {
      // nobody to ask: keepalived elects this node by itself if the peer holds nothing
      return this.#wait(set, st, `${view.node} is not active for set ${set}`);
    }
    st.episode = true;
    if (view.handingOver) return this.#wait(set, st, `${view.node} is handing over`);
    const behind = catchUpBlocker(o.own(set), view);
    if (behind !== null) return this.#wait(set, st, behind);
    if (now < st.retryAt) {
      return this.#wait(
        set,
        st,
        `${view.node} refused the last request (${st.status.lastRefusal}); asking again later`,
        st.retryAt,
      );
    }
    if (st.status.state !== "delay") {
      this.#go(st, "delay", "caught up with the holder", now + o.delayMs);
    }
    const askAt = st.status.askAtMs ?? now;
    if (now < askAt) return;
    const notYet = o.ready?.() ?? null;
    if (notYet !== null) return this.#go(st, "delay", `caught up; ${notYet}`, askAt);
    this.#go(
      st,
      "requesting",
      `asked ${view.node} to hand set ${set} over (it drains first)`,
      null,
    );
    o.publish("requested", set, `caught up with ${view.node}`);
    try {
      await o.request(set);
    } catch (e) {
      const reason = (e as Error).message;
      st.status.lastRefusal = reason;
      st.retryAt = o.clock.now() + FAILBACK_RETRY_MS;
      o.publish("refused", set, reason);
      return this.#wait(set, st, `${view.node} refused: ${reason}`, st.retryAt);
    }
    st.takeUntil = o.clock.now() + o.takeMs;
    this.#go(st, "taking", `${view.node} released set ${set}; keepalived takes it here`, null);
  }
}
