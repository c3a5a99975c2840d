/**
 * Dual-active detection: both nodes of the pair active at once (a split brain), seen
 * by a node that is active, from three signals:
 *
 * - **VRRP, the winner's side**: keepalived as MASTER received an advert of lower
 *   priority (`MASTER_RX_LOWER_PRI` on the notify FIFO; backups send no adverts and a
 *   priority-0 resign is handled apart, so the peer is MASTER too). keepalived answers
 *   with an advert and re-sends GARPs (`vrrp_garp_lower_prio_repeat`).
 * - **VRRP, the loser's side**: keepalived went from MASTER to BACKUP. With `nopreempt`
 *   that happens only when an advert of higher priority arrives while MASTER: the peer
 *   was MASTER too, and this node yields (it drops the address). Not counted with
 *   `preempt` (there a returning higher-priority node takes over on purpose).
 * - **The peer link**: this node is active and the peer's health document says
 *   `active` in two answers in a row (one could be the instant of a make-before-break
 *   switch-over; two mean VRRP is not resolving it: its adverts do not get through,
 *   while the peer link does). Resolved by priority here, as VRRP would: the node with
 *   the lower configured priority (equal or unknown: the lower address, as VRRP's tie
 *   rule) yields — keepwire holds its keepalived in FAULT (priority-0 advert, address
 *   dropped) while the peer link keeps seeing the peer active, and releases it when the
 *   peer is no longer active or is lost (then VRRP decides again).
 *
 * Each node journals `ha.dual_active` once per episode (signals closer than
 * `episodeMs` are one episode), with what it saw and how it was resolved. During a
 * partition that cuts every path neither node can see the other: that case is seen
 * only when the partition heals (the witness is what prevents it).
 * @module
 */
import type { Clock } from "../module.ts";
import { ipv4ToInt, isIpv4 } from "./net.ts";

/** The FAULT reason while this node yields a dual active seen over the peer link. */
export const DUAL_ACTIVE_YIELD = "dual_active_yield";

/** Signals closer than this (ms) are one episode. */
export const DUAL_ACTIVE_EPISODE_MS = 5000;

/** One dual active as journalled. */
export interface DualActiveReport {
  /** How it was seen: `vrrp` (keepalived's adverts) or `peer_link`. */
  via: "vrrp" | "peer_link";
  /** What was seen, for a person. */
  seen: string;
  /** How it is resolved. */
  resolvedBy: string;
  /** This node yields (drops the address). */
  yields: boolean;
}

/** Options of {@link DualActiveWatch}. */
export interface DualActiveOptions {
  clock: Clock;
  /** This node: id, configured priority, address (no prefix). */
  node: { id: string; priority: number; address: string };
  /** The peer: name for messages, configured priority when known, address. */
  peer: { name: string; priority: number | null; address: string };
  /** Does keepalived preempt (a MASTER → BACKUP is then no dual active)? */
  preempt: boolean;
  /** Episode window (default {@link DUAL_ACTIVE_EPISODE_MS}). */
  episodeMs?: number;
  /** A new episode: journal it. */
  report(r: DualActiveReport): void;
  /** Hold keepalived in FAULT (reason) or release it (null). */
  setYield(reason: string | null): void;
}

/** Watches the signals and keeps the episode count. Time is injected. */
export class DualActiveWatch {
  #o: DualActiveOptions;
  #count = 0;
  #lastAt: number | null = null;
  #last: DualActiveReport | null = null;
  #peerDual = 0;
  #yielding: string | null = null;

  /** Build one. */
  constructor(o: DualActiveOptions) {
    this.#o = o;
  }

  /** Episodes seen since start. */
  get count(): number {
    return this.#count;
  }

  /** When the last signal came (clock ms), or null. */
  get lastAt(): number | null {
    return this.#lastAt;
  }

  /** The last episode's report, or null. */
  get last(): DualActiveReport | null {
    return this.#last;
  }

  /** Why this node yields now (FAULT held), or null. */
  get yielding(): string | null {
    return this.#yielding;
  }

  /**
   * Does this node win a dual active? Higher configured priority wins; equal or
   * unknown: the higher address wins (VRRP's tie rule).
   */
  outranksPeer(): boolean {
    const { node, peer } = this.#o;
    if (peer.priority !== null && peer.priority !== node.priority) {
      return node.priority > peer.priority;
    }
    if (isIpv4(node.address) && isIpv4(peer.address)) {
      return ipv4ToInt(node.address) > ipv4ToInt(peer.address);
    }
    return node.id > peer.name;
  }

  /** keepalived as MASTER received an advert of lower priority (this node's is `ours`). */
  lowerAdvert(instance: string, ours: number): void {
    this.#signal({
      via: "vrrp",
      seen: `an advert of lower priority on VRRP instance ${instance} while active ` +
        `(this node's priority ${ours}): ${this.#o.peer.name} was active too`,
      resolvedBy: `priority: this node (${ours}) stays active, ${this.#o.peer.name} yields`,
      yields: false,
    });
  }

  /** keepalived left MASTER for BACKUP on instance `instance` (its priority `ours`). */
  masterToBackup(instance: string, ours: number | null): void {
    if (this.#o.preempt) return;
    this.#signal({
      via: "vrrp",
      seen: `an advert of higher priority on VRRP instance ${instance} while active ` +
        `(keepalived went MASTER → BACKUP with nopreempt): ${this.#o.peer.name} was active too`,
      resolvedBy: `priority: ${this.#o.peer.name} stays active, this node (${
        ours ?? this.#o.node.priority
      }) yields`,
      yields: true,
    });
  }

  /** A good peer-link answer: this node's role now and the peer's reported role. */
  peerAnswer(ownRole: string, peerRole: string): void {
    if (ownRole === "active" && peerRole === "active") {
      this.#peerDual++;
      if (this.#peerDual < 2) return;
      const wins = this.outranksPeer();
      const { node, peer } = this.#o;
      const prio = `priority ${node.priority} against ${peer.priority ?? "unknown"}`;
      this.#signal({
        via: "peer_link",
        seen: `the peer link: ${peer.name} reports active in ${this.#peerDual} answers in a row ` +
          "while this node is active (VRRP adverts do not resolve it)",
        resolvedBy: wins
          ? `priority (${prio}): this node stays active, ${peer.name} yields`
          : `priority (${prio}): this node yields while ${peer.name} is seen active`,
        yields: !wins,
      });
      if (!wins && this.#yielding === null) {
        this.#yielding = `${DUAL_ACTIVE_YIELD}: ${peer.name} is active (seen over the peer link) ` +
          `and outranks this node (${prio})`;
        this.#o.setYield(this.#yielding);
      }
      return;
    }
    this.#peerDual = 0;
    if (this.#yielding !== null && peerRole !== "active") this.#release();
  }

  /** The peer link lost the peer: stop yielding (VRRP decides again). */
  peerLost(): void {
    this.#peerDual = 0;
    if (this.#yielding !== null) this.#release();
  }

  /** Stop yielding (module stop). */
  close(): void {
    this.#yielding = null;
  }

  #release(): void {
    this.#yielding = null;
    this.#o.setYield(null);
  }

  #signal(r: DualActiveReport): void {
    const now = this.#o.clock.now();
    const episode = this.#lastAt === null ||
      now - this.#lastAt > (this.#o.episodeMs ?? DUAL_ACTIVE_EPISODE_MS);
    this.#lastAt = now;
    if (!episode) return;
    this.#count++;
    this.#last = r;
    this.#o.report(r);
  }
}
