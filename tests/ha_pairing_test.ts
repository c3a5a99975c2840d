/**
 * Pairing: two HA modules (fake keepalived) with replication, their peer links on
 * loopback and no configured secret. A wrong code and an expired code are refused with a
 * clear error and nothing is stored on either node; the right code creates the pair's
 * credentials on both (certificates made now, each pinning the other's); the peer links
 * restart as HTTPS with mutual authentication (a client without the pinned certificate
 * is refused in the handshake), the peers see each other, and the active's settings
 * reach the standby over it; both show the same synced configuration hash.
 */
import { freePort, node, oddCert } from "./ha_pair_rig.ts";
import { createHmac } from "node:crypto";
import { PEER_HEALTH_PATH } from "../mod/ha/peer.ts";
import {
  certFingerprint,
  loadPair,
  loadUnpaired,
  makeNodeCert,
  normaliseCode,
  PAIR_CODE_TTL_MS,
  PairError,
  pairFile,
  Pairing,
  unpairNoticeKey,
} from "../mod/ha/pairing.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { until } from "./repl_rig.ts";

Deno.test("ha pairing: a wrong or expired code stores nothing; the right one pairs both nodes over mutually authenticated HTTPS and replication runs on it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-pair-" });
  const [p1, p2] = [freePort(), freePort()];
  const n1 = await node(dir, "n1", p1, p2);
  const n2 = await node(dir, "n2", p2, p1);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    const url2 = `http://127.0.0.1:${p2}`;
    // unpaired, no secret: the link serves pairing only, nothing replicates
    assertEquals(n1.ha.status().peerLink?.reachable ?? false, false);
    // no code outstanding
    await assertRejects(
      () => n1.ha.pairing!.request(url2, "AAAA-BBBB-CCCC", "lab"),
      PairError,
      "no pairing code is outstanding",
    );
    const offer = await n2.ha.pairing!.offer();
    assert(/^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/.test(offer.code), offer.code);
    // a wrong code: refused, nothing stored on either node
    const e = await assertRejects(
      () => n1.ha.pairing!.request(url2, "ZZZZ-ZZZZ-ZZZZ", "lab"),
      PairError,
      "wrong pairing code",
    );
    assertEquals((e as PairError).code, "pair_bad_code");
    for (const n of [n1, n2]) assertEquals(loadPair(n.dataDir), null);
    // the right code (typed in lower case without dashes)
    const creds = await n1.ha.pairing!.request(
      url2,
      offer.code.toLowerCase().replaceAll("-", ""),
      "lab",
    );
    const c2 = loadPair(n2.dataDir)!;
    assertEquals([creds.pairId, c2.pairId], ["lab", "lab"]);
    assertEquals([creds.peerNode, c2.peerNode], ["n2", "n1"]);
    assertEquals(certFingerprint(creds.peerCert), certFingerprint(c2.cert));
    assertEquals(certFingerprint(c2.peerCert), certFingerprint(creds.cert));
    assertEquals(creds.secret, c2.secret, "both derived the same link secret");
    assertEquals((await Deno.stat(pairFile(n1.dataDir))).mode! & 0o777, 0o600);
    // a second pairing is refused while paired
    await assertRejects(() => n2.ha.pairing!.offer(), PairError, "this node is paired");
    // both peer links restart as HTTPS and see each other
    await until(
      () =>
        !!n1.ha.status().peerLink?.url.startsWith("https:") &&
        !!n2.ha.status().peerLink?.reachable && !!n1.ha.status().peerLink?.reachable,
      "both peers reachable over https",
    );
    // a client without the pinned certificate is refused in the TLS handshake
    const stranger = await makeNodeCert("stranger", ["127.0.0.1"]);
    for (const opts of [{}, { cert: stranger.cert, key: stranger.key }]) {
      const client = Deno.createHttpClient({ caCerts: [c2.cert], ...opts });
      try {
        const r = await fetch(`https://127.0.0.1:${p2}${PEER_HEALTH_PATH}`, { client })
          .then((r) => r.status, () => "refused");
        assertEquals(r, "refused", JSON.stringify(Object.keys(opts)));
      } finally {
        client.close();
      }
    }
    // replication on the paired link: the active's settings reach the standby
    await until(() => n1.repl.status().role === "primary", "n1 primary");
    n1.store.setSetting("ui", { refreshMs: 1234, banner: "paired" });
    await until(() => n2.store.getSetting<{ banner: string }>("ui")?.banner === "paired", "synced");
    // the same synced configuration on both (the version is the replication sequence, which
    // async frames of the pair journal also move: wait until the standby applied them)
    await until(
      () => JSON.stringify(n2.repl.status().config) === JSON.stringify(n1.repl.status().config),
      "the same config version and hash on both",
    );
  } finally {
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha pairing: an expired code is refused, nothing stored; five wrong tries destroy a code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-pair-" });
  let now = 1_000_000;
  const paired: string[] = [];
  const mk = (node: string) =>
    new Pairing({
      dataDir: `${dir}/${node}`,
      node,
      ips: ["127.0.0.1"],
      now: () => now,
      onPaired: () => paired.push(node),
    });
  const a = mk("a"), b = mk("b");
  // the code node's answer() is what the peer link serves; the requester reaches it here
  const fetchTo = (p: Pairing): typeof fetch => async (_u, init) => {
    try {
      return Response.json(await p.answer(JSON.parse(String(init?.body))));
    } catch (e) {
      const err = e as PairError;
      return Response.json({ error: { code: err.code, message: err.message } }, {
        status: err.status,
      });
    }
  };
  try {
    const offer = await b.offer();
    now += PAIR_CODE_TTL_MS + 1;
    const e = await assertRejects(
      () => a.request("http://b", offer.code, "lab", fetchTo(b)),
      PairError,
      "expired",
    );
    assertEquals((e as PairError).code, "pair_code_expired");
    const again = await b.offer();
    for (let i = 0; i < 5; i++) {
      await assertRejects(
        () => a.request("http://b", "WRON-GWRO-NGXX", "lab", fetchTo(b)),
        PairError,
        "wrong pairing code",
      );
    }
    await assertRejects(
      () => a.request("http://b", again.code, "lab", fetchTo(b)),
      PairError,
      "no pairing code is outstanding",
    );
    assertEquals([loadPair(`${dir}/a`), loadPair(`${dir}/b`), paired], [null, null, []]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha pairing: replication keeps running when a node restarts after the first pairing (both use the pair's id)", async () => {
  // before the fix the engines built before pairing kept the unpaired id ("vrid-…") while a
  // restarted peer built its engines with the pair's: every frame was refused as another pair's
  const dir = await Deno.makeTempDir({ prefix: "kw-pair-" });
  const [p1, p2] = [freePort(), freePort()];
  const n1 = await node(dir, "n1", p1, p2);
  let n2 = await node(dir, "n2", p2, p1);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    const offer = await n2.ha.pairing!.offer();
    await n1.ha.pairing!.request(`http://127.0.0.1:${p2}`, offer.code, "lab");
    await until(
      () =>
        !!n1.ha.status().peerLink?.url.startsWith("https:") &&
        !!n1.ha.status().peerLink?.reachable && !!n2.ha.status().peerLink?.reachable,
      "both peers reachable over https",
    );
    await until(() => n1.repl.status().role === "primary", "n1 primary");
    n1.store.setSetting("ui", { refreshMs: 1000, banner: "before restart" });
    await until(
      () => n2.store.getSetting<{ banner: string }>("ui")?.banner === "before restart",
      "replicated before the restart",
    );
    await n2.stop();
    n2 = await node(dir, "n2", p2, p1);
    n2.engine.line("BACKUP", 100);
    n1.store.setSetting("ui", { refreshMs: 1000, banner: "after restart" });
    await until(
      () => n2.store.getSetting<{ banner: string }>("ui")?.banner === "after restart",
      "replicated after the restart",
    );
    assertEquals(
      n2.events.filter((e) => e.kind === "repl.refused" && e.payload.reason === "other_pair"),
      [],
    );
  } finally {
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** The certificates pairing must refuse to pin, and the word the refusal must name. */
const UNFIT: [Parameters<typeof oddCert>[0], string][] = [
  ["ca", "CA certificate"],
  ["server-only", "lacks clientAuth"],
];

Deno.test("ha pairing: the code's node refuses a requester's CA certificate or one without clientAuth, naming what is wrong; nothing stored on either node; the code still pairs good certificates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-pair-unfit-" });
  const [p1, p2] = [freePort(), freePort()];
  const n1 = await node(dir, "n1", p1, p2);
  const n2 = await node(dir, "n2", p2, p1);
  const requester = n1.ha.pairing!;
  const make = requester.makeCert;
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    const url2 = `http://127.0.0.1:${p2}`;
    const offer = await n2.ha.pairing!.offer();
    for (const [kind, named] of UNFIT) {
      const odd = await oddCert(kind);
      requester.makeCert = () => Promise.resolve(odd);
      const e = await assertRejects(
        () => requester.request(url2, offer.code, "lab"),
        PairError,
      ) as PairError;
      assertEquals([e.status, e.code], [400, "pair_bad_certificate"], e.message);
      assertStringIncludes(e.message, named);
      for (const n of [n1, n2]) assertEquals(loadPair(n.dataDir), null, `${kind}: ${n.dataDir}`);
      assert(n2.ha.pairing!.offering, `${kind}: the code is still outstanding`);
    }
    assert(!n1.events.some((e) => e.kind === "ha.paired"));
    assert(!n2.events.some((e) => e.kind === "ha.paired"));
    // the same code pairs good certificates, each node pinning the other's
    requester.makeCert = make;
    const creds = await requester.request(url2, offer.code, "lab");
    const c2 = loadPair(n2.dataDir)!;
    assertEquals(certFingerprint(c2.peerCert), certFingerprint(creds.cert));
    assertEquals(certFingerprint(creds.peerCert), certFingerprint(c2.cert));
    await until(
      () => !!n1.ha.status().peerLink?.reachable && !!n2.ha.status().peerLink?.reachable,
      "both peers reachable over https",
    );
  } finally {
    requester.makeCert = make;
    await n1.stop();
    await n2.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("ha pairing: the requester refuses a code node's CA certificate or one without clientAuth (its answer proving the code), nothing stored; a node whose own new certificate is unfit offers no code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-pair-unfit-" });
  const paired: string[] = [];
  const mk = (node: string) =>
    new Pairing({
      dataDir: `${dir}/${node}`,
      node,
      ips: ["127.0.0.1"],
      now: () => Date.now(),
      onPaired: () => paired.push(node),
    });
  /** The link secret the stand-in derived last (as a code node that stored the pair). */
  let secret = "";
  /** A code node answering with `cert`, its MAC right (the protocol in pairing.ts). */
  const answering = (code: string, cert: string): typeof fetch => (_u, init) => {
    const h = JSON.parse(String(init?.body));
    const mac = (t: string) => createHmac("sha256", normaliseCode(code)).update(t).digest("hex");
    const ht = `kw-pair-1\n${h.pairId}\n${h.node}\n${h.nonce}\n${certFingerprint(h.cert)}`;
    const a = { node: "b", cert, nonce: "5a".repeat(16) };
    const at = `kw-pair-2\n${ht}\n${a.node}\n${a.nonce}\n${certFingerprint(a.cert)}`;
    secret = mac(`kw-pair-secret\n${ht}\n${at}`);
    return Promise.resolve(Response.json({ ...a, mac: mac(at) }));
  };
  const code = "ABCD-EFGH-JKLM";
  try {
    const a = mk("a");
    for (const [kind, named] of UNFIT) {
      const odd = await oddCert(kind);
      const e = await assertRejects(
        () => a.request("http://b", code, "lab", answering(code, odd.cert)),
        PairError,
      ) as PairError;
      assertEquals([e.status, e.code], [502, "pair_bad_certificate"], e.message);
      assertStringIncludes(e.message, named);
      assertEquals(loadPair(`${dir}/a`), null, kind);
      // what `ha unpair` leaves: a code node that stored the pair (an older or broken build)
      // learns from its probe that this node is not in it (peer_unpaired, "run ha unpair")
      const u = loadUnpaired(`${dir}/a`);
      assertEquals(
        [u?.pairId, u?.node, u?.peerNode, u?.key],
        ["lab", "a", "b", unpairNoticeKey(secret)],
        kind,
      );
    }
    // a code node whose own certificate is unfit (made by a broken build) offers no code
    const b = mk("b");
    for (const [kind, named] of UNFIT) {
      const odd = await oddCert(kind);
      b.makeCert = () => Promise.resolve(odd);
      const e = await assertRejects(() => b.offer(), PairError);
      assertStringIncludes(e.message, named);
      assertEquals([b.offering, loadPair(`${dir}/b`)], [null, null], kind);
    }
    assertEquals(paired, []);
    // the stand-in speaks the protocol: with a good certificate the requester pairs
    const good = await makeNodeCert("b", ["127.0.0.1"]);
    const creds = await a.request("http://b", code, "lab", answering(code, good.cert));
    assertEquals([certFingerprint(creds.peerCert), paired], [certFingerprint(good.cert), ["a"]]);
    assertEquals(loadUnpaired(`${dir}/a`), null, "pairing ends the unpaired record");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
