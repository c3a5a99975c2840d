/**
 * Queue handoff (issue 13 §7) with the example SMS gateway on two nodes in one process:
 * two stores replicated by the engine (sync), the SDK host of each, the gateway of each
 * with its HTTP API, one stand-in SMSC. The active's queue passes the threshold → new
 * messages go to the peer, which sends them (claims and outcomes through the active's
 * internal API); none lost, none sent twice; below the off mark new messages stay local.
 * Both nodes show where new messages go and why.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { waitFor } from "./helpers/procs.ts";
import { Store } from "../mod/store/mod.ts";
import { MemoryTransport, Replicator, ReplRegistry } from "../mod/repl/mod.ts";
import { SdkHost } from "../mod/sdk/host.ts";
import { Smsgw, SMSGW_TABLES, type SmsgwSdk } from "../examples/smsgw/app.ts";
import { startSmsc } from "../examples/smsgw/smsc.ts";
import type { Statement } from "../mod/sdk/mod.ts";

interface Node {
  store: Store;
  host: SdkHost;
  repl: Replicator;
  app: Smsgw;
  server: Deno.HttpServer<Deno.NetAddr>;
  url: string;
}

function sdkOf(host: SdkHost): SmsgwSdk {
  return {
    tables: {
      query: (sql, params) => Promise.resolve(host.query("smsgw", sql, params)),
      write: (st: Statement | Statement[]) =>
        host.write("smsgw", "sms", Array.isArray(st) ? st : [st]),
    },
    node: () => host.node(),
    handoff: () => host.handoff("smsgw"),
    reportQueue: (depth) => host.queue("smsgw", depth),
    status: () => {},
  };
}

Deno.test("smsgw handoff: past the threshold new messages go to the peer, none lost; below the off mark back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-handoff-" });
  const smsc = startSmsc();
  smsc.delayMs = 150; // a slow SMSC: the active's queue builds up (and drains slowly)
  const nodes: Node[] = [];
  let activeUrl = "";
  try {
    for (const [id, peer, role] of [["n1", "n2", "active"], ["n2", "n1", "standby"]]) {
      const store = new Store({ path: join(dir, `${id}.db`) });
      const host = new SdkHost({
        store,
        ha: () => ({ role, node: id, peer, peerUp: true }),
        registry: new ReplRegistry({ core: false }),
      });
      host.declare("smsgw", SMSGW_TABLES); // migrations run on both nodes
      const repl = new Replicator({
        db: store.db,
        pairId: "lab",
        groups: {},
        tables: {},
        tailDir: join(dir, `${id}-tail`),
      });
      host.setReplication(repl);
      const app = new Smsgw(sdkOf(host), {
        smscUrl: smsc.url,
        activeUrl: role === "standby" ? activeUrl : undefined,
        peerKey: "pair-key",
        concurrency: 2,
        tickMs: 50,
      });
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        (r) => app.handle(r),
      );
      const url = `http://127.0.0.1:${server.addr.port}`;
      if (role === "active") activeUrl = url;
      nodes.push({ store, host, repl, app, server, url });
    }
    const [n1, n2] = nodes;
    n1.repl.setTransport(new MemoryTransport(n2.repl));
    n2.repl.demote();
    n1.repl.promote();
    n1.host.refreshNode();
    n2.host.refreshNode();
    await n1.app.seedAccounts([["acme", "k"]]);
    await n1.host.setHandoff("smsgw", { enabled: true, onAt: 20, offAt: 5 }, "test");
    for (const n of nodes) n.app.start();

    const ids: string[] = [];
    const handed: string[] = [];
    const submit = async (i: number) => {
      const r = await fetch(`${n1.url}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": "k", "content-type": "application/json" },
        body: JSON.stringify({ to: "+4915100000000", text: `m${i}`, clientRef: `r${i}` }),
      });
      const b = await r.json();
      assertEquals([r.status, b.durable], [201, "replicated"], JSON.stringify(b));
      ids.push(b.id);
      if (b.assigned === "n2") handed.push(b.id);
      return b as { id: string; assigned: string };
    };
    // 1. fill the active's queue past onAt
    for (let i = 0; i < 30; i++) await submit(i);
    await waitFor(() => n1.host.handoff("smsgw").target === "peer", 30_000, "handoff on");
    const on = n1.host.handoff("smsgw");
    assertEquals(on.to, "n2");
    assert(on.reason.includes("reached 20"), on.reason);
    // both nodes show it; the standby from its side
    const seen2 = n2.host.handoff("smsgw");
    assertEquals([seen2.target, seen2.to, seen2.decidedBy], ["peer", "n2", "n1"]);
    assert(seen2.reason.includes("hands new work to this node"), seen2.reason);
    const routing = await (await fetch(`${n1.url}/v1/routing`)).json();
    assertEquals(routing.newMessagesTo, "n2");
    // 2. new messages now go to the peer
    const before = handed.length;
    for (let i = 30; i < 50; i++) await submit(i);
    assertEquals(handed.length - before, 20, "every new message went to the peer");
    // 3. everything is delivered, each message once, the handed ones by the peer
    await waitFor(() => ids.every((id) => smsc.seen.has(id)), 60_000, "all messages at the SMSC");
    await waitFor(
      () =>
        Number(
          n1.host.query(
            "smsgw",
            "SELECT count(*) AS n FROM smsgw_messages WHERE status = 'delivered'",
          )[0].n,
        ) === ids.length,
      30_000,
      "all delivered",
    );
    assertEquals(smsc.stats().duplicates, 0);
    for (const id of handed) assertEquals(smsc.sender.get(id), "n2", id);
    assertEquals(n2.app.counters.servedForPeer, handed.length, JSON.stringify(n2.app.counters));
    assertEquals(smsc.stats().byNode.n2, handed.length);
    // 4. the queue drained below offAt: new messages stay local again
    await waitFor(() => n1.host.handoff("smsgw").target === "local", 30_000, "handoff off");
    assert(n1.host.handoff("smsgw").reason.includes("stays here"));
    const after = await submit(99);
    assertEquals(after.assigned, "n1");
    await waitFor(() => smsc.seen.has(after.id), 30_000, "last message");
    // the peer's copy holds every message with its final status
    await n1.repl.flushNow();
    assertEquals(
      n2.host.query("smsgw", "SELECT count(*) AS n FROM smsgw_messages")[0].n,
      ids.length,
    );
    console.log(
      `handoff: ${ids.length} messages, ${handed.length} handed to the peer, SMSC ${
        JSON.stringify(smsc.stats())
      }`,
    );
  } finally {
    for (const n of nodes) {
      await n.app.stop();
      await n.server.shutdown();
      n.repl.stop();
      n.host.close();
      n.store.close();
    }
    await smsc.close();
    await Deno.remove(dir, { recursive: true });
  }
});
