import { assert, assertEquals, assertRejects, assertThrows } from "./helpers/assert.ts";
import {
  decodeFrames,
  encodeFrame,
  ReplConfigError,
  replicaRefusal,
  Replicator,
  ReplNoPrimaryKeyError,
  ReplReadOnlyError,
  ReplRegistry,
  ReplStandbyLostError,
  type SnapshotMeta,
} from "../mod/repl/mod.ts";
import type { DatabaseSync } from "node:sqlite";
import { count, digests, RIG_GROUPS, RIG_TABLES, rigNode, rigPair, until } from "./repl_rig.ts";

const addUser = (id: number, name = `u${id}`) => (db: DatabaseSync) =>
  db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'admin')").run(id, name);

Deno.test("repl: a table without a primary key is refused for replication, by name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-" });
  try {
    const n = rigNode(dir, "x");
    const e = assertThrows(
      () =>
        new Replicator({
          db: n.store.db,
          pairId: "p",
          groups: RIG_GROUPS,
          tables: { users: "config", nopk: "logs" },
          tailDir: dir,
        }),
      ReplNoPrimaryKeyError,
      `table "nopk" has no PRIMARY KEY`,
    );
    assertEquals((e as ReplNoPrimaryKeyError).code, "repl_no_primary_key");
    assertThrows(
      () =>
        new Replicator({
          db: n.store.db,
          pairId: "p",
          groups: RIG_GROUPS,
          tables: { nosuch: "config" },
          tailDir: dir,
        }),
      ReplConfigError,
      "no such table",
    );
    assertThrows(
      () =>
        new Replicator({
          db: n.store.db,
          pairId: "p",
          groups: RIG_GROUPS,
          tables: { users: "nogroup" },
          tailDir: dir,
        }),
      ReplConfigError,
      `unknown group "nogroup"`,
    );
    n.store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repl: first write resyncs the fresh standby, then frames flow; sync waits for the ack", async () => {
  const p = await rigPair();
  try {
    // hold the standby's answers until released, to see the write wait
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const send = p.link.sendFrames.bind(p.link);
    const snap = p.link.sendSnapshot.bind(p.link);
    p.link.sendFrames = async (body) => (await gate, send(body));
    p.link.sendSnapshot = async (m, c) => (await gate, snap(m, c));
    let done = false;
    const w = p.a.repl.write("config", addUser(1)).then((r) => (done = true, r));
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(done, false, "a sync write resolved before the standby answered");
    assertEquals(count(p.b, "users"), 0);
    release();
    const r = await w;
    assertEquals(r.replicated, true);
    assertEquals(count(p.b, "users"), 1, "acknowledged write missing on the standby");
    assertEquals(p.link.snapshots, 1, "the fresh standby (epoch 0) got a snapshot");
    // now plain frames, no more snapshots
    for (let i = 2; i <= 20; i++) {
      assertEquals((await p.a.repl.write("config", addUser(i))).replicated, true);
    }
    assertEquals(count(p.b, "users"), 20);
    assertEquals(p.link.snapshots, 1);
    assertEquals(p.b.repl.status().seq, p.a.repl.status().seq);
    assertEquals(digests(p.a), digests(p.b));
    // async group: shipped by the batch timer, lag bounded
    await p.a.repl.write("logs", (db) => db.prepare("INSERT INTO msglog VALUES (1, 1, 'x')").run());
    await until(() => count(p.b, "msglog") === 1, "async row on the standby");
    // a rolled-back write leaves nothing to replicate
    await assertRejects(
      () =>
        p.a.repl.write("config", (db) => {
          addUser(99)(db);
          throw new Error("boom");
        }),
      Error,
      "boom",
    );
    // an async callback would commit before its work: refused and rolled back
    await assertRejects(
      () =>
        p.a.repl.write("config", async (db) => {
          addUser(98)(db);
          await Promise.resolve();
        }),
      ReplConfigError,
      "returned a promise",
    );
    await p.a.repl.flushNow();
    assertEquals(count(p.a, "users"), 20);
    assertEquals(digests(p.a), digests(p.b));
    // local (unregistered) tables are never shipped
    p.a.store.db.exec("INSERT INTO local_only VALUES ('k', 'v')");
    await p.a.repl.flushNow();
    assertEquals(count(p.b, "local_only"), 0);
  } finally {
    await p.close();
  }
});

