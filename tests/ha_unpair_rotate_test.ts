/**
 * The operator's pair maintenance on two real HA modules with replication over the paired
 * HTTPS link (loopback): a certificate rotation switches without dropping replication and
 * shows the new expiry (with a warning for a short-lived certificate); `ha unpair` refuses
 * while this node is the only copy of unacknowledged changes (saying which), unpairs with
 * force, and the peer learns it on its next contact (status + event); after unpairing both,
 * pairing again works and replication runs again.
 */
import { freePort, type Node, node, oddCert } from "./ha_pair_rig.ts";
import { certFingerprint, loadPair, loadUnpaired } from "../mod/ha/pairing.ts";
import { HaRotateError, HaUnpairLossError } from "../mod/ha/errors.ts";
import { CERT_WARN_DAYS, expiryWarnings } from "../mod/ha/pair_ops.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { until } from "./repl_rig.ts";
import { Hono } from "hono";
import { haPage } from "../mod/ha/page.tsx";
import type { PageViewer } from "../mod/web/ui/contract.ts";

async function pairStatus(n: Node): Promise<Record<string, unknown>> {
  return await (await n.ha.routes!().request("/ha/pair")).json();
}

/** The HA page as an admin sees it, its API calls answered by the node's routes. */
async function page(n: Node): Promise<string> {
  const app = new Hono();
  app.route("/api", n.ha.routes!());
  app.route("/api", n.repl.routes!());
  const deps = {
    appliance: "t",
    refreshMs: () => 1000,
    hasAdmin: () => true,
    config: () => ({}),
    version: "t",
    internal: async <T>(path: string) => {
      const r = await app.request(path);
      return r.ok ? await r.json() as T : null;
    },
  };
  return String(await haPage(deps, { name: "admin", role: "admin" } as PageViewer));
}

async function pair(a: Node, b: Node, bPort: number, id: string): Promise<void> {
  const offer = await b.ha.pairing!.offer();
  await a.ha.pairing!.request(`http://127.0.0.1:${bPort}`, offer.code, id);
  await until(
    () =>
      !!a.ha.status().peerLink?.url.startsWith("https:") &&
      !!b.ha.status().peerLink?.url.startsWith("https:") &&
      !!a.ha.status().peerLink?.reachable && !!b.ha.status().peerLink?.reachable,
    "both peers reachable over https",
  );
}

async function synced(a: Node, b: Node, banner: string): Promise<void> {
  await until(() => a.repl.status().role === "primary", "primary");
  a.store.setSetting("ui", { refreshMs: 1000, banner });
  await until(
    () => b.store.getSetting<{ banner: string }>("ui")?.banner === banner,
    `setting "${banner}" replicated`,
  );
}

