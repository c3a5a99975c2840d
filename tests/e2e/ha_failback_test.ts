/**
 * Automatic failback with replication in the HA lab (tests/e2e/ha_lab.ts): two real
 * `keepwire run` nodes with keepalived, `ha.preempt` (n1, priority 150, owns the address),
 * `preemptDelayMs` 2000 and `ha.replication` on (keepalived is rendered nopreempt; keepwire
 * fails back). In order:
 * 1. n1 active, n2 standby; kill -9 of n1: n2 takes over and takes writes (users created
 *    through its API, acknowledged with n1 gone);
 * 2. n2's connections to the peer link held back (tc), n1 started again: it comes back
 *    BACKUP, cannot catch up (n2 cannot replicate to it) and does NOT take the address back:
 *    for 6 s (3 x the delay) n2 stays active, n1 standby and says why it waits, while n2 keeps
 *    taking writes;
 * 3. the hold lifted: n1's channel catches up, n1 asks after the delay, n2 drains and hands
 *    over, n1 is active by itself; every write n2 acknowledged is on n1, nothing set aside.
 * Then active-active (`activeActive.failback: "auto"` + replication): the second node up
 * gets its set b by itself once channel b caught up (both instances rendered nopreempt); kill
 * -9 of n2 → n1 holds both; n2 back with n1's connections to it held back does not take set b
 * (channel b behind the epoch n1 started when it took b) until the hold is lifted, then does.
 * Each bounded (≤ 3 min on a busy machine); the lab removes everything it made.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createHaLab,
  eventsOf,
  LAB,
  type NodeName,
  replStatus,
  untilLab,
  userNames,
} from "./ha_lab.ts";
import { missingTools } from "../helpers/tools.ts";

const missing = missingTools(["ip", "keepalived", "setpriv", "tc"], { root: true });

Deno.test({
  name:
    "failback lab: the returning owner (preempt + replication) does not take the address back before it has the survivor's writes, then does by itself; no acknowledged write lost",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = Date.now();
    const lab = await createHaLab({
      extra: {
        preempt: true,
        preemptDelayMs: 2000,
        peerLink: { secret: "keepwire-lab-pair-secret", pairId: "lab", intervalMs: 300 },
        replication: { ackTimeoutMs: 1500 },
      },
    });
    let held = false;
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      await untilLab(async () => {
        const r = await replStatus(lab, "n2");
        return r.role === "standby" && (r.epoch ?? 0) > 0;
      }, "n2 resynced as standby");
      const st1 = await lab.status("n1");
      assertEquals(st1?.failback?.[0]?.state, "holding", JSON.stringify(st1?.failback));

      // 1. kill -9 of n1; n2 takes over and takes writes
      const acked: string[] = [];
      await lab.killNode("n1", "SIGKILL");
      await lab.waitRole("n2", "active");
      await untilLab(async () => (await replStatus(lab, "n2")).role === "primary", "n2 primary");
      let stop = false;
      let tries = 0;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          tries++;
          try {
            await lab.post("n2", "/api/users", {
              username: `w${i}`,
              password: "a long enough password",
              role: "viewer",
            });
            acked.push(`w${i}`);
          } catch { /* refused (handing over, standby): not acknowledged */ }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await untilLab(() => Promise.resolve(acked.length >= 10), "10 writes on n2 alone");

      // 2. n2 cannot replicate to n1: n1 returns and must not take the address back
      await lab.holdPeerLink("n2", true);
      held = true;
      await lab.startNode("n1");
      await lab.waitRole("n1", "standby", 30_000);
      const back = Date.now();
      const before = acked.length;
      const reasons = new Set<string>();
      while (Date.now() - back < 6000) {
        const [s1, s2] = [await lab.status("n1"), await lab.status("n2")];
        assertEquals(s1?.role, "standby", "n1 took over while behind");
        assertEquals(s2?.role, "active");
        const f = s1?.failback?.[0];
        if (f) reasons.add(`${f.state}: ${f.reason}`);
        // the catch-up hold: keepalived in FAULT while behind (VRRP cannot elect it)
        if (s1?.catchUp?.held) reasons.add(`catch-up hold: ${s1.catchUp.reason}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const s1 = await lab.status("n1");
      const f = s1?.failback?.[0];
      assertEquals(f?.state, "waiting", JSON.stringify(f));
      assertEquals(s1?.catchUp?.held, true, "n1 held out of MASTER while behind");
      assertEquals(s1?.engine.state, "FAULT");
      assert(acked.length > before, "n2 kept taking writes meanwhile");
      assertEquals((await eventsOf(lab, "n1", "ha.failback_requested")).length, 0);
      console.log(
        `failback lab: n1 back ${Date.now() - back} ms, waiting: ${[...reasons].join(" | ")}`,
      );

      // 3. the hold lifted: n1 catches up, asks after the delay, n2 drains and hands over
      await lab.holdPeerLink("n2", false);
      held = false;
      const lifted = Date.now();
      await lab.waitRole("n1", "active", 60_000);
      const tookMs = Date.now() - lifted;
      await untilLab(async () => (await replStatus(lab, "n1")).role === "primary", "n1 primary");
      stop = true;
      await writer;
      const on1 = new Set(await userNames(lab, "n1"));
      const lost = acked.filter((u) => !on1.has(u));
      const req = await eventsOf(lab, "n1", "ha.failback_requested");
      const hand = await eventsOf(lab, "n2", "ha.failover_manual");
      const tails = await eventsOf(lab, "n2", "repl.tail_saved");
      console.log(
        `failback lab: n1 active ${tookMs} ms after the hold was lifted (delay 2000 ms); ` +
          `${acked.length} of ${tries} writes acknowledged by n2, ${lost.length} missing on n1; ` +
          `n2 set aside ${tails.length} tail(s); whole run ${Date.now() - started} ms`,
      );
      assertEquals(lost, [], "acknowledged writes missing on n1 after the failback");
      assertEquals(req.length, 1, "n1 asked once");
      assert(
        hand.some((e) => String((e.payload as { by?: string }).by).includes("failback to n1")),
        JSON.stringify(hand.map((e) => e.payload)),
      );
      assertEquals(tails.length, 0, "nothing set aside on n2");
      assert(tookMs >= 2000, `the delay was kept (${tookMs} ms)`);
      await lab.waitRole("n2", "standby", 30_000);
    } catch (e) {
      console.log(`n1 log:\n${lab.log("n1").slice(-3000)}\nn2 log:\n${lab.log("n2").slice(-3000)}`);
      for (const n of ["n1", "n2"] as const) {
        const s = await lab.status(n).catch(() => null);
        console.log(`${n}: ${s?.role} failback ${JSON.stringify(s?.failback)}`);
        console.log(
          `${n} repl: ${JSON.stringify(await replStatus(lab, n).catch((x) => String(x)))}`,
        );
      }
      throw e;
    } finally {
      if (held) await lab.holdPeerLink("n2", false).catch(() => {});
      await lab.close();
    }
  },
});

Deno.test({
  name:
    "failback lab, active-active (failback auto + replication): set b goes to its owner once channel b caught up, never before",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const started = Date.now();
    const lab = await createHaLab({
      activeActive: "auto",
      extra: {
        activeActive: {
          virtualRouterId: 52,
          virtualAddresses: [`${LAB.vipB}/24`],
          failback: "auto",
          failbackDelayMs: 1000,
        },
        peerLink: { secret: "keepwire-lab-pair-secret", pairId: "lab", intervalMs: 300 },
        replication: { ackTimeoutMs: 1500 },
      },
    });
    const setB = async (n: NodeName) => (await lab.status(n))?.activeActive?.state;
    const fb = async (n: NodeName) => (await lab.status(n))?.failback?.[0];
    let held = false;
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await untilLab(async () => (await lab.holdersB())[0] === "n1", "n1 holds both sets");
      // n2 (owner of set b) comes up: nopreempt, then keepwire's failback hands b over
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      await untilLab(async () => (await lab.holdersB()).join() === "n2", "n2 holds set b", 60_000);
      assertEquals(await lab.holders(), ["n1"], "set a stays on n1");
      assertEquals((await fb("n2"))?.state, "holding");
      // kill -9 of n2: n1 serves both
      await lab.killNode("n2", "SIGKILL");
      await untilLab(async () => (await lab.holdersB()).join() === "n1", "n1 holds set b");
      // n2 back while n1 cannot replicate to it
      await lab.holdPeerLink("n1", true);
      held = true;
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby", 30_000);
      const back = Date.now();
      const reasons = new Set<string>();
      while (Date.now() - back < 5000) {
        // BACKUP, or FAULT while the catch-up hold keeps it out of MASTER
        const b = await setB("n2");
        assert(b === "BACKUP" || b === "FAULT", `n2 took set b while behind (${b})`);
        assertEquals((await lab.holdersB()).join(), "n1");
        const f = await fb("n2");
        if (f) reasons.add(`${f.state}: ${f.reason}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assertEquals((await fb("n2"))?.state, "waiting");
      assertEquals((await lab.status("n2"))?.catchUp?.held, true, "n2 held while behind");
      await lab.holdPeerLink("n1", false);
      held = false;
      const lifted = Date.now();
      await untilLab(async () => (await lab.holdersB()).join() === "n2", "n2 holds set b", 60_000);
      const tookMs = Date.now() - lifted;
      assertEquals(await lab.holders(), ["n1"], "set a never moved");
      const hand = await eventsOf(lab, "n1", "ha.failover_manual");
      assert(
        hand.some((e) => String((e.payload as { by?: string }).by).includes("failback to n2")),
        JSON.stringify(hand.map((e) => e.payload)),
      );
      console.log(
        `failback lab, active-active: n2 back, waiting: ${[...reasons].join(" | ")}; set b on n2 ` +
          `${tookMs} ms after the hold was lifted (delay 1000 ms); whole run ${
            Date.now() - started
          } ms`,
      );
    } catch (e) {
      console.log(`n1 log:\n${lab.log("n1").slice(-3000)}\nn2 log:\n${lab.log("n2").slice(-3000)}`);
      for (const n of ["n1", "n2"] as const) {
        const s = await lab.status(n).catch(() => null);
        console.log(
          `${n}: ${s?.role} b ${s?.activeActive?.state} failback ${JSON.stringify(s?.failback)}`,
        );
      }
      throw e;
    } finally {
      if (held) await lab.holdPeerLink("n1", false).catch(() => {});
      await lab.close();
    }
  },
});
