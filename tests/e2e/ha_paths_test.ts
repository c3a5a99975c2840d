/**
 * Two heartbeat paths (ha.syncLink; tests/e2e/ha_lab.ts with `sync: true`): the nodes
 * share the LAN bridge (client, virtual address) and a second bridge, the sync link.
 * keepalived runs a VRRP instance on each, in one sync group: the standby takes over
 * only when the active is silent on BOTH. Scenarios, in one pair, in order:
 * the sync link cut alone (carrier lost, then carrier up) → nothing moves; the LAN
 * between the nodes cut alone (the standby's LAN port leaves the bridge, carrier up)
 * → no dual active, no flap; the standby's LAN carrier lost → it goes to FAULT,
 * nothing moves; kill -9 of keepwire on the active → the standby takes over (both
 * instances resign); the active's two links down (power loss) → the standby takes over
 * after the master-down interval. Each prints its figures (docs/ha.md).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createHaLab,
  figures,
  type HaLab,
  holdersFor,
  type NodeName,
  type ScenarioFigures,
  showFigures,
} from "./ha_lab.ts";
import { missingTools } from "../helpers/tools.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

/** A fault that must move nothing: the address stays on `active` alone, no probe lost. */
async function nothingMoves(
  lab: HaLab,
  name: string,
  active: NodeName,
  fault: () => Promise<void>,
  heal: () => Promise<void>,
  standbyRole = "standby",
): Promise<ScenarioFigures> {
  const other: NodeName = active === "n1" ? "n2" : "n1";
  let faultAt = 0;
  const p = await lab.probe(0, async () => {
    faultAt = Date.now();
    await fault();
    // well past the master-down interval (3 × 100 ms + skew)
    await holdersFor(lab, 1500, [active], `${name}: only ${active} holds the address`);
    assertEquals((await lab.status(other))!.role, standbyRole, `${name}: ${other}'s role`);
    assertEquals((await lab.status(active))!.role, "active");
    await heal();
    await lab.waitRole(other, "standby");
    await holdersFor(lab, 500, [active]);
  });
  const f = figures(lab, name, p, faultAt, active, 0);
  showFigures(f);
  assertEquals(f.lost, 0, `${name}: ${JSON.stringify(f)}`);
  assertEquals(f.dualHoldMs, 0, `${name}: ${JSON.stringify(f)}`);
  assertEquals(f.flaps, 0, `${name}: ${JSON.stringify(f)}`);
  return f;
}

Deno.test({
  name:
    "ha lab, two heartbeat paths: one cut link alone moves nothing (sync link down or cut, LAN between the nodes cut, standby's LAN down); node death still fails over",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createHaLab({ sync: true });
    const all: ScenarioFigures[] = [];
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      assertEquals(await lab.holders(), ["n1"]);

      // 1. the sync link alone: carrier lost, then cut with carrier up
      all.push(
        await nothingMoves(
          lab,
          "sync link down (carrier lost)",
          "n1",
          () => lab.syncLink("n2", "down"),
          () => lab.syncLink("n2", "heal"),
        ),
      );
      all.push(
        await nothingMoves(
          lab,
          "sync link cut (carrier up)",
          "n1",
          () => lab.syncLink("n2", "cut"),
          () => lab.syncLink("n2", "heal"),
        ),
      );
      // 2. the LAN between the nodes alone: n2's LAN port leaves the bridge, carrier up.
      // n2 hears no LAN adverts, but the sync link's: the group stays BACKUP.
      all.push(
        await nothingMoves(
          lab,
          "LAN between the nodes cut (carrier up)",
          "n1",
          () => lab.partition("n2", true),
          () => lab.partition("n2", false),
        ),
      );
      // 3. the standby's LAN carrier lost: its LAN instance goes to FAULT, the group with
      // it; it was not active, so nothing moves
      all.push(
        await nothingMoves(
          lab,
          "standby's LAN down (carrier lost)",
          "n1",
          () => lab.link("n2", false),
          () => lab.link("n2", true),
          "fault",
        ),
      );
      const dual = await lab.get<{ events: unknown[] }>("n1", "/api/events?kind=ha.dual_active");
      assertEquals(dual.events, [], "no dual active with one path left");

      // 4. kill -9 of keepwire on the active: keepalived resigns on both instances
      let faultAt = 0;
      let p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.killNode("n1", "SIGKILL");
        await lab.waitRole("n2", "active");
        await new Promise((r) => setTimeout(r, 300));
      });
      let f = figures(lab, "two paths: kill -9 of keepwire on the active", p, faultAt, "n2", 1);
      showFigures(f);
      all.push(f);
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 2000, JSON.stringify(f));
      assertEquals(f.dualHoldMs, 0);
      await lab.startNode("n1");
      await lab.waitRole("n1", "standby");
      await holdersFor(lab, 1000, ["n2"]);

      // 5. the active's two links down (power loss): silent on both paths
      p = await lab.probe(0, async () => {
        faultAt = Date.now();
        await lab.link("n2", false);
        await lab.syncLink("n2", "down");
        await lab.waitRole("n1", "active");
        await new Promise((r) => setTimeout(r, 300));
      });
      f = figures(lab, "two paths: the active's links down", p, faultAt, "n1", 1);
      showFigures(f);
      all.push(f);
      assert(f.answeredAfterMs !== null && f.answeredAfterMs < 2000, JSON.stringify(f));
      assertEquals(f.dualHoldMs, 0);
      await lab.link("n2", true);
      await lab.syncLink("n2", "heal");
      await lab.waitRole("n2", "standby");
      await holdersFor(lab, 1000, ["n1"]);
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
