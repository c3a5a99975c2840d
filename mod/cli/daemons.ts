/**
 * Find the keepwire daemons running on this machine and the data directory each
 * uses: a running daemon holds `DATA/keepwire.lock` open for its whole life
 * (mod/data_dir_lock.ts), so every open file descriptor in /proc that points at a
 * file of that name names one daemon and its directory. Processes of other users
 * are invisible without root; that is fine for a warning.
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { LOCK_FILE } from "../data_dir_lock.ts";
import { daemonRequest } from "./client.ts";

/** One running daemon. */
export interface RunningDaemon {
  /** Its pid. */
  pid: number;
  /** Its data directory (absolute). */
  dataDir: string;
}

/** Every daemon visible in `/proc` (not this process), by pid. */
export function runningDaemons(proc = "/proc"): RunningDaemon[] {
  const found: RunningDaemon[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(proc)];
  } catch {
    return found;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    let fds: Deno.DirEntry[];
    try {
      fds = [...Deno.readDirSync(`${proc}/${e.name}/fd`)];
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = Deno.readLinkSync(`${proc}/${e.name}/fd/${fd.name}`);
      } catch {
        continue;
      }
      if (basename(target) === LOCK_FILE && target.startsWith("/")) {
        found.push({ pid: Number(e.name), dataDir: dirname(target) });
        break;
      }
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** Canonical form of a directory for comparison (symlinks resolved when it exists). */
function canonical(dir: string): string {
  try {
    return Deno.realPathSync(dir);
  } catch {
    return resolve(dir);
  }
}

/**
 * A warning when keepwire daemons run but none on `dataDir` (a change made there is
 * not seen by them), naming their directories and the command for the first one;
 * undefined when a daemon uses `dataDir` or none runs.
 */
export function otherDataDirWarning(
  dataDir: string,
  redo: (otherDir: string) => string,
  daemons: RunningDaemon[] = runningDaemons(),
): string | undefined {
  if (!daemons.length) return undefined;
  const mine = canonical(dataDir);
  if (daemons.some((d) => canonical(d.dataDir) === mine)) return undefined;
  const lines = daemons.map((d) => `  pid ${d.pid} uses ${d.dataDir}: ${redo(d.dataDir)}`);
  return `warning: no keepwire daemon uses ${resolve(dataDir)}; this change goes there, ` +
    `and the running one${daemons.length === 1 ? " does" : "s do"} not read it. ` +
    `For a running daemon:\n${lines.join("\n")}`;
}

/**
 * The daemon answering on a data directory's control socket, with the data directory
 * it reports (it may differ from `dataDir` through a symlink), or null. Finds a daemon
 * that /proc does not show (another user's, without root).
 */
export async function daemonOnSocket(dataDir: string): Promise<RunningDaemon | null> {
  try {
    const s = await daemonRequest<{ pid?: number; dataDir?: string }>(
      dataDir,
      "GET",
      "/api/status",
    );
    if (typeof s.pid !== "number") return null;
    return { pid: s.pid, dataDir: resolve(dataDir, s.dataDir ?? ".") };
  } catch {
    return null;
  }
}

/**
 * The daemons a command on `dataDir` should know about: those in /proc, plus the one
 * on the configured data directory's control socket (when /proc does not show it).
 */
export async function knownDaemons(configuredDir: string): Promise<RunningDaemon[]> {
  const found = runningDaemons();
  const onSocket = await daemonOnSocket(configuredDir);
  if (onSocket && !found.some((d) => d.pid === onSocket.pid)) found.push(onSocket);
  return found;
}
