/**
 * The SDK's replicated tables (mod/sdk/host.ts): declarations, the refusal of a table
 * without a primary key, migrations by version, the authorizer that keeps a subsystem
 * to its own tables, the standby's refusal, and a sync write that resolves only once the
 * standby applied it.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./helpers/assert.ts";
import { Store } from "../mod/store/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { type HaView, SdkHost, type TableReplication } from "../mod/sdk/host.ts";
import {
  SdkDeclarationError,
  SdkNoPrimaryKeyError,
  SdkNotActiveError,
  SdkSqlError,
} from "../mod/sdk/errors.ts";
import type { TablesSpec } from "../mod/sdk/mod.ts";
import { MemoryTransport, Replicator, ReplRegistry, tableDigest } from "../mod/repl/mod.ts";

const SPEC: TablesSpec = {
  group: "sms",
  durability: "sync",
  tables: [{
    name: "t_msgs",
    columns: { id: "TEXT NOT NULL", body: "TEXT NOT NULL", n: "INTEGER NOT NULL DEFAULT 0" },
    primaryKey: ["id"],
    indexes: { t_msgs_body: ["body"] },
  }, {
    name: "t_accounts",
    columns: { key: "TEXT NOT NULL", name: "TEXT" },
    primaryKey: ["key"],
  }],
};

async function withStore(fn: (store: Store, dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kw-sdk-" });
  const store = new Store({ path: `${dir}/kw.db` });
  try {
    await fn(store, dir);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function host(store: Store, ha?: () => HaView, bus?: EventBus): SdkHost {
  return new SdkHost({ store, ha, bus, registry: new ReplRegistry({ core: false }) });
}

Deno.test("sdk tables: declare creates the tables; write and query through the host", async () => {
  await withStore(async (store) => {
    const bus = new EventBus();
    const seen: string[] = [];
    bus.subscribe((e) => void seen.push(e.kind));
    const h = host(store, undefined, bus);
    const info = h.declare("smsgw", SPEC);
    assertEquals(info.version, 1);
    assertEquals(info.tables, ["t_msgs", "t_accounts"]);
    const w = await h.write("smsgw", "sms", [
      { sql: "INSERT INTO t_msgs (id, body) VALUES (?, ?)", params: ["a", "hello"] },
      {
        sql: "INSERT INTO t_msgs (id, body) VALUES (:id, :body) RETURNING id",
        params: { id: "b", body: "x" },
      },
    ]);
    assertEquals(w.durable, "local");
    assertEquals(w.results[0].changes, 1);
    assertEquals(w.results[1].rows, [{ id: "b" }]);
    assertEquals(h.query("smsgw", "SELECT id FROM t_msgs ORDER BY id"), [{ id: "a" }, { id: "b" }]);
    // declaring again (a restart) changes nothing and keeps the rows
    assertEquals(h.declare("smsgw", SPEC).version, 1);
    assertEquals(h.query("smsgw", "SELECT count(*) AS n FROM t_msgs"), [{ n: 2 }]);
    assert(seen.includes("sdk.tables_declared"));
    // one transaction: a failing statement rolls back the ones before it
    await assertRejects(
      () =>
        h.write("smsgw", "sms", [
          { sql: "INSERT INTO t_msgs (id, body) VALUES ('c', 'y')" },
          { sql: "INSERT INTO t_msgs (id, body) VALUES ('a', 'dup')" },
        ]),
      SdkSqlError,
      "UNIQUE",
    );
    assertEquals(h.query("smsgw", "SELECT count(*) AS n FROM t_msgs"), [{ n: 2 }]);
    h.close();
  });
});

Deno.test("sdk tables: a table without a primary key is refused, naming it; nothing is created", async () => {
  await withStore((store) => {
    const h = host(store);
    const bad: TablesSpec = {
      group: "g",
      durability: "async",
      tables: [
        { name: "ok_t", columns: { a: "TEXT" }, primaryKey: ["a"] },
        { name: "log_lines", columns: { line: "TEXT" }, primaryKey: [] },
      ],
    };
    const e = assertThrows(
      () => h.declare("sub", bad),
      SdkNoPrimaryKeyError,
    ) as SdkNoPrimaryKeyError;
    assertEquals(e.code, "sdk_no_primary_key");
    assert(e.message.includes('"log_lines"'), e.message);
    assertEquals(e.fields, { "tables[1].primaryKey": "required: at least one column" });
    const missing = { ...bad, tables: [{ name: "log_lines", columns: { line: "TEXT" } }] };
    assertThrows(() => h.declare("sub", missing), SdkNoPrimaryKeyError, "log_lines");
    const tables = store.db.prepare(
      "SELECT name FROM sqlite_master WHERE name IN ('ok_t', 'log_lines')",
    ).all();
    assertEquals(tables, []);
    // bad input names the field
    const e2 = assertThrows(
      () => h.declare("sub", { ...SPEC, durability: "sometimes" }),
      SdkDeclarationError,
    ) as SdkDeclarationError;
    assert(Object.keys(e2.fields ?? {}).includes("durability"), JSON.stringify(e2.fields));
    const e3 = assertThrows(
      () =>
        h.declare("sub", {
          ...SPEC,
          tables: [{ name: "x", columns: { a: "TEXT; DROP TABLE users" }, primaryKey: ["a"] }],
        }),
      SdkDeclarationError,
    ) as SdkDeclarationError;
    assert(Object.keys(e3.fields ?? {})[0].startsWith("tables[0].columns"), e3.message);
    h.close();
  });
});

Deno.test("sdk tables: a subsystem reaches only its own tables; no DDL, PRAGMA or transactions", async () => {
  await withStore(async (store) => {
    const h = host(store);
    h.declare("a", SPEC);
    h.declare("b", {
      group: "other",
      durability: "async",
      tables: [{ name: "b_t", columns: { k: "TEXT" }, primaryKey: ["k"] }],
    });
    // keepwire's own tables and another subsystem's are out of reach
    assertThrows(() => h.query("a", "SELECT * FROM settings"), SdkSqlError, '"settings"');
    assertThrows(() => h.query("a", "SELECT * FROM b_t"), SdkSqlError, '"b_t"');
    assertThrows(() => h.query("a", "SELECT * FROM t_msgs JOIN events"), SdkSqlError, "events");
    // a query only reads
    assertThrows(() => h.query("a", "DELETE FROM t_msgs"), SdkSqlError, "write()");
    for (
      const sql of [
        "DROP TABLE t_msgs",
        "PRAGMA journal_mode = DELETE",
        "BEGIN",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "CREATE TABLE t_new (a PRIMARY KEY)",
      ]
    ) {
      await assertRejects(() => h.write("a", "sms", [{ sql }]), SdkSqlError);
    }
    await assertRejects(
      () => h.write("a", "sms", [{ sql: "INSERT INTO b_t (k) VALUES ('x')" }]),
      SdkSqlError,
      "b_t",
    );
    // keepwire's tables cannot be declared either
    assertThrows(
      () =>
        h.declare("a", {
          group: "g2",
          durability: "sync",
          tables: [{ name: "settings", columns: { key: "TEXT" }, primaryKey: ["key"] }],
        }),
      SdkDeclarationError,
      "keepwire's own",
    );
    assertThrows(
      () =>
        h.declare("c", {
          group: "sms",
          durability: "sync",
          tables: [{ name: "b_t", columns: { k: "TEXT" }, primaryKey: ["k"] }],
        }),
      SdkDeclarationError,
      'belongs to subsystem "b"',
    );
    h.close();
  });
});

Deno.test("sdk tables: migrations by version (fresh install creates the current shape)", async () => {
  await withStore(async (store) => {
    const h = host(store);
    const v1: TablesSpec = {
      group: "g",
      durability: "sync",
      tables: [{ name: "m_t", columns: { id: "TEXT NOT NULL" }, primaryKey: ["id"] }],
    };
    h.declare("s", v1);
    await h.write("s", "g", [{ sql: "INSERT INTO m_t (id) VALUES ('one')" }]);
    const v3: TablesSpec = {
      ...v1,
      tables: [{
        name: "m_t",
        columns: { id: "TEXT NOT NULL", note: "TEXT", prio: "INTEGER NOT NULL DEFAULT 5" },
        primaryKey: ["id"],
      }],
      migrations: [
        "ALTER TABLE m_t ADD COLUMN note TEXT",
        "ALTER TABLE m_t ADD COLUMN prio INTEGER NOT NULL DEFAULT 5; CREATE INDEX m_t_prio ON m_t (prio)",
      ],
    };
    assertEquals(h.declare("s", v3).version, 3);
    assertEquals(h.query("s", "SELECT id, note, prio FROM m_t"), [{
      id: "one",
      note: null,
      prio: 5,
    }]);
    // older code on newer tables is refused
    assertThrows(() => h.declare("s", v1), SdkDeclarationError, "newer");
    // a declaration that does not match the migrated shape is refused, naming the columns
    const drift = { ...v3, tables: [{ ...v3.tables[0], columns: { id: "TEXT NOT NULL" } }] };
    assertThrows(() => h.declare("s", drift), SdkDeclarationError, "add a migration");
    // a migration may not touch other tables nor change data
    const evil: TablesSpec = { ...v3, migrations: [...v3.migrations!, "DROP TABLE settings"] };
    assertThrows(() => h.declare("s", evil), SdkDeclarationError, "settings");
    const data: TablesSpec = {
      ...v3,
      migrations: [...v3.migrations!, "UPDATE m_t SET prio = 1"],
    };
    assertThrows(() => h.declare("s", data), SdkDeclarationError, "schema only");
    // nothing of a refused migration ran
    assertEquals(store.schemaVersion("sdk_s_g"), 3);
    assertEquals(h.query("s", "SELECT prio FROM m_t"), [{ prio: 5 }]);
    h.close();
  });
  // a fresh install of v3 creates the current shape and skips the steps
  await withStore((store) => {
    const h = host(store);
    const info = h.declare("s", {
      group: "g",
      durability: "sync",
      tables: [{
        name: "m_t",
        columns: { id: "TEXT NOT NULL", note: "TEXT", prio: "INTEGER NOT NULL DEFAULT 5" },
        primaryKey: ["id"],
      }],
      migrations: [
        "ALTER TABLE m_t ADD COLUMN note TEXT",
        "ALTER TABLE m_t ADD COLUMN prio INTEGER",
      ],
    });
    assertEquals(info.version, 3);
    assertEquals(store.schemaVersion("sdk_s_g"), 3);
    h.close();
  });
});

Deno.test("sdk tables: on a standby writes are refused with a clear error, reads work", async () => {
  await withStore(async (store) => {
    let role = "active";
    const h = host(store, () => ({ role, node: "n2", peer: "n1" }));
    const roles: string[] = [];
    h.onNode((n) => roles.push(`${n.role}:${n.writable}`));
    h.declare("smsgw", SPEC);
    await h.write("smsgw", "sms", [{ sql: "INSERT INTO t_msgs (id, body) VALUES ('a', 'b')" }]);
    role = "standby";
    h.refreshNode();
    assertEquals(roles, ["standby:false"]);
    const e = await assertRejects(
      () => h.write("smsgw", "sms", [{ sql: "DELETE FROM t_msgs" }]),
      SdkNotActiveError,
    ) as SdkNotActiveError;
    assertEquals(e.code, "sdk_not_active");
    assert(e.message.includes("standby"), e.message);
    assertEquals(h.query("smsgw", "SELECT id FROM t_msgs"), [{ id: "a" }]);
    role = "fault";
    h.refreshNode();
    await assertRejects(
      () => h.write("smsgw", "sms", [{ sql: "DELETE FROM t_msgs" }]),
      SdkNotActiveError,
      "fault",
    );
    h.close();
  });
});

/** The Replicator is what the SDK needs (checked at compile time). */
const replAdapter = (r: Replicator): TableReplication => r;

