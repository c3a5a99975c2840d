/**
 * The example gateway with two client sets (examples/smsgw/sets.ts): a message sent to
 * set b's address is stored in set b's tables and delivered by set b's lane; in an
 * active-active pair a node active for set b only takes set b's submits (set a's are
 * refused there), and the SDK writes set b's group through channel b's role.
 */
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { assertEquals } from "./helpers/assert.ts";
import { waitFor } from "./helpers/procs.ts";
import { Store } from "../mod/store/mod.ts";
import { ReplRegistry } from "../mod/repl/registry.ts";
import { SdkHost, type TableReplication } from "../mod/sdk/host.ts";
import { Smsgw, SMSGW_TABLES, type SmsgwSdk } from "../examples/smsgw/app.ts";
import { laneOf, laneSdk, SMSGW_TABLES_B } from "../examples/smsgw/sets.ts";
import { startSmsc } from "../examples/smsgw/smsc.ts";

const B_HOSTS = new Set(["10.9.0.2"]);

function lanes(host: SdkHost, smscUrl: string) {
  const handle = (group: string) => ({
    query: (sql: string, p?: (string | number | null)[]) =>
      Promise.resolve(host.query("smsgw", sql, p)),
    write: (st: Parameters<SmsgwSdk["tables"]["write"]>[0]) =>
      host.write("smsgw", group, Array.isArray(st) ? st : [st]),
  });
  const sdk: SmsgwSdk = {
    tables: handle("sms"),
    node: () => host.node(),
    handoff: () => null,
    reportQueue: () => {},
    status: () => {},
  };
  const a = new Smsgw(sdk, { smscUrl, tickMs: 50 });
  const b = new Smsgw(laneSdk(sdk, handle("sms_b")), { smscUrl, tickMs: 50 });
  const serve = (req: Request) => laneOf(req, B_HOSTS) === "b" ? b.handle(req) : a.handle(req);
  const submit = (addr: string, ref: string) =>
    serve(
      new Request(`http://${addr}:8780/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "k-acme" },
        body: JSON.stringify({ to: "+4915123456789", text: ref, clientRef: ref }),
      }),
    );
  return { a, b, submit };
}

function ids(store: Store, table: string): string[] {
  return (store.db.prepare(`SELECT body FROM ${table} ORDER BY body`).all() as { body: string }[])
    .map((r) => r.body);
}

Deno.test("smsgw sets: a message sent to set b's address lands in set b's tables and is delivered by set b's lane", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-smsgw-sets-" });
  const store = new Store({ path: join(dir, "kw.db") });
  const host = new SdkHost({
    store,
    ha: () => ({ role: "disabled", node: "n1", peer: null }),
    registry: new ReplRegistry({ core: false }),
  });
  const smsc = startSmsc();
  const { a, b, submit } = lanes(host, smsc.url);
  try {
    host.declare("smsgw", SMSGW_TABLES);
    host.declare("smsgw", SMSGW_TABLES_B);
    assertEquals(host.node().writableSets, ["a", "b"], "a single node writes both sets");
    await a.seedAccounts([["acme", "k-acme"]]);
    await b.seedAccounts([["acme", "k-acme"]]);
    a.start();
    b.start();
    assertEquals((await submit("10.9.0.1", "to-a")).status, 201);
    assertEquals((await submit("10.9.0.2", "to-b")).status, 201);
    assertEquals(ids(store, "smsgw_messages"), ["to-a"]);
    assertEquals(ids(store, "smsgwb_messages"), ["to-b"]);
    await waitFor(() => smsc.stats().received >= 2, 20_000, "both delivered");
    await waitFor(
      () =>
        (store.db.prepare("SELECT status FROM smsgwb_messages").get() as { status: string })
          .status === "delivered",
      20_000,
      "set b's message delivered",
    );
    assertEquals(smsc.stats().duplicates, 0);
  } finally {
    await a.stop();
    await b.stop();
    await smsc.close();
    host.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("smsgw sets: a node active for set b only takes set b's submits; its SDK writes set b's group, refuses set a's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-smsgw-setb-" });
  const store = new Store({ path: join(dir, "kw.db") });
  const host = new SdkHost({
    store,
    ha: () => ({ role: "standby", node: "n2", peer: "n1" }),
    registry: new ReplRegistry({ core: false }),
  });
  // the pair's replication as this node sees it: standby of set a, primary of set b
  const groupSet = new Map<string, "a" | "b">();
  const repl: TableReplication = {
    addTables: (group, _t, spec) => void groupSet.set(group, spec?.set ?? "a"),
    write: <T>(_g: string, fn: (db: DatabaseSync) => T) => {
      store.db.exec("BEGIN IMMEDIATE");
      try {
        const value = fn(store.db);
        store.db.exec("COMMIT");
        return Promise.resolve({ value, replicated: true });
      } catch (e) {
        store.db.exec("ROLLBACK");
        throw e;
      }
    },
    status: () => ({ role: "standby" }),
    groupRole: (group) => groupSet.get(group) === "b" ? "primary" : "standby",
  };
  host.setReplication(repl);
  const smsc = startSmsc();
  const { a, b, submit } = lanes(host, smsc.url);
  try {
    host.declare("smsgw", SMSGW_TABLES);
    host.declare("smsgw", SMSGW_TABLES_B);
    assertEquals(groupSet.get("sdk_smsgw_sms_b"), "b");
    assertEquals(host.node().writableSets, ["b"]);
    await b.seedAccounts([["acme", "k-acme"]]);
    assertEquals((await submit("10.9.0.2", "to-b")).status, 201);
    const r = await submit("10.9.0.1", "to-a");
    assertEquals(r.status, 503, "set a is written by its active node, not here");
    await r.body?.cancel();
    assertEquals(ids(store, "smsgwb_messages"), ["to-b"]);
    let refused = "";
    try {
      await host.write("smsgw", "sms", [{ sql: "DELETE FROM smsgw_refs" }]);
    } catch (e) {
      refused = (e as { code?: string }).code ?? String(e);
    }
    assertEquals(refused, "sdk_not_active");
  } finally {
    await a.stop();
    await b.stop();
    await smsc.close();
    host.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
