/**
 * The one error type of the updater: a stable snake_case code for programs, a
 * sentence for people, and the HTTP status the API answers with (per code, in
 * {@link UPDATE_ERROR_STATUS}). Routes just throw; the web app's `onError` maps it.
 * @module
 */
import { errorMessage, type ErrorStatus, KeepwireError } from "../errors.ts";

export { errorMessage } from "../errors.ts";

/** Every update error code with its HTTP status. */
export const UPDATE_ERROR_STATUS = {
  not_a_bundle: 422, // wrong magic / not a .kwb file, bad header
  unsupported_format: 422, // a bundle format this build does not know
  unsigned: 422, // no signature at all
  unknown_key: 422, // signed, but by no key of the keyring
  bad_signature: 422, // a keyring key, but the signature does not match the manifest bytes
  bad_manifest: 422, // signed manifest that fails the schema
  bad_key: 500, // a key or keyring file that cannot be used (the box's configuration)
  truncated: 422, // the bundle ended early
  trailing_data: 422, // bytes after the last payload
  hash_mismatch: 422, // a payload does not match its sha256
  incompatible: 422, // compatible string differs
  downgrade: 422, // older than the booted slot
  no_slot: 422, // the manifest names a slot class the config lacks
  slot_too_small: 422, // an image does not fit its slot
  booted_unknown: 500, // the booted slot cannot be told
  io: 500, // read/write error (disk full, device gone, ...)
  download: 502, // HTTP error that retries did not cure
  hook_failed: 500, // a post-install hook failed
  busy: 409, // another install is running, or a slot is on trial
  boot_env: 500, // the boot env could not be read or written
  cancelled: 409, // the install was aborted
  bad_request: 400, // bad input to a command or route
} as const satisfies Record<string, ErrorStatus>;

/** What went wrong. */
export type UpdateErrorCode = keyof typeof UPDATE_ERROR_STATUS;

/** Error of the updater; `code` says what kind, `status` how the API answers, the message what exactly. */
export class UpdateError extends KeepwireError {
  /** Kind of failure. */
  declare readonly code: UpdateErrorCode;
  /** Build with code and message. */
  constructor(code: UpdateErrorCode, message: string, options?: { cause?: unknown }) {
    super(UPDATE_ERROR_STATUS[code], code, message, { cause: options?.cause });
  }
}

/**
 * Run one boot env operation; any failure becomes a `boot_env` UpdateError that
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
      "boot_env",
      `cannot ${what} in boot env ${boot.describe()}: ${errorMessage(e)}`,
      { cause: e },
    );
  }
}
