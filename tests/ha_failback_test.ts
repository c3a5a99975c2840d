/**
 * Automatic failback with replication (mod/ha/failback.ts) on fake time: the returning
 * owner waits while its channel of the set is not caught up with the holder's (older
 * epoch, snapshot being installed, the holder's link down, a snapshot due, changes
 * unconfirmed), then for the delay with the channel caught up all along, then asks the
 * holder once; a refusal is retried later; the sets a node takes back by config.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";
import {
  catchUpBlocker,
  FAILBACK_LAG_MS,
  FAILBACK_RETRY_MS,
  type FailbackChannel,
  FailbackDriver,
  failbackGated,
  type FailbackSet,
  failbackSets,
  type FailbackView,
  holderBlocker,
} from "../mod/ha/failback.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { primaryChannel as primary, standbyChannel as standby } from "./ha_pair_rig.ts";

const view = (o: Partial<FailbackView> = {}): FailbackView => ({
  node: "n2",
  set: "a",
  holding: true,
  handingOver: false,
  channel: primary(),
  ...o,
});

Deno.test("failback gate: the owner is caught up only at the holder's epoch, snapshot installed, link up, little unconfirmed", () => {
  assertEquals(catchUpBlocker(standby(), view()), null);
  assertEquals(
    catchUpBlocker(standby({ epoch: 2 }), view()),
    "at epoch 2, n2 at 3: waiting for its snapshot",
  );
  assertEquals(
    catchUpBlocker(standby({ resync: { bytes: 10, total: 100 } }), view()),
    "installing the holder's snapshot (10 of 100 bytes)",
  );
  assertEquals(catchUpBlocker(null, view()), "replication does not run on this node yet");
  assertEquals(
    catchUpBlocker(standby({ snapshotDue: true }), view()),
    "a table was registered here after the holder's snapshot: waiting for a new one",
  );
  assertEquals(
    catchUpBlocker(standby({ role: "primary" }), view()),
    "this node's channel is primary, not standby",
  );
  assertEquals(
    catchUpBlocker(standby(), view({ channel: null })),
    "replication does not run on n2",
  );
  assertEquals(
    catchUpBlocker(standby(), view({ channel: primary({ link: "down" }) })),
    "not caught up: the holder's link to this channel's standby is not up",
  );
  assertEquals(
    catchUpBlocker(standby(), view({ channel: primary({ snapshotDue: true }) })),
    "not caught up: the standby has not installed the holder's snapshot yet",
  );
  assertEquals(
    catchUpBlocker(
      standby(),
      view({ channel: primary({ pending: 12, lagMs: FAILBACK_LAG_MS + 500 }) }),
    ),
    "not caught up: 12 frames unconfirmed (the oldest 1500 ms old)",
  );
  assertEquals(holderBlocker(primary({ pending: 3, lagMs: 200 })), null, "a fresh batch in flight");
  assertEquals(holderBlocker(null), "replication does not run on the holder");
  assertEquals(holderBlocker(standby()), "the holder's channel is standby, not primary");
});

/** A driver for set a on a fake clock; the test sets what each callback answers. */
function rig(delayMs = 3000) {
  const clock = new FakeClock();
  const w = {
    holding: false,
    local: null as string | null,
    peer: null as string | null,
    own: standby({ epoch: 2 }) as FailbackChannel | null,
    view: view() as FailbackView | Error,
    refuse: null as string | null,
    asks: 0,
    /** While set, the holder's view is answered only when it settles. */
    gate: null as Promise<void> | null,
    requests: [] as number[],
    events: [] as { kind: string; set: FailbackSet; reason: string }[],
  };
  const d = new FailbackDriver({
    clock,
    sets: ["a"],
    delayMs,
    pollMs: 200,
    takeMs: 8000,
    holding: () => w.holding,
    local: () => w.local,
    peer: () => w.peer,
    own: () => w.own,
    ask: async () => {
      w.asks++;
      if (w.gate) await w.gate;
      if (w.view instanceof Error) throw w.view;
      return w.view;
    },
    request: () => {
      w.requests.push(clock.now());
      return w.refuse === null ? Promise.resolve() : Promise.reject(new Error(w.refuse));
    },
    publish: (kind, set, reason) => w.events.push({ kind, set, reason }),
  });
  d.start();
  const state = () => d.status()[0];
  return { clock, w, d, state };
}

