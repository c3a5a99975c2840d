/**
 * The peer link: two HA modules (fake keepalived, fake time) read each other's health
 * over real HTTP on loopback; lost, degraded, recovered and version events; requests
 * and answers that are unauthenticated, stale, replayed, from another pair, malformed or
 * of an incompatible protocol are refused, counted, journalled and never acted on.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule, type HaModule, HaNoTakeoverPendingError } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import {
  PEER_HEALTH_PATH,
  PEER_PROTOCOL,
  type PeerHealth,
  PeerMonitor,
  type PeerRefusal,
  signPeerAnswer,
  signPeerRequest,
} from "../mod/ha/peer.ts";
import type { PartHealth } from "../mod/module.ts";
import { VERSION } from "../mod/version.ts";
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";

const SECRET = "pair-secret-0123456789";

class FakeEngine implements Engine {
  ev: EngineEvents;
  pid: number | null = null;
  config = "fake";
  constructor(ev: EngineEvents) {
    this.ev = ev;
  }
  start(): Promise<{ pid: number }> {
    this.pid = 4242;
    return Promise.resolve({ pid: 4242 });
  }
  stop(): Promise<void> {
    this.pid = null;
    return Promise.resolve();
  }
  writes: { fault: number; priority: number }[] = [];
  writeTrack(v: { fault: number; priority: number }): void {
    this.writes.push(v);
  }
  get fault(): number | undefined {
    return this.writes.at(-1)?.fault;
  }
  line(state: string, prio: number): void {
    this.ev.onLine(`INSTANCE "keepwire" ${state} ${prio}`);
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

type Clock = ReturnType<typeof fakeClock>["clock"];

interface Node {
  mod: HaModule;
  engine: FakeEngine;
  events: KwEvent[];
  parts: Record<string, PartHealth>;
  kinds(prefix: string): KwEvent[];
}

async function node(
  id: "n1" | "n2",
  ports: { own: number; peer: number },
  clock: Clock,
  extra: Record<string, unknown> = {},
  ha: Record<string, unknown> = {},
): Promise<Node> {
  const prev = setInterfaceCheck(() => true);
  const own = id === "n1" ? "10.231.0.11" : "10.231.0.12";
  const other = id === "n1" ? "n2" : "n1";
  const config = (() => {
    try {
      return validateConfig({
        dataDir: "/nonexistent",
        ha: {
          enabled: true,
          node: { id, priority: id === "n1" ? 150 : 100, address: `${own}/24` },
          interface: "kwtest0",
          virtualAddresses: ["10.231.0.50/24"],
          peers: [{ address: id === "n1" ? "10.231.0.12" : "10.231.0.11", id: other }],
          peerLink: { secret: SECRET, pairId: "lab", lostAfter: 2, ...extra },
          ...ha,
        },
      });
    } finally {
      setInterfaceCheck(prev);
    }
  })();
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha." });
  const parts: Record<string, PartHealth> = { store: { ok: true, essential: true } };
  let engine!: FakeEngine;
  const mod = createHaModule({ config, store, bus, clock }, {
    engine: (_h, _d, ev) => engine = new FakeEngine(ev),
    health: () => ({ ok: Object.values(parts).every((p) => p.ok || !p.essential), parts }),
    peerListen: { hostname: "127.0.0.1", port: ports.own },
    peerUrl: `http://127.0.0.1:${ports.peer}${PEER_HEALTH_PATH}`,
  });
  await mod.start();
  return {
    mod,
    engine,
    events,
    parts,
    kinds: (k) => events.filter((e) => e.kind === k),
  };
}

async function pair(ha: Record<string, unknown> = {}) {
  const { fc, clock } = fakeClock(Date.now());
  const p1 = freePort();
  const p2 = freePort();
  const n1 = await node("n1", { own: p1, peer: p2 }, clock, {}, ha);
  const n2 = await node("n2", { own: p2, peer: p1 }, clock, {}, ha);
  return { fc, clock, n1, n2, p1, p2 };
}

Deno.test("ha peer link: each node reads the peer's role, version and health; public status shows the peer role", async () => {
  const { n1, n2 } = await pair();
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await n1.mod.pollPeer();
    await n2.mod.pollPeer();
    assertEquals(n1.mod.publicStatus().peer, { id: "n2", role: "standby" });
    assertEquals(n2.mod.publicStatus().peer, { id: "n1", role: "active" });
    const l = n1.mod.status().peerLink!;
    assertEquals(l.reachable, true);
    assertEquals(l.version, VERSION);
    assertEquals(l.degraded, []);
    assertEquals(l.refused + l.refusedInbound, 0);
    assertEquals(n1.kinds("ha.peer_refused").length + n2.kinds("ha.peer_refused").length, 0);
    const m = n1.mod.metrics!().find((f) => f.name === "ha_peer_reachable")!;
    assertEquals(m.samples[0].value, 1);
  } finally {
    await n1.mod.stop();
    await n2.mod.stop();
  }
});

Deno.test("ha peer link: degraded parts, then recovered; the peer stopping is lost after lostAfter polls, back is recovered", async () => {
  const { clock, n1, n2, p1, p2 } = await pair();
  let n2b: Node | null = null;
  try {
    await n1.mod.pollPeer();
    n2.parts.storage = { ok: false, essential: false, detail: "array md0 degraded" };
    await n1.mod.pollPeer();
    await n1.mod.pollPeer(); // same parts: no second event
    const deg = n1.kinds("ha.peer_degraded");
    assertEquals(deg.length, 1);
    assertEquals(deg[0].payload.parts, ["storage: array md0 degraded"]);
    assertEquals(deg[0].payload.peer, "n2");
    assert(deg[0].id > 0, "journalled");
    assertEquals(n1.mod.status().peerLink!.degraded, ["storage: array md0 degraded"]);
    delete n2.parts.storage;
    await n1.mod.pollPeer();
    assertEquals(n1.kinds("ha.peer_recovered").map((e) => e.payload.from), ["degraded"]);

    await n2.mod.stop();
    await n1.mod.pollPeer();
    assertEquals(n1.kinds("ha.peer_lost").length, 0, "one failed poll is not lost yet");
    await n1.mod.pollPeer();
    await n1.mod.pollPeer();
    const lost = n1.kinds("ha.peer_lost");
    assertEquals(lost.length, 1, "lost once per episode");
    assert(String(lost[0].payload.reason).length > 0);
    assertEquals(n1.mod.publicStatus().peer?.role, "unreachable");
    assertEquals(n1.mod.status().peerLink!.reachable, false);

    n2b = await node("n2", { own: p2, peer: p1 }, clock);
    await n1.mod.pollPeer();
    assertEquals(n1.kinds("ha.peer_recovered").map((e) => e.payload.from), ["degraded", "lost"]);
    assertEquals(n1.mod.status().peerLink!.reachable, true);
  } finally {
    await n1.mod.stop();
    await n2.mod.stop();
    await n2b?.mod.stop();
  }
});

/** Sign and send a request to a node's peer link by hand. */
async function ask(
  port: number,
  o: { secret?: string; pair?: string; time?: number; nonce?: string; auth?: string } = {},
): Promise<{ status: number; body: string }> {
  const time = String(o.time ?? Date.now());
  const nonce = o.nonce ?? crypto.randomUUID().replaceAll("-", "");
  const pair = o.pair ?? "lab";
  const auth = o.auth ?? signPeerRequest(o.secret ?? SECRET, {
    method: "GET",
    path: PEER_HEALTH_PATH,
    time,
    nonce,
    pair,
    node: "x",
  });
  const r = await fetch(`http://127.0.0.1:${port}${PEER_HEALTH_PATH}`, {
    headers: {
      "x-kw-peer-time": time,
      "x-kw-peer-nonce": nonce,
      "x-kw-peer-pair": pair,
      "x-kw-peer-node": "x",
      "x-kw-peer-auth": auth,
    },
  });
  return { status: r.status, body: await r.text() };
}

