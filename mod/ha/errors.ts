/** Errors of the HA module, each with its HTTP status and a stable code. */
import { KeepwireError } from "../errors.ts";

/** The `ha` section is disabled on this node. */
export class HaDisabledError extends KeepwireError {
  /** Build one. */
  constructor() {
    super(409, "ha_disabled", "high availability is not enabled on this node (ha.enabled)");
  }
}

/** A failover was asked of a node that is not active. */
export class HaNotActiveError extends KeepwireError {
  /** Build one; `role` is the current role. */
  constructor(role: string) {
    super(
      409,
      "ha_not_active",
      `this node is ${role}, not active: only the active node hands over`,
    );
  }
}

/** `ha failover` on a standby (manual failover) while the peer is active. */
export class HaNoTakeoverPendingError extends KeepwireError {
  /** Build one; `why` says what the peer is doing. */
  constructor(why: string) {
    super(
      409,
      "ha_no_takeover_pending",
      `no takeover is pending: ${why}; to move the active role, run ha failover on the active node`,
    );
  }
}

/** keepalived is not running or refused its configuration. */
export class HaEngineError extends KeepwireError {
  /** Build one with the reason. */
  constructor(reason: string, cause?: unknown) {
    super(503, "ha_engine_unavailable", `keepalived is not usable: ${reason}`, { cause });
  }
}

/**
 * `ha unpair` refused: this node is the only copy of changes the peer never acknowledged
 * (the message says which); `--force` unpairs anyway.
 */
export class HaUnpairLossError extends KeepwireError {
  /** Build one saying what would be lost. */
  constructor(lost: string) {
    super(
      409,
      "ha_unpair_would_lose",
      `refusing to unpair: ${lost}. Let the peer catch up first, or unpair with --force (ha unpair --force) to accept that`,
    );
  }
}

/** `ha rotate-cert` could not hand the new certificate to the peer: nothing changed. */
export class HaRotateError extends KeepwireError {
  /** Build one with the reason. */
  constructor(reason: string) {
    super(
      502,
      "ha_rotate_failed",
      `certificate rotation failed, nothing changed: ${reason}`,
    );
  }
}

/**
 * A graceful handover was refused before it started: the standby had not confirmed every
 * change this node acknowledged (handing over would lose them); this node stays active.
 */
export class HaHandoverNotReadyError extends KeepwireError {
  /** Build one with what replication said. */
  constructor(why: string) {
    super(503, "ha_handover_not_ready", `handover refused, this node stays active: ${why}`);
  }
}
