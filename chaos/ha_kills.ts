/**
 * HA pair under kills (the namespace lab of tests/e2e/ha_lab.ts: two `keepwire run`
 * nodes with keepalived, VRRPv3 advert 100 ms, nopreempt). Injected, alternately on
 * whichever node is active: SIGKILL of keepwire (its keepalived must stop with it:
 * parent-death signal), then the node restarted; SIGKILL of keepalived itself
 * (keepwire must restart it). Invariants per injection: the other node alone holds
 * the virtual address within 2 s, never both at once (ip monitor in both
 * namespaces), and the hit node comes back as standby without taking the address back.
 * Needs root, iproute2, keepalived, setpriv.
 */
import type { ChaosScenario } from "./types.ts";
import { createHaLab, labSkipReason, type NodeName } from "../tests/e2e/ha_lab.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "ha_kills",
  description:
    "SIGKILL of keepwire or of keepalived on the active HA node: the peer alone takes the " +
    "address within 2 s, never both holding it, the hit node returns as standby",
  async run({ bounded, log }) {
    const skip = labSkipReason();
    if (skip) throw new Error(`ha_kills needs the namespace lab: ${skip}`);
    const rounds = bounded ? 4 : 20;
    const lab = await createHaLab();
    let injected = 0;
    let survived = 0;
    const takeovers: number[] = [];
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      for (let i = 0; i < rounds; i++) {
        const holders = await lab.holders();
        if (holders.length !== 1) throw new Error(`setup: holders ${holders.join(",")}`);
        const active: NodeName = holders[0];
        const peer: NodeName = active === "n1" ? "n2" : "n1";
        const what = i % 2 === 0 ? "keepwire" : "keepalived";
        const from = Date.now();
        injected++;
        const problems: string[] = [];
        if (what === "keepwire") {
          await lab.killNode(active, "SIGKILL");
        } else {
          const pid = (await lab.status(active))?.engine.pid;
          if (!pid) throw new Error(`no keepalived pid on ${active}`);
          Deno.kill(pid, "SIGKILL");
        }
        let tookOver: number | null = null;
        while (Date.now() - from < 2000) {
          const h = await lab.holders();
          if (h.length === 1 && h[0] === peer) {
            tookOver = Date.now() - from;
            break;
          }
          await sleep(10);
        }
        if (tookOver === null) problems.push(`${peer} did not hold the address alone within 2 s`);
        else takeovers.push(tookOver);
        if (what === "keepwire") await lab.startNode(active);
        try {
          await lab.waitRole(active, "standby", 20_000);
        } catch (e) {
          problems.push((e as Error).message);
        }
        const back = Date.now();
        await sleep(1000);
        const dual = lab.dualHoldMs(from, Date.now());
        if (dual > 0) problems.push(`both held the address for ${Math.round(dual)} ms`);
        if (lab.vipAdds(back, Date.now()) > 0) problems.push(`${active} took the address back`);
        const h = await lab.holders();
        if (h.length !== 1 || h[0] !== peer) problems.push(`holders after: ${h.join(",")}`);
        if (problems.length) log(`round ${i} (${what} on ${active}): LOST: ${problems.join("; ")}`);
        else {
          survived++;
          log(`round ${i} (${what} on ${active}): ${peer} alone after ${tookOver} ms`);
        }
      }
    } finally {
      await lab.close();
    }
    const worst = takeovers.length ? Math.max(...takeovers) : 0;
    return {
      injected,
      survived,
      lost: injected - survived,
      notes:
        `kills of keepwire/keepalived on the active; worst takeover ${worst} ms; 0 ms both holding checked`,
    };
  },
};
