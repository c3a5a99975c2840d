/**
 * The `uboot` boot env backend: U-Boot's environment through libubootenv's
 * `fw_printenv` and `fw_setenv -s SCRIPT` with a configurable fw_env.config.
 * libubootenv does the CRC32, the redundant copies (writes the older copy with
 * flags+1, falls back to the valid copy when the newest is corrupt) and the lock;
 * one `fw_setenv -s` call is one env write, so several variables change atomically.
 *
 * Safety rules on top of the tools:
 * - when no stored copy is valid, libubootenv silently uses its default env (and
 *   fw_setenv would write it out); that is a `corrupt` error unless
 *   `allowDefaultEnv` is set (fresh boards);
 * - every write is read back and compared;
 * - U-Boot has no empty variables: setting "" unsets, like `setenv NAME`;
 * - values with a newline cannot pass through a script file and are refused;
 * - `fw_printenv` prints `name=value` lines, so in `list()` a value with a
 *   newline followed by `word=` is ambiguous (read as two variables); `get()`
 *   uses `fw_printenv -n NAME` and is exact.
 * @module
 */
import {
  assertBootChanges,
  type BootEnv,
  type BootEnvChanges,
  BootEnvError,
  type BootEnvVars,
  bootVarNameProblem,
  newBootVars,
} from "./types.ts";
import { BootSerial, readFileBounded } from "./atomic.ts";

/** Options of {@link UBootEnv}. */
export interface UBootEnvOptions {
  /** fw_env.config path (legacy format: `device offset size [sector-size [sectors]]` per copy). */
  config: string;
  /** fw_printenv executable (default: `fw_printenv` on PATH). */
  fwPrintenv?: string;
  /** fw_setenv executable (default: `fw_setenv` on PATH). */
  fwSetenv?: string;
  /** Default env file for `-f`. */
  defaultEnv?: string;
  /** Accept libubootenv's default env when no copy is valid. */
  allowDefaultEnv?: boolean;
  /** Kill a tool after this many ms (default 10 s). */
  timeoutMs?: number;
}

interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

const DEFAULT_USED = "Cannot read environment, using default";

/** Parse `fw_printenv` output (`name=value` lines; a line that is not `name=` continues a value with a newline). */
export function parseFwPrintenv(out: string): BootEnvVars {
  const vars = newBootVars();
  const lines = out.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  let last: string | null = null;
  for (const line of lines) {
    const eq = line.indexOf("=");
    const name = eq > 0 ? line.slice(0, eq) : "";
    if (eq > 0 && bootVarNameProblem(name) === null) {
      vars[name] = line.slice(eq + 1);
      last = name;
    } else if (last !== null) {
      vars[last] += "\n" + line;
    } else {
      throw new BootEnvError(
        "tool-failed",
        `fw_printenv printed an unexpected line: ${JSON.stringify(line)}`,
      );
    }
  }
  return vars;
}

/** The `fw_setenv -s` script for `changes` (`name=value` sets, `name=` unsets). */
export function fwSetenvScript(changes: BootEnvChanges): string {
  let s = "";
  for (const [name, value] of Object.entries(changes)) s += `${name}=${value ?? ""}\n`;
  return s;
}

/** U-Boot environment through libubootenv's tools. */
export class UBootEnv implements BootEnv {
  /** Backend name. */
  readonly backend = "uboot" as const;
  readonly #o: Required<Omit<UBootEnvOptions, "defaultEnv">> & { defaultEnv?: string };
  readonly #serial = new BootSerial();

