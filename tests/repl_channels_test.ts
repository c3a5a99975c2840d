/**
 * Active-active replication: two channels in opposite directions in one pair (each node
 * primary of one client set, standby of the other), the survivor taking both, the
 * returning node resyncing both (its tails set aside), the switch back of set b; and the
 * store migration of the engine's tables from before channels.
 */
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { Store } from "../mod/store/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import {
  channelReceiver,
  encodeFrame,
  MemoryTransport,
  migrateState,
  replicaRefusal,
  Replicator,
  tableDigest,
} from "../mod/repl/mod.ts";
import { RIG_GROUPS, RIG_MIGRATIONS, RIG_TABLES, until } from "./repl_rig.ts";

const B_MIGRATIONS = [
  `CREATE TABLE messages_b (id INTEGER PRIMARY KEY, client TEXT NOT NULL, body TEXT NOT NULL);`,
];
// sync, continuing without the standby (the survivor serves alone)
const GROUPS = {
  ...RIG_GROUPS,
  strict: { durability: "sync" as const },
  data_b: { durability: "sync" as const, set: "b" as const },
};
const A_TABLES = RIG_TABLES;
const B_TABLES = { messages_b: "data_b" };
const ALL = [...Object.keys(A_TABLES), ...Object.keys(B_TABLES)];

interface Node {
  store: Store;
  events: KwEvent[];
  a: Replicator;
  b: Replicator;
  /** What the peer's transports deliver to. */
  link: MemoryTransport;
  dir: string;
}

function node(dir: string, name: string): Node {
  const store = new Store({ path: `${dir}/${name}/store.db` });
  store.migrate("rig", RIG_MIGRATIONS);
  store.migrate("rigb", B_MIGRATIONS);
  const bus = new EventBus();
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const opts = {
    db: store.db,
    pairId: "pair-aa",
    groups: GROUPS,
    tailDir: `${dir}/${name}/tails`,
    bus,
    batchMs: 10,
    ackTimeoutMs: 2000,
    retryMs: 50,
  };
  const a = new Replicator({ ...opts, tables: A_TABLES });
  const b = new Replicator({ ...opts, channel: "b", tables: B_TABLES });
  const link = new MemoryTransport(
    channelReceiver((ch) => ch === "a" ? a : ch === "b" ? b : undefined),
  );
  return { store, events, a, b, link, dir: `${dir}/${name}` };
}

/** Both of a node's engines send to `peer`. */
function connect(n: Node, peer: Node): void {
  n.a.setTransport(peer.link);
  n.b.setTransport(peer.link);
}

function digests(n: Node): Record<string, string> {
  return Object.fromEntries(ALL.map((t) => [t, tableDigest(n.store.db, t)]));
}

