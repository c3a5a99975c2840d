/** The catch-up hold (mod/ha/catch_up.ts) through every transition, on fake time. */
import { assert, assertEquals } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";
import {
  CATCHING_UP,
  type CatchUpEnd,
  CatchUpHold,
  PeerUnsupportedError,
} from "../mod/ha/catch_up.ts";
import type { FailbackChannel, FailbackSet, FailbackView } from "../mod/ha/failback.ts";
import { onlyHeld, TrackControl } from "../mod/ha/track.ts";
import { primaryChannel as primary, standbyChannel as standby } from "./ha_pair_rig.ts";

interface Rig {
  clock: FakeClock;
  hold: CatchUpHold;
  peer: { state: "unknown" | "up" | "lost"; detail: string | null };
  views: Partial<Record<FailbackSet, FailbackView | Error>>;
  own: Partial<Record<FailbackSet, FailbackChannel | null>>;
  holds: (string | null)[];
  told: string[];
  ends: { how: CatchUpEnd; reason: string; heldMs: number }[];
  asked: number;
}

function rig(sets: FailbackSet[] = ["a"]): Rig {
  const clock = new FakeClock();
  const r: Rig = {
    clock,
    hold: null as unknown as CatchUpHold,
    peer: { state: "unknown", detail: null },
    views: {},
    own: {},
    holds: [],
    told: [],
    ends: [],
    asked: 0,
  };
  r.hold = new CatchUpHold({
    clock,
    sets,
    pollMs: 1000,
    peerName: "n2",
    peer: () => r.peer,
    own: (set) => r.own[set] ?? null,
    ask: (set) => {
      r.asked++;
      const v = r.views[set];
      if (v instanceof Error) return Promise.reject(v);
      if (!v) return Promise.reject(new Error("no view"));
      return Promise.resolve(v);
    },
    setHold: (reason) => r.holds.push(reason),
    publish: (_k, reason) => r.told.push(reason),
    publishEnd: (how, reason, heldMs) => r.ends.push({ how, reason, heldMs }),
  });
  return r;
}

const view = (set: FailbackSet, o: Partial<FailbackView> = {}): FailbackView => ({
  node: "n2",
  set,
  holding: true,
  handingOver: false,
  channel: primary(),
  ...o,
});

Deno.test("catch-up hold: held from start while the peer link has not answered; the peer not active lets go at once (no journal)", async () => {
  const r = rig();
  r.hold.start();
  assertEquals(r.hold.held, true);
  assertEquals(r.holds.length, 1);
  await r.clock.advance(3000);
  assertEquals(r.hold.held, true);
  assert(/waiting for n2 to answer/.test(r.hold.status().reason), r.hold.status().reason);
  assertEquals(r.asked, 0);
  r.peer = { state: "up", detail: null };
  r.views.a = view("a", { holding: false, channel: primary() });
  await r.clock.advance(1000);
  assertEquals(r.hold.held, false);
  assertEquals(r.holds.at(-1), null);
  assert(/not active/.test(r.hold.status().reason));
  assertEquals([r.told, r.ends], [[], []]);
  // nothing looks any more
  const asked = r.asked;
  await r.clock.advance(5000);
  assertEquals(r.asked, asked);
});

Deno.test("catch-up hold: the peer active and this node behind holds (journalled once) until caught up, then lets go", async () => {
  const r = rig();
  r.hold.start();
  r.peer = { state: "up", detail: null };
  r.views.a = view("a", { channel: primary({ epoch: 4 }) });
  r.own.a = standby({ epoch: 3 });
  await r.clock.advance(1000);
  assertEquals(r.hold.held, true);
  assert(/n2 is active for set a; at epoch 3, n2 at 4/.test(r.hold.status().reason));
  r.own.a = standby({ epoch: 4, resync: { bytes: 1, total: 10 } });
  await r.clock.advance(1000);
  assert(/installing/.test(r.hold.status().reason));
  r.own.a = standby({ epoch: 4 });
  r.views.a = view("a", { channel: primary({ epoch: 4, pending: 9, lagMs: 4000 }) });
  await r.clock.advance(1000);
  assertEquals(r.hold.held, true);
  assertEquals(r.told.length, 1, "ha.catching_up once");
  r.views.a = view("a", { channel: primary({ epoch: 4 }) });
  await r.clock.advance(1000);
  assertEquals(r.hold.held, false);
  assertEquals(r.ends.map((e) => e.how), ["caught_up"]);
  assertEquals(r.ends[0].heldMs, 4000);
});

Deno.test("catch-up hold: the peer lost lets go (a lone node takes over); an older peer too; a failing view holds", async () => {
  const lost = rig();
  lost.hold.start();
  await lost.clock.advance(2000);
  lost.peer = { state: "lost", detail: "no answer within 1500 ms" };
  await lost.hold.tick();
  assertEquals(lost.hold.held, false);
  assertEquals(lost.ends.map((e) => e.how), ["peer_lost"]);
  assert(/no answer within 1500 ms/.test(lost.ends[0].reason));

  const older = rig();
  older.hold.start();
  older.peer = { state: "up", detail: null };
  older.views.a = new Error("HTTP 500");
  await older.clock.advance(1000);
  assertEquals(older.hold.held, true, "a failing view holds");
  assert(/HTTP 500/.test(older.hold.status().reason));
  older.views.a = new PeerUnsupportedError("no route");
  await older.clock.advance(1000);
  assertEquals(older.hold.held, false);
  assert(/older keepwire/.test(older.hold.status().reason));

  const unpaired = rig();
  unpaired.hold.start();
  unpaired.hold.end("unpaired", "no peer link");
  assertEquals([unpaired.hold.held, unpaired.holds.at(-1), unpaired.ends], [false, null, []]);
});

Deno.test("catch-up hold (active-active): every set the peer is active for must be caught up", async () => {
  const r = rig(["a", "b"]);
  r.hold.start();
  r.peer = { state: "up", detail: null };
  r.views.a = view("a", { holding: false });
  r.views.b = view("b", { channel: primary({ epoch: 4 }) });
  r.own.b = standby({ epoch: 3 });
  await r.clock.advance(1000);
  assertEquals(r.hold.held, true);
  assert(/set b/.test(r.hold.status().reason));
  r.own.b = standby({ epoch: 4 });
  await r.clock.advance(1000);
  assertEquals(r.hold.held, false);
  assertEquals(r.ends.map((e) => e.how), ["caught_up"]);
});

Deno.test("catch-up hold: its FAULT reason keeps the node a standby (onlyHeld), alone or with the manual hold", () => {
  const t = new TrackControl({ clock: new FakeClock(), readers: {}, write: () => {} });
  t.setHold(CATCHING_UP, `${CATCHING_UP}: behind`);
  assertEquals([t.view.fault, onlyHeld(t.view)], [true, true]);
  t.setManualHold(true);
  assertEquals(onlyHeld(t.view), true);
  t.setMaintenance(true);
  assertEquals(onlyHeld(t.view), false);
});

Deno.test("catch-up hold: a look under way when the hold stops lets nothing go", async () => {
  const r = rig();
  r.hold.start();
  r.peer = { state: "up", detail: null };
  r.views.a = view("a", { holding: false }); // would let go at once
  const look = r.hold.tick(); // waits for the peer's view
  r.hold.stop(); // the module stops meanwhile
  await look;
  // before the fix the look let keepalived out of FAULT after the stop
  assertEquals([r.hold.held, r.holds.includes(null), r.ends], [true, false, []]);
});