Deno.test("repl: the standby down during 10,000 writes → resync → identical tables", async () => {
  const p = await rigPair({ maxLogFrames: 500 });
  try {
    await p.a.repl.write("config", addUser(1));
    assertEquals(count(p.b, "users"), 1);
    p.link.down = true;
    const ins = (i: number) => (db: DatabaseSync) => {
      db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)").run(i, i, `line ${i}`);
      if (i % 10 === 0) {
        db.prepare("INSERT OR REPLACE INTO users (id, name, role) VALUES (?, ?, 'op')").run(
          i % 300,
          `n${i}`,
        );
      }
      if (i % 7 === 0) db.prepare("DELETE FROM msglog WHERE id = ?").run(i - 3);
    };
    let unconfirmed = 0;
    for (let i = 1; i <= 10_000; i++) {
      const r = await p.a.repl.write(i % 10 === 0 ? "config" : "logs", ins(i));
      if (i % 10 === 0 && !r.replicated) unconfirmed++;
    }
    assertEquals(unconfirmed, 1000, "sync writes with the standby gone continue locally");
    assert(p.a.events.some((e) => e.kind === "repl.standby_lost"));
    assert(p.a.repl.status().link === "down");
    // the refusing group refuses while the standby is gone, storing nothing
    await assertRejects(
      () =>
        p.a.repl.write("strict", (db) => db.exec("INSERT INTO messages VALUES (1,'c','b','q')")),
      ReplStandbyLostError,
    );
    assertEquals(count(p.a, "messages"), 0);
    p.link.down = false;
    await until(() => p.a.repl.status().acked === p.a.repl.status().seq, "standby caught up");
    assertEquals(p.link.snapshots, 2, "the log was too short: a second snapshot");
    assert(p.b.events.some((e) => e.kind === "repl.resync_finished"));
    assert(p.a.events.some((e) => e.kind === "repl.standby_back"));
    assertEquals(digests(p.a), digests(p.b));
    assert(count(p.b, "msglog") > 8000);
    // writes flow again as frames
    const r = await p.a.repl.write(
      "strict",
      (db) => db.exec("INSERT INTO messages VALUES (1,'c','b','q')"),
    );
    assertEquals(r.replicated, true);
    assertEquals(count(p.b, "messages"), 1);
  } finally {
    await p.close();
  }
});

Deno.test("repl: a short outage catches up from the log without a snapshot", async () => {
  const p = await rigPair();
  try {
    await p.a.repl.write("config", addUser(1));
    p.link.down = true;
    for (let i = 2; i <= 50; i++) await p.a.repl.write("config", addUser(i));
    p.link.down = false;
    await until(() => p.a.repl.status().acked === p.a.repl.status().seq, "caught up");
    assertEquals(p.link.snapshots, 1);
    assertEquals(digests(p.a), digests(p.b));
  } finally {
    await p.close();
  }
});

