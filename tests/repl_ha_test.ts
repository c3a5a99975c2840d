/**
 * Replication wired to the HA role: two nodes, each an HA module (fake keepalived) and
 * a replication module on its own store, linked by the HA peer link over real HTTP on
 * loopback. The active's writes reach the standby; the standby refuses writes to
 * replicated tables; a failover promotes the other node (new epoch) and replication
 * turns round; status, config hash and metrics on both.
 */
import { encodeFrame, replicaRefusal, ReplReadOnlyError, ReplRegistry } from "../mod/repl/mod.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "./helpers/assert.ts";
import { HaHandoverNotReadyError } from "../mod/ha/errors.ts";
import { handoverBlocker } from "../mod/ha/upgrade_link.ts";
import { ReplHandingOverError } from "../mod/repl/errors.ts";
import { haPage } from "../mod/ha/page.tsx";
import type { PageDeps } from "../mod/web/ui/contract.ts";
import { until } from "./repl_rig.ts";
import { buildNode, freePort, type Node } from "./ha_pair_rig.ts";

const SECRET = "pair-secret-0123456789";

/** Node `id` of the replication pair (active-active: n2 owns set b). */
function node(
  dir: string,
  id: "n1" | "n2",
  ports: { own: number; peer: number },
  replication: Record<string, unknown> = {},
  opts: { activeActive?: boolean; registry?: ReplRegistry; migrate?: string[] } = {},
): Promise<Node> {
  return buildNode(dir, id, {
    ...ports,
    net: "10.232.0",
    peerEntry: opts.activeActive ? { priority: id === "n1" ? 100 : 150 } : {},
    ha: {
      ...(opts.activeActive
        ? { activeActive: { virtualRouterId: 52, virtualAddresses: ["10.232.0.60/24"] } }
        : {}),
      peerLink: { secret: SECRET, pairId: "lab" },
    },
    replication,
    registry: opts.registry,
    migrate: opts.migrate,
  });
}

/** What the HA page is rendered with: in-process calls to the node's HA and replication routes. */
function pageDeps(n: Node): PageDeps {
  const apps = [n.ha.routes!(), n.repl.routes!()];
  return {
    appliance: "test",
    refreshMs: () => 2000,
    hasAdmin: () => true,
    config: () => ({}),
    version: "0",
    internal: async <T>(path: string) => {
      for (const app of apps) {
        const r = await app.request(path.replace(/^\/api/, ""));
        if (r.status !== 404) return r.ok ? await r.json() as T : null;
      }
      return null;
    },
  };
}

function sameConfig(a: Node, b: Node): boolean {
  return JSON.stringify(a.repl.status().config) === JSON.stringify(b.repl.status().config);
}

