/** Errors of the SDK's table service (mod/sdk/host.ts), each with its HTTP status and code. */
import { KeepwireError } from "../errors.ts";

/** A table declaration is invalid (names the field). */
export class SdkDeclarationError extends KeepwireError {
  /** Build one with the field path (`tables[0].columns.id`) and what is wrong. */
  constructor(field: string, reason: string) {
    super(422, "sdk_invalid_tables", `tables: ${field}: ${reason}`, {
      fields: { [field]: reason },
    });
  }
}

/** A declared table has no primary key: it could not be replicated, so it is refused. */
export class SdkNoPrimaryKeyError extends KeepwireError {
  /** Build one naming the table. */
  constructor(table: string, field: string) {
    super(
      422,
      "sdk_no_primary_key",
      `table "${table}" has no primary key: a replicated table needs one (SQLite sessions skip tables without it); declare primaryKey`,
      { fields: { [field]: "required: at least one column" } },
    );
  }
}

/** A write to replicated tables on a node that is not the active one. */
export class SdkNotActiveError extends KeepwireError {
  /** Build one; `role` is this node's role. */
  constructor(role: string) {
    super(
      409,
      "sdk_not_active",
      `this node is ${role}: writes to replicated tables are refused here (the active node writes; this node holds its copy)`,
    );
  }
}

/** A statement the SDK refuses (touches another table, DDL outside migrations, bad SQL). */
export class SdkSqlError extends KeepwireError {
  /** Build one with SQLite's reason. */
  constructor(sql: string, reason: string, cause?: unknown) {
    super(400, "sdk_sql_refused", `statement refused: ${reason} (${sql.slice(0, 120)})`, { cause });
  }
}

/** Tables used before they were declared, or a group the subsystem does not own. */
export class SdkUnknownGroupError extends KeepwireError {
  /** Build one naming the group. */
  constructor(group: string) {
    super(404, "sdk_unknown_group", `no table group "${group}" declared by this subsystem`);
  }
}

/** Handoff thresholds that do not hold (names the field). */
export class SdkHandoffSettingsError extends KeepwireError {
  /** Build one with the field and what is wrong. */
  constructor(field: string, reason: string) {
    super(422, "sdk_invalid_handoff", `handoff: ${field}: ${reason}`, {
      fields: { [field]: reason },
    });
  }
}
