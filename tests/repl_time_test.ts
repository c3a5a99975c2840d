/** The replication engine's timers on fake time: batching, ack timeout, retry. */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";
import { type ReplAck, ReplAckTimeoutError, ReplStandbyLostError } from "../mod/repl/mod.ts";
import { count, rigPair } from "./repl_rig.ts";

Deno.test("repl time: async changes ship within the batch window; a silent standby is lost after the ack timeout, retried, and back", async () => {
  const { fc, clock } = fakeClock();
  const p = await rigPair({ clock, batchMs: 50, ackTimeoutMs: 2000, retryMs: 1000 });
  try {
    // in sync first (the fresh standby's snapshot)
    const first = p.a.repl.write("config", (db) => db.exec("INSERT INTO users VALUES (1,'a','b')"));
    await fc.tickAsync(0);
    assertEquals((await first).replicated, true);
    // async: nothing before the batch window, there after it
    await p.a.repl.write("logs", (db) => db.exec("INSERT INTO msglog VALUES (1, 1, 'x')"));
    await fc.tickAsync(10);
    assertEquals(count(p.b, "msglog"), 0);
    await fc.tickAsync(45);
    assertEquals(count(p.b, "msglog"), 1);
    // the standby stops answering (a hung peer, not a refused connection)
    const send = p.link.sendFrames.bind(p.link);
    let hang = true;
    p.link.sendFrames = (body) => hang ? new Promise<ReplAck>(() => {}) : send(body);
    let settled = false;
    const w = p.a.repl.write("config", (db) => db.exec("INSERT INTO users VALUES (2,'a','b')"))
      .then((r) => (settled = true, r));
    const strict = p.a.repl.write(
      "strict",
      (db) => db.exec("INSERT INTO messages VALUES (1,'c','b','q')"),
    );
    const strictDone = assertRejects(() => strict, ReplAckTimeoutError, "committed locally");
    await fc.tickAsync(1990);
    assertEquals(settled, false, "resolved before the ack timeout");
    await fc.tickAsync(20);
    assertEquals((await w).replicated, false);
    await strictDone;
    assertEquals(count(p.a, "messages"), 1, "the refused-group write stays committed locally");
    assertEquals(p.a.repl.status().link, "down");
    assertEquals(p.a.events.filter((e) => e.kind === "repl.standby_lost").length, 1);
    // while it is gone: the refusing group refuses up front, nothing stored
    await assertRejects(
      () =>
        p.a.repl.write("strict", (db) => db.exec("INSERT INTO messages VALUES (2,'c','b','q')")),
      ReplStandbyLostError,
    );
    assertEquals(count(p.a, "messages"), 1);
    // it answers again: the retry timer finds it, the backlog is replayed
    hang = false;
    await fc.tickAsync(1100);
    assertEquals(p.a.repl.status().link, "up");
    assert(p.a.events.some((e) => e.kind === "repl.standby_back"));
    assertEquals(count(p.b, "users"), 2);
    assertEquals(count(p.b, "messages"), 1);
    assertEquals(p.a.repl.status().acked, p.a.repl.status().seq);
  } finally {
    await p.close();
  }
});
