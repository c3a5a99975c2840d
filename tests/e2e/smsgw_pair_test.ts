/**
 * The example SMS gateway on an HA pair, bounded form (the 20-kill form is
 * `deno task chaos smsgw_kills`): a client submits at a steady rate to the service
 * address; first the queue handoff (a slow SMSC builds the active's queue past the threshold
 * set through the API: the standby sends new messages, both nodes say why; back below the off
 * mark), then the active is killed with SIGKILL 3 times; every acknowledged message is on
 * the survivor (sync replication) and reaches the SMSC. The SMSC's duplicates are counted
 * and printed: each must follow a kill (a send of the dead node whose outcome it had not
 * recorded), at most one claimed batch (`DELIVERY_BATCH`) per kill.
 * tests/e2e/smsgw_lab.ts does the work; bounded ≤ 3 min; the lab removes everything it made.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { missingTools } from "../helpers/tools.ts";
import { runSmsgwPair, smsgwFiguresLine } from "./smsgw_lab.ts";
import { DELIVERY_BATCH } from "../../examples/smsgw/app.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

Deno.test({
  name: "smsgw pair: kill -9 of the active 3 times under client load, 0 acknowledged messages lost",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lines: string[] = [];
    const f = await runSmsgwPair({ kills: 3, rate: 20, handoff: true, log: (l) => lines.push(l) });
    console.log(smsgwFiguresLine(f));
    const ctx = `\n${lines.join("\n")}\n${JSON.stringify(f)}`;
    assertEquals(f.problems, [], ctx);
    assertEquals([f.kills, f.survivedKills], [3, 3], ctx);
    assertEquals(f.missing, 0, ctx);
    assertEquals(f.undelivered, 0, ctx);
    // duplicates only across a kill (the dead node's sends whose outcome it could not
    // record), each kill at most one claimed batch; none with no failover in between
    const d = f.duplicateSends!;
    assertEquals(d.noKill, 0, `sent twice with no kill in between: ${d.sample.join("; ")}${ctx}`);
    for (const n of d.perKill) assert(n <= DELIVERY_BATCH, `${n} duplicates at one kill${ctx}`);
    // the handoff: the standby sent messages for the active, and both nodes said why
    assert((f.handoff?.servedByPeer ?? 0) > 0, ctx);
    assert(f.handoff!.activeSaid.startsWith("to n2: queue"), ctx);
    assert(f.handoff!.standbySaid.includes("hands new work to this node"), ctx);
  },
});
