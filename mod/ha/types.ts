/**
 * The HA module's status as its API, CLI and page read it (no import of mod.ts, so the
 * page can name these types without an import circle).
 * @module
 */
import type { HaRole } from "./role.ts";
import type { FailbackStatus } from "./failback.ts";
import type { CatchUpStatus } from "./catch_up.ts";
import type { TrackView } from "./track.ts";
import type { PeerView } from "./peer.ts";
import type { WitnessStatus } from "./witness_driver.ts";
import type { HookView } from "./hook.ts";
import type { UpgradeStatus } from "./upgrade.ts";

/** What anyone may ask either node (GET /api/ha, no login): who is active. */
export interface HaPublicStatus {
  /** This node's id. */
  node: string;
  /** This node's role (`disabled` when ha.enabled is false). */
  role: HaRole | "disabled";
  /**
   * The peer: its id and role as the peer link last reported it (`unknown` before the
   * first answer or without ha.peerLink, `unreachable` once lost).
   */
  peer: { id: string | null; role: string } | null;
  /** The virtual addresses (held by the active node). */
  virtualAddresses: string[];
}

/** Full status (GET /api/ha/status, CLI `ha status`). */
export interface HaStatus extends HaPublicStatus {
  /** ha.enabled. */
  enabled: boolean;
  /** When the role was entered (ISO), or null when disabled. */
  since: string | null;
  /** Why the role is what it is. */
  reason: string | null;
  /** The configured priority. */
  priority: number;
  /** keepalived's view. */
  engine: {
    running: boolean;
    pid: number | null;
    state: string | null;
    effectivePriority: number | null;
    restarts: number;
    lastError: string | null;
    refusedLines: number;
    log: string[];
  };
  /**
   * Dual actives this node saw (episodes), when, what it saw last, and why it yields
   * now (FAULT held while the peer is seen active over the peer link), or null.
   */
  dualActive: {
    count: number;
    lastAt: string | null;
    lastSeen: string | null;
    yielding: string | null;
  };
  /** What currently forces FAULT or lowers the priority. */
  track: TrackView | null;
  /** Policy as configured. */
  policy: { failover: string; preempt: boolean; advertMs: number; holdDownMs: number };
  /** The peer as configured. */
  peers: { address: string; id: string | null }[];
  /** What the peer link knows (null without ha.peerLink). */
  peerLink: (PeerView & { url: string; listening: string | null }) | null;
  /**
   * `failover: manual` (null in auto): whether keepalived is held in FAULT so this
   * standby does not take over, whether a takeover is pending (the active is gone or
   * failed: `ha failover` here takes over) and why, and until when a confirmed
   * takeover is released.
   */
  /** The notify hook (ha.hook): last run, runs, failures (null without one). */
  /**
   * Active-active (`ha.activeActive`, null without): the second client set (set b; set a
   * is `virtualAddresses`, and the role follows it), this node's mirrored priority for
   * it, failback, and keepalived's state of its instance.
   */
  activeActive: {
    virtualRouterId: number;
    virtualAddresses: string[];
    priority: number;
    failback: string;
    state: string | null;
  } | null;
  hook: HookView | null;
  manual: {
    held: boolean;
    pending: boolean;
    reason: string | null;
    releasedUntil: string | null;
  } | null;
  /**
   * Automatic failback with replication (ha.preempt / activeActive.failback "auto" with
   * ha.replication; null otherwise): per set this node takes back, what it waits for.
   */
  failback: FailbackStatus[] | null;
  /**
   * The catch-up hold (ha.replication with a peer link; null otherwise): held out of
   * MASTER from the start until this node's copy is safe to elect.
   */
  catchUp: CatchUpStatus | null;
  /** The witness (corosync + qdevice, quorum), null without ha.witness. */
  witness: WitnessStatus | null;
  /** The last rolling upgrade (`ha upgrade`), null when the updater is not wired. */
  upgrade: UpgradeStatus | null;
  /** Recent role transitions, newest last. */
  history: {
    from: string;
    to: string;
    cause: string;
    reason: string;
    at: string;
    afterMs: number;
  }[];
  /** Transitions since start, by target role. */
  transitions: Record<string, number>;
  /** When this node last became active (ISO), or null. */
  lastActiveAt: string | null;
}
