// The rolling upgrade's real driver over a real peer link on loopback (mod/ha/upgrade_link.ts):
// the peer's view, the bundle streamed and checked (size + sha256), install then activate on
// the peer, refusals with a clear error; and the updater state mapping.
import { codeStoreSchema } from "../mod/update/bundle_schema.ts";
import { join } from "node:path";
import { systemClock } from "../mod/module.ts";
import { createPeerFetch, peerRoutes } from "../mod/ha/peer.ts";
import {
  activationOf,
  handoverBlocker,
  upgradeDriver,
  type UpgradeLinkOptions,
  upgradePeerMount,
  type UpgradeUpdater,
  upgradeViewSchema,
} from "../mod/ha/upgrade_link.ts";
import type { UpdateState } from "../mod/update/state.ts";
import { VERSION } from "../mod/version.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { makeBundle, opensslKey } from "./update_fixture.ts";

class FakeUpdater implements UpgradeUpdater {
  st: UpdateState = "committed";
  installed: { file: string; bytes: Uint8Array }[] = [];
  activated = 0;
  refuse: string | null = null;
  async installFrom(file: string) {
    if (this.refuse) throw new Error(this.refuse);
    this.installed.push({ file, bytes: await Deno.readFile(file) });
    this.st = "installed";
  }
  activate() {
    this.activated++;
    this.st = "activating";
    return Promise.resolve();
  }
  state() {
    return this.st;
  }
}

