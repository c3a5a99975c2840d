/**
 * What `keepwire run` prints once it has started: where the UI is, where the data
 * is, and — while no administrator exists — the exact command that sets the first
 * password for this data directory, spelled with the command that started keepwire
 * (`./keepwire` from a checkout, `keepwire` when installed).
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Quote one word for a POSIX shell when it needs quoting. */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command a person types to run keepwire here: `KEEPWIRE_LAUNCHER` (set by the
 * `keepwire` launcher script of a checkout), else the checkout's launcher when this
 * runs from source (`./keepwire` from the repository root, its absolute path
 * elsewhere), else `keepwire` (an installed binary).
 */
export function launcherName(
  env: Record<string, string | undefined> = Deno.env.toObject(),
  cwd: string = Deno.cwd(),
  mainModule: string = Deno.mainModule,
): string {
  if (env.KEEPWIRE_LAUNCHER) return env.KEEPWIRE_LAUNCHER;
  if (mainModule.startsWith("file:") && mainModule.endsWith("/main.ts")) {
    const launcher = join(dirname(fileURLToPath(mainModule)), "keepwire");
    try {
      if (Deno.statSync(launcher).isFile) {
        const rel = relative(cwd, launcher);
        return rel === "keepwire" ? "./keepwire" : launcher;
      }
    } catch { /* no launcher next to main.ts */ }
  }
  return "keepwire";
}

/** The command that sets the first admin password for a data directory. */
export function firstPasswordCommand(dataDir: string, launcher: string = launcherName()): string {
  return `${shellWord(launcher)} user passwd admin --data ${shellWord(resolve(dataDir))}`;
}

/** Lines printed once the runtime has started. */
export function startupLines(o: {
  version: string;
  url: string;
  dataDir: string;
  hasAdmin: boolean;
  launcher?: string;
}): string[] {
  const lines = [`keepwire ${o.version} running: web on ${o.url}, data in ${resolve(o.dataDir)}`];
  if (!o.hasAdmin) {
    lines.push(
      `keepwire: no administrator yet — set the first password with: ${
        firstPasswordCommand(o.dataDir, o.launcher)
      }`,
      `keepwire: then sign in at ${o.url}`,
    );
  }
  return lines;
}

/** True when the store of a started runtime holds an administrator (false when unknown). */
export function adminExists(db: { prepare(sql: string): { get(): unknown } }): boolean {
  try {
    return !!db.prepare("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").get();
  } catch {
    return false;
  }
}
