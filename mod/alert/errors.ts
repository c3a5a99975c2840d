/**
 * Errors of the alert module (the web app answers each with its status and code).
 * @module
 */
import { KeepwireError } from "../errors.ts";

/** Bad input to the alert API: names each bad field. */
export class AlertInputError extends KeepwireError {
  /** Build; `fields` maps a field path to what is wrong with it. */
  constructor(message: string, fields?: Record<string, string>) {
    super(400, "alert_bad_request", message, { fields });
  }
}

/** No channel, recipient or delivery by that name or id. */
export class AlertNotFoundError extends KeepwireError {
  /** Build for a thing (`channel`, `recipient`, `delivery`) and its name. */
  constructor(what: string, name: string) {
    super(404, `alert_${what}_not_found`, `no alert ${what} ${JSON.stringify(name)}`);
  }
}

/** A delivery cannot be retried (it is not failed). */
export class AlertStateError extends KeepwireError {
  /** Build with a sentence. */
  constructor(message: string) {
    super(409, "alert_wrong_state", message);
  }
}

/** Alerts are disabled in the configuration. */
export class AlertDisabledError extends KeepwireError {
  /** Build. */
  constructor() {
    super(503, "alert_disabled", "alerts are disabled (alert.enabled is false)");
  }
}
