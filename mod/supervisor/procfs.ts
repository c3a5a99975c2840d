/** What the supervisor reads of processes from /proc, and group signalling. */

/** Pids of live (non-zombie) processes in a session, from /proc. */
export function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // rest: state ppid pgrp session ...
    if (rest[0] === "Z" || rest[0] === "X") continue;
    if (Number(rest[3]) === sid) out.push(Number(e.name));
  }
  return out;
}

/** Is a pid alive (and not a zombie)? */
export function pidAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Signal a whole process group; false when it no longer exists. */
export function killGroup(pgid: number, sig: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}
