/**
 * A layer-3 pair (tests/e2e/ha_lab.ts with `l3: true`): the nodes on two subnets behind
 * a router namespace, unicast VRRP through the router, no shared address; each node's
 * ha.hook moves the router's route to the service address (on both nodes' loopback)
 * to itself when it becomes active. Scenarios: the client asks either node who is
 * active (GET /api/ha, public fields only, over the lab network); kill -9 of keepwire
 * on the active → the client is served by the other node through the moved route; the
 * killed node returns as standby (the route does not move); a graceful handover moves
 * it back; the active's link down (the router's port) → the other node after the
 * master-down interval. Figures as the other labs: ms to served, probes lost at 10 ms, ms with both
 * nodes MASTER (keepalived's marker address on both, watched with ip monitor: one route
 * cannot point at two nodes), route flaps.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { createHaLab, figures, MONITOR_SLACK_MS, type ProbeResult } from "./ha_lab.ts";
import { missingTools } from "../helpers/tools.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

function show(
  name: string,
  f: { answeredAfterMs: number | null; lost: number },
  both: number,
  flaps: number,
) {
  console.log(
    `HA-LAB ${name}: answered by the new active after ${f.answeredAfterMs} ms, ` +
      `${f.lost} probes lost (10 ms), both MASTER ${both} ms, ${flaps} flaps`,
  );
}

const end = (p: ProbeResult) => p.t0 + p.sent * p.interval;

Deno.test({
  name:
    "ha lab, layer 3: unicast VRRP across a router, the notify hook moves the route; either node says who is active; kill -9 of the active → served by the other node",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createHaLab({ l3: true });
    const all: unknown[] = [];
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await until("the route points at n1", 10_000, async () => await lab.serviceRoute() === "n1");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      const ran = await lab.get<{ events: { payload: { role: string } }[] }>(
        "n1",
        "/api/events?kind=ha.hook_ran",
      );
      assert(ran.events.some((e) => e.payload.role === "active"), JSON.stringify(ran));

      // the client asks either node who is active: public fields only
      for (const n of ["n1", "n2"] as const) {
        const a = await lab.clientAsk(n) as Record<string, unknown>;
        assertEquals(Object.keys(a).sort(), ["node", "peer", "role", "virtualAddresses"]);
        assertEquals(a.node, n);
        assertEquals(a.role, n === "n1" ? "active" : "standby");
        assertEquals(a.virtualAddresses, []);
      }

      // kill -9 of keepwire on the active: keepalived resigns (priority 0 over unicast
      // through the router), n2 becomes active, its hook moves the route
      let faultAt = 0;
      let p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.killNode("n1", "SIGKILL");
        await lab.waitRole("n2", "active");
        await until(
          "the route points at n2",
          10_000,
          async () => await lab.serviceRoute() === "n2",
        );
        await new Promise((r) => setTimeout(r, 300));
      });
      let f = figures(lab, "layer 3: kill -9 of keepwire on the active", p, faultAt, "n2", 1);
      let flaps = Math.max(0, lab.routeChanges(p.t0, end(p)) - 1);
      // the both-MASTER measure sees keepalived's marker move (it can fail)
      assert(lab.vipAdds(p.t0, end(p)) >= 1, "the marker monitor saw n2 become MASTER");
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 3000, JSON.stringify(f));
      assertEquals(flaps, 0);
      const a2 = await lab.clientAsk("n2") as { role: string };
      assertEquals(a2.role, "active");

      // the killed node returns: standby, the route stays
      await lab.startNode("n1");
      await lab.waitRole("n1", "standby");
      const back = Date.now();
      let both = f.dualHoldMs;
      show(f.name, f, both, flaps);
      all.push({ ...f, dualHoldMs: both, flaps });
      assertEquals(both, 0);
      await new Promise((r) => setTimeout(r, 1500));
      assertEquals(await lab.serviceRoute(), "n2");
      assertEquals(lab.routeChanges(back, Date.now()), 0, "no flap when the old active returns");

      // graceful handover back to n1 (ha failover on n2)
      p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.post("n2", "/api/ha/failover", { by: "lab" });
        await lab.waitRole("n1", "active");
        await until(
          "the route points at n1",
          10_000,
          async () => await lab.serviceRoute() === "n1",
        );
        await new Promise((r) => setTimeout(r, 300));
      });
      f = figures(lab, "layer 3: ha failover on the active", p, faultAt, "n1", 1);
      both = f.dualHoldMs;
      flaps = Math.max(0, lab.routeChanges(p.t0, end(p)) - 1);
      show(f.name, f, both, flaps);
      all.push({ ...f, dualHoldMs: both, flaps });
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 3000, JSON.stringify(f));
      assert(both <= MONITOR_SLACK_MS, `both held the address: ${JSON.stringify(f)}`);
      assertEquals(flaps, 0);
      await lab.waitRole("n2", "standby");

      // the active's link down (node death as the router sees it): n2 hears no adverts,
      // takes over after the master-down interval and its hook moves the route
      p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.link("n1", false);
        await lab.waitRole("n2", "active");
        await until(
          "the route points at n2",
          10_000,
          async () => await lab.serviceRoute() === "n2",
        );
        await new Promise((r) => setTimeout(r, 300));
      });
      f = figures(lab, "layer 3: the active's link down", p, faultAt, "n2", 1);
      both = f.dualHoldMs;
      flaps = Math.max(0, lab.routeChanges(p.t0, end(p)) - 1);
      show(f.name, f, both, flaps);
      all.push({ ...f, dualHoldMs: both, flaps });
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 3000, JSON.stringify(f));
      assertEquals(flaps, 0);
      await lab.link("n1", true);
      await lab.waitRole("n1", "standby");
      assertEquals(await lab.serviceRoute(), "n2");
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
