/**
 * The witness (corosync + corosync-qdevice + corosync-qnetd) without the lab:
 * corosync.conf rendering (mirrored nodelists, checked by the real `corosync -t` in a
 * throw-away namespace), the log-line parser on lines corosync 3.1.7 printed in the
 * namespace lab, the quorum tracker and THE witness rule on fake time, and the HA
 * module with a fake keepalived and a fake witness: quorum lost → FAULT at once, the
 * standby held while the peer is in the membership, released after the promotion wait,
 * a graceful handover through the peer link, a dead corosync, and self-fencing through
 * the watchdog module's gate with the mock watchdog on fake time. `config check` names
 * an unresolvable witness host and exits 2.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { promoteWaitMs, setInterfaceCheck } from "../mod/ha/config.ts";
import type { HaConfig } from "../mod/ha/config.ts";
import {
  corosyncNodes,
  corosyncPaths,
  deriveAuthkey,
  parseCorosyncLine,
  qdeviceCommand,
  renderCorosyncConf,
} from "../mod/ha/corosync.ts";
import {
  type PeerRoleView,
  QuorumTracker,
  type Witness,
  type WitnessEvents,
  witnessVerdict,
} from "../mod/ha/witness.ts";
import { createHaModule, type HaModule } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import type { TrackValues } from "../mod/ha/track.ts";
import { WatchdogModule } from "../mod/watchdog/mod.ts";
import { MockWatchdog, type WatchdogReset } from "../hw/watchdog/mod.ts";
import { HARDWARE_WATCHDOG_PETTER, SelfMonitor } from "../mod/supervisor/selfmon.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";
import { missingTools } from "./helpers/tools.ts";

const SECRET = "0123456789abcdef0123";
const HA = {
  enabled: true,
  node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
  interface: "kwtest0",
  virtualAddresses: ["10.231.0.50/24"],
  peers: [{ address: "10.231.0.12", id: "n2", priority: 100 }],
  peerLink: { secret: SECRET, intervalMs: 300 },
  witness: { host: "10.231.1.3", tls: "off" },
};

function cfg(ha: Record<string, unknown> = HA, dataDir = "/nonexistent") {
  const prev = setInterfaceCheck(() => true);
  try {
    return validateConfig({ ha, dataDir });
  } finally {
    setInterfaceCheck(prev);
  }
}

/** The mirrored section of node 2. */
const HA2 = {
  ...HA,
  node: { id: "n2", priority: 100, address: "10.231.0.12/24" },
  peers: [{ address: "10.231.0.11", id: "n1", priority: 150 }],
};

Deno.test("witness: both nodes render the same nodelist, ids by address, one vote for qdevice", () => {
  const a = renderCorosyncConf(cfg().ha, corosyncPaths("/d1"));
  const b = renderCorosyncConf(cfg(HA2).ha, corosyncPaths("/d2"));
  const nodelist = (s: string) => s.slice(s.indexOf("nodelist {"), s.indexOf("quorum {"));
  assertEquals(nodelist(a), nodelist(b));
  assert(nodelist(a).includes("nodeid: 1\n    name: n1\n    ring0_addr: 10.231.0.11"), a);
  assert(nodelist(a).includes("nodeid: 2\n    name: n2\n    ring0_addr: 10.231.0.12"), a);
  for (
    const line of [
      "  cluster_name: kw-vrid-51",
      "  transport: knet",
      "  token: 1000",
      "    votes: 1",
      "    timeout: 2000",
      "    sync_timeout: 2000",
      "      host: 10.231.1.3",
      "      algorithm: ffsplit",
      "      tls: off",
      "      mode: sync",
      '      exec_active: /usr/bin/test -e "/d1/ha/corosync/active"',
      "  to_stderr: yes",
      "  state_dir: /d1/ha/corosync",
    ]
  ) assert(a.includes(`${line}\n`), `${line} missing in\n${a}`);
  assert(!a.includes("two_node"), "two_node must be off with a quorum device");
  // a second heartbeat path is a second knet link on both nodes
  const ids = corosyncNodes(cfg().ha, [["10.232.0.11", "10.232.0.12"]]);
  assertEquals(ids.self.addrs, ["10.231.0.11", "10.232.0.11"]);
  assertEquals(ids.peer.addrs, ["10.231.0.12", "10.232.0.12"]);
  const two = renderCorosyncConf(cfg().ha, corosyncPaths("/d1"), {
    links: [["10.232.0.11", "10.232.0.12"]],
  });
  assert(two.includes("ring1_addr: 10.232.0.11") && two.includes("ring1_addr: 10.232.0.12"));
  // ha.syncLink is that second path by default
  const sync = renderCorosyncConf(
    cfg({
      ...HA,
      syncLink: { interface: "kwtest1", address: "10.232.1.1/30", peerAddress: "10.232.1.2" },
    }).ha,
    corosyncPaths("/d1"),
  );
  assert(sync.includes("ring1_addr: 10.232.1.1") && sync.includes("ring1_addr: 10.232.1.2"), sync);
  // the same key on both nodes, from the pair secret
  assertEquals(deriveAuthkey(SECRET), deriveAuthkey(SECRET));
  assertEquals(deriveAuthkey(SECRET).length, 256);
  assert(deriveAuthkey(SECRET).some((x, i) => x !== deriveAuthkey(`${SECRET}x`)[i]));
  assertEquals(qdeviceCommand(cfg().ha.witness!, corosyncPaths("/d1"), null), [
    "corosync-qdevice",
    "-f",
    "-S",
    "lock_file=/d1/ha/corosync/corosync-qdevice.pid," +
    "local_socket_file=/d1/ha/corosync/corosync-qdevice.sock",
  ]);
});