Deno.test("repl: after a promotion the barrier and a handover's drain wait for the standby's snapshot, even with no frame made since", async () => {
  const p = await rigPair();
  try {
    await p.a.repl.write("config", addUser(1));
    // the standby is away while this node becomes the primary of a new epoch (a failover
    // and back): nothing was written since, so acked is at seq; the standby's copy is not
    p.link.down = true;
    p.a.repl.demote();
    p.a.repl.promote();
    assertEquals(p.a.repl.status().snapshotDue, true);
    assertEquals(p.a.repl.status().pending, 0);
    assertEquals(await p.a.repl.barrier(), false, "not confirmed: the standby has no snapshot");
    assertEquals(await p.a.repl.beginHandover(200), false, "no drained handover either");
    p.a.repl.endHandover();
    p.link.down = false; // the retry timer sends the snapshot
    await until(() => !p.a.repl.status().snapshotDue, "the snapshot installed");
    assertEquals(await p.a.repl.barrier(), true, "confirmed once the snapshot is installed");
    assertEquals(p.b.repl.status().epoch, p.a.repl.status().epoch);
  } finally {
    await p.close();
  }
});

/** A standby at epoch 1 seq 1 (users row 1), and a helper to build frames against it. */
async function standbyAt(): Promise<
  Awaited<ReturnType<typeof rigPair>> & {
    frame: (
      o: Partial<{ pairId: string; epoch: number; seq: number; sv: string }>,
      cs: Uint8Array[],
    ) => Uint8Array;
    changesetOf: (sql: string) => Uint8Array;
  }
> {
  const p = await rigPair();
  await p.a.repl.write("config", addUser(1));
  const st = p.b.repl.status();
  // a scratch copy of the primary to produce changesets without touching it
  const scratch = rigNode(p.dir, "scratch");
  scratch.store.db.exec("INSERT INTO users VALUES (1, 'u1', 'admin')");
  const changesetOf = (sql: string) => {
    const s = scratch.store.db.createSession();
    scratch.store.db.exec(sql);
    const cs = s.changeset();
    s.close();
    return cs;
  };
  const frame = (
    o: Partial<{ pairId: string; epoch: number; seq: number; sv: string }>,
    cs: Uint8Array[],
  ) =>
    encodeFrame({
      pairId: o.pairId ?? "pair-test",
      epoch: o.epoch ?? st.epoch,
      seq: o.seq ?? st.seq + 1,
      schemaVersion: o.sv ?? st.schemaVersion,
      changesets: cs,
    });
  const close = p.close;
  return {
    ...p,
    frame,
    changesetOf,
    close: async () => {
      scratch.store.close();
      await close();
    },
  };
}

Deno.test("repl: corrupt, truncated, other-epoch, other-pair, gap and schema frames are refused, nothing applied", async () => {
  const p = await standbyAt();
  try {
    const before = digests(p.b);
    const seq0 = p.b.repl.status().seq;
    const refusedBefore = p.b.events.filter((e) => e.kind === "repl.refused").length;
    const good = p.frame({}, [p.changesetOf("INSERT INTO users VALUES (2, 'u2', 'op')")]);
    const cases: [string, Uint8Array, string, boolean][] = [
      ["truncated", good.subarray(0, good.length - 5), "truncated", true],
      ["truncated header", good.subarray(0, 20), "truncated", true],
      ["corrupt payload", flip(good, good.length - 3), "corrupt", true],
      ["corrupt header (seq)", flip(good, 30), "corrupt", true],
      [
        "other pair",
        p.frame({ pairId: "pair-other" }, [p.changesetOf("SELECT 1")]),
        "other_pair",
        false,
      ],
      ["newer epoch", p.frame({ epoch: 9 }, [p.changesetOf("SELECT 1")]), "epoch_mismatch", true],
      ["older epoch", p.frame({ epoch: 0 }, [p.changesetOf("SELECT 1")]), "stale_epoch", false],
      ["gap", p.frame({ seq: seq0 + 5 }, [p.changesetOf("SELECT 1")]), "gap", true],
      [
        "schema",
        p.frame({ sv: "sv1-other" }, [p.changesetOf("SELECT 1")]),
        "schema_mismatch",
        false,
      ],
      ["garbage", new TextEncoder().encode("hello world, not a frame"), "corrupt", true],
    ];
    for (const [name, body, reason, resync] of cases) {
      const ack = p.b.repl.receiveFrames(body);
      assertEquals(ack.ok, false, name);
      assertEquals(ack.reason, reason, name);
      assertEquals(Boolean(ack.needSnapshot), resync, `${name}: resync`);
      assertEquals(ack.seq, seq0, name);
      assertEquals(digests(p.b), before, `${name}: something was applied`);
    }
    const refused = p.b.events.filter((e) => e.kind === "repl.refused").map((e) =>
      e.payload.reason
    );
    assertEquals(refused.length - refusedBefore, cases.length, "every refusal journalled");
    assert(p.b.events.some((e) => e.kind === "repl.gap"));
    // a frame whose second changeset conflicts is refused whole: the first is not kept
    const first = p.changesetOf("INSERT INTO users VALUES (3, 'u3', 'op')");
    p.changesetOf("INSERT INTO users VALUES (5, 'u5', 'op')"); // only on the scratch copy
    const half = p.frame({}, [
      first,
      p.changesetOf("UPDATE users SET name = 'x' WHERE id = 5"), // row 5 missing: conflict
    ]);
    const ack = p.b.repl.receiveFrames(half);
    assertEquals(ack.reason, "conflict");
    assertEquals(ack.needSnapshot, true);
    assertEquals(digests(p.b), before, "half of a frame was applied");
    // the good frame still applies, and a duplicate of it is skipped
    assertEquals(p.b.repl.receiveFrames(good).ok, true);
    assertEquals(p.b.repl.receiveFrames(good), { ok: true, epoch: ack.epoch, seq: seq0 + 1 });
    assertEquals(count(p.b, "users"), 2);
  } finally {
    await p.close();
  }
});

