/**
 * Errors the supervisor throws on purpose, each with its HTTP status and stable code
 * (the web layer's `onError` answers them; routes just throw).
 * @module
 */
import { KeepwireError } from "../errors.ts";

/** No subsystem by that name (404 `subsystem_not_found`). */
export class UnknownSubsystemError extends KeepwireError {
  /** Build for a name. */
  constructor(name: string) {
    super(404, "subsystem_not_found", `no subsystem named "${name}"`);
  }
}

/** A subsystem name that cannot be one (400 `bad_subsystem_name`). */
export class BadSubsystemNameError extends KeepwireError {
  /** Build for the rejected text. */
  constructor(name: string) {
    super(
      400,
      "bad_subsystem_name",
      `"${name.slice(0, 64)}" is not a subsystem name (lowercase letters, digits, - and _)`,
      { fields: { name: "lowercase letters, digits, - and _" } },
    );
  }
}

/** The command does not apply in the subsystem's state (409 `invalid_state`). */
export class SubsystemStateError extends KeepwireError {
  /** Build with the sentence that says why. */
  constructor(message: string) {
    super(409, "invalid_state", message);
  }
}

/** Essential subsystems are never suspended (409 `essential_not_suspendable`). */
export class EssentialNotSuspendableError extends KeepwireError {
  /** Build for a subsystem. */
  constructor(name: string) {
    super(
      409,
      "essential_not_suspendable",
      `subsystem ${name} is essential and is never suspended`,
    );
  }
}

/**
 * A transition the state machine's table does not allow (409 `invalid_transition`).
 * Commands check their state first, so this names a bug if it ever reaches a caller.
 */
export class InvalidTransitionError extends KeepwireError {
  /** Build for from → to. */
  constructor(name: string, from: string, to: string) {
    super(409, "invalid_transition", `subsystem ${name}: illegal transition ${from} -> ${to}`);
  }
}
