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
  id: "n1" | "n2";
  store: Store;
  ha: HaModule;
  repl: ReplModule;
  users: Users;
  engine: FakeEngine;
  bus: EventBus;
  dataDir: string;
  /** Events it published. */
  events: KwEvent[];
  stop(): Promise<void>;
}

/** How a test file's nodes differ from the rig's plain pair (see {@linkcode buildNode}). */
export interface NodeOptions {
  /** The loopback port of this node's peer link. */
  own: number;
  /** The loopback port of the peer's link. */
  peer: number;
  /** Listen on this port instead of `own` (the test's relay sits on `own`). */
  listen?: number;
  /** The lab's /24 as its first three octets; each test file its own (default `10.233.0`). */
  net?: string;
  /** Fields of `ha` over the rig's (node, interface, addresses, peers, link interval). */
  ha?: Record<string, unknown>;
  /** Fields of `ha.peers[0]` over its address. */
  peerEntry?: Record<string, unknown>;
  /** Fields of `ha.replication` over the rig's batch window and ack timeout. */
  replication?: Record<string, unknown>;
  /** Groups and tables the node replicates besides the built-in ones. */
  registry?: ReplRegistry;
  /** A migration ("test_rig") run on the store before the modules start. */
  migrate?: string[];
  /** HA dependencies over the runtime's wiring. */
  deps?: Partial<HaDeps>;
}

/**
 * Build and start node `id` in `dir/id`: an HA module with a {@linkcode FakeEngine} and a
 * replication module on its own store, wired to each other as the runtime wires them
 * (replication status, handover drain, unacknowledged count), the peer link on loopback.
 * Priorities: n1 150, n2 100.
 *
 * @example
 * ```ts
 * const n1 = await buildNode(dir, "n1", { own: p1, peer: p2, ha: { preempt: true } });
 * ```
 */
export async function buildNode(dir: string, id: "n1" | "n2", o: NodeOptions): Promise<Node> {
  const net = o.net ?? "10.233.0";
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
          address: `${net}.${id === "n1" ? 11 : 12}/24`,
        },
        interface: "kwtest0",
        virtualAddresses: [`${net}.50/24`],
        peers: [{ address: `${net}.${id === "n1" ? 12 : 11}`, ...o.peerEntry }],
        ...o.ha,
        peerLink: { intervalMs: 200, ...(o.ha?.peerLink as object | undefined) },
        replication: { batchMs: 10, ackTimeoutMs: 1500, ...o.replication },
      },
    });
  } finally {
    setInterfaceCheck(prev);
  }
  const store = new Store({ path: `${dir}/${id}/keepwire.db` });
  if (o.migrate) store.migrate("test_rig", o.migrate);
  const bus = new EventBus({ journal: store });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const users = new Users(store); // the auth tables (replicated: users, tokens)
  const ctx = { config, store, bus, clock: systemClock };
  let engine!: FakeEngine;
  // deno-lint-ignore prefer-const
  let repl: ReplModule;
  const ha = createHaModule(ctx, {
    engine: (_h, _d, ev) => engine = new FakeEngine(ev),
    peerListen: { hostname: "127.0.0.1", port: o.listen ?? o.own },
    peerUrl: `http://127.0.0.1:${o.peer}${PEER_HEALTH_PATH}`,
    // as the runtime wires it
    replication: () => repl.status(),
    prepareHandover: (ms, channels) => repl.prepareHandover(ms, channels),
    cancelHandover: () => repl.cancelHandover(),
    unacknowledged: () => repl.unacknowledged(),
    ...o.deps,
  });
  repl = createReplModule(ctx, {
    peer: ha.peerAccess,
    registry: o.registry ?? new ReplRegistry(),
  });
  await ha.start();
  await repl.start();
  bus.publishUntyped({ module: "runtime", kind: "runtime.started", payload: {} });
  return {
    id,
    store,
    ha,
    repl,
    users,
    engine,
    bus,
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
 * Node `id` of an unpaired pair (no secret: pairing makes the credentials), its link on
 * `own`, the peer's on `peer`.
 */
export function node(
  dir: string,
  id: "n1" | "n2",
  own: number,
  peer: number,
  deps: Partial<HaDeps> = {},
): Promise<Node> {
  return buildNode(dir, id, { own, peer, ha: { peerLink: { port: own } }, deps });
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
