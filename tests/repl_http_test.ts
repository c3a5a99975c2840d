import { assert, assertEquals } from "./helpers/assert.ts";
import { count, digests, httpRigPair, until } from "./repl_rig.ts";
import type { DatabaseSync } from "node:sqlite";

const SECRET = "test-secret-0123456789";

async function httpPair(secret = SECRET, now?: () => number) {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-http-" });
  const p = httpRigPair(dir, {
    serverSecret: SECRET,
    clientSecret: secret,
    now,
  });
  return {
    a: p.a,
    b: p.b,
    async close() {
      await p.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const addUser = (id: number) => (db: DatabaseSync) =>
  db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'op')").run(id, `u${id}`);

Deno.test("repl http: frames and a streamed snapshot over the peer link, sync writes confirmed", async () => {
  const p = await httpPair();
  try {
    // some bulk first, so the snapshot streams in several chunks
    await p.a.repl.write("logs", (db) => {
      const ins = db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)");
      for (let i = 0; i < 20_000; i++) ins.run(i, i, "x".repeat(100));
    });
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    for (let i = 2; i <= 30; i++) {
      assertEquals((await p.a.repl.write("config", addUser(i))).replicated, true);
    }
    assertEquals(count(p.b, "users"), 30);
    assertEquals(digests(p.a), digests(p.b));
    assert(p.b.events.some((e) => e.kind === "repl.resync_progress"), "no progress events");
    assert(p.a.events.some((e) => e.kind === "repl.snapshot_sent"));
  } finally {
    await p.close();
  }
});

Deno.test("repl http: on the peer link, a wrong secret or a stale signature is refused (401) and nothing applied", async () => {
  for (
    const [name, secret, now] of [
      ["wrong secret", "another-secret-0123456789", undefined],
      ["stale time", SECRET, () => Date.now() - 10 * 60_000],
    ] as const
  ) {
    const p = await httpPair(secret, now);
    try {
      const r = await p.a.repl.write("config", addUser(1));
      assertEquals(r.replicated, false, name);
      await until(() => p.a.repl.status().link === "down", `${name}: link down`);
      const lost = p.a.events.find((e) => e.kind === "repl.standby_lost");
      assert(
        lost && String(lost.payload.reason).includes("the peer refused this node (401"),
        `${name}: ${lost?.payload.reason}`,
      );
      assertEquals(count(p.b, "users"), 0, name);
      assertEquals(p.b.repl.status().seq, 0, name);
    } finally {
      await p.close();
    }
  }
});
