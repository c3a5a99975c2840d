/**
 * What the supervisor does to the box itself when escalation says so: reboot.
 * Kept in one small file so it is found, and replaced in tests.
 * @module
 */

/** Reboot the box through systemd (`systemctl reboot`); throws when it refuses. */
export async function systemReboot(reason: string): Promise<void> {
  console.error(`keepwire: rebooting: ${reason}`);
  const out = await new Deno.Command("systemctl", { args: ["reboot"] }).output();
  if (!out.success) throw new Error(`systemctl reboot exited ${out.code}`);
}
