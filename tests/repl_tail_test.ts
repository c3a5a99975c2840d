import { assert, assertEquals, assertStringIncludes, assertThrows } from "./helpers/assert.ts";
import { kw } from "./helpers/cli.ts";
import { MemoryTransport } from "../mod/repl/mod.ts";
import { listTails, readTail, ReplTailError } from "../mod/repl/tail.ts";
import { tailRoutes } from "../mod/repl/tail_routes.ts";
import { Hono } from "hono";
import { rigPair } from "./repl_rig.ts";
import type { DatabaseSync } from "node:sqlite";

/**
 * A real tail: the primary writes inserts, an update, a delete, a blob-free NULL while
 * the link is down, then fails over; returns the tail file's bytes and name.
 */
async function makeTail(): Promise<{ bytes: Uint8Array; name: string; dir: string }> {
  const p = await rigPair();
  try {
    const add = (id: number, name: string) => (db: DatabaseSync) =>
      void db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'user')").run(id, name);
    await p.a.repl.write("config", add(1, "kept"));
    await p.a.repl.write("config", add(2, "kept too"));
    p.link.down = true;
    await p.a.repl.write("config", add(100, "lost"));
    await p.a.repl.write("config", add(101, "lost ünïcode"));
    await p.a.repl.write(
      "config",
      (db) => void db.prepare("UPDATE users SET role = 'admin' WHERE id = 1").run(),
    );
    await p.a.repl.write("config", (db) => void db.prepare("DELETE FROM users WHERE id = 2").run());
    await p.a.repl.write(
      "logs",
      (db) =>
        void db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)").run(
          7,
          2 ** 60,
          "x",
        ),
    );
    p.a.repl.demote();
    p.b.repl.promote();
    p.b.repl.setTransport(new MemoryTransport(p.a.repl));
    await p.b.repl.write("config", add(3, "new"));
    const saved = p.a.events.find((e) => e.kind === "repl.tail_saved");
    assert(saved, "no tail saved");
    const file = saved.payload.file as string;
    const dir = await Deno.makeTempDir({ prefix: "kw-tail-" });
    const name = file.split("/").at(-1)!;
    await Deno.copyFile(file, `${dir}/${name}`);
    return { bytes: Deno.readFileSync(file), name, dir };
  } finally {
    await p.close();
  }
}

const cols = (t: string) =>
  ({ users: ["id", "name", "role"], msglog: ["id", "ts", "line"] })[t] ?? null;

/** The tail routes behind a signed-in `role` (what the web app's auth middleware sets). */
function signedIn(dir: string, role: string, columns: typeof cols = cols): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    (c.set as (k: string, v: unknown) => void)("principal", { name: `a ${role}`, role });
    await next();
  });
  app.route("/", tailRoutes(dir, () => columns));
  // the web app's error handler answers a KeepwireError with its status
  app.onError((e) => Response.json({}, { status: (e as ReplTailError).status ?? 500 }));
  return app;
}