Deno.test("ha pair upkeep: rotate-cert keeps replication; unpair refuses to drop unacknowledged changes, the peer learns it, pairing again works", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-ops13-pair-" });
  const [p1, p2] = [freePort(), freePort()];
  const n1 = await node(dir, "n1", p1, p2, { certValidDays: 10 });
  let n2 = await node(dir, "n2", p2, p1);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    // before pairing: the state says what to run next
    const before = await pairStatus(n1);
    assertEquals(before.state, "unpaired");
    assertStringIncludes(String(before.next), "keepwire ha pair --code");
    await pair(n1, n2, p2, "lab");
    await synced(n1, n2, "paired");
    const st = await pairStatus(n1);
    assertEquals(st.state, "paired");
    // the HA page: expiry, and Rotate / Unpair buttons with a confirmation for an admin
    const html = await page(n1);
    assertStringIncludes(html, 'data-pair-state="paired"');
    assertStringIncludes(html, "certificates expire: this node 20");
    assertStringIncludes(html, 'data-api="/api/ha/unpair"');
    assertStringIncludes(html, 'data-confirm="Unpair n1 from n2?');
    assertStringIncludes(html, 'data-api="/api/ha/pair/rotate"');
    assert(Date.parse(String(st.certExpiresAt)) > Date.now() + 3000 * 86_400_000, "10 years");

    // --- rotation: n1 makes a new certificate; replication keeps running over the switch
    const old = loadPair(n1.dataDir)!.cert;
    const writes = (async () => {
      for (let i = 0; i < 5; i++) await synced(n1, n2, `during rotation ${i}`);
    })();
    await n1.ha.rotateCert("test");
    await writes;
    const now1 = loadPair(n1.dataDir)!;
    assert(now1.cert !== old, "a new certificate");
    await until(
      () => certFingerprint(loadPair(n2.dataDir)!.peerCert) === certFingerprint(now1.cert),
      "n2 pins the new certificate",
    );
    assertEquals(loadPair(n2.dataDir)!.peerCertNext, undefined, "the old one is dropped");
    assert(n1.events.some((e) => e.kind === "ha.cert_rotated"));
    assert(n2.events.some((e) => e.kind === "ha.peer_cert_rotated"));
    await synced(n1, n2, "after rotation");
    await n1.ha.pollPeer();
    await n2.ha.pollPeer();
    assert(n1.ha.status().peerLink!.reachable && n2.ha.status().peerLink!.reachable);
    // the new certificate is valid 10 days: status shows it, and it warns
    const rotated = await pairStatus(n1);
    assert(Date.parse(String(rotated.certExpiresAt)) < Date.now() + 11 * 86_400_000);
    const warn = n1.events.find((e) => e.kind === "ha.cert_expiring");
    assert(warn, "no expiry warning");
    assertEquals([warn.payload.whose, warn.payload.holder], ["this node", "n1"]);
    assert(Number(warn.payload.daysLeft) <= 10);

    // --- unpair: n2 gone, n1 writes: n1 is the only copy → refused, says what
    await n2.stop();
    // a rotation needs the peer: refused, nothing changed
    const before2 = loadPair(n1.dataDir)!.cert;
    await assertRejects(() => n1.ha.rotateCert("test"), HaRotateError, "nothing changed");
    assertEquals(loadPair(n1.dataDir)!.cert, before2);
    n1.store.setSetting("ui", { refreshMs: 1000, banner: "only on n1" });
    await until(() => (n1.repl.status().pending ?? 0) > 0, "an unacknowledged change");
    const e = await assertRejects(() => n1.ha.unpair("test", false), HaUnpairLossError);
    assertStringIncludes(e.message, "has not acknowledged");
    assertStringIncludes(e.message, "row(s)");
    assert(loadPair(n1.dataDir), "nothing removed");
    const forced = await n1.ha.unpair("test", true);
    assert(forced.lost);
    assertEquals(loadPair(n1.dataDir), null);
    assert(loadUnpaired(n1.dataDir));
    const ev = n1.events.find((e) => e.kind === "ha.unpaired")!;
    assertEquals([ev.payload.forced, ev.payload.by], [true, "test"]);
    assertEquals((await pairStatus(n1)).state, "unpaired");
    assertStringIncludes(String(n1.repl.status().reason), "ha unpair");

    // --- the peer comes back still paired: on its next contact it learns n1 left
    n2 = await node(dir, "n2", p2, p1);
    n2.engine.line("BACKUP", 100);
    await until(() => n2.events.some((e) => e.kind === "ha.peer_unpaired"), "peer_unpaired");
    const s2 = await pairStatus(n2);
    assertEquals(s2.state, "peer_unpaired");
    assertStringIncludes(String(s2.next), "keepwire ha unpair");
    // n2 is the standby: nothing only it holds; it unpairs without force
    assertEquals((await n2.ha.unpair("test", false)).lost, null);

    // --- pair again (the other way round) and replicate
    await pair(n2, n1, p1, "lab2");
    assertEquals(loadPair(n1.dataDir)!.pairId, "lab2");
    assertEquals(loadUnpaired(n1.dataDir), null);
    await synced(n1, n2, "paired again");
    // n1 left and rejoined in the same process: its journal copies each event once, not
    // once per pairing (an event after the re-pairing: a rotation's ha.cert_rotated)
    await n1.ha.rotateCert("after re-pairing");
    const rotatedId = n1.events.findLast((e) => e.kind === "ha.cert_rotated")!.id;
    const copies = () =>
      Number(
        (n1.store.db.prepare(
          "SELECT COUNT(*) AS n FROM pair_journal WHERE node = 'n1' AND event_id = ?",
        ).get(rotatedId) as { n: number }).n,
      );
    await until(() => copies() > 0, "the rotation journalled");
    assertEquals(copies(), 1, "the event was journalled once per pairing since start");
  } finally {
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha pair upkeep: expiry warnings start N days before, once a day per certificate", () => {
  const day = 86_400_000;
  const t0 = Date.UTC(2030, 0, 1);
  const cert = (days: number) => ({
    whose: "peer" as const,
    holder: "n2",
    fingerprint: `f${days}`,
    notAfter: new Date(t0 + days * day),
  });
  const warned = new Map<string, number>();
  const certs = [cert(CERT_WARN_DAYS + 5), cert(CERT_WARN_DAYS - 1)];
  assertEquals(expiryWarnings(certs, t0, warned).map((w) => w.daysLeft), [CERT_WARN_DAYS - 1]);
  assertEquals(expiryWarnings(certs, t0 + day / 2, warned), [], "not twice a day");
  assertEquals(expiryWarnings(certs, t0 + day, warned).map((w) => w.daysLeft), [
    CERT_WARN_DAYS - 2,
  ]);
  assertEquals(
    expiryWarnings(certs, t0 + 6 * day, warned).map((w) => w.fingerprint).sort(),
    [`f${CERT_WARN_DAYS + 5}`, `f${CERT_WARN_DAYS - 1}`].sort(),
  );
});