function flip(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at] ^= 0x40;
  return c;
}

Deno.test("repl: a snapshot failing its checksum is refused and nothing changes", async () => {
  const p = await standbyAt();
  try {
    const before = digests(p.b);
    const st = p.b.repl.status();
    const bytes = p.a.store.db.serialize();
    const meta: SnapshotMeta = {
      pairId: "pair-test",
      epoch: st.epoch + 1,
      seq: 99,
      schemaVersion: st.schemaVersion,
      sha256: "00".repeat(32),
      bytes: bytes.length,
      history: [],
    };
    const one = async function* () {
      yield bytes;
    };
    const ack = await p.b.repl.receiveSnapshot(meta, one());
    assertEquals(ack.reason, "snapshot_checksum");
    const short = await p.b.repl.receiveSnapshot({ ...meta, bytes: bytes.length + 10 }, one());
    assertEquals(short.reason, "snapshot_checksum");
    assertEquals(p.b.repl.status().epoch, st.epoch);
    assertEquals(p.b.repl.status().seq, st.seq);
    assertEquals(digests(p.b), before);
    const leftovers = [...Deno.readDirSync(p.b.dir + "/tails")].filter((e) =>
      e.name.startsWith(".snapshot")
    );
    assertEquals(leftovers, [], "staged snapshot files removed");
  } finally {
    await p.close();
  }
});

