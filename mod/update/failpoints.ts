/**
 * The named steps of an install and of an activation, where the chaos suite
 * (chaos/update_kill.ts) kills keepwire with SIGKILL to prove that every step
 * is crash-safe. With `KEEPWIRE_UPDATE_KILL_AT=step[,step...]` in the
 * environment, keepwire SIGKILLs itself on reaching a listed step; with
 * `KEEPWIRE_UPDATE_KILL_ONCE=<dir>` too, at most once per step (a marker file
 * per step in that directory, created before the kill, so a restarted keepwire
 * passes the step). Without the variable every step is a no-op.
 * @module
 */

/** The steps, in the order an update reaches them. */
export const UPDATE_STEPS = [
  "install.verified", // bundle verified, nothing written
  "install.state_installing", // update state: installing
  "install.marked_bad", // target marked bad in the boot env
  "install.writing", // halfway through the payload
  "install.written", // every image written, fsynced, sha256 checked
  "install.recorded", // slot records: installed
  "install.primary_set", // target made primary (one boot env write)
  "install.done", // update state: installed
  "activate.hold_placed", // bypass hold taken
  "activate.state_activating", // update state: activating
  "activate.switching", // about to reboot / exit for the launcher
  "start.trying", // the new slot started: update state trying
  "start.rolled_back", // the old slot started after a failed new one: marked bad, rolled-back
  "gate.marked_good", // the health gate passed: booted slot marked good
  "gate.committed", // update state: committed
  "gate.hold_released", // bypass hold released
] as const;

/** A named step. */
export type UpdateStep = typeof UPDATE_STEPS[number];

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission: no fault injection
  }
}

const KILL_AT = new Set((env("KEEPWIRE_UPDATE_KILL_AT") ?? "").split(",").filter((s) => s));
const KILL_ONCE = env("KEEPWIRE_UPDATE_KILL_ONCE");

/** Mark that the update reached `step` (kills the process when the chaos suite asks for it). */
export function updateStep(step: UpdateStep): void {
  if (!KILL_AT.has(step)) return;
  if (KILL_ONCE) {
    try {
      Deno.writeTextFileSync(`${KILL_ONCE}/${step}`, `${Deno.pid}\n`, { createNew: true });
    } catch {
      return; // already killed here once
    }
  }
  Deno.kill(Deno.pid, "SIGKILL");
}