Deno.test("sdk tables: a sync write resolves only after the standby applied it; identical tables", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-sdk-repl-" });
  const s1 = new Store({ path: `${dir}/n1.db` });
  const s2 = new Store({ path: `${dir}/n2.db` });
  const h1 = host(s1, () => ({ role: "active", node: "n1", peer: "n2" }));
  const h2 = host(s2, () => ({ role: "standby", node: "n2", peer: "n1" }));
  const engines: Replicator[] = [];
  try {
    // migrations run on both nodes (the subsystem runs on both)
    h1.declare("smsgw", SPEC);
    h2.declare("smsgw", SPEC);
    const tables = {
      t_msgs: "sdk_smsgw_sms",
      t_accounts: "sdk_smsgw_sms",
      sdk_handoff: "sdk",
      sdk_handoff_state: "sdk",
    };
    const groups = {
      "sdk_smsgw_sms": { durability: "sync" as const },
      sdk: { durability: "sync" as const },
    };
    const r2 = new Replicator({ db: s2.db, pairId: "p", groups, tables, tailDir: `${dir}/t2` });
    const r1 = new Replicator({
      db: s1.db,
      pairId: "p",
      groups,
      tables,
      tailDir: `${dir}/t1`,
      transport: new MemoryTransport(r2),
    });
    engines.push(r1, r2);
    r2.demote();
    r1.promote();
    h1.setReplication(replAdapter(r1));
    h2.setReplication(replAdapter(r2));
    let applied = false;
    const orig = r2.receiveFrames.bind(r2);
    r2.receiveFrames = (b) => {
      const ack = orig(b);
      applied = true;
      return ack;
    };
    const w = await h1.write("smsgw", "sms", [
      { sql: "INSERT INTO t_msgs (id, body) VALUES ('m1', 'hello')" },
      { sql: "INSERT INTO t_accounts (key, name) VALUES ('k1', 'acme')" },
    ]);
    assert(applied, "resolved before the standby applied it");
    assertEquals(w.durable, "replicated");
    assert(w.seq !== null && w.seq > 0);
    assertEquals(h2.query("smsgw", "SELECT body FROM t_msgs WHERE id = 'm1'"), [{ body: "hello" }]);
    // the standby refuses the same write
    await assertRejects(
      () => h2.write("smsgw", "sms", [{ sql: "DELETE FROM t_msgs" }]),
      SdkNotActiveError,
    );
    for (let i = 0; i < 50; i++) {
      await h1.write("smsgw", "sms", [{
        sql: "INSERT INTO t_msgs (id, body, n) VALUES (?, ?, ?)",
        params: [`x${i}`, "b", i],
      }]);
    }
    // handoff settings written on the active reach the standby (replicated group "sdk")
    await h1.setHandoff("smsgw", { enabled: true, onAt: 10, offAt: 2 }, "test");
    for (const t of Object.keys(tables)) {
      assertEquals(tableDigest(s1.db, t), tableDigest(s2.db, t), t);
    }
    assertEquals(h2.handoffSettings("smsgw"), { enabled: true, onAt: 10, offAt: 2 });
  } finally {
    for (const e of engines) e.stop();
    h1.close();
    h2.close();
    s1.close();
    s2.close();
    await Deno.remove(dir, { recursive: true });
  }
});
