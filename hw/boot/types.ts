/**
 * Boot environment: the variables a bootloader reads at boot (GRUB's grubenv,
 * U-Boot's env) and the updater writes to pick the next slot. One backend per
 * file under hw/boot/, all behind {@link BootEnv}.
 * @module
 */

/** Backends that implement {@link BootEnv}. */
export type BootEnvBackend = "grubenv" | "uboot" | "file" | "mock";

/** All variables of an environment, name to value. */
export type BootEnvVars = Record<string, string>;

/** Changes for one atomic write: a string sets, `null` unsets. */
export type BootEnvChanges = Record<string, string | null>;

/** One boot environment (a grubenv file, a U-Boot env, ...). */
export interface BootEnv {
  /** Which backend this is. */
  readonly backend: BootEnvBackend;
  /** Every variable, in the order the backend stores them. */
  list(): Promise<BootEnvVars>;
  /** One variable, or undefined when unset. */
  get(name: string): Promise<string | undefined>;
  /** Set and unset several variables in ONE atomic write (all or nothing). */
  set(vars: BootEnvChanges): Promise<void>;
  /** Short human description, e.g. `grubenv /boot/grub/grubenv`. */
  describe(): string;
}

/** What went wrong in a boot env operation. */
export type BootEnvErrorCode =
  | "missing" // the file / env does not exist
  | "corrupt" // the stored env cannot be parsed or fails its checksum
  | "too-large" // the new content does not fit the fixed size, or a file read is over its bound
  | "invalid-name" // a variable name the backend cannot store
  | "invalid-value" // a value the backend cannot store
  | "tool-missing" // fw_printenv / fw_setenv not installed
  | "tool-failed" // the tool ran and failed
  | "io" // read/write error
  | "invalid-config" // a backend config that does not validate
  | "injected"; // a fault injected into the mock

/** Error of a boot env backend; `code` says what kind, the message says what exactly. */
export class BootEnvError extends Error {
  /** Kind of failure. */
  readonly code: BootEnvErrorCode;
  /** Build with code and message. */
  constructor(code: BootEnvErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BootEnvError";
    this.code = code;
  }
}

// Printable ASCII except space and '=', not starting with '#'. A name starting
// with '#' is a comment in grubenv and in fw_setenv scripts; '=' splits NAME=VALUE
// everywhere; whitespace splits words in scripts.
const NAME_RE = /^[!-<>-~]+$/;

/** Why `name` cannot be a boot env variable name, or null when it can. */
export function bootVarNameProblem(name: string): string | null {
  if (name.length === 0) return "empty name";
  if (name.length > 255) return "name longer than 255 characters";
  if (name.startsWith("#")) return "name starts with '#' (a comment in the env formats)";
  if (name.includes("=")) return "name contains '='";
  if (!NAME_RE.test(name)) {
    return "name contains a space, a control or a non-ASCII character";
  }
  return null;
}

/** Throw `invalid-name`/`invalid-value` unless every change is storable anywhere. */
export function assertBootChanges(vars: BootEnvChanges): void {
  for (const [name, value] of Object.entries(vars)) {
    const problem = bootVarNameProblem(name);
    if (problem) {
      throw new BootEnvError(
        "invalid-name",
        `invalid variable name ${JSON.stringify(name)}: ${problem}`,
      );
    }
    if (value !== null && typeof value !== "string") {
      throw new BootEnvError("invalid-value", `value of ${name} must be a string or null`);
    }
    if (value !== null && value.includes("\0")) {
      throw new BootEnvError("invalid-value", `value of ${name} contains a NUL byte`);
    }
  }
}

/** An empty variable map without a prototype (so a variable may be named `__proto__`). */
export function newBootVars(entries: Iterable<[string, string]> = []): BootEnvVars {
  const out: BootEnvVars = Object.create(null);
  for (const [k, v] of entries) out[k] = v;
  return out;
}

/** Apply `changes` to `vars` (keeping positions of existing names; new ones at the end). */
export function applyBootChanges(vars: BootEnvVars, changes: BootEnvChanges): BootEnvVars {
  const out = newBootVars(Object.entries(vars));
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) delete out[name];
    else out[name] = value;
  }
  return out;
}