Deno.test("ha peer link: requests unauthenticated, stale, replayed or from another pair are refused, counted and journalled", async () => {
  const { n1, n2, p2 } = await pair();
  try {
    const ok = await ask(p2, { nonce: "n".repeat(32) });
    assertEquals(ok.status, 200, ok.body);
    const cases: [string, Parameters<typeof ask>[1], number, PeerRefusal][] = [
      ["wrong secret", { secret: "another-secret-0123456789" }, 401, "unauthenticated"],
      ["no signature", { auth: "" }, 401, "unauthenticated"],
      ["another pair", { pair: "other" }, 403, "other_pair"],
      ["40 s old", { time: Date.now() - 40_000 }, 401, "stale"],
      ["replayed nonce", { nonce: "n".repeat(32) }, 401, "replay"],
    ];
    for (const [what, o, status, reason] of cases) {
      const r = await ask(p2, o);
      assertEquals(r.status, status, what);
      assert(r.body.includes(`peer_${reason}`), `${what}: ${r.body}`);
      assert(!r.body.includes('"role"'), `${what}: no health document in a refusal`);
    }
    const plain = await fetch(`http://127.0.0.1:${p2}${PEER_HEALTH_PATH}`, {
      headers: { authorization: "Bearer some-user-token" },
    });
    assertEquals(plain.status, 401, "a user token is not a peer credential");
    await plain.body?.cancel();
    assertEquals(n2.mod.status().peerLink!.refusedInbound, cases.length + 1);
    const j = n2.kinds("ha.peer_refused");
    assertEquals(j.length, 1, "journalled: the first, then every 100th");
    assertEquals(j[0].payload.direction, "inbound");
    assertEquals(j[0].payload.reason, "unauthenticated");
    assert(j[0].id > 0);
    const m = n2.mod.metrics!().find((f) => f.name === "ha_peer_messages_refused_total")!;
    assertEquals(m.samples.find((s) => s.labels?.direction === "inbound")?.value, 6);
  } finally {
    await n1.mod.stop();
    await n2.mod.stop();
  }
});