async function pair(
  replication: Record<string, unknown> = {},
  opts: { activeActive?: boolean; registry?: () => ReplRegistry; migrate?: string[] } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-ha-" });
  const p1 = freePort();
  const p2 = freePort();
  const o = (): Parameters<typeof node>[4] => ({ ...opts, registry: opts.registry?.() });
  const n1 = await node(dir, "n1", { own: p1, peer: p2 }, replication, o());
  const n2 = await node(dir, "n2", { own: p2, peer: p1 }, replication, o());
  return {
    n1,
    n2,
    dir,
    async close() {
      await n1.stop();
      await n2.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test("repl + ha: the active's writes reach the standby; the standby refuses replicated writes; failover turns replication round", async () => {
  const p = await pair();
  const { n1, n2 } = p;
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await until(() => n1.repl.status().role === "primary", "n1 primary");
    await until(() => n2.repl.status().role === "standby", "n2 standby");
    assertEquals(n1.repl.status().epoch, 1);
    // shared settings and a user, written the way the API writes them, then the barrier
    n1.store.setSetting("ui", { refreshMs: 2000, banner: "pair" });
    n1.store.setSetting("ha.maintenance", { on: false, by: "n1" }); // node-local
    await n1.users.createUser("ops", "correct horse battery", "admin");
    assertEquals(await n1.repl.barrier(), true, "the standby confirmed the changes");
    assertEquals(n2.store.getSetting("ui"), { refreshMs: 2000, banner: "pair" });
    assertEquals(n2.store.getSetting("ha.maintenance"), undefined, "node-local never syncs");
    assertEquals(n2.users.list().map((u) => u.name), ["ops"]);
    // both show the same synced configuration
    // (async frames of the pair journal move the version too: wait until the standby has them)
    await until(() => sameConfig(n1, n2), "the same config version and hash on both");
    const s1 = n1.repl.status(), s2 = n2.repl.status();
    assertEquals(s1.syncMode, "sync");
    assertEquals([s1.link, s2.role, s2.seq], ["up", "standby", s1.seq]);
    // the standby refuses a replicated write, clearly; its own settings stay writable
    let err: unknown;
    try {
      n2.store.setSetting("ui", { refreshMs: 9000 });
    } catch (e) {
      err = e;
    }
    const mapped = replicaRefusal(err);
    assert(mapped instanceof ReplReadOnlyError, String(err));
    assert(mapped.message.includes('"settings"'), mapped.message);
    assertThrows(() => n2.users.delete("ops"));
    n2.store.setSetting("ha.maintenance", { on: false, by: "n2" });
    assertEquals(n2.store.getSetting("ui"), { refreshMs: 2000, banner: "pair" });
    // metrics
    const names = n1.repl.metrics!().map((f) => f.name);
    for (const m of ["repl_role", "repl_epoch", "repl_lag_seconds", "repl_acked_seq"]) {
      assert(names.includes(m), m);
    }
    // failover: n1 goes to fault, n2 becomes active → n2 primary of epoch 2, n1 standby
    n1.engine.line("FAULT", 0);
    n2.engine.line("MASTER", 100);
    await until(() => n2.repl.status().role === "primary", "n2 primary");
    await until(() => n1.repl.status().role === "standby", "n1 standby");
    assertEquals(n2.repl.status().epoch, 2);
    n2.store.setSetting("ui", { refreshMs: 3000, banner: "after failover" });
    assertEquals(await n2.repl.barrier(), true);
    await until(() => n1.repl.status().epoch === 2, "n1 resynced to epoch 2");
    assertEquals(n1.store.getSetting("ui"), { refreshMs: 3000, banner: "after failover" });
    assertEquals(n1.users.list().map((u) => u.name), ["ops"]);
    assertEquals(n1.store.getSetting("ha.maintenance"), { on: false, by: "n1" });
    await until(() => sameConfig(n1, n2), "the same config version and hash after the failover");
    assert(n2.events.some((e) => e.kind === "repl.promoted"));
  } finally {
    await p.close();
  }
});

Deno.test("repl + ha: the active's journal reaches the standby as the pair journal and continues across a failover", async () => {
  const p = await pair();
  const { n1, n2 } = p;
  const marks = (n: Node) =>
    (n.store.db.prepare("SELECT node, kind FROM pair_journal WHERE kind LIKE 'test.%' ORDER BY id")
      .all() as { node: string; kind: string }[]).map((r) => `${r.node}:${r.kind}`);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await until(() => n1.repl.status().role === "primary", "n1 primary");
    await until(() => n2.repl.status().role === "standby", "n2 standby");
    n1.bus.publishUntyped({ module: "test", kind: "test.on_active", payload: { n: 1 } });
    n2.bus.publishUntyped({ module: "test", kind: "test.on_standby", payload: { n: 2 } });
    assertEquals(await n1.repl.barrier(), true);
    await until(() => marks(n2).length === 1, "the active's event on the standby");
    assertEquals(marks(n2), ["n1:test.on_active"], "the standby copies none of its own");
    assertEquals(marks(n1), ["n1:test.on_active"]);
    // the standby's own journal still has its own event, the pair journal is read-only there
    assertEquals(n2.store.events({ kind: "test.on_standby" }).length, 1);
    assertThrows(() => n2.store.db.prepare("DELETE FROM pair_journal").run());
    // failover: n2 continues the pair journal, n1 gets it back
    n1.engine.line("FAULT", 0);
    n2.engine.line("MASTER", 100);
    await until(() => n2.repl.status().role === "primary", "n2 primary");
    await until(() => n1.repl.status().role === "standby", "n1 standby");
    n2.bus.publishUntyped({ module: "test", kind: "test.after_failover", payload: { n: 3 } });
    assertEquals(await n2.repl.barrier(), true);
    await until(() => marks(n1).length === 2, "n2's event on n1");
    assertEquals(marks(n1), ["n1:test.on_active", "n2:test.after_failover"]);
    assertEquals(marks(n2), marks(n1));
    // the API: newest first, filtered by kind; a bad query is refused naming the field
    const res = await n1.repl.routes!().request("/repl/journal?kind=test.&limit=5");
    assertEquals(res.status, 200);
    const body = await res.json() as { role: string; rows: { node: string; kind: string }[] };
    assertEquals(body.role, "standby");
    assertEquals(body.rows.map((r) => r.kind), ["test.after_failover", "test.on_active"]);
    const bad = await n1.repl.routes!().request("/repl/journal?limit=0");
    assert(bad.status >= 400, `limit=0 is refused (${bad.status})`);
    // the HA page shows it: on the standby, the active's events
    const html = String(await haPage(pageDeps(n1), { name: "admin", role: "admin" }));
    assertStringIncludes(html, "data-pair-journal");
    assertStringIncludes(html, "The active&#39;s events, replicated to this node");
    assertStringIncludes(html, "test.after_failover");
    // a set-aside tail: listed to everyone, its raw file (hashes in it) offered to admins only
    const name = "tail-p-e4-s9-9-x.kwtail";
    await Deno.mkdir(`${p.dir}/n1/repl/tails`, { recursive: true });
    await Deno.writeFile(
      `${p.dir}/n1/repl/tails/${name}`,
      encodeFrame({ pairId: "p", schemaVersion: "1", epoch: 4, seq: 9, changesets: [] }),
    );
    const link = `/api/repl/tails/${name}/file`;
    const asAdmin = String(await haPage(pageDeps(n1), { name: "admin", role: "admin" }));
    assertStringIncludes(asAdmin, `data-repl-tail="${name}"`);
    assertStringIncludes(asAdmin, link);
    const asViewer = String(await haPage(pageDeps(n1), { name: "v", role: "viewer" }));
    assertStringIncludes(asViewer, `data-repl-tail="${name}"`);
    assert(!asViewer.includes(link), "a viewer is offered a download the API refuses it");
  } finally {
    await p.close();
  }
});

Deno.test("repl + ha: a graceful handover drains replication first: refused while the standby lacks acknowledged changes; once drained, writes wait for the demotion", async () => {
  const p = await pair();
  const { n1, n2 } = p;
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await until(() => n1.repl.status().role === "primary", "n1 primary");
    await until(() => n2.repl.status().role === "standby", "n2 standby");
    // 1. the standby drained: the handover goes ahead, and new writes are refused until
    //    this node is demoted (nothing is acknowledged here that the peer would not have)
    n1.store.setSetting("ui", { refreshMs: 2000, banner: "before" });
    const st = await n1.ha.handOver("test");
    assertEquals(st.node, "n1");
    assertThrows(() => n1.repl.admit(), ReplHandingOverError);
    await assertRejects(
      () => n1.repl.write("config", (db) => db.exec("DELETE FROM settings WHERE key = 'x'")),
      ReplHandingOverError,
    );
    assertEquals(n2.store.getSetting("ui"), { refreshMs: 2000, banner: "before" });
    // keepalived reports the handover: n2 active, n1 standby; writes are n2's now
    n1.engine.line("BACKUP", 150);
    n2.engine.line("MASTER", 100);
    await until(() => n2.repl.status().role === "primary", "n2 primary");
    await until(() => n1.repl.status().role === "standby", "n1 standby");
    n2.repl.admit();
    // the handover's own events were not copied into the pair journal after the drain, so
    // the demoted node has nothing unconfirmed to set aside (no tail, no alert)
    n2.store.setSetting("ui", { refreshMs: 2000, banner: "on n2" });
    assertEquals(await n2.repl.barrier(), true);
    await until(
      () => n1.store.getSetting<{ banner: string }>("ui")?.banner === "on n2",
      "n1 in sync",
    );
    assertEquals(n1.events.filter((e) => e.kind === "repl.tail_saved").length, 0);
    // 2. back to n1, then the standby goes away with a change acknowledged only here:
    //    the handover is refused and n1 stays active, taking writes again
    n2.engine.line("BACKUP", 100);
    n1.engine.line("MASTER", 150);
    await until(() => n1.repl.status().role === "primary", "n1 primary again");
    await until(() => n2.repl.status().role === "standby", "n2 standby again");
    await n2.stop();
    n1.store.setSetting("ui", { refreshMs: 2000, banner: "only on n1" });
    await n1.repl.barrier(); // the standby is gone: acknowledged locally (continue)
    const e = await assertRejects(() => n1.ha.handOver("test"), HaHandoverNotReadyError);
    assertStringIncludes(e.message, "stays active");
    assertEquals(n1.ha.status().role, "active");
    n1.repl.admit(); // writes are taken again
    await n1.repl.write("config", (db) => db.exec("DELETE FROM settings WHERE key = 'x'"));
  } finally {
    await p.close();
  }
});

