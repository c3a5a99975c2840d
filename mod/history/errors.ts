/**
 * Errors of the metric history.
 * @module
 */
import { KeepwireError } from "../errors.ts";

/** A history query whose fields are each valid but do not fit together (window, step). */
export class HistoryRangeError extends KeepwireError {
  /** Build; `field` is the query field to change. */
  constructor(field: string, message: string) {
    super(400, "bad_request", `invalid history query: ${field}: ${message}`, {
      fields: { [field]: message },
    });
  }
}