function count(n: Node, table: string): number {
  return Number(
    (n.store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n,
  );
}

function insA(n: Node, id: number) {
  return n.a.write(
    "strict",
    (db) =>
      db.prepare("INSERT INTO messages (id, client, body, status) VALUES (?, 'a', ?, 'queued')")
        .run(id, `a${id}`),
  );
}

function insB(n: Node, id: number) {
  return n.b.write(
    "data_b",
    (db) =>
      db.prepare("INSERT INTO messages_b (id, client, body) VALUES (?, 'b', ?)").run(id, `b${id}`),
  );
}

async function tails(n: Node): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${n.dir}/tails`)) out.push(e.name);
  } catch { /* none */ }
  return out.sort();
}

Deno.test("repl channels: two channels in opposite directions; survivor takes both; the returning node resyncs both, tails aside; set b switches back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-aa-" });
  const n1 = node(dir, "n1");
  const n2 = node(dir, "n2");
  try {
    connect(n1, n2);
    connect(n2, n1);
    // n1 active for set a, n2 for set b
    n1.b.demote();
    n2.a.demote();
    n1.a.promote();
    n2.b.promote();
    // both nodes write at once; each write is confirmed by the other node
    const writes = [];
    for (let i = 1; i <= 20; i++) writes.push(insA(n1, i), insB(n2, i));
    for (const w of await Promise.all(writes)) assert(w.replicated, "every sync write confirmed");
    assertEquals(digests(n1), digests(n2));
    assertEquals(count(n2, "messages"), 20);
    assertEquals(count(n1, "messages_b"), 20);

    // each node refuses writes to the tables of the set it is standby for, and only those
    const e1 = assertThrows(() =>
      n1.store.db.prepare("INSERT INTO messages_b (id, client, body) VALUES (99, 'x', 'x')").run()
    );
    assertEquals(replicaRefusal(e1)?.message.includes("messages_b"), true);
    assertThrows(() => n2.store.db.prepare("UPDATE messages SET status = 'x' WHERE id = 1").run());
    n1.store.db.prepare("INSERT INTO local_only (k, v) VALUES ('x', '1')").run();
    n2.store.db.prepare("UPDATE messages_b SET body = 'ok' WHERE id = 1").run(); // its own set
    await n2.b.flushNow();
    assertEquals(
      (n1.store.db.prepare("SELECT body FROM messages_b WHERE id = 1").get() as { body: string })
        .body,
      "ok",
    );
    // a frame of channel b handed to channel a's engine is refused, nothing applied
    const stray = encodeFrame({
      pairId: "pair-aa",
      channel: "b",
      epoch: n1.a.status().epoch,
      seq: n2.a.status().seq + 1,
      schemaVersion: n1.a.status().schemaVersion,
      changesets: [],
    });
    const ack = n2.a.receiveFrames(stray);
    assertEquals([ack.ok, ack.reason], [false, "wrong_channel"]);
    // the state rows are per channel
    const st = n1.store.db.prepare(
      "SELECT key FROM repl_state WHERE key IN ('epoch', 'b:epoch') ORDER BY key",
    ).all() as { key: string }[];
    assertEquals(st.map((r) => r.key), ["b:epoch", "epoch"]);

    // n1 dies with writes of set a its peer never took (the link is cut first)
    n2.link.down = true;
    const lost = await Promise.all([insA(n1, 1001), insA(n1, 1002)]);
    assertEquals(lost.map((w) => w.replicated), [false, false], "not confirmed");
    assertEquals(count(n1, "messages"), 22, "committed locally: the tail");
    n1.a.stop();
    n1.b.stop();
    // the survivor serves both sets: promoted on channel a (new epoch), keeps b
    n1.link.down = true;
    const epochA = n2.a.promote();
    for (let i = 21; i <= 30; i++) await insA(n2, i);
    for (let i = 21; i <= 30; i++) await insB(n2, i);
    assertEquals(count(n2, "messages"), 30);
    assertEquals(count(n2, "messages_b"), 30);

    // n1 comes back: standby on both channels; both are resynced; its tail of set a aside
    n1.a.demote();
    n1.b.demote();
    n2.link.down = false;
    n1.link.down = false;
    await until(
      () =>
        n1.a.status().epoch === epochA && n1.a.status().seq === n2.a.status().seq &&
        n1.b.status().seq === n2.b.status().seq && n2.a.status().link === "up" &&
        n2.b.status().link === "up",
      "n1 caught up on both channels",
    );
    assertEquals(digests(n1), digests(n2));
    assertEquals(count(n1, "messages"), 30, "the tail was not merged");
    const files = await tails(n1);
    assertEquals(files.length, 1, `one tail (channel a): ${files}`);
    assert(files[0].startsWith("tail-pair-aa-e"), files[0]);
    assert(n1.events.some((e) => e.kind === "repl.tail_saved" && e.payload.channel === "a"));

    // switching back: set b returns to n1 (a new epoch of channel b), with its data
    n2.b.demote();
    const epochB = n1.b.promote();
    await until(
      () => n2.b.status().epoch === epochB && n2.b.status().resync === null,
      "n2 resynced on channel b",
    );
    for (let i = 31; i <= 40; i++) assert((await insB(n1, i)).replicated);
    assertEquals(count(n2, "messages_b"), 40);
    assertEquals(count(n1, "messages_b"), 40);
    assertEquals(digests(n1), digests(n2));
    // and set a stays with n2 (the switch back of one set leaves the other)
    assertEquals([n2.a.status().role, n1.a.status().role], ["primary", "standby"]);
  } finally {
    for (const n of [n1, n2]) n.a.stop(), n.b.stop(), n.store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("repl channels: a store from before channels keeps its epoch, seq and log as channel a's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-mig-" });
  const store = new Store({ path: `${dir}/store.db` });
  try {
    store.migrate("rig", RIG_MIGRATIONS);
    store.db.exec(`
      CREATE TABLE repl_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE repl_log (seq INTEGER PRIMARY KEY, epoch INTEGER NOT NULL,
        made INTEGER NOT NULL, frame BLOB NOT NULL);
      CREATE TABLE repl_epochs (epoch INTEGER PRIMARY KEY, start_seq INTEGER NOT NULL);
      INSERT INTO repl_state VALUES ('epoch', 7), ('seq', 42), ('acked', 40), ('primary_epoch', 7);
      INSERT INTO repl_log VALUES (41, 7, 1, x'00'), (42, 7, 2, x'01');
      INSERT INTO repl_epochs VALUES (6, 10), (7, 30);`);
    const r = new Replicator({
      db: store.db,
      pairId: "p",
      groups: RIG_GROUPS,
      tables: RIG_TABLES,
      tailDir: `${dir}/tails`,
    });
    assertEquals([r.status().epoch, r.status().seq, r.status().channel], [7, 42, "a"]);
    const log = store.db.prepare("SELECT channel, seq FROM repl_log ORDER BY seq").all();
    assertEquals(log.map((x) => ({ ...x })), [{ channel: "a", seq: 41 }, {
      channel: "a",
      seq: 42,
    }]);
    assertEquals(
      Number(
        (store.db.prepare("SELECT COUNT(*) AS n FROM repl_epochs WHERE channel = 'a'").get() as {
          n: number;
        }).n,
      ),
      2,
    );
    migrateState(store.db); // idempotent
    // repl_state keeps its shape: an older build (a rollback) still upserts by key
    store.db.prepare(
      "INSERT INTO repl_state (key, value) VALUES ('epoch', 7) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ).run();
    const b = new Replicator({
      db: store.db,
      pairId: "p",
      channel: "b",
      groups: RIG_GROUPS,
      tables: {},
      tailDir: `${dir}/tails`,
    });
    assertEquals([b.status().epoch, b.status().seq], [0, 0], "channel b starts empty");
    b.demote();
    b.promote();
    assertEquals(
      Number(
        (store.db.prepare("SELECT value FROM repl_state WHERE key = 'b:epoch'").get() as {
          value: number;
        }).value,
      ),
      1,
    );
    // a table of a set-a group cannot go on channel b
    assertThrows(() => b.addTables("config", ["users"]), Error, "is on set a");
    r.stop();
    b.stop();
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("repl channels: a store keyed by (channel, key) in repl_state goes back to key with b: prefixes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-mig2-" });
  const store = new Store({ path: `${dir}/store.db` });
  try {
    store.db.exec(`
      CREATE TABLE repl_state (channel TEXT NOT NULL DEFAULT 'a', key TEXT NOT NULL,
        value INTEGER NOT NULL, PRIMARY KEY (channel, key));
      INSERT INTO repl_state VALUES ('a', 'epoch', 3), ('b', 'epoch', 5), ('b', 'seq', 9);`);
    migrateState(store.db);
    const rows = store.db.prepare("SELECT key, value FROM repl_state ORDER BY key").all();
    assertEquals(rows.map((r) => ({ ...r })), [
      { key: "b:epoch", value: 5 },
      { key: "b:seq", value: 9 },
      { key: "epoch", value: 3 },
    ]);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
