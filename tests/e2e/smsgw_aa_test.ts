/**
 * The live cluster with data on both sides (issue 13 §6): the example SMS gateway on an
 * active-active pair (tests/e2e/smsgw_lab.ts with `activeActive: "manual"`). n1 is active
 * for set a (LAB.vip), n2 for set b (LAB.vipB); one client per set submits at a steady
 * rate, so both nodes take writes at once and each replicates its set to the other on its
 * own channel. kill -9 of n2: n1 serves both sets; n2 comes back as standby of both
 * channels and is resynced; `ha failover --set b` gives set b back to n2 with its data.
 * Every acknowledged message of both sets is there at the end (sync groups) and reached
 * its SMSC. Bounded ≤ ~3 min; the lab removes everything it made.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { missingTools } from "../helpers/tools.ts";
import { channelsOf, startSmsgwPair, until } from "./smsgw_lab.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

Deno.test({
  name:
    "smsgw active-active: both nodes take writes; kill -9 of set b's node, the survivor serves both, the node returns resynced and gets set b back with its data",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const started = Date.now();
    const pair = await startSmsgwPair({ rate: 10, activeActive: "manual", log });
    const { lab, repl } = pair;
    const b = pair.b!;
    const holderB = async () => (await lab.holdersB())[0];
    const ackedAfter = async (
      c: typeof b,
      n: number,
      what: string,
    ) => {
      const from = (await c.progress()).acked;
      await until(async () => (await c.progress()).acked >= from + n, what, 60_000);
    };
    try {
      // both sides write: set a's messages sent by n1, set b's by n2
      await until(async () => ((await b.progress()).byNode.n2 ?? 0) >= 5, "n2 sends set b", 60_000);
      assertEquals((await pair.progress()).byNode.n2 ?? 0, 0, "set a's messages are n1's");
      const c1 = await channelsOf(repl, "n1"), c2 = await channelsOf(repl, "n2");
      assertEquals([c1.a.role, c1.b.role, c2.a.role, c2.b.role], [
        "primary",
        "standby",
        "standby",
        "primary",
      ]);

      // kill -9 of n2 (active for set b): n1 serves both sets
      const killAt = Date.now();
      await lab.killNode("n2", "SIGKILL");
      await until(async () => (await holderB()) === "n1", "n1 holds set b", 30_000);
      const ackB = (await b.progress()).acked;
      await until(async () => (await b.progress()).acked > ackB, "set b served by n1", 60_000);
      const failoverMs = (await b.progress()).lastAckAt - killAt;
      await ackedAfter(b, 10, "set b's messages on the survivor");
      const s1 = await channelsOf(repl, "n1");
      assertEquals([s1.a.role, s1.b.role], ["primary", "primary"], "the survivor writes both");

      // n2 returns: standby of both channels (manual failback), resynced on both
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby", 60_000);
      const resyncAt = Date.now();
      await until(
        async () => {
          const [p, s] = [await channelsOf(repl, "n1"), await channelsOf(repl, "n2")];
          return ["a", "b"].every((ch) =>
            p[ch]?.role === "primary" && p[ch].link === "up" && s[ch]?.role === "standby" &&
            s[ch].epoch === p[ch].epoch && !s[ch].resync
          );
        },
        "n2 a resynced standby of both channels",
        90_000,
      );
      const resyncMs = Date.now() - resyncAt;
      // what n2 committed as set b's primary and n1 never took is set aside (never merged):
      // any tail it has is channel b's
      const tails = (await lab.get<{ tails: { summary: { channel: string | null } | null }[] }>(
        "n2",
        "/api/repl/tails",
      )).tails;
      assertEquals(tails.filter((t) => t.summary?.channel !== "b").length, 0, "tails of set b");
      assertEquals(await holderB(), "n1", "manual failback: set b stays on the survivor");

      // switching back by hand: set b (and its channel) to n2, which now holds its data
      await lab.post("n1", "/api/ha/failover", { by: "lab", set: "b" });
      await until(
        async () => {
          const [p, s] = [await channelsOf(repl, "n2"), await channelsOf(repl, "n1")];
          return (await holderB()) === "n2" && p.b?.role === "primary" && p.b.link === "up" &&
            s.b?.role === "standby" && s.b.epoch === p.b.epoch;
        },
        "n2 active for set b again, primary of channel b",
        60_000,
      );
      await ackedAfter(b, 10, "set b's messages on n2 again");
      const back = await channelsOf(repl, "n1");
      assertEquals(back.a.role, "primary", "set a never moved");

      // the end: every acknowledged message of each set is on the node serving it now
      // (set b's client reads them from n2, including those n1 took while n2 was dead)
      const [ra, rb] = await Promise.all([pair.finish(), b.finish()]);
      const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
      console.log(
        `SMSGW-AA set a: acked ${ra.acked}, missing ${ra.missing}, undelivered ${ra.undelivered}; ` +
          `set b: acked ${rb.acked}, local-only ${rb.ackedLocalOnly}, missing ${rb.missing}, ` +
          `undelivered ${rb.undelivered}, SMSC duplicates ${rb.smsc.duplicates}; ` +
          `set b failover ${failoverMs} ms; n2 resync of both channels ${resyncMs} ms, ` +
          `${tails.length} tail(s) set aside; ` +
          `${Math.round((Date.now() - started) / 1000)} s; load ${load}`,
      );
      const ctx = `\n${lines.join("\n")}\n${JSON.stringify({ ra, rb })}`;
      assertEquals([ra.missing, rb.missing], [0, 0], ctx);
      assertEquals([ra.undelivered, rb.undelivered], [0, 0], ctx);
      assert(ra.acked > 0 && rb.acked > 0, ctx);
    } catch (e) {
      for (const n of ["n1", "n2"] as const) console.error(`${n} log:\n${lab.log(n).slice(-3000)}`);
      throw e;
    } finally {
      await pair.close();
    }
  },
});
