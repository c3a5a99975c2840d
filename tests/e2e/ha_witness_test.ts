/**
 * The HA pair with a witness in the namespace lab (tests/e2e/ha_lab.ts, `witness: true`):
 * corosync-qnetd in a witness namespace on its own network, each node's keepwire with
 * keepalived, corosync and corosync-qdevice in its own network and mount namespace,
 * the client probing the virtual address every 10 ms. Scenarios, in one pair, in order:
 * the peer link cut (the standby leaves the LAN, keeps the witness) → exactly one active;
 * the witness lost alone → nothing moves; the active cut off from everything (carrier
 * up) → it demotes when it loses quorum, the standby takes over after the promotion wait,
 * never both; the active's power lost → failover measured against corosync's membership
 * time (token + consensus). Each prints its figures (HA-LAB lines; docs/ha.md quotes
 * them); ms with both holding the address is sampled in both namespaces (ip monitor).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { createHaLab, figures, type HaLab, holdersFor, showFigures } from "./ha_lab.ts";
import { missingTools } from "../helpers/tools.ts";
import type { HaStatus } from "../../mod/ha/mod.ts";

const missing = missingTools(
  ["ip", "keepalived", "setpriv", "corosync", "corosync-qdevice", "corosync-qnetd"],
  { root: true },
);

const TOKEN = 1000;
/** token + consensus (1.2 × token): corosync's membership time. */
const MEMBERSHIP_MS = TOKEN + 1.2 * TOKEN;

async function until(what: string, cond: () => Promise<boolean>, ms = 30_000, lab?: HaLab) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const st = lab
    ? JSON.stringify({
      n1: brief(await lab.status("n1")),
      n2: brief(await lab.status("n2")),
    })
    : "";
  throw new Error(`timed out (${ms} ms) waiting for ${what} ${st}`);
}

function brief(s: HaStatus | null) {
  if (!s) return null;
  return {
    role: s.role,
    reason: s.reason,
    engine: s.engine.state,
    witness: s.witness && {
      running: s.witness.running,
      quorate: s.witness.quorate,
      members: s.witness.members,
      fault: s.witness.fault,
      hold: s.witness.hold,
      err: s.witness.lastError,
      log: s.witness.log.slice(-4),
    },
  };
}

const quorate = (lab: HaLab, n: "n1" | "n2", q: boolean) => async () =>
  (await lab.status(n))?.witness?.quorate === q;

