/** Errors of the replication engine, each with its HTTP status and a stable code. */
import { KeepwireError } from "../errors.ts";

/** A table declared for replication has no PRIMARY KEY (the session extension cannot capture it). */
export class ReplNoPrimaryKeyError extends KeepwireError {
  /** Build one naming the table. */
  constructor(table: string) {
    super(
      422,
      "repl_no_primary_key",
      `table "${table}" has no PRIMARY KEY: it cannot be replicated (SQLite sessions ignore such tables); add a primary key in a migration or leave it out of the registry`,
    );
  }
}

/** The replication registry is invalid (unknown table or group, bad option). */
export class ReplConfigError extends KeepwireError {
  /** Build one with the reason and the field it is about. */
  constructor(field: string, reason: string) {
    super(400, "repl_invalid_config", `replication: ${field}: ${reason}`, {
      fields: { [field]: reason },
    });
  }
}

/** A replicated write was asked of a node that is not the primary. */
export class ReplNotPrimaryError extends KeepwireError {
  /** Build one; `role` is the current role. */
  constructor(role: string) {
    super(409, "repl_not_primary", `this node is ${role}: replicated writes happen on the primary`);
  }
}

/**
 * A replicated table was written on the standby: replicated tables are written on the
 * active only (the standby receives them).
 */
export class ReplReadOnlyError extends KeepwireError {
  /** Build one naming the table. */
  constructor(table: string) {
    super(
      409,
      "repl_standby_read_only",
      `this node is the standby: table "${table}" is replicated from the active and written there only; make the change on the active`,
    );
  }
}

/** A `sync` group configured to refuse writes while the standby is gone. */
export class ReplStandbyLostError extends KeepwireError {
  /** Build one naming the group. */
  constructor(group: string, reason: string) {
    super(
      503,
      "repl_standby_lost",
      `group "${group}" is sync with onStandbyLost "refuse" and the standby is gone (${reason}): write refused, nothing stored`,
    );
  }
}

/**
 * This node is handing the active role to its peer (a graceful handover: `ha failover`,
 * the rolling upgrade): new replicated writes are refused until the peer has taken over,
 * so nothing is acknowledged here that the peer would not have. Retry on the service
 * address (the peer answers there in a moment).
 */
export class ReplHandingOverError extends KeepwireError {
  /** Build one. */
  constructor() {
    super(
      503,
      "repl_handing_over",
      "this node is handing the active role to its peer: write refused, nothing stored; retry in a moment",
    );
  }
}

/**
 * The standby did not confirm a `sync` write of a refusing group in time. The write IS
 * committed locally; it is not confirmed on the standby.
 */
export class ReplAckTimeoutError extends KeepwireError {
  /** Build one naming the group and sequence. */
  constructor(group: string, seq: number, reason: string) {
    super(
      504,
      "repl_not_confirmed",
      `group "${group}": seq ${seq} is committed locally but the standby did not confirm it (${reason})`,
    );
  }
}

/** Why a frame or snapshot is refused (stable codes; journalled in `repl.refused`). */
export type RefusalReason =
  | "corrupt"
  | "truncated"
  | "other_pair"
  | "epoch_mismatch"
  | "stale_epoch"
  | "gap"
  | "schema_mismatch"
  | "conflict"
  | "snapshot_checksum"
  | "not_standby"
  | "unauthorized"
  | "wrong_channel";

/** A frame or snapshot that cannot be used. */
export class ReplFrameError extends KeepwireError {
  /** The refusal reason. */
  readonly reason: RefusalReason;
  /** Build one. */
  constructor(reason: RefusalReason, message: string) {
    super(400, "repl_refused", `replication refused (${reason}): ${message}`);
    this.reason = reason;
  }
}