  /** Build (the tools run only on list/get/set). */
  constructor(opts: UBootEnvOptions) {
    this.#o = {
      config: opts.config,
      fwPrintenv: opts.fwPrintenv ?? "fw_printenv",
      fwSetenv: opts.fwSetenv ?? "fw_setenv",
      defaultEnv: opts.defaultEnv,
      allowDefaultEnv: opts.allowDefaultEnv ?? false,
      timeoutMs: opts.timeoutMs ?? 10_000,
    };
  }

  /** Short description. */
  describe(): string {
    return `uboot ${this.#o.config}`;
  }

  #baseArgs(): string[] {
    const a = ["-c", this.#o.config];
    if (this.#o.defaultEnv) a.push("-f", this.#o.defaultEnv);
    return a;
  }

  async #run(tool: string, args: string[]): Promise<ToolResult> {
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(tool, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      }).output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new BootEnvError(
          "tool-missing",
          `${tool} not found (install libubootenv-tool, or set fwPrintenv/fwSetenv)`,
          { cause: e },
        );
      }
      if (e instanceof DOMException && (e.name === "AbortError" || e.name === "TimeoutError")) {
        throw new BootEnvError("tool-failed", `${tool} timed out after ${this.#o.timeoutMs} ms`, {
          cause: e,
        });
      }
      throw new BootEnvError("tool-failed", `${tool}: ${(e as Error).message}`, { cause: e });
    }
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr).trim() };
  }

  /** Check config and the env devices it names, for a clear `missing` error. */
  async #checkConfig(): Promise<void> {
    let text: string;
    try {
      text = new TextDecoder().decode(await readFileBounded(this.#o.config, "fw_env.config"));
    } catch (e) {
      if (e instanceof BootEnvError) throw e;
      if (e instanceof Deno.errors.NotFound) {
        throw new BootEnvError("missing", `${this.#o.config}: no such fw_env.config`, { cause: e });
      }
      throw new BootEnvError("io", `${this.#o.config}: ${(e as Error).message}`, { cause: e });
    }
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const fields = line.split(/\s+/);
      // Legacy format only (device offset size ...); leave YAML configs to the tool.
      if (fields.length < 3 || !fields[0].startsWith("/")) continue;
      try {
        await Deno.stat(fields[0]);
      } catch {
        throw new BootEnvError(
          "missing",
          `${this.#o.config}: env copy ${fields[0]} does not exist`,
        );
      }
    }
  }

  /** Run fw_printenv with extra args; refuses a default env (unless allowed). */
  async #printenv(extra: string[]): Promise<string> {
    await this.#checkConfig();
    const r = await this.#run(this.#o.fwPrintenv, [...this.#baseArgs(), ...extra]);
    const defaultUsed = r.stderr.includes(DEFAULT_USED);
    if (r.code !== 0) {
      if (defaultUsed) {
        throw new BootEnvError(
          "corrupt",
          `U-Boot env (${this.#o.config}) unreadable: no copy has a valid CRC and there is no ` +
            `default env (fw_printenv exit ${r.code}: ${r.stderr.replaceAll("\n", "; ")})`,
        );
      }
      throw new BootEnvError(
        "tool-failed",
        `fw_printenv -c ${this.#o.config} failed (exit ${r.code}): ${r.stderr || "no message"}`,
      );
    }
    if (defaultUsed && !this.#o.allowDefaultEnv) {
      throw new BootEnvError(
        "corrupt",
        `U-Boot env (${this.#o.config}) unreadable: no copy has a valid CRC; libubootenv fell ` +
          `back to its default env (set allowDefaultEnv to accept that on a fresh board)`,
      );
    }
    return r.stdout;
  }

  async #load(): Promise<BootEnvVars> {
    return parseFwPrintenv(await this.#printenv([]));
  }

  /** Values of names without newlines in them, exactly (`fw_printenv -n`; "" is unset). */
  async #values(names: string[]): Promise<string[]> {
    const out = await this.#printenv(["-n", ...names]);
    const lines = out.split("\n");
    lines.pop();
    if (lines.length !== names.length) {
      throw new BootEnvError(
        "tool-failed",
        `fw_printenv -n printed ${lines.length} lines for ${names.length} names`,
      );
    }
    return lines;
  }

  /** All variables (libubootenv prints them sorted by name). */
  list(): Promise<BootEnvVars> {
    return this.#load();
  }

  /** One variable, exactly, even with newlines (`fw_printenv -n NAME`; U-Boot has no empty values). */
  async get(name: string): Promise<string | undefined> {
    const problem = bootVarNameProblem(name);
    if (problem) {
      throw new BootEnvError(
        "invalid-name",
        `invalid variable name ${JSON.stringify(name)}: ${problem}`,
      );
    }
    const out = await this.#printenv(["-n", name]);
    const value = out.endsWith("\n") ? out.slice(0, -1) : out;
    return value === "" ? undefined : value;
  }

  /** One `fw_setenv -s` call with every change, then read back and compared. */
  async set(vars: BootEnvChanges): Promise<void> {
    assertBootChanges(vars);
    for (const [name, value] of Object.entries(vars)) {
      if (value !== null && value.includes("\n")) {
        throw new BootEnvError(
          "invalid-value",
          `value of ${name} contains a newline, which fw_setenv -s cannot write`,
        );
      }
    }
    await this.#serial.run(async () => {
      await this.#printenv([]); // refuse to write over an unreadable env
      const script = await Deno.makeTempFile({ prefix: "keepwire-fw_setenv-" });
      try {
        await Deno.writeTextFile(script, fwSetenvScript(vars));
        const r = await this.#run(this.#o.fwSetenv, [...this.#baseArgs(), "-s", script]);
        if (r.code !== 0) {
          throw new BootEnvError(
            "tool-failed",
            `fw_setenv -c ${this.#o.config} -s failed (exit ${r.code}): ${
              r.stderr || "no message"
            }`,
          );
        }
      } finally {
        await Deno.remove(script).catch(() => {});
      }
      const names = Object.keys(vars);
      const now = await this.#values(names);
      for (const [i, name] of names.entries()) {
        const value = vars[name];
        const want = value === null || value === "" ? undefined : value;
        const got = now[i] === "" ? undefined : now[i];
        if (got !== want) {
          throw new BootEnvError(
            "tool-failed",
            `fw_setenv exited 0 but ${name} reads back as ${JSON.stringify(got ?? null)}, ` +
              `expected ${JSON.stringify(want ?? null)}`,
          );
        }
      }
    });
  }
}
