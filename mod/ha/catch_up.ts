/**
 * The catch-up hold: with replication and a peer link, a node that starts (keepwire
 * started or restarted) is held out of MASTER until its copy cannot be stale against a
 * serving peer.
 *
 * Without it, a returning node whose keepalived misses the survivor's adverts (a starved
 * machine, a lossy link) becomes MASTER on its own, after the master-down timer, and
 * promotes its stale copy: the survivor, meeting an active of higher priority, yields,
 * and sets aside the changes it acknowledged alone (a tail). The automatic failback
 * (failback.ts) covers only failbacks keepwire asks for, not a MASTER keepalived elects.
 *
 * So keepwire holds its keepalived in FAULT from its start (the hold {@link CATCHING_UP};
 * a standby, as the manual and witness holds: its channels stay standbys and receive the
 * peer's frames and snapshot) and lets go when, for every client set of the pair:
 *
 * - the peer answers on the peer link and is **not active** for the set: at once (VRRP
 *   decides, as without the hold);
 * - the peer is active for the set and this node's channel of the set **caught up** with
 *   it (the failback gate's condition, {@link catchUpBlocker}: the peer's epoch, no
 *   snapshot installing or due, the peer's link to it up, its oldest unconfirmed change
 *   younger than {@link FAILBACK_LAG_MS}); keepalived then goes BACKUP (nopreempt, which
 *   replication renders) and the automatic failback decides about the set;
 * - or the peer link **lost** the peer (`ha.peerLink.lostAfter` polls without an answer):
 *   a lone node takes over after that bound;
 * - or the peer does not know the failback view (an older keepwire): as before the hold.
 *
 * The hold is for the whole node (every instance), one episode per start. `ha.catching_up`
 * is journalled once, when the peer is seen active and this node behind; `ha.caught_up`
 * when the hold lets go after that, or after the peer was lost. Time is injected.
 * @module
 */
import type { Clock, TimerId } from "../module.ts";
import {
  catchUpBlocker,
  type FailbackChannel,
  type FailbackSet,
  type FailbackView,
} from "./failback.ts";

export { CATCHING_UP } from "./track.ts";

/** How the hold ended. */
export type CatchUpEnd =
  | "peer_not_active"
  | "caught_up"
  | "peer_lost"
  | "peer_unsupported"
  | "unpaired";

/** The peer's view of a set could not be read because the peer does not serve it (HTTP 404). */
export class PeerUnsupportedError extends Error {}

/** The hold as the status shows it. */
export interface CatchUpStatus {
  /** keepalived is held in FAULT now. */
  held: boolean;
  /** Since when held, or when it let go (ISO). */
  since: string;
  /** Why it holds, or why it let go. */
  reason: string;
}

/** What the hold needs of the module. */
export interface CatchUpOptions {
  clock: Clock;
  /** The client sets of the pair (a; a and b with active-active). */
  sets: readonly FailbackSet[];
  /** How often to look (the peer link's interval). */
  pollMs: number;
  /** The peer name for messages. */
  peerName: string;
  /** The peer link: not answered yet (`unknown`), answers (`up`), lost (`lost`, why). */
  peer(): { state: "unknown" | "up" | "lost"; detail: string | null };
  /** This node's channel of the set. */
  own(set: FailbackSet): FailbackChannel | null;
  /** The peer's view of the set; rejects (PeerUnsupportedError: the peer has no such route). */
  ask(set: FailbackSet): Promise<FailbackView>;
  /** Hold keepalived in FAULT (the reason) or let go (null). */
  setHold(reason: string | null): void;
  /** Journal: the peer is active and this node behind (once), or the hold let go. */
  publish(kind: "catching_up", reason: string): void;
  publishEnd(how: CatchUpEnd, reason: string, heldMs: number): void;
}

/** Holds keepalived in FAULT from the start until this node's copy is safe to elect. */
export class CatchUpHold {
  #o: CatchUpOptions;
  #held = false;
  #since: number;
  #reason = "starting: waiting for the peer link";
  #told = false;
  #busy = false;
  #timer: TimerId | undefined;
  /** Stopped (with the module): a look under way changes nothing after its answer. */
  #stopped = false;

  /** Build (nothing held until start). */
  constructor(o: CatchUpOptions) {
    this.#o = o;
    this.#since = o.clock.now();
  }

  /** Hold now and look every pollMs. */
  start(): void {
    if (this.#held || this.#timer !== undefined) return;
    this.#held = true;
    this.#stopped = false;
    this.#since = this.#o.clock.now();
    this.#o.setHold(this.#reason);
    this.#timer = this.#o.clock.setInterval(() => void this.tick(), this.#o.pollMs);
  }

  /** Stop looking (the hold is the track's: it goes with the module). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Held now? */
  get held(): boolean {
    return this.#held;
  }

  /** The status. */
  status(): CatchUpStatus {
    return {
      held: this.#held,
      since: new Date(this.#since).toISOString(),
      reason: this.#reason,
    };
  }

  /** Let go without a reason of the peer's (no peer link after all: not paired). */
  end(how: CatchUpEnd, reason: string): void {
    if (!this.#held) return;
    this.stop();
    const heldMs = this.#o.clock.now() - this.#since;
    this.#held = false;
    this.#since = this.#o.clock.now();
    this.#reason = reason;
    this.#o.setHold(null);
    if (this.#told || how === "peer_lost") this.#o.publishEnd(how, reason, heldMs);
  }

  /** Look now (the timer, the peer link's answers, tests). */
  async tick(): Promise<void> {
    if (!this.#held || this.#busy) return;
    this.#busy = true;
    try {
      await this.#look();
    } finally {
      this.#busy = false;
    }
  }

  #hold(reason: string): void {
    if (!this.#held) return;
    this.#reason = reason;
    this.#o.setHold(reason);
  }

  async #look(): Promise<void> {
    const o = this.#o;
    const p = o.peer();
    if (p.state === "lost") {
      return this.end(
        "peer_lost",
        `the peer link lost ${o.peerName}${
          p.detail ? ` (${p.detail})` : ""
        }: this node may take over`,
      );
    }
    if (p.state === "unknown") {
      return this.#hold(
        `waiting for ${o.peerName} to answer on the peer link (or to be lost)${
          p.detail ? `: ${p.detail}` : ""
        }`,
      );
    }
    const behind: string[] = [];
    let active = false;
    for (const set of o.sets) {
      let view: FailbackView;
      try {
        view = await o.ask(set);
      } catch (e) {
        if (this.#stopped) return;
        if (e instanceof PeerUnsupportedError) {
          return this.end(
            "peer_unsupported",
            `${o.peerName} does not tell whether it is active for set ${set} (an older keepwire?)`,
          );
        }
        return this.#hold(`${o.peerName}'s view of set ${set}: ${(e as Error).message}`);
      }
      // stopped while asking: the hold stays as the module leaves it (no let-go, no journal)
      if (!this.#held || this.#stopped) return;
      if (!view.holding) continue;
      active = true;
      const why = catchUpBlocker(o.own(set), view);
      if (why !== null) behind.push(`${view.node} is active for set ${set}; ${why}`);
    }
    if (behind.length > 0) {
      const reason = behind.join("; ");
      this.#hold(reason);
      if (!this.#told) {
        this.#told = true;
        o.publish("catching_up", reason);
      }
      return;
    }
    this.end(
      active ? "caught_up" : "peer_not_active",
      active
        ? `caught up with ${o.peerName}, which is active`
        : `${o.peerName} answers and is not active: VRRP decides`,
    );
  }
}
