/**
 * Automatic failback with replication, two nodes in one process: each an HA module (fake
 * keepalived, played by the test) and a replication module on its own store, linked by the
 * HA peer link over real HTTP on loopback. The owner of a set is killed, the survivor takes
 * it over and takes writes, the owner returns: it does not take the set back before its
 * channel has the survivor's writes; then it asks, the survivor drains and releases, and
 * no acknowledged write is lost (and nothing is set aside on the survivor).
 * Plain pair (ha.preempt) and active-active (set b, activeActive.failback "auto").
 */
import { type HaDeps } from "../mod/ha/mod.ts";
import type { UpgradeDriver } from "../mod/ha/upgrade.ts";
import { createPeerFetch } from "../mod/ha/peer.ts";
import { FAILBACK_PEER_PATH } from "../mod/ha/failback.ts";
import { haPage } from "../mod/ha/page.tsx";
import { failbackLine } from "../mod/cli/ha.ts";
import type { HaStatus } from "../mod/ha/types.ts";
import type { PageDeps } from "../mod/web/ui/contract.ts";
import { ReplRegistry } from "../mod/repl/mod.ts";
import { systemClock } from "../mod/module.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { until } from "./repl_rig.ts";
import { buildNode, freePort, type Node } from "./ha_pair_rig.ts";

const SECRET = "pair-secret-0123456789";

/** Node `id` of the failback pair: the set that fails back is a (plain pair) or b (active-active). */
function node(
  dir: string,
  id: "n1" | "n2",
  ports: { own: number; peer: number },
  aa: boolean,
  /** Listen here instead of `ports.own` (behind the test's relay). */
  listen?: number,
  deps: Partial<HaDeps> = {},
  /** `failover: "manual"` (plain pair): takeovers wait for `ha failover`; failback does not. */
  manual = false,
): Promise<Node> {
  // the set's data: a sync group on the set that fails back (b with active-active)
  const registry = new ReplRegistry();
  registry.defineGroup("fb", { durability: "sync", set: aa ? "b" : "a" });
  registry.registerTables("fb", ["fb_data"]);
  return buildNode(dir, id, {
    ...ports,
    listen,
    net: "10.234.0",
    peerEntry: { priority: id === "n1" ? 100 : 150 },
    ha: {
      failoverHoldMs: 2000,
      ...(aa
        ? {
          activeActive: {
            virtualRouterId: 52,
            virtualAddresses: ["10.234.0.60/24"],
            failback: "auto",
            failbackDelayMs: 1000,
          },
        }
        : { preempt: true, preemptDelayMs: 1000 }),
      ...(manual ? { failover: "manual" } : {}),
      peerLink: { secret: SECRET, pairId: "lab" },
    },
    registry,
    migrate: ["CREATE TABLE fb_data (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"],
    deps,
  });
}

/**
 * A TCP relay from `port` to `to` on loopback: while `cut`, new connections are closed at
 * once (the peer's requests to this node fail).
 */
function relay(port: number, to: number) {
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  const open = new Set<Deno.Conn>();
  const r = {
    cut: false,
    close() {
      l.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      open.clear();
    },
  };
  (async () => {
    for await (const c of l) {
      if (r.cut) {
        c.close();
        continue;
      }
      let u: Deno.Conn;
      try {
        u = await Deno.connect({ hostname: "127.0.0.1", port: to });
      } catch {
        c.close();
        continue;
      }
      open.add(c);
      open.add(u);
      const pipe = (a: Deno.Conn, b: Deno.Conn) =>
        a.readable.pipeTo(b.writable).catch(() => {}).finally(() => {
          for (const x of [a, b]) {
            try {
              x.close();
            } catch { /* closed */ }
            open.delete(x);
          }
        });
      void pipe(c, u);
      void pipe(u, c);
    }
  })().catch(() => {});
  return r;
}

/** The HA page's data: the node's own routes, in process. */
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
  } as PageDeps;
}

/** The keys of the set's table on a node. */
function keys(n: Node): Set<string> {
  const rows = n.store.db.prepare("SELECT k FROM fb_data").all() as { k: string }[];
  return new Set(rows.map((r) => r.k));
}