Deno.test("repl: a returning ex-primary sets its unreplicated tail aside, never merges it", async () => {
  const p = await rigPair();
  try {
    for (let i = 1; i <= 5; i++) await p.a.repl.write("config", addUser(i));
    assertEquals(count(p.b, "users"), 5);
    // the link breaks; the old primary goes on alone for a while
    p.link.down = true;
    for (let i = 100; i < 110; i++) {
      const r = await p.a.repl.write("config", addUser(i, "lost"));
      assertEquals(r.replicated, false);
    }
    // failover: b becomes primary (epoch + 1) and writes; a comes back as standby
    p.a.repl.demote();
    const epoch = p.b.repl.promote();
    assertEquals(epoch, p.a.repl.status().epoch + 1);
    const back = new (await import("../mod/repl/mod.ts")).MemoryTransport(p.a.repl);
    p.b.repl.setTransport(back);
    for (let i = 6; i <= 8; i++) {
      assertEquals((await p.b.repl.write("config", addUser(i))).replicated, true);
    }
    // a was resynced from b: it has none of its own tail
    assertEquals(count(p.a, "users"), 8);
    assertEquals(
      Number(
        (p.a.store.db.prepare("SELECT COUNT(*) AS n FROM users WHERE name = 'lost'").get() as {
          n: number;
        }).n,
      ),
      0,
      "the tail was merged",
    );
    assertEquals(digests(p.a), digests(p.b));
    const saved = p.a.events.find((e) => e.kind === "repl.tail_saved");
    assert(saved, "no repl.tail_saved event");
    assertEquals(saved.payload.frames, 10);
    const file = saved.payload.file as string;
    const frames = decodeFrames(Deno.readFileSync(file));
    assertEquals(frames.length, 10);
    assertEquals(frames.map((f) => f.epoch), Array(10).fill(epoch - 1));
    assertEquals(p.a.repl.status().epoch, epoch);
  } finally {
    await p.close();
  }
});

Deno.test("repl: a restarted primary resumes its epoch and replays its log, no snapshot", async () => {
  const p = await rigPair();
  try {
    await p.a.repl.write("config", addUser(1));
    p.link.down = true;
    for (let i = 2; i <= 6; i++) await p.a.repl.write("config", addUser(i));
    // the process "restarts": a new engine on the same store
    p.a.repl.stop();
    const epoch = p.a.repl.status().epoch;
    p.a.repl = new Replicator({
      db: p.a.store.db,
      pairId: "pair-test",
      groups: RIG_GROUPS,
      tables: RIG_TABLES,
      tailDir: p.a.dir + "/tails",
      bus: p.a.bus,
      batchMs: 10,
      retryMs: 50,
    });
    p.a.repl.setTransport(p.link);
    p.link.down = false;
    assertEquals(p.a.repl.resume(), epoch);
    await p.a.repl.flushNow();
    await until(() => p.a.repl.status().acked === p.a.repl.status().seq, "replayed");
    assertEquals(count(p.b, "users"), 6);
    assertEquals(p.link.snapshots, 1, "a resume must not resync");
    assertEquals((await p.a.repl.write("config", addUser(7))).replicated, true);
    assertEquals(digests(p.a), digests(p.b));
    // a node that was not the primary of its epoch cannot resume: it promotes
    p.a.repl.demote();
    assertEquals(p.b.repl.resume(), epoch + 1);
  } finally {
    await p.close();
  }
});

Deno.test("repl: the standby refuses writes to replicated tables (clear error), applies frames, local tables stay writable", async () => {
  const p = await rigPair();
  try {
    await p.a.repl.write("config", addUser(1));
    // a write on the standby: refused by SQLite's authorizer, mapped to a clear error
    let err: unknown;
    try {
      p.b.store.db.prepare("INSERT INTO users (id, name, role) VALUES (2, 'x', 'admin')").run();
    } catch (e) {
      err = e;
    }
    const mapped = replicaRefusal(err);
    assert(mapped instanceof ReplReadOnlyError, `not mapped: ${err}`);
    assertEquals(mapped.status, 409);
    assertEquals(mapped.code, "repl_standby_read_only");
    assert(mapped.message.includes('"users"'), mapped.message);
    assertThrows(() => p.b.store.db.exec("UPDATE users SET role = 'x'"), Error, "not authorized");
    assertThrows(() => p.b.store.db.exec("DELETE FROM users"), Error, "not authorized");
    assertEquals(replicaRefusal(new Error("other")), null);
    // local tables are writable on the standby, reads work
    p.b.store.db.exec("INSERT INTO local_only VALUES ('k', 'v')");
    assertEquals(count(p.b, "users"), 1);
    // the primary's frames still apply
    await p.a.repl.write("config", addUser(3));
    assertEquals(count(p.b, "users"), 2);
    assertEquals(digests(p.a), digests(p.b));
    // promoted, the guard is gone
    p.b.repl.promote();
    p.b.store.db.exec("INSERT INTO users (id, name, role) VALUES (4, 'y', 'admin')");
  } finally {
    await p.close();
  }
});

