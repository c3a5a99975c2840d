/**
 * Active-active (ha.activeActive; tests/e2e/ha_lab.ts with `activeActive`): a second
 * VRRP instance (vrid 52, LAB.vipB) with mirrored priorities — n1 owns set a
 * (10.231.0.50), n2 set b (10.231.0.51). The client probes both addresses every 10 ms.
 * Manual failback: the sets go to their owners by `ha failover --set b`; kill -9 of
 * keepwire on n2 → n1 serves both; n2 returns standby for b (no flap) until the operator
 * hands b back. Automatic failback: n2 takes b back by itself when it returns. Figures
 * per set: ms to served by the new holder, probes lost at 10 ms, ms both holding, flaps.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createHaLab,
  figures,
  type HaLab,
  LAB,
  MONITOR_SLACK_MS,
  type NodeName,
  type ProbeResult,
  type ScenarioFigures,
  showFigures,
} from "./ha_lab.ts";
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

/** Probe both sets' addresses through `during`; figures per set. */
async function probeBoth(
  lab: HaLab,
  name: string,
  during: () => Promise<void>,
  holder: { a: NodeName; b: NodeName },
  moves: { a: number; b: number },
): Promise<{ a: ScenarioFigures; b: ScenarioFigures }> {
  let faultAt = 0;
  let pb!: ProbeResult;
  const pa = await lab.probe(0, async () => {
    pb = await lab.probe(0, async () => {
      faultAt = Date.now();
      await during();
      await new Promise((r) => setTimeout(r, 300));
    }, LAB.vipB);
  });
  const a = figures(lab, `${name}, set a`, pa, faultAt, holder.a, moves.a);
  const endB = pb.t0 + pb.sent * pb.interval;
  const b = {
    ...figures(lab, `${name}, set b`, pb, faultAt, holder.b, 0),
    dualHoldMs: Math.round(lab.dualHoldMsB(pb.t0, endB)),
    flaps: Math.max(0, lab.vipAddsB(pb.t0, endB) - moves.b),
  };
  showFigures(a);
  showFigures(b);
  return { a, b };
}

const holdersAre = async (lab: HaLab, a: NodeName[], b: NodeName[]) => {
  assertEquals(await lab.holders(), a, "set a");
  assertEquals(await lab.holdersB(), b, "set b");
};

Deno.test({
  name:
    "ha lab, active-active with manual failback: each node serves its set, the survivor serves both, the owner gets its set back by hand",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createHaLab({ activeActive: "manual" });
    const all: ScenarioFigures[] = [];
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await until("n1 holds both sets", 10_000, async () => (await lab.holdersB())[0] === "n1");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      // nopreempt: n2 (owner of b) does not take b by itself; the operator hands it over
      await new Promise((r) => setTimeout(r, 1000));
      await holdersAre(lab, ["n1"], ["n1"]);
      await lab.post("n1", "/api/ha/failover", { by: "lab", set: "b" });
      await until("n2 holds set b", 10_000, async () => (await lab.holdersB())[0] === "n2");
      await holdersAre(lab, ["n1"], ["n2"]);
      assertEquals((await lab.status("n2"))!.activeActive?.state, "MASTER");
      assertEquals((await lab.status("n1"))!.role, "active", "n1 keeps set a");
      // n1's release of b holds its instance in FAULT for failoverHoldMs (2 s): after it,
      // n1 is b's standby again (a kill within the hold would find no standby for b)
      await until(
        "n1 back to BACKUP on set b",
        10_000,
        async () => (await lab.status("n1"))!.activeActive?.state === "BACKUP",
      );

      // kill -9 of keepwire on n2: n1 serves both sets
      let f = await probeBoth(
        lab,
        "active-active: kill -9 of n2",
        async () => {
          await lab.killNode("n2", "SIGKILL");
          await until("n1 holds set b", 10_000, async () => (await lab.holdersB())[0] === "n1");
        },
        { a: "n1", b: "n1" },
        { a: 0, b: 1 },
      );
      all.push(f.a, f.b);
      assertEquals(f.a.lost, 0, "set a is not touched");
      assert(f.b.answeredAfterMs !== null && f.b.answeredAfterMs < 2000, JSON.stringify(f.b));
      assertEquals(f.a.dualHoldMs + f.b.dualHoldMs, 0);
      await holdersAre(lab, ["n1"], ["n1"]);

      // n2 returns: standby for both (manual failback), nothing moves
      const back = Date.now();
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      await new Promise((r) => setTimeout(r, 1500));
      await holdersAre(lab, ["n1"], ["n1"]);
      assertEquals(lab.vipAddsB(back, Date.now()) + lab.vipAdds(back, Date.now()), 0);

      // manual failback of set b
      f = await probeBoth(
        lab,
        "active-active: manual failback of set b",
        async () => {
          await lab.post("n1", "/api/ha/failover", { by: "lab", set: "b" });
          await until("n2 holds set b", 10_000, async () => (await lab.holdersB())[0] === "n2");
        },
        { a: "n1", b: "n2" },
        { a: 0, b: 1 },
      );
      all.push(f.a, f.b);
      assertEquals(f.a.lost, 0);
      assert(
        f.a.dualHoldMs + f.b.dualHoldMs <= MONITOR_SLACK_MS,
        `both held an address: ${JSON.stringify([f.a, f.b])}`,
      );
      await new Promise((r) => setTimeout(r, 2500)); // past failoverHoldMs: n1 back to BACKUP on b
      await holdersAre(lab, ["n1"], ["n2"]);
      assertEquals((await lab.status("n1"))!.activeActive?.state, "BACKUP");
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

Deno.test({
  name:
    "ha lab, active-active with automatic failback: the owner takes its set back when it returns",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createHaLab({ activeActive: "auto" });
    const all: ScenarioFigures[] = [];
    try {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
      await until(
        "n2 takes set b (preempt)",
        10_000,
        async () => (await lab.holdersB())[0] === "n2",
      );
      await holdersAre(lab, ["n1"], ["n2"]);

      // the active's (n1's) link down: n2 serves both
      let f = await probeBoth(
        lab,
        "active-active: n1's link down",
        async () => {
          await lab.link("n1", false);
          await until("n2 holds set a", 10_000, async () => (await lab.holders())[0] === "n2");
        },
        { a: "n2", b: "n2" },
        { a: 1, b: 0 },
      );
      all.push(f.a, f.b);
      assertEquals(f.b.lost, 0, "set b is not touched");
      assert(f.a.answeredAfterMs !== null && f.a.answeredAfterMs < 2000, JSON.stringify(f.a));

      // n1's link back: it takes set a back by itself (make-before-break)
      f = await probeBoth(
        lab,
        "active-active: automatic failback of set a",
        async () => {
          await lab.link("n1", true);
          await until(
            "n1 holds set a again",
            10_000,
            async () => (await lab.holders())[0] === "n1",
          );
        },
        { a: "n1", b: "n2" },
        { a: 1, b: 0 },
      );
      all.push(f.a, f.b);
      assertEquals(f.b.lost, 0);
      await new Promise((r) => setTimeout(r, 1000));
      await holdersAre(lab, ["n1"], ["n2"]);
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
