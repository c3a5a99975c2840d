/**
 * Dual-active detection (mod/ha/dual.ts) on fake time: the signals (a lower-priority
 * advert while MASTER, MASTER → BACKUP with nopreempt, the peer reporting active over
 * the peer link twice in a row), one journal entry per episode with what was seen,
 * resolution by priority (the lower node holds FAULT while the peer is seen active and
 * is released when it no longer is, or is lost); and two HA modules over a real peer
 * link on loopback: both active → the lower-priority one yields.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule, type HaModule } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import { PEER_HEALTH_PATH } from "../mod/ha/peer.ts";
import { DUAL_ACTIVE_YIELD, type DualActiveReport, DualActiveWatch } from "../mod/ha/dual.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";

function watch(opts: { peerPriority?: number | null; preempt?: boolean } = {}) {
  const { fc, clock } = fakeClock();
  const reports: DualActiveReport[] = [];
  const yields: (string | null)[] = [];
  const w = new DualActiveWatch({
    clock,
    node: { id: "n2", priority: 100, address: "10.231.0.12" },
    peer: {
      name: "n1",
      priority: opts.peerPriority === undefined ? 150 : opts.peerPriority,
      address: "10.231.0.11",
    },
    preempt: opts.preempt ?? false,
    report: (r) => reports.push(r),
    setYield: (r) => yields.push(r),
  });
  return { fc, w, reports, yields };
}

Deno.test("dual active: VRRP signals are journalled once per episode with what was seen", async () => {
  const { fc, w, reports, yields } = watch();
  w.lowerAdvert("keepwire", 100);
  w.lowerAdvert("keepwire", 100);
  await fc.tickAsync(4000);
  w.masterToBackup("keepwire", 100); // within the episode window of the last signal
  assertEquals(reports.length, 1);
  assertEquals(reports[0].via, "vrrp");
  assert(reports[0].seen.includes("advert of lower priority"), reports[0].seen);
  assertEquals(reports[0].yields, false);
  await fc.tickAsync(6000);
  w.masterToBackup("keepwire", 100);
  assertEquals(reports.length, 2);
  assert(reports[1].seen.includes("MASTER → BACKUP"), reports[1].seen);
  assertEquals(reports[1].yields, true);
  assertEquals(w.count, 2);
  assertEquals(yields, [], "VRRP resolves these itself: no FAULT hold");
});

Deno.test("dual active: MASTER → BACKUP is no dual active with preempt (a returning node takes over on purpose)", () => {
  const { w, reports } = watch({ preempt: true });
  w.masterToBackup("keepwire", 100);
  assertEquals(reports.length, 0);
});

Deno.test("dual active over the peer link: two answers in a row, the lower priority yields until the peer is no longer active", async () => {
  const { fc, w, reports, yields } = watch();
  w.peerAnswer("active", "active");
  assertEquals(reports.length, 0, "one answer may be a make-before-break instant");
  w.peerAnswer("active", "standby");
  w.peerAnswer("active", "active");
  assertEquals(reports.length, 0, "not in a row");
  w.peerAnswer("active", "active");
  assertEquals(reports.length, 1);
  assertEquals(reports[0].via, "peer_link");
  assertEquals(reports[0].yields, true);
  assert(reports[0].resolvedBy.includes("this node yields"), reports[0].resolvedBy);
  assertEquals(yields.length, 1);
  assert(yields[0]!.startsWith(DUAL_ACTIVE_YIELD), yields[0]!);
  assertEquals(w.yielding, yields[0]);
  // held in FAULT now: the peer still active keeps the hold
  w.peerAnswer("fault", "active");
  assertEquals(yields.length, 1);
  await fc.tickAsync(1000);
  w.peerAnswer("fault", "standby");
  assertEquals(yields, [yields[0], null], "released once the peer is not active");
  assertEquals(w.yielding, null);
  // a lost peer releases too
  w.peerAnswer("active", "active");
  w.peerAnswer("active", "active");
  assertEquals(w.yielding !== null, true);
  w.peerLost();
  assertEquals(w.yielding, null);
  assertEquals(reports.length, 1, "all within one episode");
});

Deno.test("dual active over the peer link: the higher priority stays; unknown priority falls back to the higher address", () => {
  const a = watch({ peerPriority: 50 });
  a.w.peerAnswer("active", "active");
  a.w.peerAnswer("active", "active");
  assertEquals(a.reports[0].yields, false);
  assertEquals(a.yields, []);
  const b = watch({ peerPriority: null }); // n2 10.231.0.12 > n1 10.231.0.11
  assertEquals(b.w.outranksPeer(), true);
  const c = watch({ peerPriority: 100 }); // equal: address
  assertEquals(c.w.outranksPeer(), true);
});

class FakeEngine implements Engine {
  ev: EngineEvents;
  pid: number | null = 4242;
  config = "fake";
  fault = 0;
  constructor(ev: EngineEvents) {
    this.ev = ev;
  }
  start(): Promise<{ pid: number }> {
    return Promise.resolve({ pid: 4242 });
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  writeTrack(v: { fault: number; priority: number }): void {
    this.fault = v.fault;
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

async function node(
  id: "n1" | "n2",
  ports: { own: number; peer: number },
  clock: ReturnType<typeof fakeClock>["clock"],
): Promise<{ mod: HaModule; engine: FakeEngine; events: KwEvent[] }> {
  const prev = setInterfaceCheck(() => true);
  const config = (() => {
    try {
      return validateConfig({
        dataDir: "/nonexistent",
        ha: {
          enabled: true,
          node: {
            id,
            priority: id === "n1" ? 150 : 100,
            address: id === "n1" ? "10.231.0.11/24" : "10.231.0.12/24",
          },
          interface: "kwtest0",
          virtualAddresses: ["10.231.0.50/24"],
          peers: [{
            address: id === "n1" ? "10.231.0.12" : "10.231.0.11",
            id: id === "n1" ? "n2" : "n1",
            priority: id === "n1" ? 100 : 150,
          }],
          peerLink: { secret: "pair-secret-0123456789", pairId: "lab", lostAfter: 2 },
        },
      });
    } finally {
      setInterfaceCheck(prev);
    }
  })();
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha.dual_active" });
  let engine!: FakeEngine;
  const mod = createHaModule({ config, store, bus, clock }, {
    engine: (_h, _d, ev) => engine = new FakeEngine(ev),
    peerListen: { hostname: "127.0.0.1", port: ports.own },
    peerUrl: `http://127.0.0.1:${ports.peer}${PEER_HEALTH_PATH}`,
  });
  await mod.start();
  return { mod, engine, events };
}

Deno.test("dual active, two modules over the peer link: both MASTER and VRRP silent → the lower priority yields (FAULT), journalled on both", async () => {
  const { clock } = fakeClock(Date.now());
  const [p1, p2] = [freePort(), freePort()];
  const n1 = await node("n1", { own: p1, peer: p2 }, clock);
  const n2 = await node("n2", { own: p2, peer: p1 }, clock);
  try {
    n1.engine.line("MASTER", 150);
    n2.engine.line("MASTER", 100);
    for (let i = 0; i < 2; i++) {
      await n1.mod.pollPeer();
      await n2.mod.pollPeer();
    }
    assertEquals(n1.events.length, 1);
    assertEquals(n2.events.length, 1);
    assertEquals(n1.events[0].payload.via, "peer_link");
    assertEquals(n1.events[0].payload.yields, false);
    assertEquals(n2.events[0].payload.yields, true);
    assertEquals(n2.engine.fault, 1, "n2 holds keepalived in FAULT");
    assertEquals(n1.engine.fault, 0);
    assert(n2.mod.status().dualActive.yielding?.startsWith(DUAL_ACTIVE_YIELD));
    assert(n2.mod.status().track!.faultReasons.some((r) => r.startsWith(DUAL_ACTIVE_YIELD)));
    // keepalived leaves MASTER for FAULT: not a second episode
    n2.engine.line("FAULT", 0);
    assertEquals(n2.mod.status().role, "fault");
    await n2.mod.pollPeer();
    assertEquals(n2.engine.fault, 1, "still held while n1 is active");
    // n1 stops being active (handover): n2 is released
    n1.engine.line("FAULT", 0);
    await n2.mod.pollPeer();
    assertEquals(n2.engine.fault, 0);
    assertEquals(n2.mod.status().dualActive.yielding, null);
    assertEquals(n2.events.length, 1);
  } finally {
    await n1.mod.stop();
    await n2.mod.stop();
  }
});