Deno.test("repl + ha: a sync group set to refuse refuses changes while the standby is gone; continue goes on locally with an event", async () => {
  const p = await pair({ groups: { config: { durability: "sync", onStandbyLost: "refuse" } } });
  const { n1, n2 } = p;
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await until(() => n2.repl.status().role === "standby", "n2 standby");
    n1.store.setSetting("ui", { refreshMs: 1000 });
    assertEquals(await n1.repl.barrier(), true);
    await n2.stop(); // the standby is gone
    n1.store.setSetting("ui", { refreshMs: 1100 });
    assertEquals(await n1.repl.barrier(), false, "not confirmed without a standby");
    await until(() => n1.repl.status().link === "down", "link down");
    assert(n1.events.some((e) => e.kind === "repl.standby_lost"));
    let refused: unknown;
    try {
      n1.repl.admit();
    } catch (e) {
      refused = e;
    }
    assertEquals((refused as { code?: string })?.code, "repl_standby_lost");
  } finally {
    await p.close();
  }
});

Deno.test("repl + ha, active-active: channel b follows set b's instance; each node writes its set and replicates it to the other; the survivor takes both", async () => {
  const registry = () => {
    const r = new ReplRegistry();
    r.defineGroup("data_b", { durability: "sync", set: "b" });
    r.registerTables("data_b", ["msgs_b"]);
    return r;
  };
  const p = await pair({}, {
    activeActive: true,
    registry,
    migrate: ["CREATE TABLE msgs_b (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"],
  });
  const { n1, n2 } = p;
  const chan = (n: Node, ch: "a" | "b") => n.repl.status().channels?.find((c) => c.channel === ch);
  const insB = (n: Node, id: number) =>
    n.repl.write(
      "data_b",
      (db) => db.prepare("INSERT INTO msgs_b (id, body) VALUES (?, ?)").run(id, `m${id}`),
    );
  try {
    n1.engine.line("MASTER", 150);
    n1.engine.line("BACKUP", 100, "keepwire_b");
    n2.engine.line("BACKUP", 100);
    n2.engine.line("MASTER", 150, "keepwire_b");
    await until(
      () =>
        chan(n1, "a")?.role === "primary" && chan(n1, "b")?.role === "standby" &&
        chan(n2, "a")?.role === "standby" && chan(n2, "b")?.role === "primary",
      "each node primary of its own set",
    );
    // both write at once: n1 the configuration (set a), n2 set b's messages
    n1.store.setSetting("ui", { banner: "aa" });
    const [w, a] = await Promise.all([insB(n2, 1), n1.repl.barrier()]);
    assert(w.replicated && a, "both confirmed by the other node");
    assertEquals(n2.store.getSetting("ui"), { banner: "aa" });
    assertEquals(n1.store.db.prepare("SELECT body FROM msgs_b").all().map((r) => r.body), ["m1"]);
    // each node refuses writes to the other set's tables only
    assertThrows(() => n1.store.db.prepare("INSERT INTO msgs_b (id, body) VALUES (9, 'x')").run());
    assertThrows(() => n2.store.setSetting("ui", { banner: "no" }));
    // status, metrics and the health detail name both channels
    assertEquals(chan(n2, "b")?.tables, ["msgs_b"]);
    const seq = n1.repl.metrics!().find((f) => f.name === "repl_seq")!;
    assertEquals(seq.samples.map((x) => x.labels?.channel), ["a", "b"]);
    // n1 fails: n2 becomes active for set a too and serves both sets
    n1.engine.line("FAULT", 0);
    n1.engine.line("FAULT", 0, "keepwire_b");
    n2.engine.line("MASTER", 100);
    await until(() => chan(n2, "a")?.role === "primary", "n2 primary of set a");
    assertEquals(chan(n2, "a")?.epoch, 2);
    n2.store.setSetting("ui", { banner: "survivor" });
    assert((await insB(n2, 2)).replicated, "n1's channel b standby still answers");
    assert(await n2.repl.barrier());
    await until(
      () => (n1.store.getSetting("ui") as { banner?: string } | undefined)?.banner === "survivor",
      "n1 resynced set a",
    );
    // set b comes back to n1 (ha failover --set b on n2): a new epoch of channel b
    n2.engine.line("BACKUP", 100, "keepwire_b");
    n1.engine.line("MASTER", 150, "keepwire_b");
    await until(() => chan(n1, "b")?.role === "primary", "n1 primary of set b");
    assert((await insB(n1, 3)).replicated);
    assertEquals(
      n2.store.db.prepare("SELECT id FROM msgs_b ORDER BY id").all().map((r) => r.id),
      [1, 2, 3],
    );
    assert(n1.events.some((e) => e.kind === "ha.set_changed" && e.payload.to === "active"));
  } finally {
    await p.close();
  }
});

