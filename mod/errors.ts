/**
 * The base of every error a module throws on purpose. It carries the HTTP status the
 * web layer answers with and a stable machine-readable code, so `app.onError` maps
 * every module's errors in one place and routes never translate errors by hand.
 *
 * A module declares its own subclasses in its `errors.ts`.
 *
 * @example
 * ```ts
 * export class SegmentNotFoundError extends KeepwireError {
 *   constructor(name: string) {
 *     super(404, "segment_not_found", `no bypass segment named ${name}`);
 *   }
 * }
 * ```
 * @module
 */

/** HTTP statuses a KeepwireError may carry (client and server errors with a body). */
export type ErrorStatus =
  | 400
  | 401
  | 403
  | 404
  | 405
  | 408
  | 409
  | 410
  | 413
  | 415
  | 422
  | 423
  | 429
  | 500
  | 501
  | 502
  | 503
  | 504
  | 507;

/** An expected failure with its HTTP status and a stable code (snake_case). */
export class KeepwireError extends Error {
  /** The HTTP status the API answers with. */
  readonly status: ErrorStatus;
  /** Stable code for programs (`segment_not_found`, `bad_request`, ...). */
  readonly code: string;
  /** Per-field problems (path → reason), for validation errors. */
  readonly fields?: Record<string, string>;
  /** Build one; `message` is a sentence for a person. */
  constructor(
    status: ErrorStatus,
    code: string,
    message: string,
    opts: { fields?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    if (opts.fields) this.fields = opts.fields;
  }
}

/** Message of any thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