Deno.test("repl: tables registered at run time replicate; a standby that lacks one refuses its frames until it registers", async () => {
  const p = await rigPair();
  try {
    await p.a.repl.write("config", addUser(1)); // the fresh standby is resynced first
    // the module's migration runs on both nodes (the standby first here)
    for (const n of [p.b, p.a]) {
      n.store.migrate("late", ["CREATE TABLE late (id INTEGER PRIMARY KEY, v TEXT)"]);
    }
    p.a.repl.addTables("config", ["late"]);
    const w = await p.a.repl.write("config", (db) => db.exec("INSERT INTO late VALUES (1, 'a')"));
    assertEquals(w.replicated, false, "the standby does not know the table yet");
    assertEquals(count(p.b, "late"), 0);
    assert(
      p.b.events.some((e) =>
        e.kind === "repl.refused" && String(e.payload.message).includes('"late"')
      ),
    );
    p.b.repl.addTables("config", ["late"]);
    await until(() => count(p.b, "late") === 1, "the late table's row on the standby");
    assertThrows(() => p.a.repl.addTables("logs", ["late"]), ReplConfigError, "already");
    assertThrows(() => p.a.repl.addTables("config", ["nopk"]), ReplNoPrimaryKeyError, "nopk");
  } finally {
    await p.close();
  }
});

/**
 * A table `late` on both stores, replicated by the primary (row 1) but not yet registered on
 * the standby; then a new epoch (a failover and back): the standby installs a snapshot while
 * it does not replicate `late`, so the snapshot's row 1 of it is not copied.
 */
async function snapshotWithoutLate(p: Awaited<ReturnType<typeof rigPair>>): Promise<void> {
  await p.a.repl.write("config", addUser(1));
  for (const n of [p.b, p.a]) {
    n.store.migrate("late", ["CREATE TABLE late (id INTEGER PRIMARY KEY, v TEXT)"]);
  }
  p.a.repl.addTables("config", ["late"]);
  await p.a.repl.write("config", (db) => db.exec("INSERT INTO late VALUES (1, 'before')"));
  p.a.repl.promote();
  await until(() => p.b.repl.status().epoch === p.a.repl.status().epoch, "b resynced");
  assertEquals(count(p.b, "late"), 0);
}

Deno.test("repl: a standby that registers a table after it installed a snapshot asks for a new one (the snapshot held none of that table's rows)", async () => {
  const p = await rigPair();
  try {
    await snapshotWithoutLate(p);
    // the standby's subsystem starts and registers the table; the next change of it arrives
    p.b.repl.addTables("config", ["late"]);
    assertEquals(p.b.repl.status().snapshotDue, true, "the standby says its copy is not whole");
    await p.a.repl.write("config", (db) => db.exec("INSERT INTO late VALUES (2, 'after')"));
    await until(
      () => count(p.b, "late") === 2,
      "both rows of the late table on the standby",
      10_000,
    );
    assertEquals(digests(p.a), digests(p.b));
  } finally {
    await p.close();
  }
});

/** A restart of node `n`'s process: a new engine on the same store, linked as before. */
function restart(p: Awaited<ReturnType<typeof rigPair>>, n: "a" | "b", extra: string[] = []) {
  const node = p[n];
  node.repl.stop();
  node.repl = new Replicator({
    db: node.store.db,
    pairId: "pair-test",
    groups: RIG_GROUPS,
    tables: { ...RIG_TABLES, ...Object.fromEntries(extra.map((t) => [t, "config"])) },
    tailDir: node.dir + "/tails",
    bus: node.bus,
    batchMs: 10,
    retryMs: 50,
  });
  if (n === "b") p.link.target = node.repl;
}