const GOOD: PeerHealth = {
  protocol: PEER_PROTOCOL,
  pairId: "lab",
  node: "n2",
  version: VERSION,
  role: "standby",
  since: null,
  takeoverPending: false,
  handingOver: false,
  health: { ok: true, parts: { store: { ok: true, essential: true } } },
};

Deno.test("ha peer link: answers unsigned, malformed, from another pair or of another protocol are refused and never acted on", async () => {
  const { clock } = fakeClock(Date.now());
  let answer: (nonce: string) => Response = () => new Response("");
  const got: string[] = [];
  const refused: [PeerRefusal, string][] = [];
  const m = new PeerMonitor({
    clock,
    url: `http://peer.invalid${PEER_HEALTH_PATH}`,
    secret: SECRET,
    pairId: "lab",
    node: "n1",
    peerId: "n2",
    version: VERSION,
    intervalMs: 1000,
    timeoutMs: 5000,
    lostAfter: 100,
    fetch: (_u, init) => {
      const nonce = new Headers(init?.headers).get("x-kw-peer-nonce")!;
      return Promise.resolve(answer(nonce));
    },
    on: {
      lost: () => got.push("lost"),
      degraded: (p) => got.push(`degraded ${p}`),
      recovered: (f) => got.push(`recovered ${f}`),
      version: (v) => got.push(`version ${v}`),
      refused: (r, d) => refused.push([r, d]),
      seen: (h) => got.push(`seen ${h.role}`),
    },
  });
  const signed = (body: string) => (nonce: string) =>
    new Response(body, { headers: { "x-kw-peer-auth": signPeerAnswer(SECRET, nonce, body) } });
  const bad: [string, (nonce: string) => Response, PeerRefusal][] = [
    [
      "unsigned",
      () => new Response(JSON.stringify({ ...GOOD, role: "active" })),
      "unauthenticated",
    ],
    [
      "signed with another secret",
      (n) => {
        const b = JSON.stringify({ ...GOOD, role: "active" });
        return new Response(b, {
          headers: { "x-kw-peer-auth": signPeerAnswer("x".repeat(20), n, b) },
        });
      },
      "unauthenticated",
    ],
    [
      "answer replayed from another request",
      (_n) => signed(JSON.stringify({ ...GOOD, role: "active" }))("a".repeat(32)),
      "unauthenticated",
    ],
    ["not JSON", signed("{role: active"), "malformed"],
    ["missing field", signed(JSON.stringify({ ...GOOD, health: undefined })), "malformed"],
    ["extra field", signed(JSON.stringify({ ...GOOD, evil: 1 })), "malformed"],
    [
      "another pair",
      signed(JSON.stringify({ ...GOOD, pairId: "other", role: "active" })),
      "other_pair",
    ],
    [
      "another protocol",
      signed(JSON.stringify({ ...GOOD, protocol: PEER_PROTOCOL + 1, role: "active" })),
      "incompatible",
    ],
  ];
  for (const [what, a, reason] of bad) {
    answer = a;
    await m.poll();
    assertEquals(refused.at(-1)?.[0], reason, what);
    assertEquals(got, [], `${what}: never acted on`);
    assertEquals(m.view.role, "unknown", what);
  }
  assertEquals(m.view.refused, bad.length);
  answer = signed(JSON.stringify({ ...GOOD, version: "9.9.9" }));
  await m.poll();
  await m.poll();
  assertEquals(got, ["version 9.9.9", "seen standby", "seen standby"], "version mismatch once");
  assertEquals(m.view.role, "standby");
});

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("ha failover manual: the standby is held in FAULT (a standby), a lost active makes a takeover pending, ha failover on the standby takes over; a handover on the active releases the held peer", async () => {
  const { clock, n1, n2, p1, p2 } = await pair({ failover: "manual" });
  let n1b: Node | null = null;
  try {
    assertEquals(n1.engine.fault, 1, "held until the peer link has answered");
    assertEquals(n1.mod.status().manual?.held, true);
    // both starting, nobody active: both join the election, n1 wins
    await n1.mod.pollPeer();
    await n2.mod.pollPeer();
    assertEquals(n1.engine.fault, 0, "no active peer: joins");
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await tick();
    await n2.mod.pollPeer();
    await tick();
    assertEquals(n2.engine.fault, 1, "the peer is active: the standby is held in FAULT");
    n2.engine.line("FAULT", 100);
    await tick();
    assertEquals(n2.mod.status().role, "standby", "held FAULT is shown as standby");
    assert(n2.mod.status().reason!.includes("failover manual"), n2.mod.status().reason!);
    assertEquals(n2.mod.status().manual, {
      held: true,
      pending: false,
      reason: null,
      releasedUntil: null,
    });
    const e = assertThrows(() => n2.mod.failover("admin"), HaNoTakeoverPendingError);
    assert(e.message.includes("the peer n1 is active"), e.message);

    // the active dies: the standby stays held, a takeover is pending
    await n1.mod.stop();
    await n2.mod.pollPeer();
    await n2.mod.pollPeer();
    await tick();
    const pend = n2.kinds("ha.failover_pending");
    assertEquals(pend.length, 1);
    assert(
      String(pend[0].payload.reason).startsWith("the peer is lost"),
      String(pend[0].payload.reason),
    );
    assertEquals(pend[0].severity, "error");
    await n2.mod.pollPeer();
    assertEquals(n2.kinds("ha.failover_pending").length, 1, "once per episode");
    assertEquals(n2.engine.fault, 1, "still held: no takeover by itself");
    assertEquals(n2.mod.status().role, "standby");
    assertEquals(n2.mod.status().manual?.pending, true);

    // the administrator confirms on the standby
    n2.mod.failover("admin");
    assertEquals(n2.kinds("ha.takeover_confirmed").length, 1);
    assertEquals(n2.engine.fault, 0, "released");
    n2.engine.line("BACKUP", 100);
    n2.engine.line("MASTER", 100);
    await tick();
    assertEquals(n2.mod.status().role, "active");
    assertEquals(n2.mod.status().manual?.held, false);

    // the old active returns: it sees n2 active and is held
    n1b = await node("n1", { own: p1, peer: p2 }, clock, {}, { failover: "manual" });
    await n1b.mod.pollPeer();
    await tick();
    assertEquals(n1b.engine.fault, 1);
    n1b.engine.line("FAULT", 150);
    await tick();
    assertEquals(n1b.mod.status().role, "standby");
    // graceful handover on the active: the held peer sees it handing over and joins
    n2.mod.failover("admin");
    await n1b.mod.pollPeer();
    await tick();
    assertEquals(n1b.engine.fault, 0, "the peer hands over: released");
    assertEquals(
      n1b.kinds("ha.failover_pending").length,
      0,
      "a handover is not a pending takeover",
    );
  } finally {
    await n1.mod.stop();
    await n2.mod.stop();
    await n1b?.mod.stop();
  }
});
