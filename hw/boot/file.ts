/**
 * The `file` boot env backend for development: a JSON object of string
 * variables (`{"ORDER": "A B", "A_OK": "1"}`), replaced crash-safely on every
 * write. A missing file is an empty env; the first write creates it.
 * @module
 */
import { dirname } from "node:path";
import { z } from "zod";
import {
  applyBootChanges,
  assertBootChanges,
  type BootEnv,
  type BootEnvChanges,
  BootEnvError,
  type BootEnvVars,
  newBootVars,
} from "./types.ts";
import {
  atomicReplaceFile,
  BootSerial,
  readFileBounded,
  removeStaleTemps,
  withDirLock,
} from "./atomic.ts";

const fileSchema = z.record(z.string(), z.string());

/** Options of {@link FileBootEnv}. */
export interface FileBootEnvOptions {
  /** Path of the JSON file. */
  file: string;
}

/** JSON-file boot environment (development, tests). */
export class FileBootEnv implements BootEnv {
  /** Backend name. */
  readonly backend = "file" as const;
  readonly #file: string;
  readonly #serial = new BootSerial();

  /** Build for one file. */
  constructor(opts: FileBootEnvOptions) {
    this.#file = opts.file;
  }

  /** Short description. */
  describe(): string {
    return `file ${this.#file}`;
  }

  async #read(): Promise<BootEnvVars> {
    let text: string;
    try {
      text = new TextDecoder().decode(await readFileBounded(this.#file, "JSON boot env"));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return newBootVars();
      if (e instanceof BootEnvError) throw e;
      throw new BootEnvError("io", `${this.#file}: ${(e as Error).message}`, { cause: e });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new BootEnvError("corrupt", `${this.#file}: not valid JSON: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const r = fileSchema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      const where = issue.path.length ? ` at ${issue.path.join(".")}` : "";
      throw new BootEnvError(
        "corrupt",
        `${this.#file}: expected a JSON object of string values${where}: ${issue.message}`,
      );
    }
    // Build from the parsed JSON itself (own keys, even `__proto__`).
    return newBootVars(Object.entries(raw as Record<string, string>));
  }

  /** All variables. */
  list(): Promise<BootEnvVars> {
    return this.#read();
  }

  /** One variable. */
  async get(name: string): Promise<string | undefined> {
    const vars = await this.#read();
    return Object.hasOwn(vars, name) ? vars[name] : undefined;
  }

  /** One crash-safe rewrite with all changes applied. */
  async set(vars: BootEnvChanges): Promise<void> {
    assertBootChanges(vars);
    await this.#serial.run(async () => {
      try {
        await Deno.mkdir(dirname(this.#file), { recursive: true });
        await withDirLock(this.#file, async () => {
          const next = applyBootChanges(await this.#read(), vars);
          await removeStaleTemps(this.#file);
          await atomicReplaceFile(
            this.#file,
            new TextEncoder().encode(JSON.stringify(next, null, 2) + "\n"),
          );
        });
      } catch (e) {
        if (e instanceof BootEnvError) throw e;
        throw new BootEnvError("io", `${this.#file}: write failed: ${(e as Error).message}`, {
          cause: e,
        });
      }
    });
  }
}