for (const how of ["at run time", "from the start"] as const) {
  Deno.test(`repl: a standby restarted after a snapshot that lacked a table asks for a new one when it registers that table ${how} (the tables a snapshot copied are kept in the store)`, async () => {
    const p = await rigPair();
    try {
      await snapshotWithoutLate(p);
      // b's process restarts; its subsystem registers `late`
      if (how === "at run time") {
        restart(p, "b");
        p.b.repl.demote();
        assertEquals(p.b.repl.status().snapshotDue, false, "its tables are the snapshot's");
        p.b.repl.addTables("config", ["late"]);
      } else {
        restart(p, "b", ["late"]);
        p.b.repl.demote();
      }
      assertEquals(p.b.repl.status().snapshotDue, true, "the standby says its copy is not whole");
      await p.a.repl.write("config", (db) => db.exec("INSERT INTO late VALUES (2, 'after')"));
      await until(() => count(p.b, "late") === 2, "both rows of the late table on b", 10_000);
      assertEquals(digests(p.a), digests(p.b));
      // restarted again: the last snapshot held `late`
      restart(p, "b", ["late"]);
      p.b.repl.demote();
      assertEquals(p.b.repl.status().snapshotDue, false, "the last snapshot held `late`");
    } finally {
      await p.close();
    }
  });
}

Deno.test("repl: a standby that was the primary keeps the tables it had as whole (no snapshot asked after a restart)", async () => {
  const p = await rigPair();
  try {
    for (const n of [p.b, p.a]) {
      n.store.migrate("late", ["CREATE TABLE late (id INTEGER PRIMARY KEY, v TEXT)"]);
    }
    await p.a.repl.write("config", addUser(1));
    // a registers `late` as the primary: its copy of it is the pair's
    p.a.repl.addTables("config", ["late"]);
    p.b.repl.addTables("config", ["late"]);
    await p.a.repl.write("config", (db) => db.exec("INSERT INTO late VALUES (1, 'x')"));
    await until(() => count(p.b, "late") === 1, "the row on b");
    restart(p, "a", ["late"]);
    p.a.repl.demote();
    assertEquals(p.a.repl.status().snapshotDue, false);
  } finally {
    await p.close();
  }
});

Deno.test("repl: the registry holds the core tables, refuses a table in two groups, tells listeners", () => {
  const r = new ReplRegistry();
  assertEquals(r.tables().users, "config");
  assertEquals(r.groups().logs.durability, "async");
  const seen: string[] = [];
  r.onRegister((g, t) => seen.push(`${g}:${t.join(",")}`));
  r.registerTables("data", ["sms", "accounts"]);
  r.registerTables("data", ["sms"]); // again: no-op
  assertThrows(() => r.registerTables("logs", ["sms"]), ReplConfigError, "already registered");
  assertThrows(() => r.registerTables("nope", ["x"]), ReplConfigError, "unknown group");
  r.defineGroup("bulk", { durability: "async" });
  r.registerTables("bulk", ["b"]);
  assertEquals(seen, ["data:sms,accounts", "bulk:b"]);
  assertEquals(new ReplRegistry({ core: false }).tables(), {});
});

Deno.test("repl: a send still in flight when the primary is demoted says nothing about the standby: no repl.standby_lost on the new standby", async () => {
  const p = await rigPair();
  try {
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    // the next send is held, then fails as the closed link fails it (ha.ts closes the
    // link right after the demotion of a handover)
    let fail!: () => void;
    const held = new Promise<never>((_, reject) =>
      fail = () => reject(new Error("closed by this node"))
    );
    held.catch(() => {});
    const sent = p.link.sent;
    p.link.sendFrames = () => (p.link.sent++, held);
    const w = p.a.repl.write("config", addUser(2));
    await until(() => p.link.sent > sent, "the send in flight");
    p.a.repl.demote();
    // the demotion fails the write's wait at once (this node is no longer the primary)
    assert((await w.catch((e) => e)) instanceof Error);
    fail();
    // the failure reaches the pump through promise callbacks only: one task turn runs them
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(p.a.repl.status().role, "standby");
    const lost = p.a.events.filter((e) => e.kind === "repl.standby_lost");
    assertEquals(lost.length, 0, `a demoted node raised: ${JSON.stringify(lost[0]?.payload)}`);
    assertEquals(p.a.repl.status().link, "unknown", "the demoted node's link state was touched");
  } finally {
    await p.close();
  }
});

