/**
 * The peer link's TLS identity switches in place (certificate rotation): the server and
 * the client take a new certificate, or a second accepted peer certificate, without a
 * restart; a connection from a certificate no longer accepted is refused.
 */
import { makeNodeCert } from "../mod/ha/pairing.ts";
import { peerTlsFetch, servePeerTls } from "../mod/ha/peer.ts";
import { assertEquals } from "./helpers/assert.ts";

Deno.test("peer tls: identity and accepted peers switch in place during a rotation", async () => {
  const [a, a2, b, b2] = await Promise.all(
    ["a", "a2", "b", "b2"].map((n) => makeNodeCert(n, ["127.0.0.1"])),
  );
  // a serves; b is the client
  const srv = await servePeerTls(
    { hostname: "127.0.0.1", port: 0 },
    { cert: a.cert, key: a.key, peerCert: b.cert },
    () => new Response("ok"),
  );
  const client = peerTlsFetch({ cert: b.cert, key: b.key, peerCert: a.cert });
  const url = `https://127.0.0.1:${srv.addr.port}/`;
  const ask = (f: typeof fetch) => f(url).then((r) => r.text(), () => "refused");
  const fresh = async (cert: { cert: string; key: string }, trust: string[]) => {
    const c = Deno.createHttpClient({ caCerts: trust, ...cert });
    try {
      return await fetch(url, { client: c }).then((r) => r.text(), () => "refused");
    } finally {
      c.close();
    }
  };
  try {
    assertEquals(await ask(client.fetch), "ok");
    // b announces b2: a accepts both while b switches
    srv.update({ cert: a.cert, key: a.key, peerCert: b.cert, peerCertNext: b2.cert });
    assertEquals(await fresh(b, [a.cert]), "ok");
    assertEquals(await fresh(b2, [a.cert]), "ok");
    client.update({ cert: b2.cert, key: b2.key, peerCert: a.cert });
    assertEquals(await ask(client.fetch), "ok");
    // b confirmed: only b2 now
    srv.update({ cert: a.cert, key: a.key, peerCert: b2.cert });
    assertEquals(await fresh(b, [a.cert]), "refused");
    // a rotates its own certificate: b trusts both until it learns a switched
    client.update({ cert: b2.cert, key: b2.key, peerCert: a.cert, peerCertNext: a2.cert });
    srv.update({ cert: a2.cert, key: a2.key, peerCert: b2.cert });
    assertEquals(await ask(client.fetch), "ok");
    assertEquals(await fresh(b2, [a.cert]), "refused", "the old server certificate is gone");
  } finally {
    client.close();
    await srv.shutdown();
  }
});
