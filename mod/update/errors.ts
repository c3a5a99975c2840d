/** The one error type of the updater: a code for programs, a sentence for people. */

/** What went wrong. */
export type UpdateErrorCode =
  | "not-a-bundle" // wrong magic / not a .kwb file
  | "unsupported-format" // a bundle format this build does not know
  | "unsigned" // no signature at all
  | "unknown-key" // signed, but by no key of the keyring
  | "bad-signature" // a keyring key, but the signature does not match the manifest bytes
  | "bad-manifest" // signed manifest that fails the schema
  | "bad-key" // a key or keyring file that cannot be used
  | "truncated" // the bundle ended early
  | "trailing-data" // bytes after the last payload
  | "hash-mismatch" // a payload does not match its sha256
  | "incompatible" // compatible string differs
  | "downgrade" // older than the booted slot
  | "no-slot" // the manifest names a slot class the config lacks
  | "slot-too-small" // an image does not fit its slot
  | "booted-unknown" // the booted slot cannot be told
  | "io" // read/write error (disk full, device gone, ...)
  | "download" // HTTP error that retries did not cure
  | "hook-failed" // a post-install hook failed
  | "busy" // another install is running
  | "boot-env" // the boot env could not be read or written
  | "cancelled" // the install was aborted
  | "bad-request"; // bad input to a command or route

/** Error of the updater; `code` says what kind, the message says what exactly. */
export class UpdateError extends Error {
  /** Kind of failure. */
  readonly code: UpdateErrorCode;
  /** Build with code and message. */
  constructor(code: UpdateErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UpdateError";
    this.code = code;
  }
}

/**
 * Run one boot env operation; any failure becomes a `boot-env` UpdateError that
 * says what was being done and in which env.
 */
export async function bootOp<T>(
  boot: { describe(): string },
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new UpdateError(
      "boot-env",
      `cannot ${what} in boot env ${boot.describe()}: ${errorMessage(e)}`,
      {
        cause: e,
      },
    );
  }
}

/** Message of any thrown value. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