/** One write of the set's data (resolves once acknowledged: the sync group's rule). */
function put(n: Node, k: string): Promise<unknown> {
  return n.repl.write(
    "fb",
    (db) => db.prepare("INSERT INTO fb_data (k, v) VALUES (?, 1)").run(k),
  );
}

/** The channel of a set on a node. */
function chan(n: Node, set: "a" | "b") {
  return n.repl.status().channels?.find((c) => c.channel === set);
}

async function scenario(aa: boolean, manual = false): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kw-failback-" });
  const p1 = freePort();
  const p2 = freePort();
  // the owner of the set that fails back: n1 owns a (plain pair); n2 owns b (active-active)
  const set = aa ? "b" : "a";
  const inst = aa ? "keepwire_b" : "keepwire";
  const ownerId = aa ? "n2" : "n1";
  const prio = { owner: 150, holder: 100 };
  let n1 = await node(dir, "n1", { own: p1, peer: p2 }, aa, undefined, {}, manual);
  let n2 = await node(dir, "n2", { own: p2, peer: p1 }, aa, undefined, {}, manual);
  const owner = () => ownerId === "n1" ? n1 : n2;
  const holder = () => ownerId === "n1" ? n2 : n1;
  let writer: Promise<void> | null = null;
  let stopRelay = () => {};
  let writing = true;
  try {
    // 1. the owner holds its set; the other node is its standby
    if (aa) {
      n1.engine.line("MASTER", 150);
      n2.engine.line("BACKUP", 100);
      n1.engine.line("BACKUP", 100, "keepwire_b");
      n2.engine.line("MASTER", 150, "keepwire_b");
    } else {
      n1.engine.line("MASTER", 150);
      n2.engine.line("BACKUP", 100);
    }
    await until(() => chan(owner(), set)?.role === "primary", "the owner primary of its set");
    await until(() => chan(holder(), set)?.role === "standby", "the peer its standby");
    assertEquals((await put(owner(), "fb.before") as { replicated: boolean }).replicated, true);
    // the standby caught up: its catch-up hold (catch_up.ts) lets keepalived out of FAULT
    await until(() => !holder().ha.status().catchUp?.held, "the standby caught up");
    // 2. the owner dies; the survivor takes its set over and takes writes (acknowledged
    //    here alone: the owner is gone)
    await owner().stop();
    if (manual) {
      // held: nothing is taken over until the operator confirms the pending takeover
      holder().engine.elect("MASTER", prio.holder, inst);
      await until(() => !!holder().ha.status().manual?.pending, "a takeover pending", 30_000);
      assertEquals(holder().ha.status().role, "standby", "no takeover before ha failover");
      holder().ha.failover("test");
    }
    holder().engine.elect("MASTER", prio.holder, inst);
    await until(() => chan(holder(), set)?.role === "primary", "the survivor primary of the set");
    const acked: string[] = ["fb.before"];
    for (let i = 0; i < 40; i++) {
      await put(holder(), `fb.gone.${i}`); // the standby is gone: acknowledged here (continue)
      acked.push(`fb.gone.${i}`);
    }
    // 3. the owner returns (its keepalived BACKUP: nopreempt) while the survivor keeps
    //    taking writes; a write counts once it resolved (sync: the owner confirmed it)
    const before = new Set(acked);
    // the survivor reaches it through a relay, cut at first: the owner reads the survivor
    // (its view of the set), the survivor cannot replicate to it, so it cannot catch up
    const real = freePort();
    const link = relay(ownerId === "n1" ? p1 : p2, real);
    link.cut = true;
    stopRelay = () => link.close();
    const fresh = await node(
      dir,
      ownerId,
      {
        own: ownerId === "n1" ? p1 : p2,
        peer: ownerId === "n1" ? p2 : p1,
      },
      aa,
      real,
      {},
      manual,
    );
    if (ownerId === "n1") n1 = fresh;
    else n2 = fresh;
    const requested: { missing: string[]; epoch: [number, number] }[] = [];
    fresh.bus.subscribe((e) => {
      if (e.kind !== "ha.failback_requested") return;
      const have = keys(fresh);
      requested.push({
        missing: [...before].filter((k) => !have.has(k)),
        epoch: [chan(fresh, set)?.epoch ?? -1, chan(holder(), set)?.epoch ?? -2],
      });
    }, { kindPrefix: "ha." });
    if (aa) {
      fresh.engine.line("BACKUP", 150, "keepwire_b");
      fresh.engine.line("BACKUP", 100);
    } else fresh.engine.line("BACKUP", 150);
    const h = holder();
    let i = 0;
    writer = (async () => {
      while (writing) {
        const k = `fb.back.${i++}`;
        try {
          await put(h, k);
          acked.push(k);
        } catch { /* refused: handing over, or no longer primary */ }
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    // the owner waits: well past the delay and many polls, it has not asked
    const fb = () => fresh.ha.status().failback?.find((f) => f.set === set);
    await until(
      () => fb()?.state === "waiting" && fb()?.reason !== "starting" && keys(h).size > 45,
      "the owner waiting",
      30_000,
    );
    const t0 = Date.now();
    await until(() => Date.now() - t0 > 3000, "3 s");
    assertEquals(fb()?.state, "waiting", JSON.stringify(fb()));
    const reason = fb()!.reason;
    assertEquals(requested.length, 0, "not asked while behind");
    assert(chan(h, set)?.role === "primary" && !h.ha.status().track?.fault, "the holder holds");
    assert(/epoch|snapshot|not caught up/.test(reason), `waits for its channel: ${reason}`);
    const waiting = fresh.events.filter((e) => e.kind === "ha.failback_waiting");
    assertEquals(waiting.length, 1, "one ha.failback_waiting for the episode");
    const res = await fresh.ha.routes!().request("/ha/status");
    const api = await res.json() as { failback: { state: string }[] };
    assertEquals(api.failback[0].state, "waiting", "GET /api/ha/status says so");
    // the HA page and keepwire ha status say why
    const html = String(await haPage(pageDeps(fresh), { name: "admin", role: "admin" }));
    assert(html.includes(`data-ha-failback="waiting"`), html);
    assert(html.includes(`failback of set ${set}: WAITING: `), html);
    const line = failbackLine(fresh.ha.status().failback![0]);
    assert(line.startsWith(`failback of set ${set}: WAITING since `), line);
    const metric = fresh.ha.metrics!().find((m) => m.name === "ha_failback_state");
    assertEquals(
      metric?.samples.filter((x) => x.value === 1).map((x) => x.labels),
      [{ set, state: "waiting" }],
    );
    // the link back: the channel catches up (snapshot, frames), then the owner asks
    link.cut = false;
    await until(
      () => h.ha.status().track?.fault === true || !!h.ha.status().track?.released.includes(set),
      "the holder released the set (a graceful handover)",
      60_000,
    );
    assertEquals(requested.length, 1, "asked once");
    assertEquals(requested[0].missing, [], "the owner had every write made while it was away");
    assertEquals(requested[0].epoch[0], requested[0].epoch[1], "at the holder's epoch");
    const waited = fresh.events.filter((e) => e.kind.startsWith("ha.failback_"))
      .map((e) => e.kind);
    assertEquals(waited.at(-1), "ha.failback_requested", waited.join(", "));
    // keepalived: the holder's priority-0 advert; the owner (BACKUP) becomes MASTER
    h.engine.line("FAULT", 0, inst);
    if (manual) {
      // the owner saw its peer active: held until the holder hands over, then let go
      await until(() => !fresh.ha.status().manual?.held, "the owner's manual hold let go");
    }
    fresh.engine.elect("MASTER", prio.owner, inst);
    await until(() => chan(fresh, set)?.role === "primary", "the owner primary again");
    await until(() => chan(h, set)?.role === "standby", "the holder its standby");
    writing = false;
    await writer;
    writer = null;
    h.engine.line("BACKUP", prio.holder, inst);
    // every acknowledged write is on the owner; nothing was set aside on the holder
    const have = keys(fresh);
    const lost = acked.filter((k) => !have.has(k));
    assertEquals(lost, [], `acknowledged writes missing on the owner (${acked.length} acked)`);
    assert(acked.length > 41, `writes during the return were acknowledged (${acked.length})`);
    assertEquals(h.events.filter((e) => e.kind === "repl.tail_saved").length, 0);
    await until(
      () => fresh.ha.status().failback?.find((f) => f.set === set)?.state === "holding",
      "the owner's failback status: holding",
    );
    const hand = h.events.find((e) => e.kind === "ha.failover_manual");
    assert(
      String((hand?.payload as { by?: string } | undefined)?.by).includes(`failback to ${ownerId}`),
      JSON.stringify(hand?.payload),
    );
  } finally {
    writing = false;
    await writer?.catch(() => {});
    await n1.stop();
    await n2.stop();
    stopRelay();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("ha failback (preempt + replication): the returning owner waits for the survivor's writes, then takes the address back by a drained handover; nothing acknowledged is lost", async () => {
  await scenario(false);
});

Deno.test("ha failback (preempt + replication, failover manual): the survivor waits for ha failover; the returning owner, held while its peer is active, still takes the address back once caught up", async () => {
  await scenario(false, true);
});

Deno.test("ha failback (active-active, failback auto + replication): set b goes back to its owner once its channel caught up; nothing acknowledged is lost", async () => {
  await scenario(true);
});

Deno.test("ha failback, the holder's side: its view of a set over the peer link; it refuses a set it does not hold, and one its own config says it owns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-failback-" });
  const p1 = freePort();
  const n1 = await node(dir, "n1", { own: p1, peer: freePort() }, false);
  const f = createPeerFetch({ secret: SECRET, pairId: "lab", node: "n2", clock: systemClock });
  const url = `http://127.0.0.1:${p1}${FAILBACK_PEER_PATH}`;
  const post = async (body: unknown) => {
    const r = await f(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() as { error?: { code: string } } };
  };
  try {
    const notHeld = await post({ set: "a", node: "n2" });
    assertEquals([notHeld.status, notHeld.body.error?.code], [409, "failback_not_holding"]);
    n1.engine.line("MASTER", 150);
    await until(() => chan(n1, "a")?.role === "primary", "n1 primary");
    const v = await (await f(`${url}?set=a`)).json() as {
      node: string;
      holding: boolean;
      channel: { role: string } | null;
    };
    assertEquals([v.node, v.holding, v.channel?.role], ["n1", true, "primary"]);
    // n1 owns set a by its own config (150 above 100): the two configs disagree
    const conflict = await post({ set: "a", node: "n2" });
    assertEquals([conflict.status, conflict.body.error?.code], [409, "failback_conflict"]);
    const noB = await post({ set: "b", node: "n2" });
    assertEquals([noB.status, noB.body.error?.code], [409, "failback_no_set"]);
    assertEquals(n1.ha.status().role, "active", "nothing handed over");
    const owner: HaStatus["failback"] = n1.ha.status().failback;
    assertEquals(owner?.map((x) => x.state), ["holding"]);
  } finally {
    await n1.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha failback, the holder's side: no hand-over while a rolling upgrade runs there (the rollout hands over itself)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-failback-" });
  const p2 = freePort();
  // a rollout that stays at its first step (the bundle is never read)
  const stuck = new Promise<never>(() => {});
  const driver = { bundle: () => stuck } as unknown as UpgradeDriver;
  const n2 = await node(dir, "n2", { own: p2, peer: freePort() }, false, undefined, {
    upgradeDriver: driver,
  });
  const f = createPeerFetch({ secret: SECRET, pairId: "lab", node: "n1", clock: systemClock });
  try {
    n2.engine.line("MASTER", 100);
    await until(() => chan(n2, "a")?.role === "primary", "n2 primary");
    n2.ha.upgrade("/tmp/none.kwb", "test");
    const r = await f(`http://127.0.0.1:${p2}${FAILBACK_PEER_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ set: "a", node: "n1" }),
    });
    const body = await r.json() as { error?: { code: string; message: string } };
    assertEquals([r.status, body.error?.code], [409, "failback_not_ready"]);
    assertEquals(body.error?.message, "a rolling upgrade runs on n2 (checking)");
    assertEquals(n2.ha.status().role, "active");
  } finally {
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha failback, the owner's side: it does not ask for its set back while its own rolling upgrade runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-failback-" });
  const p1 = freePort();
  const p2 = freePort();
  const stuck = new Promise<never>(() => {});
  const driver = { bundle: () => stuck } as unknown as UpgradeDriver;
  const n1 = await node(dir, "n1", { own: p1, peer: p2 }, false, undefined, {
    upgradeDriver: driver,
  });
  const n2 = await node(dir, "n2", { own: p2, peer: p1 }, false);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await until(() => chan(n2, "a")?.role === "standby", "n2 standby");
    n1.ha.upgrade("/tmp/none.kwb", "test"); // stays at its first step
    // the role moves to n2 (as the rollout's handover would); n1 stays standby
    n1.engine.line("BACKUP", 150);
    n2.engine.line("MASTER", 100);
    await until(() => chan(n1, "a")?.role === "standby", "n1 standby");
    const fb = () => n1.ha.status().failback?.[0];
    await until(
      () => fb()?.reason === "a rolling upgrade runs here (checking)",
      "n1 waits for its rollout",
    );
    const t0 = Date.now();
    await until(() => Date.now() - t0 > 2500, "2.5 s (past the 1 s delay)");
    assertEquals(fb()?.state, "waiting");
    assertEquals(n1.events.filter((e) => e.kind === "ha.failback_requested").length, 0);
  } finally {
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** Not held out of MASTER by the catch-up hold (a build without it counts as released). */
function released(n: Node): boolean {
  return n.ha.status().catchUp?.held !== true;
}

/**
 * The catch-up hold: n1 dies, n2 serves alone, n1 returns with n2's replication to it cut
 * and VRRP makes it MASTER (missed adverts). The data is on set a (plain pair) or set b
 * (active-active: n2 held b all along, n1 was its standby).
 */
async function catchUpScenario(aa: boolean): Promise<void> {
  const set = aa ? "b" : "a";
  const sets = aa ? ["a", "b"] as const : ["a"] as const;
  const dir = await Deno.makeTempDir({ prefix: "kw-catchup-" });
  const p1 = freePort();
  const p2 = freePort();
  let n1 = await node(dir, "n1", { own: p1, peer: p2 }, aa);
  const n2 = await node(dir, "n2", { own: p2, peer: p1 }, aa);
  let stopRelay = () => {};
  let writer: Promise<void> | null = null;
  let writing = true;
  try {
    // both up: the hold lets go at once (the peer answers and is not active, or is lost)
    await until(() => released(n1) && released(n2), "both released at start");
    n1.engine.elect("MASTER", 150);
    n2.engine.elect("BACKUP", 100);
    if (aa) {
      n1.engine.elect("BACKUP", 100, "keepwire_b");
      n2.engine.elect("MASTER", 150, "keepwire_b");
      await until(() => chan(n2, "b")?.role === "primary", "n2 primary of b");
      await until(() => chan(n1, "b")?.role === "standby", "n1 its standby");
    }
    await until(() => chan(n1, "a")?.role === "primary", "n1 primary");
    await until(() => chan(n2, "a")?.role === "standby", "n2 its standby");
    assertEquals(
      (await put(aa ? n2 : n1, "fb.before") as { replicated: boolean }).replicated,
      true,
    );
    // n1 dies; n2 takes over and acknowledges writes alone
    await n1.stop();
    n2.engine.elect("MASTER", 100);
    await until(() => chan(n2, "a")?.role === "primary", "n2 primary");
    const acked: string[] = ["fb.before"];
    for (let i = 0; i < 40; i++) {
      await put(n2, `fb.gone.${i}`);
      acked.push(`fb.gone.${i}`);
    }
    const before = new Set(acked);
    // n1 returns; n2 cannot replicate to it yet (the relay is cut); n1 reads n2 fine
    const real = freePort();
    const link = relay(p1, real);
    link.cut = true;
    stopRelay = () => link.close();
    const fresh = await node(dir, "n1", { own: p1, peer: p2 }, aa, real);
    n1 = fresh;
    const promoted: string[][] = [];
    fresh.bus.subscribe((e) => {
      const p = e.payload as { to?: string };
      if (e.kind !== "ha.role_changed" && e.kind !== "ha.set_changed") return;
      if (p.to !== "active") return;
      const have = keys(fresh);
      promoted.push([...before].filter((k) => !have.has(k)));
    }, { kindPrefix: "ha." });
    writer = (async () => {
      let i = 0;
      while (writing) {
        const k = `fb.back.${i++}`;
        try {
          await put(n2, k);
          acked.push(k);
        } catch { /* refused: handing over */ }
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    // n2's adverts are missed (a starved node): VRRP makes n1 MASTER
    const elect = (state: string) => {
      fresh.engine.elect(state, 150);
      if (aa) fresh.engine.elect(state, 100, "keepwire_b");
    };
    elect("MASTER");
    await until(
      () => fresh.events.some((e) => e.kind === "ha.catching_up") || promoted.length > 0,
      "n1 catching up (or promoted)",
      30_000,
    );
    const t0 = Date.now();
    await until(() => Date.now() - t0 > 2000 && keys(n2).size > 45, "2 s of writes on n2");
    elect("MASTER"); // VRRP says so again: still held
    assertEquals(promoted, [], "the stale copy was not promoted");
    assertEquals(fresh.ha.status().role, "standby");
    for (const s of sets) {
      assertEquals(chan(fresh, s)?.role, "standby", `n1's channel ${s}`);
      assertEquals(chan(n2, s)?.role, "primary", `the survivor still serves set ${s}`);
    }
    const cu = fresh.ha.status().catchUp;
    assertEquals(cu?.held, true, JSON.stringify(cu));
    assert(new RegExp(`n2 is active for set ${set}`).test(cu!.reason), cu!.reason);
    assert(
      fresh.ha.status().track!.faultReasons.some((r) => r.startsWith("catching_up: ")),
      "the hold shows as a FAULT reason",
    );
    assertEquals(fresh.events.filter((e) => e.kind === "ha.catching_up").length, 1);
    // the link back: n1's channel catches up, then the hold lets go
    link.cut = false;
    await until(() => released(fresh), "n1 released once caught up", 60_000);
    const done = fresh.events.filter((e) => e.kind === "ha.caught_up");
    assertEquals(done.map((e) => (e.payload as { how: string }).how), ["caught_up"]);
    assertEquals(promoted, [], "not promoted while held");
    // keepalived leaves FAULT for BACKUP (nopreempt: it does not take the address)
    elect("BACKUP");
    writing = false;
    await writer;
    writer = null;
    await until(() => acked.every((k) => keys(fresh).has(k)), "every acknowledged write on n1");
    // nothing set aside on the survivor (n1 may set aside what it made unconfirmed as it died)
    assertEquals(n2.events.filter((e) => e.kind === "repl.tail_saved").length, 0);
    assert(acked.length > 41, `writes during the return (${acked.length})`);
  } finally {
    writing = false;
    await writer?.catch(() => {});
    await n1.stop();
    await n2.stop();
    stopRelay();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("ha catch-up hold: a returning node that VRRP makes MASTER while the survivor serves is held out of active until its channel caught up; no stale promotion, nothing set aside, nothing acknowledged lost", async () => {
  await catchUpScenario(false);
});

Deno.test("ha catch-up hold (active-active): the returning node is held on both sets until its channels caught up with the survivor's", async () => {
  await catchUpScenario(true);
});

Deno.test("ha catch-up hold: a lone returning node (the peer gone) is held until the peer link's lost bound, then takes over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-catchup-" });
  const p1 = freePort();
  // the peer's address takes connections and never answers (its host hangs)
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  void (async () => {
    for await (const c of sink) held.push(c);
  })().catch(() => {});
  const n1 = await node(dir, "n1", {
    own: p1,
    peer: (sink.addr as Deno.NetAddr).port,
  }, false);
  try {
    assertEquals(n1.ha.status().catchUp?.held, true, "held at start");
    n1.engine.elect("MASTER", 150);
    assertEquals(n1.ha.status().role, "standby", "VRRP's MASTER is held off");
    assertEquals(n1.engine.track?.fault, 1);
    await until(() => released(n1), "released after the lost bound", 30_000);
    const done = n1.events.filter((e) => e.kind === "ha.caught_up");
    assertEquals(done.map((e) => (e.payload as { how: string }).how), ["peer_lost"]);
    assert(n1.events.some((e) => e.kind === "ha.peer_lost"), "the peer link lost the peer first");
    assertEquals(n1.engine.track?.fault, 0);
    n1.engine.elect("MASTER", 150);
    await until(() => chan(n1, "a")?.role === "primary", "the lone node takes over");
    assertEquals(n1.ha.status().role, "active");
    assertEquals(n1.events.filter((e) => e.kind === "ha.catching_up").length, 0);
  } finally {
    await n1.stop();
    sink.close();
    for (const c of held) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