Deno.test("repl: an ack that arrives after the primary was demoted moves nothing: link, acknowledged position, events", async () => {
  const p = await rigPair();
  try {
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    const before = p.a.repl.status();
    assertEquals(before.link, "up");
    // the next send reaches the standby (which applies it) but its answer is held
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const send = p.link.sendFrames.bind(p.link);
    const sent = p.link.sent;
    p.link.sendFrames = async (body) => {
      const ack = await send(body);
      await gate;
      return ack;
    };
    const w = p.a.repl.write("config", addUser(2));
    w.catch(() => {});
    await until(() => p.link.sent > sent && count(p.b, "users") === 2, "frame 2 applied");
    p.a.repl.demote();
    assert((await w.catch((e) => e)) instanceof Error, "the wait was not failed at demotion");
    const events = p.a.events.length;
    release();
    // the ack reaches the pump through promise callbacks only: one task turn runs them
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    const s = p.a.repl.status();
    assertEquals(s.role, "standby");
    assertEquals(s.link, "unknown", "a demoted node took a late ack as its link being up");
    assertEquals(
      p.a.events.slice(events).map((e) => e.kind),
      [],
      "a demoted node published on a late ack",
    );
    // resumed at the same epoch, the acknowledged position is still the one at demotion
    // (the late ack belongs to the old term; the standby confirms frame 2 again)
    p.link.sendFrames = send;
    p.a.repl.resume();
    assertEquals(p.a.repl.status().acked, before.acked, "the late ack moved the acked position");
    assertEquals(p.a.repl.status().link, "unknown");
    await until(() => p.a.repl.status().acked === before.acked + 1, "frame 2 confirmed again");
    assertEquals(p.link.snapshots, 1, "the resumed primary resynced instead of catching up");
  } finally {
    await p.close();
  }
});

Deno.test("repl: a snapshot of an earlier term answered late leaves the new epoch's snapshot due; the barrier waits for it", async () => {
  const p = await rigPair();
  try {
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    // snapshots are held from now on until released
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    const snap = p.link.sendSnapshot.bind(p.link);
    let held = 0;
    p.link.sendSnapshot = async (m, c) => (held++, await gate, snap(m, c));
    p.a.repl.demote();
    p.a.repl.promote(); // epoch 2: its snapshot is sent and held
    await until(() => held === 1, "epoch 2's snapshot in flight");
    p.a.repl.demote();
    const epoch = p.a.repl.promote(); // epoch 3 while epoch 2's snapshot is still out
    assertEquals(epoch, 3);
    release();
    // the standby installs epoch 2's snapshot, then must get epoch 3's: until then the
    // barrier must not say it holds this epoch's copy (nor wait for good: taking the old
    // ack as this epoch's left nothing to send and the barrier unanswered)
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bounded = await Promise.race([
      p.a.repl.barrier(),
      new Promise<string>((r) => timer = setTimeout(() => r("no answer in 30 s"), 30_000)),
    ]).finally(() => clearTimeout(timer));
    assertEquals(bounded, true);
    assertEquals(
      p.b.repl.status().epoch,
      3,
      "the barrier passed with the standby at an older epoch",
    );
    assertEquals(p.a.repl.status().snapshotDue, false);
    assertEquals(digests(p.a), digests(p.b));
  } finally {
    await p.close();
  }
});
