/** Two HA modules (fake keepalived) with replication, peer links on loopback, no secret. */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule, type HaDeps, type HaModule } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import type { TrackValues } from "../mod/ha/track.ts";
import type { FailbackChannel } from "../mod/ha/failback.ts";
import { PEER_HEALTH_PATH } from "../mod/ha/peer.ts";
import { createReplModule, type ReplModule, ReplRegistry } from "../mod/repl/mod.ts";
import { systemClock } from "../mod/module.ts";
import { Users } from "../mod/web/users.ts";

/** keepalived stand-in: the test says which state it reports. */
export class FakeEngine implements Engine {
  pid: number | null = null;
  config = "fake";
  constructor(public ev: EngineEvents) {}
  start(): Promise<{ pid: number }> {
    this.pid = 4242;
    return Promise.resolve({ pid: 4242 });
  }
  stop(): Promise<void> {
    this.pid = null;
    return Promise.resolve();
  }
  /** What keepwire last wrote to the track files. */
  track: TrackValues | null = null;
  writeTrack(v: TrackValues): void {
    this.track = v;
  }
  line(state: string, prio: number, instance = "keepwire"): void {
    this.ev.onLine(`INSTANCE "${instance}" ${state} ${prio}`);
  }
  /**
   * VRRP decides `state` for the instance (e.g. MASTER: the peer's adverts were missed);
   * keepalived reports it unless a track file holds the instance in FAULT, as keepalived does.
   */
  elect(state: string, prio: number, instance = "keepwire"): void {
    const t = this.track;
    const release = instance === "keepwire_b" ? t?.release?.b : t?.release?.a;
    const fault = !!t?.fault || !!release;
    this.line(fault ? "FAULT" : state, fault ? 0 : prio, instance);
  }
}

/** A free loopback port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

/** One node of the rig. */
export interface Node {
  store: Store;
  ha: HaModule;
  repl: ReplModule;
  engine: FakeEngine;
  dataDir: string;
  /** Events it published. */
  events: KwEvent[];
  stop(): Promise<void>;
}

/** Build and start node `id` in `dir`, its link on `own`, the peer's on `peer`. */
export async function node(
  dir: string,
  id: "n1" | "n2",
  own: number,
  peer: number,
  deps: Partial<HaDeps> = {},
): Promise<Node> {
  const prev = setInterfaceCheck(() => true);
  let config;
  try {
    config = validateConfig({
      dataDir: `${dir}/${id}`,
      ha: {
        enabled: true,
        node: {
          id,
          priority: id === "n1" ? 150 : 100,
          address: `10.233.0.${id === "n1" ? 11 : 12}/24`,
        },
        interface: "kwtest0",
        virtualAddresses: ["10.233.0.50/24"],
        peers: [{ address: id === "n1" ? "10.233.0.12" : "10.233.0.11" }],
        peerLink: { intervalMs: 200, port: own }, // no secret: pairing makes the credentials
        replication: { batchMs: 10, ackTimeoutMs: 1500 },
      },
    });
  } finally {
    setInterfaceCheck(prev);
  }
  const store = new Store({ path: `${dir}/${id}/keepwire.db` });
  const bus = new EventBus({ journal: store });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e));
  new Users(store); // the auth tables (replicated)
  const ctx = { config, store, bus, clock: systemClock };
  let engine!: FakeEngine;
  const ha = createHaModule(ctx, {
    engine: (_h, _d, ev) => engine = new FakeEngine(ev),
    peerListen: { hostname: "127.0.0.1", port: own },
    peerUrl: `http://127.0.0.1:${peer}${PEER_HEALTH_PATH}`,
    unacknowledged: () => repl.unacknowledged(),
    ...deps,
  });
  const repl = createReplModule(ctx, { peer: ha.peerAccess, registry: new ReplRegistry() });
  await ha.start();
  await repl.start();
  bus.publishUntyped({ module: "runtime", kind: "runtime.started", payload: {} });
  return {
    store,
    ha,
    repl,
    engine,
    events,
    dataDir: `${dir}/${id}`,
    async stop() {
      if (!store.db.isOpen) return;
      await repl.stop();
      await ha.stop();
      store.close();
    },
  };
}

/**
 * A self-signed certificate with the given extensions: what a node must not pin (a bad
 * rotation or pairing would offer it).
 */
export async function oddCert(
  kind: "ca" | "no-signature" | "server-only",
): Promise<{ cert: string; key: string }> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  const F = x509.KeyUsageFlags;
  const ext = {
    ca: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(F.digitalSignature | F.keyCertSign, true),
    ],
    "no-signature": [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(F.keyEncipherment, true),
    ],
    "server-only": [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(F.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  }[kind];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=odd ${kind}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      ...ext,
      new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }]),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { cert: cert.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/** A holder's channel of a set as the failback and catch-up gates see it (caught up). */
export const primaryChannel = (o: Partial<FailbackChannel> = {}): FailbackChannel => ({
  role: "primary",
  epoch: 3,
  seq: 40,
  pending: 0,
  lagMs: 0,
  link: "up",
  resync: null,
  snapshotDue: false,
  ...o,
});
/** A returning owner's channel of a set (caught up, link not yet seen). */
export const standbyChannel = (o: Partial<FailbackChannel> = {}): FailbackChannel => ({
  role: "standby",
  epoch: 3,
  seq: 40,
  pending: 0,
  lagMs: 0,
  link: "unknown",
  resync: null,
  ...o,
});