Deno.test({
  name:
    "ha lab (witness): peer link cut → one active; witness lost → nothing moves; active isolated → handover without overlap; power loss → failover",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t0 = Date.now();
    const lab = await createHaLab({ witness: { tokenMs: TOKEN } });
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active", 60_000);
      await lab.startNode("n2");
      await until(
        "n2 quorate with n1 in its membership",
        async () => {
          const s = await lab.status("n2");
          return s?.witness?.quorate === true && s.witness.peerInMembership === true;
        },
        60_000,
        lab,
      );
      await lab.waitRole("n2", "standby", 30_000);
      assertEquals(await lab.holders(), ["n1"]);
      const s2 = (await lab.status("n2"))!;
      assert(s2.reason!.includes("witness: the peer n1"), s2.reason!);
      console.log(
        `HA-LAB witness start: both quorate, n2 held (${s2.reason}) after ${Date.now() - t0} ms`,
      );

      // 1. the peer link cut (n2 leaves the LAN, keeps the witness): exactly one active
      let cutAt = 0;
      let p = await lab.probe(0, async () => {
        cutAt = Date.now();
        await lab.partition("n2", true);
        await until("n2 not quorate", quorate(lab, "n2", false), 20_000, lab);
        console.log(`HA-LAB witness peer link cut: n2 not quorate after ${Date.now() - cutAt} ms`);
        await holdersFor(lab, 3000, ["n1"], "only n1 holds the address after the cut");
      });
      let f = figures(lab, "witness: peer link cut (n2 off the LAN)", p, cutAt, "n1", 0);
      showFigures(f);
      assertEquals(f.dualHoldMs, 0, "never two holders");
      assertEquals(f.flaps, 0);
      assertEquals(f.lost, 0, "the client (on n1's side) lost nothing");
      assertEquals((await lab.status("n1"))!.role, "active");
      assertEquals((await lab.status("n1"))!.witness!.quorate, true);
      await lab.partition("n2", false);
      await until(
        "n2 back in the membership",
        async () => {
          const s = await lab.status("n2");
          return s?.witness?.quorate === true && s.witness.peerInMembership === true;
        },
        30_000,
        lab,
      );
      await lab.waitRole("n2", "standby");
      assertEquals(await lab.holders(), ["n1"]);

      // 2. the witness lost alone: nothing moves, both stay quorate (2 of 3 votes)
      p = await lab.probe(0, async () => {
        cutAt = Date.now();
        await lab.witnessPort("wt", "down");
        await holdersFor(lab, 5000, ["n1"], "nothing moves without the witness");
        assertEquals((await lab.status("n1"))!.witness!.quorate, true);
        assertEquals((await lab.status("n2"))!.witness!.quorate, true);
      });
      f = figures(lab, "witness: witness lost alone", p, cutAt, "n1", 0);
      showFigures(f);
      assertEquals(f.dualHoldMs, 0);
      assertEquals(f.flaps, 0);
      assertEquals(f.lost, 0);
      await lab.witnessPort("wt", "heal");
      await until("qdevice votes again", async () => {
        const s = await lab.status("n1");
        return s?.witness?.log.some((l) => l.includes("qdevice")) !== undefined;
      }, 5000);
      await new Promise((r) => setTimeout(r, 3000)); // qdevice reconnects to qnetd

      // 3. the active cut off from everything, carrier up (the split-brain case): it keeps
      //    its old quorum until its qdevice's vote is missing, then demotes; the standby
      //    takes over promoteWaitMs after its membership dropped n1: never both
      const wait = (await lab.status("n2"))!.witness!.promoteWaitMs;
      p = await lab.probe(0, async () => {
        cutAt = Date.now();
        await lab.partition("n1", true);
        await lab.witnessPort("n1", "cut");
        await lab.waitRole("n2", "active", 30_000);
        await until("n1 not quorate", quorate(lab, "n1", false), 20_000, lab);
        await until("n1 dropped the address", async () => !(await lab.holders()).includes("n1"));
        await new Promise((r) => setTimeout(r, 500));
      });
      f = figures(lab, "witness: active isolated (carrier up)", p, cutAt, "n2", 1);
      showFigures(f);
      const s1 = (await lab.status("n1"))!;
      const lostAt = Date.parse(
        s1.history.find((h) => h.cause === "quorum" && h.from === "active")?.at ?? "",
      );
      const dropped = lab.vipEvents("n1").find((e) => !e.add && e.t >= cutAt)?.t;
      const n2took = lab.vipEvents("n2").find((e) => e.add && e.t >= cutAt)?.t;
      console.log(
        `HA-LAB witness isolated active: n1 lost quorum after ${lostAt - cutAt} ms, dropped the ` +
          `address ${dropped! - lostAt} ms later (demote); n2 took it after ${
            n2took! - cutAt
          } ms (promoteWaitMs ${wait}); both holding ${f.dualHoldMs} ms`,
      );
      assertEquals(f.dualHoldMs, 0, "the isolated active demoted before the standby took over");
      assert(dropped! - lostAt <= 500, `demote ${dropped! - lostAt} ms > demoteBoundMs 500`);
      assert(n2took! > dropped!, "n2 took the address after n1 dropped it");
      await lab.partition("n1", false);
      await lab.witnessPort("n1", "heal");
      await until(
        "n1 back, standby",
        async () => {
          const s = await lab.status("n1");
          return s?.role === "standby" && s.witness?.peerInMembership === true;
        },
        30_000,
        lab,
      );
      assertEquals(await lab.holders(), ["n2"]);

      // 4. power loss of the active (all its links down): failover ≥ membership time
      p = await lab.probe(0, async () => {
        cutAt = Date.now();
        await lab.link("n2", false);
        await lab.witnessPort("n2", "down");
        await until("n1 serves", async () => (await lab.holders()).join() === "n1", 30_000, lab);
        await new Promise((r) => setTimeout(r, 500));
      });
      f = figures(lab, "witness: active power loss", p, cutAt, "n1", 1);
      showFigures(f);
      console.log(
        `HA-LAB witness failover: ${f.answeredAfterMs} ms against token + consensus ` +
          `${MEMBERSHIP_MS} ms (target ${MEMBERSHIP_MS + 200} ms; promoteWaitMs ${wait})`,
      );
      assertEquals(f.dualHoldMs, 0);
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 15_000, JSON.stringify(f));
      await lab.link("n2", true);
      await lab.witnessPort("n2", "heal");
      await lab.waitRole("n2", "standby", 30_000);
      assertEquals(await lab.holders(), ["n1"]);
      console.log(`HA-LAB witness lab took ${Date.now() - t0} ms`);
    } catch (e) {
      console.error(`n1:\n${lab.log("n1").slice(-3000)}\nn2:\n${lab.log("n2").slice(-3000)}`);
      console.error(`qnetd:\n${lab.qnetdLog().slice(-2000)}`);
      throw e;
    } finally {
      await lab.close();
    }
  },
});
