import { assert, assertEquals } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";
import { Store } from "../mod/store/mod.ts";
import { readWalIndex, type WalIndexState } from "../mod/store/checkpoint.ts";
import type { Clock, TimerId } from "../mod/module.ts";
import { count, rigPair, until } from "./repl_rig.ts";

/** Timers of a fake clock, counting those left pending. */
function counting(clock: FakeClock) {
  const pending = new Set<TimerId>();
  const timers: Pick<Clock, "setTimeout" | "clearTimeout"> = {
    setTimeout: (fn, ms) => {
      const id: TimerId = clock.setTimeout(() => (pending.delete(id), fn()), ms);
      pending.add(id);
      return id;
    },
    clearTimeout: (id) => (pending.delete(id), clock.clearTimeout(id)),
  };
  return { pending, timers };
}

/** A store in a fresh directory with a table of rows, and a reader of its WAL index. */
async function fixture(name: string) {
  const dir = await Deno.makeTempDir({ prefix: `kw-ckpt-${name}-` });
  const path = `${dir}/store.db`;
  const store = new Store({ path });
  store.db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  // kept open until the store is closed: closing it would drop the process's locks
  const shm = Deno.openSync(`${path}-shm`, { read: true });
  let n = 0;
  const ins = store.db.prepare("INSERT INTO t (id, v) VALUES (?, ?)");
  return {
    dir,
    path,
    store,
    /** `count` rows, each in its own transaction. */
    write(count: number, size = 200) {
      for (let i = 0; i < count; i++) ins.run(++n, "x".repeat(size));
    },
    get rows() {
      return n;
    },
    wal(): WalIndexState {
      const s = readWalIndex(shm);
      assert(s, "the WAL index is readable");
      return s;
    },
    async done() {
      store.close();
      shm.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function rowCount(path: string): number {
  const s = new Store({ path });
  try {
    return Number((s.db.prepare("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n);
  } finally {
    s.close();
  }
}

Deno.test("checkpoints: an idle WAL is checkpointed on the second look, then restarts", async () => {
  const f = await fixture("idle");
  try {
    const clock = new FakeClock();
    const c = f.store.startCheckpoints({ clock, intervalMs: 100, stepPages: 1_000_000 })!;
    f.write(50);
    const before = f.wal();
    assert(before.mxFrame > 0 && before.nBackfill === 0, JSON.stringify(before));
    await clock.advance(100); // first look: the WAL just changed, not idle
    await c.settled();
    assertEquals(c.stats().rounds, 0);
    await clock.advance(100); // nothing committed since: idle
    await c.settled();
    assertEquals(c.stats().rounds, 1);
    const after = f.wal();
    assertEquals(after.nBackfill, after.mxFrame);
    assertEquals(c.stats().frames, after.mxFrame);
    f.write(1); // everything was copied: this write starts the WAL from its beginning
    assert(f.wal().mxFrame < 5, `WAL restarted: ${f.wal().mxFrame} frames`);
    assertEquals(c.stats().errors, 0);
  } finally {
    await f.done();
  }
});

Deno.test("checkpoints: writes that never pause still get rounds once stepPages are pending", async () => {
  const f = await fixture("busy");
  try {
    const clock = new FakeClock();
    const c = f.store.startCheckpoints({ clock, intervalMs: 100, stepPages: 40 })!;
    for (let i = 0; i < 10; i++) {
      f.write(20); // ~20 frames per look: never idle
      await clock.advance(100);
      await c.settled();
    }
    assert(c.stats().rounds >= 3, `rounds ${c.stats().rounds}`);
    assert(c.stats().frames >= 100, `frames copied ${c.stats().frames}`);
    const s = f.wal(); // at most a step and a look's writes wait to be copied
    assert(s.mxFrame - s.nBackfill < 40 + 25, `pending ${s.mxFrame - s.nBackfill}`);
    assertEquals(c.stats().errors, 0);
  } finally {
    await f.done();
  }
});

Deno.test("checkpoints: the WAL bound holds even when no round ever runs", async () => {
  const f = await fixture("bound");
  try {
    const clock = new FakeClock(); // never advanced: no look, no round
    const bound = 256 * 1024;
    f.store.startCheckpoints({ clock, maxWalBytes: bound });
    let max = 0;
    for (let i = 0; i < 40; i++) {
      f.write(50, 1000); // 2 MB in all, 8× the bound
      max = Math.max(max, Deno.statSync(`${f.path}-wal`).size);
    }
    // the commit that crosses the bound checkpoints; the WAL restarts and is truncated to it
    assert(max <= bound + 64 * 1024, `WAL reached ${max} bytes`);
    assertEquals(rowCount(f.path), 2000);
  } finally {
    await f.done();
  }
});

Deno.test("checkpoints: under writes that never pause, the WAL is let go past half its bound and starts again", async () => {
  const f = await fixture("full");
  try {
    const clock = new FakeClock();
    const bound = 512 * 1024;
    const c = f.store.startCheckpoints({
      clock,
      intervalMs: 100,
      busyIntervalMs: 20,
      stepPages: 10,
      maxWalBytes: bound,
    })!;
    let max = 0, restarts = 0, last = 0;
    for (let i = 0; i < 100; i++) {
      f.write(10, 1000); // ~10 pages per look: never idle
      const mx = f.wal().mxFrame;
      if (mx < last) restarts++;
      last = mx;
      max = Math.max(max, Deno.statSync(`${f.path}-wal`).size);
      await clock.advance(20);
      await c.settled();
    }
    const st = c.stats();
    assert(st.releases >= 2 && restarts >= 2, JSON.stringify({ st, restarts }));
    assert(max <= bound + 64 * 1024, `WAL reached ${max} bytes`);
    assertEquals(st.errors, 0);
    assertEquals(rowCount(f.path), 1000);
  } finally {
    await f.done();
  }
});

Deno.test("checkpoints: a round copies only the frames its pin saw (the WAL it synced) and never blocks a write", async () => {
  const f = await fixture("pin");
  try {
    const clock = new FakeClock();
    const c = f.store.startCheckpoints({ clock, intervalMs: 100, stepPages: 10 })!;
    f.write(30);
    const pinned = f.wal().mxFrame;
    const round = c.look(); // pins at `pinned`, then awaits the WAL's sync
    f.write(30); // commits while the round is under way: nothing waits for it
    const later = f.wal().mxFrame;
    await round;
    assertEquals(c.stats().rounds, 1);
    const s = f.wal();
    assertEquals(s.nBackfill, pinned, "the round copied up to its pin, not the later frames");
    assertEquals(s.mxFrame, later, "and the WAL was not restarted under the pin");
    assertEquals(rowCount(f.path), 60);
  } finally {
    await f.done();
  }
});

Deno.test("checkpoints: close() with a round under way stops it cleanly; the WAL is checkpointed and removed", async () => {
  const f = await fixture("stop");
  const clock = counting(new FakeClock());
  const c = f.store.startCheckpoints({ clock: clock.timers, intervalMs: 100, stepPages: 10 })!;
  f.write(40);
  const round = c.look();
  f.write(5);
  f.store.close(); // the round is awaiting a sync
  await round;
  await c.settled();
  assertEquals(clock.pending.size, 0, "no timer left");
  assertEquals(c.stats().errors, 0);
  let walLeft = true;
  try {
    Deno.statSync(`${f.path}-wal`);
  } catch {
    walLeft = false;
  }
  assert(!walLeft, "the last connection's close checkpointed and removed the WAL");
  assertEquals(rowCount(f.path), 45);
  await f.done();
});

/** This process's POSIX locks on `path` (Linux: /proc/locks). */
function locksOn(path: string): string[] {
  const ino = Deno.statSync(path).ino;
  return Deno.readTextFileSync("/proc/locks").split("\n")
    .filter((l) => l.includes(` ${Deno.pid} `) && l.includes(`:${ino} `));
}

Deno.test({
  name:
    "checkpoints: a round keeps SQLite's lock on the database file (its sync is not made on a descriptor of this process that is closed after)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const f = await fixture("locks");
    try {
      const clock = new FakeClock();
      const c = f.store.startCheckpoints({ clock, intervalMs: 100, stepPages: 10 })!;
      const before = locksOn(f.path);
      assert(before.length > 0, "SQLite holds a lock on the database file in WAL mode");
      f.write(30);
      await c.look(); // copies (the WAL just changed)
      await c.look(); // idle: syncs the database file, lets the WAL go
      assertEquals([c.stats().rounds, c.stats().releases], [1, 1]);
      assertEquals(locksOn(f.path), before);
    } finally {
      await f.done();
    }
  },
});

for (
  const [what, helper] of [
    ["cannot be started", ["/nonexistent/kw-sync-helper"]],
    ["answers a failure", ["sh", "-c", "while read -r f; do echo 1; done"]],
  ] as const
) {
  Deno.test(`checkpoints: when the sync helper ${what}, the database file is synced on the loop and the WAL still let go`, async () => {
    const f = await fixture("helper");
    try {
      const clock = new FakeClock();
      const c = f.store.startCheckpoints({ clock, intervalMs: 100, stepPages: 10, helper })!;
      for (let i = 0; i < 2; i++) {
        f.write(30);
        await c.look(); // copies
        await c.look(); // idle: releases
      }
      const st = c.stats();
      assertEquals([st.rounds, st.releases, st.errors], [2, 2, 0]);
      assert(st.lastError?.includes("syncing on the event loop"), st.lastError);
      f.write(1);
      assert(f.wal().mxFrame < 5, "the WAL restarted");
    } finally {
      await f.done();
      await f.store.checkpoints?.settled();
    }
  });
}

Deno.test("checkpoints: an in-memory store has none", () => {
  const s = new Store({ path: ":memory:" });
  assertEquals(s.startCheckpoints(), undefined);
  s.close();
});

Deno.test("checkpoints: a replicated pair with checkpoints on both stores keeps every sync write, and both WALs stay bounded", async () => {
  const p = await rigPair();
  // a sync write adds ~6 frames on the primary; the loop turns every 10 writes (~250 kB):
  // the WAL is let go at a look past half the bound, and it goes on growing only while the
  // release's syncs are under way (slow on a loaded machine: the bound itself, with rounds
  // finishing between writes, is checked on fake time above; here: bounded, and let go)
  const bound = 1024 * 1024;
  const opts = { intervalMs: 20, busyIntervalMs: 5, stepPages: 8, maxWalBytes: bound };
  const ca = p.a.store.startCheckpoints(opts)!, cb = p.b.store.startCheckpoints(opts)!;
  try {
    let max = 0;
    for (let i = 1; i <= 400; i++) {
      const r = await p.a.repl.write(
        "config",
        (db) =>
          db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'op')").run(i, `u${i}`),
      );
      assert(r.replicated, `write ${i} confirmed`);
      if (i % 10 === 0) {
        for (const n of [p.a, p.b]) {
          max = Math.max(max, Deno.statSync(`${n.dir}/store.db-wal`).size);
        }
        await new Promise((r) => setTimeout(r, 10)); // let the rounds' looks in
      }
    }
    assertEquals(count(p.b, "users"), 400);
    await until(() => ca.stats().rounds > 0 && cb.stats().rounds > 0, "rounds on both sides");
    assertEquals([ca.stats().errors, cb.stats().errors], [0, 0]);
    assert(ca.stats().releases > 0, "the primary's WAL was let go");
    assert(max <= 4 * bound, `a WAL reached ${max} bytes`);
  } finally {
    await p.close();
    await ca.settled();
    await cb.settled();
  }
});
