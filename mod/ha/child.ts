/**
 * Stopping the engines keepwire runs as children (keepalived; corosync and corosync-qdevice).
 * @module
 */

/**
 * SIGTERM `child` (a graceful stop: keepalived sends its priority-0 advert), SIGKILL it when it
 * has not exited after `graceMs`; resolves when it is gone.
 */
export async function stopEngineChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([
    child.status.then(() => true),
    new Promise<false>((res) => timer = setTimeout(() => res(false), graceMs)),
  ]);
  clearTimeout(timer);
  if (!done) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  }
}