Deno.test("ha pair upkeep: a rotation to a CA certificate or one without the peer link's key usage is refused by the peer, naming what is wrong; both nodes keep their certificates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-rotate-bad-" });
  const [p1, p2] = [freePort(), freePort()];
  const n1 = await node(dir, "n1", p1, p2);
  const n2 = await node(dir, "n2", p2, p1);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await pair(n1, n2, p2, "lab");
    await synced(n1, n2, "paired");
    const c1 = loadPair(n1.dataDir)!, c2 = loadPair(n2.dataDir)!;
    const cases: [Parameters<typeof oddCert>[0], string][] = [
      ["ca", "CA"],
      ["no-signature", "digitalSignature"],
      ["server-only", "clientAuth"],
    ];
    const pairing = n1.ha.pairing!;
    const make = pairing.makeCert;
    try {
      for (const [kind, named] of cases) {
        const odd = await oddCert(kind);
        pairing.makeCert = () => Promise.resolve(odd);
        const e = await assertRejects(() => n1.ha.rotateCert("test"), HaRotateError);
        assertStringIncludes(e.message, "refused the new certificate");
        assertStringIncludes(e.message, named);
        assertEquals(loadPair(n1.dataDir)!.cert, c1.cert, `${kind}: n1 switched anyway`);
        const now2 = loadPair(n2.dataDir)!;
        assertEquals(now2.peerCert, c2.peerCert, `${kind}: n2 pins another certificate`);
        assertEquals(now2.peerCertNext, undefined, `${kind}: n2 accepts it alongside`);
      }
    } finally {
      pairing.makeCert = make;
    }
    assert(!n1.events.some((e) => e.kind === "ha.cert_rotated"));
    // the link still works on the old certificates, and a good rotation still goes through
    await synced(n1, n2, "after the refusals");
    await n1.ha.rotateCert("test");
    await until(
      () =>
        certFingerprint(loadPair(n2.dataDir)!.peerCert) ===
          certFingerprint(loadPair(n1.dataDir)!.cert),
      "n2 pins the good new certificate",
    );
    await synced(n1, n2, "after a good rotation");
  } finally {
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha catch-up hold: `ha unpair` while the hold holds lets it go (no peer link is left to catch up with)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-catchup-unpair-" });
  const [p1, p2] = [freePort(), freePort()];
  // the peer's address after the restart takes connections and never answers
  const sink = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  void (async () => {
    for await (const c of sink) conns.push(c);
  })().catch(() => {});
  const n1 = await node(dir, "n1", p1, p2);
  const n2 = await node(dir, "n2", p2, p1);
  let back: Node | null = null;
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await pair(n1, n2, p2, "lab");
    await n1.stop();
    await n2.stop();
    // n1 restarts paired (the pair's credentials are its only secret): held from its start
    back = await node(dir, "n1", p1, (sink.addr as Deno.NetAddr).port);
    assertEquals(back.ha.status().catchUp?.held, true, "held at start");
    assertEquals(back.engine.track?.fault, 1);
    await back.ha.unpair("test", true);
    // before the fix the hold waited for a peer link that unpairing had taken away: FAULT
    // until the next restart
    assertEquals(back.ha.status().catchUp?.held, false, "let go by the unpair");
    assertStringIncludes(String(back.ha.status().catchUp?.reason), "no peer link");
    assertEquals(back.engine.track?.fault, 0);
  } finally {
    await back?.stop();
    await n1.stop();
    await n2.stop();
    sink.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