Deno.test("failback driver: waits for the snapshot and the catch-up, then for the delay, then asks the holder once", async () => {
  const { clock, w, d, state } = rig(3000);
  try {
    await clock.advance(200);
    assertEquals(state().state, "waiting");
    assertEquals(state().reason, "at epoch 2, n2 at 3: waiting for its snapshot");
    assertEquals(w.events, [{
      kind: "waiting",
      set: "a",
      reason: "at epoch 2, n2 at 3: waiting for its snapshot",
    }]);
    w.own = standby({ resync: { bytes: 5, total: 50 } });
    await clock.advance(200);
    assertEquals(state().reason, "installing the holder's snapshot (5 of 50 bytes)");
    assertEquals(w.events.length, 1, "one ha.failback_waiting per episode");
    // caught up: the delay starts
    w.own = standby();
    await clock.advance(200);
    const t0 = clock.now();
    assertEquals(state().state, "delay");
    assertEquals(state().askAt, new Date(t0 + 3000).toISOString());
    await clock.advance(2000);
    assertEquals(w.requests, [], "not before the delay");
    // behind again (a burst of writes the owner has not confirmed): the delay starts over
    w.view = view({ channel: primary({ pending: 200, lagMs: 4000 }) });
    await clock.advance(200);
    assertEquals(state().state, "waiting");
    assertEquals(state().reason, "not caught up: 200 frames unconfirmed (the oldest 4000 ms old)");
    w.view = view();
    await clock.advance(200);
    const t1 = clock.now();
    assertEquals(state().state, "delay");
    await clock.advance(2800);
    assertEquals(w.requests, [], "the delay counts from the last catch-up");
    await clock.advance(400);
    assertEquals(w.requests.length, 1);
    assert(w.requests[0] >= t1 + 3000, `asked at ${w.requests[0] - t1} ms after the catch-up`);
    assertEquals(state().state, "taking");
    assertEquals(w.events.map((e) => e.kind), ["waiting", "requested"]);
    // the holder drains and releases; keepalived makes this node MASTER: nothing more asked
    await clock.advance(1000);
    w.holding = true;
    await clock.advance(200);
    assertEquals(state().state, "holding");
    assertEquals(w.requests.length, 1);
  } finally {
    d.stop();
  }
});

Deno.test("failback driver: nothing asked while this node cannot take the set or the peer does not answer; a refusal is retried later", async () => {
  const { clock, w, d, state } = rig(0);
  try {
    w.own = standby();
    w.local = "maintenance is on here";
    await clock.advance(1000);
    assertEquals(w.asks, 0);
    assertEquals(state().reason, "maintenance is on here");
    w.local = null;
    w.peer = "the peer does not answer on the peer link";
    await clock.advance(1000);
    assertEquals(w.asks, 0);
    w.peer = null;
    w.view = view({ holding: false });
    await clock.advance(200);
    assertEquals(state().reason, "n2 is not active for set a");
    assertEquals(w.events, [], "no episode: the peer does not hold the set");
    w.view = view({ handingOver: true });
    await clock.advance(200);
    assertEquals(state().reason, "n2 is handing over");
    w.view = view();
    w.refuse = "the standby did not confirm every change within 5000 ms";
    await clock.advance(200);
    assertEquals(w.requests.length, 1);
    assertEquals(state().state, "waiting");
    assertEquals(state().lastRefusal, "the standby did not confirm every change within 5000 ms");
    assertEquals(w.events.map((e) => e.kind), ["waiting", "requested", "refused"]);
    await clock.advance(FAILBACK_RETRY_MS - 400);
    assertEquals(w.requests.length, 1, "not again before the retry time");
    w.refuse = null;
    await clock.advance(800);
    assertEquals(w.requests.length, 2);
    assertEquals(state().state, "taking");
    // keepalived did not make this node MASTER within takeMs: it looks again
    await clock.advance(8200);
    assertEquals(w.requests.length, 3);
  } finally {
    d.stop();
  }
});

function haOf(ha: Record<string, unknown>) {
  const prev = setInterfaceCheck(() => true);
  try {
    return validateConfig({
      ha: {
        enabled: true,
        node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
        interface: "kt0",
        virtualAddresses: ["10.231.0.50/24"],
        peers: [{ address: "10.231.0.12", priority: 100 }],
        peerLink: { secret: "0123456789abcdef" },
        ...ha,
      },
    }).ha;
  } finally {
    setInterfaceCheck(prev);
  }
}

Deno.test("failback sets: the owner of a set by priority, only with replication", () => {
  const AA = { virtualRouterId: 52, virtualAddresses: ["10.231.0.51/24"], failback: "auto" };
  assertEquals(failbackSets(haOf({ preempt: true, replication: {} })), ["a"]);
  assertEquals(failbackGated(haOf({ preempt: true, replication: {} })), true);
  assertEquals(failbackSets(haOf({ preempt: true })), [], "keepalived preempts by itself");
  assertEquals(failbackGated(haOf({ preempt: true })), false);
  assertEquals(
    failbackSets(haOf({
      preempt: true,
      replication: {},
      node: { id: "n2", priority: 100, address: "10.231.0.12/24" },
      peers: [{ address: "10.231.0.11", priority: 150 }],
    })),
    [],
    "the lower priority never takes the address back",
  );
  assertEquals(failbackSets(haOf({ activeActive: AA, replication: {} })), ["a"]);
  assertEquals(
    failbackSets(haOf({
      activeActive: AA,
      replication: {},
      node: { id: "n2", priority: 100, address: "10.231.0.12/24" },
      peers: [{ address: "10.231.0.11", priority: 150 }],
    })),
    ["b"],
  );
  assertEquals(
    failbackSets(haOf({ activeActive: { ...AA, failback: "manual" }, replication: {} })),
    [],
  );
});

Deno.test("failback driver: a look under way when the driver stops asks the holder nothing", async () => {
  const { w, d } = rig(0);
  w.own = standby();
  let answer!: () => void;
  w.gate = new Promise<void>((r) => answer = r);
  const look = d.tick();
  assertEquals(w.asks, 1, "asking the holder");
  d.stop(); // the module stops meanwhile
  answer(); // caught up, no delay: before the fix it asked for the set here
  await look;
  assertEquals(w.requests, []);
  assertEquals(w.events.filter((e) => e.kind === "requested"), []);
});