Deno.test("repl + ha: on an idle pair (no writes but the pair's own) the rollout's handover check passes soon after the standby or the active restarts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-ha-idle-" });
  const p1 = freePort(), p2 = freePort();
  let n1 = await node(dir, "n1", { own: p1, peer: p2 });
  let n2 = await node(dir, "n2", { own: p2, peer: p1 });
  const ready = (n: Node) => handoverBlocker(n.repl.status(), []);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await until(() => n1.repl.status().role === "primary", "n1 primary");
    await until(() => n2.repl.status().role === "standby", "n2 standby");
    await until(() => ready(n1) === null, "the pair ready at the start");
    // the standby is upgraded: its process goes away and comes back; nobody writes
    await n2.stop();
    n2 = await node(dir, "n2", { own: p2, peer: p1 });
    n2.engine.line("BACKUP", 100);
    await until(() => n2.repl.status().role === "standby", "n2 standby again");
    let t0 = Date.now();
    await until(() => ready(n1) === null, `n1 ready after n2's restart (${ready(n1)})`);
    const afterStandby = Date.now() - t0;
    // the active restarts
    await n1.stop();
    n1 = await node(dir, "n1", { own: p1, peer: p2 });
    n1.engine.line("MASTER", 150);
    await until(() => n1.repl.status().role === "primary", "n1 primary again");
    t0 = Date.now();
    await until(() => ready(n1) === null, `n1 ready after its own restart (${ready(n1)})`);
    const afterActive = Date.now() - t0;
    console.log(
      `ready after the standby's restart ${afterStandby} ms, the active's ${afterActive} ms`,
    );
  } finally {
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
