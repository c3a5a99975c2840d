/**
 * The HA pair lab with `failover: manual` and the peer link (tests/e2e/ha_lab.ts):
 * the nodes read each other's role over the peer link; kill -9 of keepwire on the
 * active leaves NO node holding the address (the standby is held and raises
 * ha.failover_pending) until an administrator confirms on the standby; the old active
 * returns held as standby; a graceful handover on the active releases the held peer.
 * Prints the figures docs/ha.md reports.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createHaLab,
  figures,
  holdersFor,
  MONITOR_SLACK_MS,
  type ScenarioFigures,
  showFigures,
} from "./ha_lab.ts";
import { missingTools } from "../helpers/tools.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

const show = showFigures;

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

Deno.test({
  name:
    "ha lab, failover manual: peer roles over the peer link, kill -9 of the active leaves the service down until confirmed, the old active returns held, handover releases the peer",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createHaLab({
      extra: {
        failover: "manual",
        peerLink: { secret: "lab-pair-secret-0123456789", intervalMs: 300, lostAfter: 3 },
      },
    });
    const all: ScenarioFigures[] = [];
    try {
      // n1 alone: held until its peer link is lost (no active peer), then it joins and
      // becomes active; n2 then finds n1 active and is held. (Started together, either
      // may win: the first out of its hold takes the address.)
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      // mutual monitoring: each knows the other's role
      await until("n1 sees n2 standby, n2 sees n1 active", 15_000, async () => {
        const [a, b] = [await lab.status("n1"), await lab.status("n2")];
        return a?.peer?.role === "standby" && b?.peer?.role === "active" &&
          b.manual?.held === true;
      });
      const s2 = (await lab.status("n2"))!;
      assertEquals(s2.peerLink?.reachable, true);
      assertEquals(s2.peerLink?.refused, 0);
      assertEquals(s2.engine.state, "FAULT", "held in FAULT, shown as standby");
      await holdersFor(lab, 1000, ["n1"]);

      // kill -9 of the active: nobody takes over by itself
      const killedAt = Date.now();
      await lab.killNode("n1", "SIGKILL");
      await until(
        "a takeover pending on n2",
        15_000,
        async () => (await lab.status("n2"))?.manual?.pending === true,
      );
      const pendingMs = Date.now() - killedAt;
      await holdersFor(lab, 1500, []);
      assertEquals((await lab.status("n2"))!.role, "standby");
      const pend = await lab.get<{ events: { time: number; payload: { reason: string } }[] }>(
        "n2",
        "/api/events?kind=ha.failover_pending",
      );
      assert(pend.events.some((e) => e.time >= killedAt), JSON.stringify(pend));
      console.log(`HA-LAB manual: takeover pending ${pendingMs} ms after the kill`);

      // the administrator confirms on the standby
      let faultAt = 0;
      let p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.post("n2", "/api/ha/failover", { by: "lab" });
        await lab.waitRole("n2", "active");
        await new Promise((r) => setTimeout(r, 300));
      });
      let f = figures(lab, "manual: takeover confirmed on the standby", p, faultAt, "n2", 1);
      show(f);
      all.push(f);
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 3000, JSON.stringify(f));
      assertEquals(f.dualHoldMs, 0);

      // the old active returns: held as standby, does not take the address back
      await lab.startNode("n1");
      await lab.waitRole("n1", "standby");
      await until("n1 held", 15_000, async () => (await lab.status("n1"))?.manual?.held === true);
      await holdersFor(lab, 1500, ["n2"]);

      // graceful handover on the active: the held peer sees it and takes over
      p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.post("n2", "/api/ha/failover", { by: "lab" });
        await lab.waitRole("n1", "active");
        await new Promise((r) => setTimeout(r, 300));
      });
      f = figures(lab, "manual: handover on the active", p, faultAt, "n1", 1);
      show(f);
      all.push(f);
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 5000, JSON.stringify(f));
      assert(f.dualHoldMs <= MONITOR_SLACK_MS, `both held the address: ${JSON.stringify(f)}`);
      await lab.waitRole("n2", "standby");
      console.log(`HA-LAB-JSON ${JSON.stringify(all)}`);
    } catch (e) {
      console.error(
        `n1 log:\n${lab.log("n1").slice(-3000)}\nn2 log:\n${lab.log("n2").slice(-3000)}`,
      );
      throw e;
    } finally {
      await lab.close();
    }
  },
});
