/**
 * Replication frames over the peer link's duplex stream (`/peer/v1/repl/stream`): one
 * long-lived request per link. A loopback TCP proxy between the nodes cuts the stream
 * inside a message or flips a byte of one; the roles of a pair swap while the old
 * primary's stream is still open.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { count, digests, httpRigPair, rigNode, until } from "./repl_rig.ts";
import { HttpTransport, REPL_PEER_PREFIX, replPeerMount } from "../mod/repl/http.ts";
import { encodeFrame } from "../mod/repl/frame.ts";
import { createPeerFetch, peerRoutes, peerTlsFetch, servePeerTls } from "../mod/ha/peer.ts";
import { makeNodeCert } from "../mod/ha/pairing.ts";
import { systemClock } from "../mod/module.ts";
import type { DatabaseSync } from "node:sqlite";

const SECRET = "stream-secret-0123456789";

const addUser = (id: number) => (db: DatabaseSync) =>
  db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'op')").run(id, `u${id}`);

/** A TCP proxy on loopback that can cut its connections or tamper with the next bytes. */
function proxy(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const state = {
    /** Forward this many more client → server bytes, then cut every connection. */
    cutAfter: -1,
    /** Flip a bit of the client → server byte this many bytes on (once). */
    flipAt: -1,
    accepted: 0,
  };
  const cutAll = () => {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
    conns.clear();
  };
  const pump = async (from: Deno.Conn, to: Deno.Conn, upstream: boolean) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        let chunk = buf.slice(0, n);
        if (upstream && state.flipAt >= 0) {
          if (state.flipAt < n) chunk[state.flipAt] ^= 0x01, state.flipAt = -1;
          else state.flipAt -= n;
        }
        if (upstream && state.cutAfter >= 0) {
          chunk = chunk.subarray(0, Math.min(n, state.cutAfter));
          state.cutAfter -= chunk.length;
          let o = 0;
          while (o < chunk.length) o += await to.write(chunk.subarray(o));
          if (state.cutAfter === 0) state.cutAfter = -1, cutAll();
          if (chunk.length < n) break;
          continue;
        }
        let o = 0;
        while (o < chunk.length) o += await to.write(chunk.subarray(o));
      }
    } catch { /* a cut */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* closed already */ }
      conns.delete(c);
    }
  };
  const accepting = (async () => {
    for await (const c of listener) {
      state.accepted++;
      const up = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.add(c), conns.add(up);
      void pump(c, up, true);
      void pump(up, c, false);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    state,
    async close() {
      listener.close();
      cutAll();
      await accepting;
    },
  };
}

/** A pair over HTTP whose primary reaches the standby through {@link proxy}. */
async function proxiedPair() {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-stream-" });
  let px!: ReturnType<typeof proxy>;
  const p = httpRigPair(dir, {
    serverSecret: SECRET,
    via: (port) => (px = proxy(port)).port,
  });
  return {
    ...p,
    t: p.transport,
    px,
    async close() {
      await p.close();
      await px.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test("repl stream: one stream carries many sync writes; cut inside a frame, nothing of it is applied, the next send reconnects", async () => {
  const p = await proxiedPair();
  try {
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    const conns = p.px.state.accepted;
    for (let i = 2; i <= 20; i++) {
      assertEquals((await p.a.repl.write("config", addUser(i))).replicated, true, `write ${i}`);
    }
    assertEquals(p.t.opened, 1, "every write of a healthy link went over one stream");
    assertEquals(p.px.state.accepted, conns, "no new connection per write");
    const before = p.b.repl.status().seq;
    // the next message is cut after its length and a few bytes of the frame
    p.px.state.cutAfter = 12;
    const r = await p.a.repl.write("config", addUser(21));
    assertEquals(r.replicated, false, "a cut stream does not confirm");
    assertEquals(p.b.repl.status().seq, before, "nothing of a cut frame is applied");
    assertEquals(count(p.b, "users"), 20);
    await until(() => p.a.repl.status().link === "up", "link back (reconnect)");
    await until(() => count(p.b, "users") === 21, "the cut frame resent on a new stream");
    await until(() => p.a.repl.status().pending === 0, "acked");
    assertEquals(p.t.opened, 2, "one reconnect");
    assertEquals((await p.a.repl.write("config", addUser(22))).replicated, true);
    assertEquals(digests(p.a), digests(p.b));
    assert(p.a.events.some((e) => e.kind === "repl.standby_lost"));
    assert(p.a.events.some((e) => e.kind === "repl.standby_back"));
  } finally {
    await p.close();
  }
});

Deno.test("repl stream: a message altered on the wire fails its MAC; nothing applied, the stream is dropped and reopened", async () => {
  const p = await proxiedPair();
  try {
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    const before = p.b.repl.status().seq;
    // flip a bit inside the next frame's payload (past the 4-byte length)
    p.px.state.flipAt = 40;
    const r = await p.a.repl.write("config", addUser(2));
    assertEquals(r.replicated, false);
    assertEquals(p.b.repl.status().seq, before, "an altered message is not applied");
    await until(() => count(p.b, "users") === 2, "resent on a new stream");
    assertEquals(p.t.opened, 2);
    assertEquals(digests(p.a), digests(p.b));
  } finally {
    await p.close();
  }
});

Deno.test("repl stream: after the roles swap, the old primary's still-open stream is refused (not_standby) and the new primary's stream works", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-stale-" });
  const a = rigNode(dir, "a");
  const b = rigNode(dir, "b");
  const serve = (repl: typeof a.repl) =>
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      peerRoutes({
        secret: SECRET,
        pairId: "pair-test",
        clock: systemClock,
        health: () => {
          throw new Error("no health here");
        },
        onRefused: () => {},
        mounts: [replPeerMount(repl)],
      }).fetch,
    );
  const sa = serve(a.repl), sb = serve(b.repl);
  const link = (port: number, node: string) =>
    new HttpTransport({
      baseUrl: `http://127.0.0.1:${port}${REPL_PEER_PREFIX}`,
      fetch: createPeerFetch({ secret: SECRET, pairId: "pair-test", node, clock: systemClock }),
    });
  const ab = link(sb.addr.port, "a"), ba = link(sa.addr.port, "b");
  try {
    b.repl.demote();
    a.repl.setTransport(ab);
    a.repl.promote();
    assertEquals((await a.repl.write("config", addUser(1))).replicated, true);
    assertEquals(ab.opened, 1);
    // failover: b becomes the primary of a new epoch, a the standby
    a.repl.demote();
    b.repl.setTransport(ba);
    b.repl.promote();
    const seqB = b.repl.status().seq;
    // a frame still in a's old stream (as if it had been in flight)
    const stale = encodeFrame({
      pairId: "pair-test",
      epoch: 1,
      seq: seqB + 1,
      schemaVersion: a.repl.status().schemaVersion,
      changesets: [],
    });
    const ack = await ab.sendFrames(stale);
    assertEquals(ab.opened, 1, "sent on the stream opened before the swap");
    assertEquals(ack.ok, false);
    assertEquals(ack.reason, "not_standby");
    assertEquals(b.repl.status().seq, seqB, "nothing applied on the new primary");
    assertEquals((await b.repl.write("config", addUser(2))).replicated, true);
    assertEquals(ba.opened, 1);
    assertEquals(count(a, "users"), 2);
    assertEquals(digests(a), digests(b));
  } finally {
    a.repl.stop();
    b.repl.stop();
    ab.close();
    ba.close();
    await sa.shutdown();
    await sb.shutdown();
    a.store.close();
    b.store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("repl stream: a peer without `/stream` (an older version) is sent frames by POST", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-old-" });
  const a = rigNode(dir, "a");
  const b = rigNode(dir, "b");
  const refused: string[] = [];
  // the mount as a version before `/stream`
  const { duplex: _, ...old } = replPeerMount(b.repl);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    peerRoutes({
      secret: SECRET,
      pairId: "pair-test",
      clock: systemClock,
      health: () => {
        throw new Error("no health here");
      },
      onRefused: (_r, detail) => refused.push(detail),
      mounts: [old],
    }).fetch,
  );
  const t = new HttpTransport({
    baseUrl: `http://127.0.0.1:${server.addr.port}${REPL_PEER_PREFIX}`,
    fetch: createPeerFetch({ secret: SECRET, pairId: "pair-test", node: "a", clock: systemClock }),
  });
  try {
    b.repl.demote();
    a.repl.setTransport(t);
    a.repl.promote();
    for (let i = 1; i <= 5; i++) {
      assertEquals((await a.repl.write("config", addUser(i))).replicated, true);
    }
    assertEquals(t.opened, 0, "no stream");
    assertEquals(refused.length, 1, "asked once, then POST for a while");
    assertEquals(digests(a), digests(b));
  } finally {
    a.repl.stop();
    b.repl.stop();
    t.close();
    await server.shutdown();
    a.store.close();
    b.store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("repl stream: over the paired link's HTTPS with mutual authentication, one stream; a server restart is reconnected", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-tls-" });
  const a = rigNode(dir, "a");
  const b = rigNode(dir, "b");
  const ca = await makeNodeCert("a", ["127.0.0.1"]);
  const cb = await makeNodeCert("b", ["127.0.0.1"]);
  const app = peerRoutes({
    secret: SECRET,
    pairId: "pair-test",
    clock: systemClock,
    health: () => {
      throw new Error("no health here");
    },
    onRefused: () => {},
    mounts: [replPeerMount(b.repl)],
  });
  const tls = { ...cb, peerCert: ca.cert };
  let server = await servePeerTls({ hostname: "127.0.0.1", port: 0 }, tls, app.fetch);
  const port = server.addr.port;
  const client = peerTlsFetch({ ...ca, peerCert: cb.cert });
  const t = new HttpTransport({
    baseUrl: `https://127.0.0.1:${port}${REPL_PEER_PREFIX}`,
    fetch: createPeerFetch({
      secret: SECRET,
      pairId: "pair-test",
      node: "a",
      clock: systemClock,
      fetch: client.fetch,
    }),
  });
  try {
    b.repl.demote();
    a.repl.setTransport(t);
    a.repl.promote();
    for (let i = 1; i <= 10; i++) {
      assertEquals((await a.repl.write("config", addUser(i))).replicated, true);
    }
    assertEquals(t.opened, 1);
    // the link restarts (as after a certificate change): the stream is cut
    await server.shutdown();
    server = await servePeerTls({ hostname: "127.0.0.1", port }, tls, app.fetch);
    await a.repl.write("config", addUser(11));
    await until(() => count(b, "users") === 11, "the write after the restart applied");
    await until(() => a.repl.status().link === "up" && a.repl.status().pending === 0, "acked");
    assertEquals(t.opened, 2, "reconnected once");
    assertEquals((await a.repl.write("config", addUser(12))).replicated, true);
    assertEquals(digests(a), digests(b));
  } finally {
    a.repl.stop();
    b.repl.stop();
    t.close();
    client.close();
    await server.shutdown();
    a.store.close();
    b.store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("repl stream: a close while the stream is being opened leaves no stream held open; the next send opens one", async () => {
  const p = await proxiedPair();
  try {
    // the first send opens the stream; the link is closed before it is open (a demotion)
    const first = p.t.sendFrames(encodeFrame({
      pairId: "pair-test",
      schemaVersion: "x",
      epoch: 1,
      seq: 1,
      changesets: [],
    }));
    p.t.close();
    const r = await first.then(() => null, (e) => e);
    assertEquals(r?.name, "TransportDownError", "a send across the close was answered");
    assertEquals(p.t.opened, 0, "a stream was opened after the close and is held");
    // replication goes on over a new stream
    assertEquals((await p.a.repl.write("config", addUser(1))).replicated, true);
    assertEquals(p.t.opened, 1);
  } finally {
    await p.close();
  }
});
