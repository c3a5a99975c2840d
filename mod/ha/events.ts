/**
 * The HA module's event kinds and payloads (merged into the bus's EventMap).
 * @module
 */
import type {} from "../events/mod.ts";

declare module "../events/mod.ts" {
  interface EventMap {
    /** The node's role changed (keepalived report, maintenance, keepalived down). */
    "ha.role_changed": {
      node: string;
      from: string;
      to: string;
      cause: string;
      reason: string;
      afterMs: number;
      priority: number | null;
    };
    /**
     * Active-active: this node's role for client set `b` changed (its VRRP instance's
     * state: MASTER → active, anything else → standby); the replication channel of set b
     * follows it.
     */
    "ha.set_changed": { node: string; set: "b"; from: string | null; to: string };
    /** What keepwire tells keepalived changed: FAULT or a priority penalty. */
    "ha.track_changed": {
      node: string;
      fault: boolean;
      faultReasons: string[];
      penalty: number;
      penalties: string[];
    };
    /** keepalived exited, could not start, or its config was refused. */
    "ha.engine_failed": { node: string; reason: string; restartInMs: number | null };
    /** keepalived (re)started. */
    "ha.engine_started": { node: string; pid: number };
    /** An operator handed the active role to the peer (`ha failover`). */
    "ha.failover_manual": { node: string; by: string; holdMs: number };
    /** failover manual: the active is gone or failed; this standby waits for `ha failover`. */
    "ha.failover_pending": { node: string; peer: string; reason: string };
    /** failover manual: an operator confirmed the takeover on this standby. */
    "ha.takeover_confirmed": { node: string; by: string; reason: string };
    /**
     * Automatic failback with replication: this node owns `set` and the peer holds it;
     * it does not take it back yet (`reason`: its channel not caught up, ...). Once per
     * episode; `ha status` has the reason now.
     */
    "ha.failback_waiting": { node: string; set: "a" | "b"; reason: string };
    /** Automatic failback: caught up (and the delay passed): this node asked the holder to hand over. */
    "ha.failback_requested": { node: string; set: "a" | "b"; reason: string };
    /** Automatic failback: the holder refused to hand over (it asks again later). */
    "ha.failback_refused": { node: string; set: "a" | "b"; reason: string };
    /**
     * The catch-up hold (replication with a peer link): this node started while the peer is
     * active and its copy is behind; keepalived is held in FAULT (a standby) until its
     * channels caught up. Once per start.
     */
    "ha.catching_up": { node: string; peer: string; reason: string };
    /**
     * The catch-up hold let go after this node caught up with the active peer (`how`
     * caught_up), or because the peer link lost the peer (`peer_lost`: a lone node may
     * take over); VRRP decides from then on.
     */
    "ha.caught_up": { node: string; peer: string; how: string; reason: string; heldMs: number };
    /** An operator turned maintenance on or off. */
    "ha.maintenance_changed": { node: string; on: boolean; by: string };
    /** A notify FIFO line keepwire could not use (counted, never acted on). */
    "ha.engine_line_refused": { node: string; line: string };
    /** The peer stopped answering on the peer link (`lostAfter` polls in a row). */
    "ha.peer_lost": { node: string; peer: string; reason: string };
    /** The peer reports unhealthy parts ("name: detail" each). */
    "ha.peer_degraded": { node: string; peer: string; parts: string[] };
    /** The peer answers again (`from: lost`) or reports no unhealthy part (`degraded`). */
    "ha.peer_recovered": { node: string; peer: string; from: string };
    /** The peer runs another keepwire version (same peer protocol: still monitored). */
    "ha.peer_version": { node: string; peer: string; peerVersion: string; version: string };
    /** A peer message refused: unauthenticated, stale, replay, other pair, malformed, incompatible. */
    "ha.peer_refused": {
      node: string;
      direction: string;
      reason: string;
      detail: string;
      count: number;
    };
    /**
     * Both nodes were active at once (mod/ha/dual.ts): `via` vrrp (adverts, typically when
     * a partition heals) or peer_link; `seen` says what; `yields`: this node drops the address.
     */
    "ha.dual_active": {
      node: string;
      peer: string;
      via: string;
      seen: string;
      resolvedBy: string;
      yields: boolean;
    };
    /** The notify hook ran (ha.hook) for a role change. */
    "ha.hook_ran": { node: string; role: string; from: string; ms: number };
    /** The notify hook failed: non-zero exit, killed after ha.hook.timeoutMs, or not started. */
    "ha.hook_failed": {
      node: string;
      role: string;
      from: string;
      error: string;
      output: string;
      ms: number;
    };
    /** The node lost quorum (witness): it is held in FAULT until quorate again. */
    "ha.quorum_lost": { node: string; reason: string };
    /** The node is quorate again (witness). */
    "ha.quorum_regained": { node: string; members: number[] };
    /** corosync or corosync-qdevice exited or could not start (witness). */
    "ha.witness_failed": { node: string; reason: string; restartInMs: number };
    /** corosync and corosync-qdevice (re)started (witness). */
    "ha.witness_started": { node: string; pids: number[] };
    /** Quorum lost and keepalived still MASTER past demoteBoundMs: watchdog petting stops. */
    "ha.self_fence": { node: string; reason: string };
    /** A rolling upgrade of the pair started on this (active) node (`ha upgrade`). */
    "ha.upgrade_started": { node: string; bundle: string; by: string };
    /** The rolling upgrade moved to `step` (mod/ha/upgrade.ts). */
    "ha.upgrade_step": { node: string; step: string; target: string };
    /** The rolling upgrade finished: both nodes run `target`, committed. */
    "ha.upgrade_done": { node: string; target: string; ms: number };
    /** The rolling upgrade stopped at `step` (both nodes left serving). */
    "ha.upgrade_stopped": { node: string; step: string; reason: string; target: string };
    /** This node was paired (`ha pair`): credentials stored, the peer link restarts on them. */
    "ha.paired": { node: string; peer: string; pairId: string };
    /** This node left the pair (`ha unpair`): credentials removed, peer link back to pairing. */
    "ha.unpaired": {
      node: string;
      peer: string;
      pairId: string;
      by: string;
      /** `--force` was needed: what only this node holds and the peer never acknowledged. */
      forced: boolean;
      lost: string | null;
    };
    /** The peer says it left the pair (`ha unpair` on it): nothing is replicated any more. */
    "ha.peer_unpaired": { node: string; peer: string; pairId: string; unpairedAt: string };
    /** This node's peer link certificate was replaced (`ha rotate-cert`). */
    "ha.cert_rotated": {
      node: string;
      peer: string;
      by: string;
      fingerprint: string;
      previous: string;
      notAfter: string | null;
    };
    /** The peer replaced its certificate; this node now pins the new one. */
    "ha.peer_cert_rotated": { node: string; peer: string; fingerprint: string };
    /** A peer link certificate (this node's or the pinned peer's) expires within the warning time. */
    "ha.cert_expiring": {
      node: string;
      /** Whose certificate: this node's or the peer's. */
      whose: "this node" | "peer";
      holder: string;
      fingerprint: string;
      notAfter: string;
      daysLeft: number;
    };
  }
}

/** Every kind this module declares (docs, UI). */
export const HA_EVENTS = [
  "ha.role_changed",
  "ha.set_changed",
  "ha.track_changed",
  "ha.engine_failed",
  "ha.engine_started",
  "ha.failover_manual",
  "ha.maintenance_changed",
  "ha.failover_pending",
  "ha.takeover_confirmed",
  "ha.failback_waiting",
  "ha.failback_requested",
  "ha.failback_refused",
  "ha.catching_up",
  "ha.caught_up",
  "ha.engine_line_refused",
  "ha.peer_lost",
  "ha.peer_degraded",
  "ha.peer_recovered",
  "ha.peer_version",
  "ha.peer_refused",
  "ha.dual_active",
  "ha.hook_ran",
  "ha.hook_failed",
  "ha.quorum_lost",
  "ha.quorum_regained",
  "ha.witness_failed",
  "ha.witness_started",
  "ha.self_fence",
  "ha.upgrade_started",
  "ha.upgrade_step",
  "ha.upgrade_done",
  "ha.upgrade_stopped",
  "ha.paired",
  "ha.unpaired",
  "ha.peer_unpaired",
  "ha.cert_rotated",
  "ha.peer_cert_rotated",
  "ha.cert_expiring",
] as const;