function side(
  dir: string,
  node: string,
  updater: UpgradeUpdater,
  extra: Partial<UpgradeLinkOptions> = {},
) {
  const o: UpgradeLinkOptions = {
    node,
    compatible: "acme-gw",
    inbox: join(dir, `${node}-inbox.kwb`),
    updater,
    role: () => node === "a" ? "active" : "standby",
    healthy: () => ({ ok: true }),
    schema: () => "core:3",
    handover: () => {},
    peerFetch: () => null,
    peerOrigin: () => null,
    activateDelayMs: 10,
    ...extra,
  };
  return o;
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("ha upgrade link: view, streamed bundle, install then activate on the peer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-upg-link-" });
  const up = new FakeUpdater();
  const refused: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    peerRoutes({
      secret: "s3cret-s3cret-s3cret",
      pairId: "pair-upg",
      clock: systemClock,
      health: () => {
        throw new Error("no health here");
      },
      onRefused: (r, d) => void refused.push(`${r}: ${d}`),
      mounts: [upgradePeerMount(side(dir, "b", up))],
    }).fetch,
  );
  try {
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const pf = (secret: string) =>
      createPeerFetch({ secret, pairId: "pair-upg", node: "a", clock: systemClock });
    const a = upgradeDriver(
      side(dir, "a", new FakeUpdater(), {
        peerFetch: () => pf("s3cret-s3cret-s3cret"),
        peerOrigin: () => origin,
      }),
    );
    const key = await opensslKey(dir, "k");
    const b = await makeBundle(dir, {
      version: "9.9.9",
      keys: [key.signer],
      size: 200_000,
      storeSchema: "core:3",
    });
    assertEquals(await a.bundle(b.path), {
      version: "9.9.9",
      compatible: "acme-gw",
      storeSchema: "core:3",
    });
    await assertRejects(() => a.bundle(join(dir, "missing.kwb")));

    const v = await a.peer();
    assertEquals(v, {
      node: "b",
      role: "standby",
      version: VERSION,
      compatible: "acme-gw",
      schema: "core:3",
      codeSchema: codeStoreSchema(),
      healthy: true,
      activation: "committed",
    });
    assertEquals((await a.local()).role, "active");

    await a.send(b.path);
    const sent = await Deno.readFile(b.path);
    assertEquals(await Deno.readFile(join(dir, "b-inbox.kwb")), sent);

    await a.peerInstall();
    assertEquals(up.installed.length, 1);
    assertEquals(up.installed[0].bytes, sent);
    assertEquals((await a.peer()).activation, "pending"); // installed, activation scheduled
    await until(() => up.activated === 1, "activation on the peer");

    // the peer's install refused: a clear error, no activation
    up.refuse = 'bundle is for "other", this device is "acme-gw"';
    await assertRejects(() => a.peerInstall(), Error, "this device is");
    assertEquals(up.activated, 1);

    // a driver with the wrong secret is refused by the peer
    const bad = upgradeDriver(
      side(dir, "a", new FakeUpdater(), {
        peerFetch: () => pf("wrong-wrong-wrong"),
        peerOrigin: () => origin,
      }),
    );
    await assertRejects(() => bad.peer(), Error, "refused");
    assert(refused.some((r) => r.startsWith("unauthenticated")), refused.join("; "));
    // no link yet
    await assertRejects(
      () => upgradeDriver(side(dir, "a", new FakeUpdater())).peer(),
      Error,
      "not up",
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ha upgrade link: a bundle whose bytes do not match its meta is refused and not kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-upg-link-" });
  const mount = upgradePeerMount(side(dir, "b", new FakeUpdater()));
  try {
    const res = await mount.fetch(
      new Request("http://x/peer/v1/upgrade/bundle", {
        method: "POST",
        headers: { "x-kw-peer-meta": JSON.stringify({ size: 3, sha256: "0".repeat(64) }) },
        body: new Uint8Array([1, 2, 3]),
      }),
    );
    assertEquals(res.status, 400);
    assertEquals((await res.json()).error.code, "upgrade_bundle_corrupt");
    await assertRejects(() => Deno.stat(join(dir, "b-inbox.kwb")));
    const bad = await mount.fetch(
      new Request("http://x/peer/v1/upgrade/bundle", { method: "POST", body: "x" }),
    );
    assertEquals(bad.status, 400);
    assertEquals((await bad.json()).error.code, "upgrade_bad_meta");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ha upgrade link: updater states map to committed, pending, failed", () => {
  const want: Record<UpdateState, string> = {
    idle: "committed",
    committed: "committed",
    "rolled-back": "committed",
    "install-failed": "committed",
    installing: "pending",
    installed: "pending",
    activating: "pending",
    trying: "pending",
    "gate-failed": "failed",
  };
  for (const [s, w] of Object.entries(want)) assertEquals(activationOf(s as UpdateState), w, s);
});

Deno.test("ha upgrade link: the handover waits for a caught-up standby and a ready peer", () => {
  const up = { enabled: true, role: "primary", link: "up", pending: 3, lagMs: 40 };
  assertEquals(handoverBlocker(up, []), null);
  assertEquals(handoverBlocker({ enabled: false }, []), null);
  assertEquals(handoverBlocker({ ...up, role: "standby", link: "unknown" }, []), null);
  assertEquals(
    handoverBlocker({ ...up, link: "down" }, []),
    "replication: the standby does not answer yet",
  );
  // back after its restart, not resynced: everything since it went away is unconfirmed
  assertEquals(
    handoverBlocker({ ...up, pending: 118, lagMs: 5900 }, []),
    "replication: the standby is 118 changes (5900 ms) behind",
  );
  assertEquals(
    handoverBlocker(up, ["supervisor: smsgw starting"]),
    "the peer is not ready: supervisor: smsgw starting",
  );
});

Deno.test("ha upgrade link: the old node reads a newer peer's view with a field it does not know", () => {
  // mid-rollout the old active reads the upgraded standby's view; a strict schema refused
  // any field a newer version adds and stopped every rollout to that version
  const v = {
    node: "b",
    role: "standby",
    version: "0.3.0",
    compatible: "acme-gw",
    schema: "core:3",
    healthy: true,
    activation: "committed",
    synced: true,
  };
  const { synced: _, ...known } = v;
  assertEquals(upgradeViewSchema.parse(v), known);
  assert(!upgradeViewSchema.safeParse({ ...v, healthy: "yes" }).success);
});
