/**
 * Network-namespace lab of an HA pair (tests/e2e/ha_pair_test.ts, bench/ha.ts):
 *
 * ```
 * <p>cl  client 10.231.0.100 ─┐
 * <p>n1  node 1 10.231.0.11  ─┼─ br0 in <p>sw (the switch: stp off, forward delay 0)
 * <p>n2  node 2 10.231.0.12  ─┘      virtual address 10.231.0.50/24
 * ```
 * Every name starts with a unique prefix; close() kills what the lab started and
 * deletes the namespaces (also after a failure). Traffic stays inside the lab.
 * Each node runs a real `keepwire run` (main.ts, its own config and data dir) in its
 * namespace, which runs keepalived; and a UDP echo service on port 7007 that
 * answers with the node's name (the "application" a client reaches on the virtual
 * address). The client runs ha_prober.ts: one UDP probe every 10 ms.
 * @module
 */

/** Why the lab cannot run here, or null when it can. */
export function labSkipReason(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "needs root (network namespaces)";
  for (
    const [cmd, args] of [["ip", ["netns", "list"]], ["keepalived", ["--version"]]] as const
  ) {
    try {
      const r = new Deno.Command(cmd, { args: [...args], stdout: "null", stderr: "null" })
        .outputSync();
      if (!r.success) return `"${cmd} ${args.join(" ")}" fails`;
    } catch {
      return `${cmd} not found (apt-get install ${cmd === "ip" ? "iproute2" : cmd})`;
    }
  }
  return null;
}

/** True when root, iproute2 and keepalived are here. */
export function canRunLab(): boolean {
  return labSkipReason() === null;
}