Deno.test("repl tail: a saved tail reads row by row: epoch, seq range, tables, counts", async () => {
  const { bytes, name, dir } = await makeTail();
  try {
    const t = readTail(bytes, { name, columns: cols });
    assertEquals(t.summary.frames, 5);
    assertEquals(t.summary.toSeq - t.summary.fromSeq, 4);
    assertEquals(t.summary.epochs.length, 1);
    assertEquals(t.summary.pairId, "pair-test");
    assertEquals(t.summary.channel, "a");
    assertEquals(t.summary.tables.users, { insert: 2, update: 1, delete: 1, rows: 4 });
    assertEquals(t.summary.tables.msglog, { insert: 1, update: 0, delete: 0, rows: 1 });
    const ops = t.changes.map((c) => `${c.table} ${c.op} ${JSON.stringify(c.key)}`);
    assertEquals(ops, [
      'users insert {"id":100}',
      'users insert {"id":101}',
      'users update {"id":1}',
      'users delete {"id":2}',
      'msglog insert {"id":7}',
    ]);
    assertEquals(t.changes[1].new, { id: 101, name: "lost ünïcode", role: "user" });
    assertEquals(t.changes[2].old, { id: 1, role: "user" });
    assertEquals(t.changes[2].new, { role: "admin" });
    assertEquals(t.changes[3].old, { id: 2, name: "kept too", role: "user" });
    assertEquals(t.changes[4].new?.ts, { int: String(2n ** 60n) });
    // without the schema the columns are numbered
    const bare = readTail(bytes, { name });
    assertEquals(bare.changes[0].new, { c0: 100, c1: "lost", c2: "user" });
    // the list
    const list = listTails(dir, cols);
    assertEquals(list.length, 1);
    assertEquals(list[0].summary?.changes, 5);
    assertEquals(list[0].error, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repl tail: a truncated or corrupt file is refused naming what is wrong", async () => {
  const { bytes, name, dir } = await makeTail();
  try {
    const err = (b: Uint8Array) =>
      assertThrows(() => readTail(b, { name, columns: cols }), ReplTailError).message;
    assertStringIncludes(err(new Uint8Array()), "the file is empty");
    const cut = err(bytes.subarray(0, bytes.length - 3));
    assertStringIncludes(cut, `${name}: truncated: frame 5 at byte`);
    assertStringIncludes(cut, "frame ends inside the payload");
    const flipped = bytes.slice();
    flipped[flipped.length - 2] ^= 0xff;
    assertStringIncludes(err(flipped), "corrupt: frame 5");
    assertStringIncludes(err(flipped), "checksum mismatch");
    assertStringIncludes(err(new TextEncoder().encode("hello")), "bad magic");
    // a damaged file is listed with its error, the others still read
    await Deno.writeFile(`${dir}/tail-bad.kwtail`, bytes.subarray(0, 40));
    const list = listTails(dir, cols);
    assertEquals(list.length, 2);
    const bad = list.find((t) => t.name === "tail-bad.kwtail")!;
    assertEquals(bad.summary, null);
    assertStringIncludes(bad.error!, "truncated");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repl tail: API lists, reads and downloads; refuses paths and unknown names", async () => {
  const { bytes, name, dir } = await makeTail();
  try {
    const app = signedIn(dir, "admin");
    let r = await app.request("/repl/tails");
    assertEquals(r.status, 200);
    const list = await r.json();
    assertEquals(list.tails[0].summary.tables.users.rows, 4);
    r = await app.request(`/repl/tails/${name}`);
    assertEquals(r.status, 200);
    assertEquals((await r.json()).changes.length, 5);
    r = await app.request(`/repl/tails/${name}/file`);
    assertEquals(r.headers.get("content-type"), "application/octet-stream");
    assertEquals(new Uint8Array(await r.arrayBuffer()), bytes);
    for (const [bad, status] of [["..%2Fkeepwire.db", 400], ["x.txt", 400], ["n.kwtail", 404]]) {
      r = await app.request(`/repl/tails/${bad}`);
      assertEquals(r.status, status, `${bad}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repl tail: API read redacts password and token hashes; the raw file is for admins only", async () => {
  const { name, dir } = await makeTail();
  try {
    // the rig's users table has no hash column: name its third column as the store's
    // users table names it (the API takes the names from the local schema)
    const hashed = (t: string) => t === "users" ? ["id", "name", "hash"] : cols(t);
    for (const role of ["viewer", "admin"]) {
      const r = await signedIn(dir, role, hashed).request(`/repl/tails/${name}`);
      assertEquals(r.status, 200);
      const changes = (await r.json()).changes as { table: string; [k: string]: unknown }[];
      const rows = changes.filter((c) => c.table === "users")
        .flatMap((c) => [c.key, c.old, c.new].filter(Boolean)) as Record<string, unknown>[];
      const seen = rows.filter((x) => "hash" in x).map((x) => x.hash);
      assert(seen.length >= 3, `${seen.length}`);
      assertEquals(new Set(seen), new Set(["(redacted)"]), `${role} saw a hash`);
    }
    let r = await signedIn(dir, "viewer").request(`/repl/tails/${name}/file`);
    assertEquals(r.status, 403, "a viewer downloaded the raw tail (password hashes in it)");
    await r.body?.cancel();
    r = await tailRoutes(dir, () => cols).request(`/repl/tails/${name}/file`);
    assert(r.status !== 200, "downloaded without a principal");
    await r.body?.cancel();
    r = await signedIn(dir, "admin").request(`/repl/tails/${name}/file`);
    assertEquals(r.status, 200);
    await r.body?.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repl tail: keepwire ha tail list / show read the data directory's tails", async () => {
  const { bytes, name, dir } = await makeTail();
  try {
    await Deno.mkdir(`${dir}/data/repl/tails`, { recursive: true });
    await Deno.writeFile(`${dir}/data/repl/tails/${name}`, bytes);
    let r = await kw(["ha", "tail", "list", "--data", `${dir}/data`]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, name);
    assertStringIncludes(r.stdout, "users: 4 row(s): 2 inserted, 1 updated, 1 deleted");
    r = await kw(["ha", "tail", "show", name, "--data", `${dir}/data`]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, 'users INSERT c0=100: c1="lost"');
    r = await kw(["ha", "tail", "show", name, "--json", "--data", `${dir}/data`]);
    assertEquals(JSON.parse(r.stdout).summary.frames, 5);
    await Deno.writeFile(`${dir}/cut.kwtail`, bytes.subarray(0, bytes.length - 1));
    r = await kw(["ha", "tail", "show", `${dir}/cut.kwtail`, "--data", `${dir}/data`]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "cut.kwtail: truncated");
    r = await kw(["ha", "tail", "show", "nope.kwtail", "--data", `${dir}/data`]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "no such tail");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