const missingCorosync = missingTools(["ip", "corosync"], { root: true });

Deno.test({
  name:
    "witness: the real corosync -t accepts the rendered file (in a netns with the node's address)",
  ignore: missingCorosync !== undefined,
  fn: async () => {
    const ns = `kwwt${crypto.randomUUID().slice(0, 6)}`;
    const dir = await Deno.makeTempDir({ prefix: "kwwt-" });
    const sh = async (...a: string[]) => {
      const o = await new Deno.Command(a[0], { args: a.slice(1), stderr: "piped", stdout: "piped" })
        .output();
      return { ok: o.success, out: new TextDecoder().decode(o.stderr) };
    };
    try {
      await sh("ip", "netns", "add", ns);
      await sh("ip", "-n", ns, "addr", "add", "10.231.0.11/24", "dev", "lo");
      await sh("ip", "-n", ns, "link", "set", "lo", "up");
      const p = corosyncPaths(dir);
      await Deno.mkdir(p.dir, { recursive: true });
      await Deno.writeTextFile(p.config, renderCorosyncConf(cfg().ha, p));
      await Deno.writeFile(p.authkey, deriveAuthkey(SECRET), { mode: 0o400 });
      const good = await sh("ip", "netns", "exec", ns, "corosync", "-t", "-c", p.config);
      assert(good.ok, good.out);
      await Deno.writeTextFile(p.config, "totem { version: 2 }\n");
      const bad = await sh("ip", "netns", "exec", ns, "corosync", "-t", "-c", p.config);
      assert(!bad.ok, "a one-line block is refused by corosync's parser");
    } finally {
      await sh("ip", "netns", "del", ns);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// lines corosync 3.1.7 wrote to stderr in the namespace lab (timestamp: off)
const LOG = {
  tokenLost:
    "notice  [TOTEM ] A processor failed, forming new configuration: token timed out (1000ms), waiting 1200ms for consensus.",
  left: "notice  [TOTEM ] A new membership (2.d) was formed. Members left: 1",
  joined: "notice  [TOTEM ] A new membership (1.15) was formed. Members joined: 1",
  failed: "notice  [TOTEM ] Failed to receive the leave message. failed: 1",
  primary: "notice  [QUORUM] This node is within the primary component and will provide service.",
  nonPrimary:
    "notice  [QUORUM] This node is within the non-primary component and will NOT provide any services.",
  members2: "notice  [QUORUM] Members[2]: 1 2",
  members1: "notice  [QUORUM] Members[1]: 2",
  sync: "notice  [QUORUM] Sync members[1]: 2",
  ready: "notice  [MAIN  ] Completed service synchronization, ready to provide service.",
};

Deno.test("witness: corosync's log lines parse into membership and quorum", () => {
  assertEquals(parseCorosyncLine(LOG.tokenLost), { type: "token_lost" });
  assertEquals(parseCorosyncLine(LOG.left), {
    type: "membership",
    ring: "2.d",
    joined: [],
    left: [1],
  });
  assertEquals(parseCorosyncLine(LOG.joined), {
    type: "membership",
    ring: "1.15",
    joined: [1],
    left: [],
  });
  assertEquals(parseCorosyncLine(LOG.primary), { type: "quorate", quorate: true });
  assertEquals(parseCorosyncLine(LOG.nonPrimary), { type: "quorate", quorate: false });
  assertEquals(parseCorosyncLine(LOG.members2), { type: "members", ids: [1, 2] });
  assertEquals(parseCorosyncLine(LOG.sync), { type: "other" }, "sync members are not a decision");
  assertEquals(parseCorosyncLine(LOG.failed), { type: "other" });
  assertEquals(parseCorosyncLine(LOG.ready), { type: "ready" });
  assertEquals(parseCorosyncLine("Dec 02 06:39:22.554 notice  [QUORUM] Members[0]:"), {
    type: "members",
    ids: [],
  });
});

function tracker(peer = 1) {
  const { fc, clock } = fakeClock();
  const t = new QuorumTracker(peer, () => clock.now());
  t.setRunning(true);
  return { fc, t };
}

const W = promoteWaitMs(cfg().ha.witness!);

function verdict(
  t: QuorumTracker,
  now: number,
  role: string,
  peer: PeerRoleView | null = { reachable: true, role: "active", handingOver: false },
) {
  return witnessVerdict({
    role,
    quorum: t.view,
    peer,
    peerName: "n1",
    promoteWaitMs: W,
    now,
    downReason: null,
  });
}

Deno.test("witness rule: not quorate or down is FAULT for every role; a quorate active is free", () => {
  const { fc, t } = tracker();
  for (const role of ["active", "standby", "init", "fault"]) {
    assertEquals(verdict(t, fc.now, role).fault, "quorum_lost: not quorate (no membership yet)");
  }
  t.line(LOG.primary);
  t.line(LOG.members2);
  assertEquals(verdict(t, fc.now, "active"), { fault: null, hold: null, recheckAt: null });
  t.line(LOG.nonPrimary);
  t.line("notice  [QUORUM] Members[1]: 2");
  assertEquals(verdict(t, fc.now, "active").fault, "quorum_lost: not quorate (members 2)");
  t.setRunning(false);
  assertEquals(
    witnessVerdict({
      role: "active",
      quorum: t.view,
      peer: null,
      peerName: "n1",
      promoteWaitMs: W,
      now: fc.now,
      downReason: "corosync exited with code 8",
    }).fault,
    "witness_down: corosync exited with code 8",
  );
});

Deno.test("witness rule: a standby is held while the active peer is in the membership, released after the wait", () => {
  const { fc, t } = tracker();
  t.line(LOG.primary);
  t.line(LOG.members2);
  assertEquals(
    verdict(t, fc.now, "standby").hold,
    "witness: the peer n1 is active and in the membership",
  );
  assertEquals(
    verdict(t, fc.now, "standby", null).hold,
    "witness: the peer n1 is in the membership (peer link: no answer)",
  );
  // the peer hands over (ha failover / maintenance there), or is not active: released
  assertEquals(
    verdict(t, fc.now, "standby", { reachable: true, role: "active", handingOver: true }).hold,
    null,
  );
  assertEquals(
    verdict(t, fc.now, "standby", { reachable: true, role: "standby", handingOver: false }).hold,
    null,
  );
  // the peer link lost while corosync still has the peer: held (it may be active)
  assert(
    verdict(t, fc.now, "standby", { reachable: false, role: "unreachable", handingOver: false })
      .hold !== null,
  );
  // corosync forms a membership without the peer (token + consensus after the cut)
  fc.tick(1000);
  t.line(LOG.tokenLost);
  fc.tick(1200);
  t.line(LOG.left);
  const leftAt = fc.now;
  fc.tick(180);
  t.line(LOG.members1);
  assertEquals(t.view.peerInMembership, false);
  assertEquals(t.view.peerLeftAt, leftAt, "the wait counts from the TOTEM membership line");
  const v = verdict(t, fc.now, "standby");
  assertEquals(v.recheckAt, leftAt + W);
  assertEquals(
    v.hold,
    `witness: the peer n1 left the membership; may take over in ${
      W - 180
    } ms (the old active demotes first)`,
  );
  fc.tick(W - 181);
  assert(verdict(t, fc.now, "standby").hold !== null);
  fc.tick(1);
  assertEquals(verdict(t, fc.now, "standby"), { fault: null, hold: null, recheckAt: null });
  // not quorate in it (the cut standby: qnetd gave the vote to the active's side): FAULT
  t.line(LOG.nonPrimary);
  t.line(LOG.members1);
  assertEquals(verdict(t, fc.now, "standby").fault, "quorum_lost: not quorate (members 2)");
  // the peer joins again: held again
  t.line(LOG.primary);
  t.line(LOG.joined);
  t.line(LOG.members2);
  assertEquals(t.view.peerLeftAt, null);
  assert(verdict(t, fc.now, "standby").hold !== null);
});

Deno.test("witness rule: a node that starts alone waits from its first membership", () => {
  const { fc, t } = tracker();
  t.line(LOG.primary);
  assertEquals(
    verdict(t, fc.now, "init").fault,
    "quorum_lost: not quorate (no membership yet)",
    "the quorate line counts with the Members line that follows it",
  );
  t.line("notice  [QUORUM] Members[1]: 2");
  assertEquals(t.view.peerLeftAt, fc.now);
  assertEquals(verdict(t, fc.now, "init", null).recheckAt, fc.now + W);
  assertEquals(W, 2000 + 500 + 200, "sync_timeout + demoteBoundMs + margin");
});

// ---- the module with a fake keepalived and a fake witness ----

class FakeEngine implements Engine {
  ev: EngineEvents;
  writes: TrackValues[] = [];
  pid: number | null = 4001;
  config = "fake";
  constructor(ev: EngineEvents) {
    this.ev = ev;
  }
  start() {
    return Promise.resolve({ pid: 4001 });
  }
  stop() {
    return Promise.resolve();
  }
  writeTrack(v: TrackValues) {
    this.writes.push(v);
  }
  get last() {
    return this.writes.at(-1);
  }
  line(state: string, prio = 150) {
    this.ev.onLine(`INSTANCE "keepwire" ${state} ${prio}`);
  }
}

class FakeWitness implements Witness {
  ev: WitnessEvents;
  starts = 0;
  stops = 0;
  active: boolean[] = [];
  failStart: string | null = null;
  config = "fake";
  pids = [5001, 5002];
  nodeids: { self: number; peer: number };
  constructor(ev: WitnessEvents, ha: HaConfig) {
    this.ev = ev;
    const n = corosyncNodes(ha);
    this.nodeids = { self: n.self.nodeid, peer: n.peer.nodeid };
  }
  start() {
    this.starts++;
    if (this.failStart) return Promise.reject(new Error(this.failStart));
    return Promise.resolve({ pids: this.pids });
  }
  stop() {
    this.stops++;
    return Promise.resolve();
  }
  setActive(on: boolean) {
    this.active.push(on);
  }
  /** corosync logs a quorum decision. */
  decide(quorate: boolean | null, members: number[]) {
    if (quorate !== null) this.ev.onLine(quorate ? LOG.primary : LOG.nonPrimary);
    this.ev.onLine(`notice  [QUORUM] Members[${members.length}]: ${members.join(" ")}`);
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

type Clock = ReturnType<typeof fakeClock>["clock"];

/** One node: the real HA module with a fake keepalived, a fake witness, the real peer link. */
async function node(id: "n1" | "n2", ports: { own: number; peer: number }, clock: Clock) {
  const config = cfg(id === "n1" ? HA : HA2);
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha." });
  let engine!: FakeEngine;
  let witness!: FakeWitness;
  const resets: WatchdogReset[] = [];
  const wd = new MockWatchdog({ clock, timeoutSec: 10, onExpire: (r) => resets.push(r) });
  const wdm = new WatchdogModule({ config, store, bus, clock }, wd);
  await wdm.start();
  const mod: HaModule = createHaModule({ config, store, bus, clock }, {
    engine: (_ha, _dir, ev) => engine = new FakeEngine(ev),
    witness: (ha, _dir, ev) => witness = new FakeWitness(ev, ha),
    watchdog: wdm,
    peerListen: { hostname: "127.0.0.1", port: ports.own },
    peerUrl: `http://127.0.0.1:${ports.peer}/peer/v1/health`,
  });
  await mod.start();
  const selfmon = new SelfMonitor({
    config: config.supervisor,
    clock,
    monotonic: () => clock.now(),
    petters: [{ name: HARDWARE_WATCHDOG_PETTER, pet: () => wdm.pet() }],
    publish: (e) => void bus.publish(e),
    essentialFailed: () => [],
    env: {},
  });
  selfmon.start();
  return {
    mod,
    engine,
    witness,
    events,
    wd,
    wdm,
    resets,
    selfmon,
    kinds: (k: string) => events.filter((e) => e.kind === k),
    roles: () =>
      events.filter((e) => e.kind === "ha.role_changed").map((e) =>
        `${e.payload.from}->${e.payload.to}`
      ),
    async close() {
      await selfmon.stop();
      await mod.stop();
      await wdm.stop();
    },
  };
}

async function pair() {
  const { fc, clock } = fakeClock(Date.now());
  const p1 = freePort();
  const p2 = freePort();
  const n1 = await node("n1", { own: p1, peer: p2 }, clock);
  const n2 = await node("n2", { own: p2, peer: p1 }, clock);
  const poll = async () => {
    await n1.mod.pollPeer();
    await n2.mod.pollPeer();
  };
  return { fc, n1, n2, poll };
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

Deno.test("witness module: FAULT until quorate; the pair elects; the standby is held while the active peer is in the membership", async () => {
  const { n1, n2, poll } = await pair();
  try {
    // corosync up but no decision yet: FAULT with the reason (never active)
    assertEquals(n1.engine.last, { fault: 1, priority: 0 });
    assertEquals(n1.mod.status().track!.faultReasons, [
      "quorum_lost: not quorate (no membership yet)",
    ]);
    assertEquals(n1.mod.status().witness!.running, true);
    // both quorate in one membership; the peer link answers (both init): released, elect
    n1.witness.decide(true, [1, 2]);
    n2.witness.decide(true, [1, 2]);
    await poll();
    await settle();
    assertEquals(n1.engine.last, { fault: 0, priority: 0 });
    assertEquals(n2.engine.last, { fault: 0, priority: 0 });
    n1.engine.line("MASTER", 150);
    n2.engine.line("BACKUP", 100);
    await settle();
    assertEquals(n1.witness.active.at(-1), true, "the heuristic marker follows the role");
    // n2 learns n1 is active: held in FAULT, shown as standby
    await poll();
    await settle();
    assertEquals(n2.engine.last, { fault: 1, priority: 0 });
    n2.engine.line("FAULT", 100);
    await settle();
    const s2 = n2.mod.status();
    assertEquals(s2.role, "standby");
    assertEquals(
      s2.reason,
      "keepalived held in FAULT: witness: the peer n1 is active and in the membership",
    );
    assertEquals(s2.witness!.hold, "witness: the peer n1 is active and in the membership");
    assertEquals(s2.witness!.quorate, true);
  } finally {
    await n1.close();
    await n2.close();
  }
});

Deno.test("witness module: peer left the membership → the standby takes over only after sync_timeout + demote bound + margin", async () => {
  const { fc, n1, n2, poll } = await pair();
  try {
    n1.witness.decide(true, [1, 2]);
    n2.witness.decide(true, [1, 2]);
    await poll();
    n1.engine.line("MASTER", 150);
    await poll();
    await settle();
    n2.engine.line("FAULT", 100);
    assertEquals(n2.engine.last!.fault, 1);
    // n1 dies: n2's corosync forms a membership without it and is quorate in it
    n2.witness.ev.onLine(LOG.tokenLost);
    fc.tick(1200);
    n2.witness.ev.onLine("notice  [TOTEM ] A new membership (2.d) was formed. Members left: 1");
    const leftAt = fc.now;
    fc.tick(180);
    n2.witness.decide(null, [2]);
    await settle();
    assertEquals(n2.engine.last!.fault, 1, "still held: the old active may still be quorate");
    assert(
      n2.mod.status().reason!.includes("left the membership; may take over in"),
      JSON.stringify(n2.mod.status().track),
    );
    fc.tick(leftAt + W - fc.now - 1);
    await settle();
    assertEquals(n2.engine.last!.fault, 1);
    fc.tick(1);
    await settle();
    assertEquals(n2.engine.last, { fault: 0, priority: 0 }, "released at leftAt + W exactly");
    n2.engine.line("BACKUP", 100);
    n2.engine.line("MASTER", 100);
    assertEquals(n2.mod.status().role, "active");
  } finally {
    await n1.close();
    await n2.close();
  }
});

Deno.test("witness module: a graceful handover releases the held standby through the peer link", async () => {
  const { n1, n2, poll } = await pair();
  try {
    n1.witness.decide(true, [1, 2]);
    n2.witness.decide(true, [1, 2]);
    await poll();
    n1.engine.line("MASTER", 150);
    await poll();
    await settle();
    n2.engine.line("FAULT", 100);
    assertEquals(n2.engine.last!.fault, 1);
    n1.mod.failover("admin");
    await poll();
    await settle();
    assertEquals(n2.engine.last!.fault, 0, "the peer hands over: released");
    n1.engine.line("FAULT", 150);
    n2.engine.line("BACKUP", 100);
    n2.engine.line("MASTER", 100);
    await settle();
    assertEquals(n2.mod.status().role, "active");
  } finally {
    await n1.close();
    await n2.close();
  }
});

Deno.test("witness module: the active loses quorum → FAULT and role fault at once; keepalived stuck in MASTER → self-fence (mock watchdog resets)", async () => {
  const { fc, n1, n2, poll } = await pair();
  try {
    n1.witness.decide(true, [1, 2]);
    n2.witness.decide(true, [1, 2]);
    await poll();
    n1.engine.line("MASTER", 150);
    await settle();
    assertEquals(n1.mod.status().role, "active");
    fc.tick(3000);
    assertEquals(n1.resets.length, 0);
    const pets = n1.wd.info().pets;
    assert(pets > 0, "petted while well");
    // cut off from everything: corosync says not quorate
    n1.witness.decide(false, [1]);
    await settle();
    assertEquals(n1.mod.status().role, "fault");
    assertEquals(n1.engine.last!.fault, 1);
    const lost = n1.kinds("ha.quorum_lost");
    assertEquals(lost.length, 1);
    assertEquals(lost[0].payload.reason, "quorum_lost: not quorate (members 1)");
    // keepalived does not comply (stays MASTER): within the bound nothing more happens
    fc.tick(400);
    assertEquals(n1.mod.status().witness!.fence, null);
    const petsBefore = n1.wd.info().pets;
    fc.tick(2000);
    assert(n1.kinds("ha.self_fence").length === 1, "self-fence journalled");
    assert(n1.mod.status().witness!.fence!.includes("keepalived still MASTER"));
    assert(n1.wdm.health().detail!.startsWith("petting withheld: ha: quorum_lost"));
    assertEquals(n1.wd.info().pets, petsBefore + 1, "the last pet within the bound only");
    fc.tick(10_000);
    assertEquals(n1.resets.length, 1, "the watchdog reset the box");
    // the other node, its keepalived complying: never fenced
    n2.witness.decide(false, [2]);
    await settle();
    n2.engine.line("FAULT", 100);
    fc.tick(5000);
    assertEquals(n2.kinds("ha.self_fence").length, 0);
    assertEquals(n2.resets.length, 0);
  } finally {
    await n1.close();
    await n2.close();
  }
});

Deno.test("witness module: corosync exits → unhealthy with the reason, FAULT, restarted with backoff", async () => {
  const { fc, n1, n2 } = await pair();
  try {
    n1.witness.decide(true, [1, 2]);
    n1.engine.line("MASTER", 150);
    await settle();
    n1.witness.ev.onExit("corosync killed by SIGKILL");
    await settle();
    assertEquals(n1.mod.health(), {
      ok: false,
      essential: false,
      detail: "witness (corosync) not running: corosync killed by SIGKILL",
    });
    assertEquals(n1.engine.last!.fault, 1);
    assertEquals(n1.mod.status().role, "fault");
    assertEquals(n1.kinds("ha.witness_failed")[0].payload.restartInMs, 500);
    const starts = n1.witness.starts;
    fc.tick(500);
    await settle();
    assertEquals(n1.witness.starts, starts + 1);
    assertEquals(n1.witness.stops >= 1, true, "the survivor of the two is stopped first");
    assertEquals(n1.mod.health().ok, true);
    const m = n1.mod.metrics!().find((x) => x.name === "ha_witness_restarts_total")!;
    assertEquals(m.samples[0].value, 1);
  } finally {
    await n1.close();
    await n2.close();
  }
});

Deno.test({
  name: "witness: config check names an unresolvable witness host and exits 2",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kwwc-" });
    try {
      const file = `${dir}/c.json`;
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          dataDir: dir,
          ha: { ...HA, interface: "lo", witness: { host: "qnetd.invalid" } },
        }),
      );
      const o = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../main.ts", import.meta.url).pathname,
          "config",
          "check",
          file,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
      assertEquals(o.code, 2, out);
      assert(out.includes('ha.witness.host: cannot resolve "qnetd.invalid"'), out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
