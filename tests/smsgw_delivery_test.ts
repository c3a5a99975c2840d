/**
 * The example gateway's delivery records: within one node-epoch a message is never sent
 * twice; a send left without an outcome by this node's earlier epoch is sent again at once,
 * one claimed by another node only once that claim is stale; the SMSC's refusal fails the
 * message.
 */
import { join } from "node:path";
import { assertEquals } from "./helpers/assert.ts";
import { waitFor } from "./helpers/procs.ts";
import { Store } from "../mod/store/mod.ts";
import { ReplRegistry } from "../mod/repl/registry.ts";
import { SdkHost } from "../mod/sdk/host.ts";
import { Smsgw, SMSGW_TABLES } from "../examples/smsgw/app.ts";
import { startSmsc } from "../examples/smsgw/smsc.ts";

Deno.test("smsgw delivery: at most once per node-epoch; stale claims of others resent; refusals fail", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-smsgw-del-" });
  const store = new Store({ path: join(dir, "kw.db") });
  let role = "active";
  const host = new SdkHost({
    store,
    ha: () => ({ role, node: "n1", peer: "n2" }),
    registry: new ReplRegistry({ core: false }),
  });
  const smsc = startSmsc();
  const app = new Smsgw({
    tables: {
      query: (sql, p) => Promise.resolve(host.query("smsgw", sql, p)),
      write: (st) => host.write("smsgw", "sms", Array.isArray(st) ? st : [st]),
    },
    node: () => host.node(),
    handoff: () => host.handoff("smsgw"),
    reportQueue: () => {},
    status: () => {},
  }, { smscUrl: smsc.url, staleMs: 6000 });
  const w = (sql: string, params: (string | number)[] = []) =>
    host.write("smsgw", "sms", [{ sql, params }]);
  const msg = (id: string, status: string, updated = Date.now()) =>
    w(
      "INSERT INTO smsgw_messages (id, account, to_addr, body, status, assigned, created, updated) VALUES (?, 'a', '+4915100000000', 'x', ?, 'n1', ?, ?)",
      [id, status, updated, updated],
    );
  const claim = (id: string, node: string, epoch: string) =>
    w(
      "INSERT INTO smsgw_deliveries (msg_id, node, epoch, at, result) VALUES (?, ?, ?, ?, 'sending')",
      [id, node, epoch, Date.now()],
    );
  const statusOf = (id: string) =>
    host.query("smsgw", "SELECT status FROM smsgw_messages WHERE id = ?", [id])[0]?.status;
  try {
    host.declare("smsgw", SMSGW_TABLES);
    const epoch1 = app.epoch();
    // claimed by this node-epoch, no outcome: never sent again in this epoch
    await msg("mine-now", "sending");
    await claim("mine-now", "n1", epoch1);
    // claimed by an earlier epoch of this node: sent again at once
    await msg("mine-before", "sending");
    await claim("mine-before", "n1", "old-epoch");
    // claimed by the other node just now: left alone (its send may be in flight)
    await msg("peer-now", "sending");
    await claim("peer-now", "n2", "e");
    // claimed by the other node long ago: sent again
    await msg("peer-stale", "sending", Date.now() - 60_000);
    await claim("peer-stale", "n2", "e");
    await msg("fresh", "queued");
    for (let i = 0; i < 3; i++) await app.tick();
    await waitFor(() => smsc.seen.has("fresh") && smsc.seen.has("mine-before"), 10_000, "sends");
    assertEquals(smsc.seen.has("mine-now"), false);
    assertEquals(smsc.seen.has("peer-now"), false);
    assertEquals(smsc.seen.get("peer-stale"), 1);
    assertEquals(statusOf("mine-before"), "delivered");
    assertEquals(statusOf("mine-now"), "sending");
    // a role change starts a new node-epoch: this node's own earlier claims are resent
    role = "standby";
    host.refreshNode();
    app.epoch();
    role = "active";
    host.refreshNode();
    await app.tick();
    await waitFor(() => smsc.seen.has("mine-now"), 10_000, "resend after the epoch changed");
    assertEquals(smsc.seen.get("mine-now"), 1);
    assertEquals(smsc.seen.has("peer-now"), false);
    // a refusal by the SMSC fails the message (never retried)
    smsc.failing = true;
    await msg("refused", "queued");
    await app.tick();
    assertEquals(statusOf("refused"), "failed");
    assertEquals(smsc.stats().duplicates, 0);
  } finally {
    await app.stop();
    await smsc.close();
    host.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
