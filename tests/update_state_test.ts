/**
 * The update state machine (mod/update/state.ts) driven through the real code
 * paths — installs into file slots, activation, starts in either slot (a new
 * UpdateService + Activation over the same store and boot env = a restart), the
 * health gate on fake time — until every transition of TRANSITIONS and
 * GATE_TRANSITIONS has been taken; every other transition is refused.
 */
import { MockBootEnv } from "../hw/boot/mock.ts";
import { Activation } from "../mod/update/activation.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { UpdateService } from "../mod/update/service.ts";
import {
  GATE_TRANSITIONS,
  type GateState,
  IllegalUpdateTransition,
  TRANSITIONS,
  UPDATE_STATES,
  UpdateStateMachine,
  type UpdateStateRecord,
} from "../mod/update/state.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";
import { makeBundle, makeRig, type Rig } from "./update_fixture.ts";

const seen = new Set<string>();
const gateSeen = new Set<string>();

const GATE = { healthGateMs: 1_000, healthTimeoutMs: 10_000 };

/** One "boot" of the box in `slot`: a fresh service and activation over the rig's store and env. */
function boot(r: Rig, slot: string, opts: { healthy?: boolean } = {}) {
  const clock = new FakeClock();
  const svc = new UpdateService(r.config, r.store, r.bus, clock, {
    bootEnv: r.env,
    detect: { env: { KEEPWIRE_SLOT: slot }, readCmdline: () => Promise.resolve(null) },
  });
  let healthy = opts.healthy ?? true;
  const holds: string[] = [];
  const switches: string[] = [];
  const act = new Activation({
    config: r.config,
    records: svc.records,
    state: svc.state,
    bus: r.bus,
    clock,
    boot: svc.boot,
    booted: slot,
    bypass: {
      hold: (_t, reason) => void holds.push(`hold ${reason}`),
      release: (_t, reason) => void holds.push(`release ${reason}`),
    },
    health: { essentialHealthy: () => healthy },
    switchTo: (why) => (switches.push(why), Promise.resolve()),
  });
  let gate: GateState = act.gate;
  const track = () => {
    if (act.gate !== gate) gateSeen.add(`${gate}->${act.gate}`);
    gate = act.gate;
  };
  return {
    svc,
    act,
    clock,
    holds,
    switches,
    setHealthy: (h: boolean) => (healthy = h),
    async start() {
      await act.start();
      track();
    },
    async advance(ms: number) {
      await clock.advance(ms);
      track();
    },
    stop() {
      act.stop();
      track();
    },
    state: () => svc.state.current().state,
  };
}

function transitions(r: Rig): string[] {
  const out = r.events.filter((e) => e.kind === "update.transition").map((e) =>
    `${e.payload.from}->${e.payload.to}`
  );
  for (const t of out) seen.add(t);
  return out;
}

async function rig(): Promise<Rig> {
  return await makeRig({ update: { activation: { mode: "restart", ...GATE } } });
}

async function install(r: Rig, svc: UpdateService, version: string): Promise<void> {
  const b = await makeBundle(r.dir, { keys: [r.key.signer], version, size: 70_000 });
  await svc.installFrom(b.path);
}

Deno.test("state: install, activate, trial, commit; the next install starts from committed", async () => {
  const r = await rig();
  try {
    const a = boot(r, "A");
    await a.start();
    assertEquals(a.state(), "idle");
    await install(r, a.svc, "2.0.0");
    assertEquals(a.state(), "installed");
    await install(r, a.svc, "2.0.1"); // a newer bundle replaces the installed one
    await a.act.activate();
    assertEquals(a.state(), "activating");
    assertEquals(a.holds, ["hold update"], "the bypass hold comes with activating");
    a.stop();
    const b = boot(r, "B");
    await b.start();
    assertEquals(b.state(), "trying");
    await b.advance(1_500);
    assertEquals([b.act.gate, b.state()], ["passed", "committed"]);
    assertEquals(b.holds, ["release update"]);
    await install(r, b.svc, "2.1.0"); // into A now
    assertEquals(b.svc.state.current().target, "A");
    assertEquals(transitions(r), [
      "idle->installing",
      "installing->installed",
      "installed->installing",
      "installing->installed",
      "installed->activating",
      "activating->trying",
      "trying->committed",
      "committed->installing",
      "installing->installed",
    ]);
  } finally {
    await r.close();
  }
});

Deno.test("state: failed install, never-started slot, crash on trial, failed gate: each a rollback", async () => {
  const r = await rig();
  try {
    let a = boot(r, "A");
    await a.start();
    // a tampered payload fails the install
    const bad = await makeBundle(r.dir, { keys: [r.key.signer], size: 200_000 });
    const f = await Deno.open(bad.path, { read: true, write: true });
    await f.seek(-100_000, Deno.SeekMode.End);
    await f.write(new Uint8Array([9, 9, 9]));
    f.close();
    await assertRejects(() => a.svc.installFrom(bad.path), UpdateError);
    assertEquals(a.state(), "install-failed");
    await install(r, a.svc, "2.0.0");
    await a.act.activate();
    // the box comes back in A: the new slot never started
    a.stop();
    a = boot(r, "A");
    await a.start();
    assertEquals(a.state(), "rolled-back");
    await install(r, a.svc, "2.0.1");
    await a.act.activate();
    a.stop();
    // B starts (trying), crashes; the bootloader falls back to A
    const b1 = boot(r, "B", { healthy: false });
    await b1.start();
    assertEquals(b1.state(), "trying");
    b1.stop();
    a = boot(r, "A");
    await a.start();
    assertEquals(a.state(), "rolled-back");
    await install(r, a.svc, "2.0.2");
    await a.act.activate();
    a.stop();
    // B starts and never gets healthy: the gate fails it and switches back
    const b2 = boot(r, "B", { healthy: false });
    await b2.start();
    await b2.advance(11_000);
    assertEquals([b2.act.gate, b2.state()], ["failed", "gate-failed"]);
    assertEquals(b2.switches.length, 1);
    a = boot(r, "A");
    await a.start();
    assertEquals(a.state(), "rolled-back");
    assertEquals(transitions(r), [
      "idle->installing",
      "installing->install-failed",
      "install-failed->installing",
      "installing->installed",
      "installed->activating",
      "activating->rolled-back",
      "rolled-back->installing",
      "installing->installed",
      "installed->activating",
      "activating->trying",
      "trying->rolled-back",
      "rolled-back->installing",
      "installing->installed",
      "installed->activating",
      "activating->trying",
      "trying->gate-failed",
      "gate-failed->rolled-back",
    ]);
    a.stop();
  } finally {
    await r.close();
  }
});

Deno.test("state: a reboot into an installed slot without activation puts it on trial", async () => {
  const r = await rig();
  try {
    const a = boot(r, "A");
    await a.start();
    await install(r, a.svc, "2.0.0");
    a.stop();
    const b = boot(r, "B");
    await b.start();
    assertEquals(b.state(), "trying");
    await b.advance(1_500);
    assertEquals(b.state(), "committed");
    assertEquals(transitions(r).slice(-2), ["installed->trying", "trying->committed"]);
  } finally {
    await r.close();
  }
});

Deno.test("state: a start that finds `installing` (keepwire killed mid-install) records install-failed", async () => {
  const r = await rig();
  try {
    // what a kill -9 after the installing transition leaves in the store
    r.svc.records.putState({
      state: "installing",
      target: "B",
      from: "A",
      version: "2.0.0",
      detail: "installing from x.kwb",
    });
    const before = r.events.length;
    const a = boot(r, "A");
    await a.start();
    assertEquals(a.state(), "install-failed");
    const t = r.events.slice(before).filter((e) => e.kind === "update.transition");
    assertEquals(t.map((e) => `${e.payload.from}->${e.payload.to}`), [
      "installing->install-failed",
    ]);
    seen.add("installing->install-failed");
    assert(a.svc.records.history(1)[0].detail?.includes("interrupted"));
    a.stop();
  } finally {
    await r.close();
  }
});

Deno.test("state: a start that finds `installing` after the last boot env write completes the install (and runs it on trial when booted)", async () => {
  const r = await rig();
  try {
    const a = boot(r, "A");
    await a.start();
    await install(r, a.svc, "2.0.0");
    a.stop();
    // killed after the target was made primary, before the state said installed
    r.svc.records.putState({
      state: "installing",
      target: "B",
      from: "A",
      version: "2.0.0",
      detail: "installing from x.kwb",
    });
    const before = r.events.length;
    const b = boot(r, "B"); // the bootloader picks the primary, B
    await b.start();
    assertEquals(b.state(), "trying");
    const t = r.events.slice(before).filter((e) => e.kind === "update.transition");
    assertEquals(t.map((e) => `${e.payload.from}->${e.payload.to}`), [
      "installing->installed",
      "installed->trying",
    ]);
    await b.advance(1_500);
    assertEquals(b.state(), "committed");
    b.stop();
  } finally {
    await r.close();
  }
});

Deno.test("state: no install while a slot is activating, on trial or failed its gate (409 busy, nothing written)", async () => {
  const r = await rig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 10_000 });
    for (const state of ["activating", "trying", "gate-failed"] as const) {
      r.svc.records.putState({ state, target: "B", from: "A", version: "2.0.0", detail: null });
      const writes = (r.env as MockBootEnv).writes.length;
      const e = await assertRejects(() => r.svc.installFrom(b.path), UpdateError) as UpdateError;
      assertEquals(e.code, "busy", state);
      assert(e.message.includes(state), e.message);
      assertEquals((r.env as MockBootEnv).writes.length, writes, "boot env untouched");
      assertEquals(r.svc.state.current().state, state);
    }
  } finally {
    await r.close();
  }
});

Deno.test("state: the machine refuses every transition the table lacks and keeps the record", () => {
  let rec: UpdateStateRecord | null = null;
  const m = new UpdateStateMachine({ get: () => rec, put: (r) => (rec = r) }, () => 5);
  assertEquals(m.current().state, "idle");
  for (const from of UPDATE_STATES) {
    for (const to of UPDATE_STATES) {
      rec = from === "idle"
        ? null
        : { state: from, target: "B", from: "A", version: "1", since: 1, detail: null };
      const allowed = TRANSITIONS[from].includes(to);
      assertEquals(m.can(to), allowed, `${from}->${to}`);
      if (allowed) {
        assertEquals(m.to(to, { detail: "x" }).state, to);
        assertEquals(rec!.since, 5);
      } else {
        const keep = rec;
        assertThrows(() => m.to(to, { detail: "x" }), IllegalUpdateTransition, `${from} -> ${to}`);
        assertEquals(rec, keep);
      }
    }
  }
});

Deno.test("gate: stop while waiting; and every update and gate transition was exercised above", async () => {
  const r = await rig();
  try {
    const a = boot(r, "A", { healthy: false });
    await a.start();
    a.stop();
    assertEquals(a.act.gate, "stopped");
    await a.start(); // a module restart: stopped -> waiting again
    assertEquals(a.act.gate, "waiting");
    a.stop();
  } finally {
    await r.close();
  }
  const want = (t: Readonly<Record<string, readonly string[]>>) =>
    Object.entries(t).flatMap(([from, tos]) => tos.map((to) => `${from}->${to}`));
  const missing = want(TRANSITIONS).filter((t) => !seen.has(t));
  assertEquals(missing, [], `update transitions not exercised: ${missing.join(", ")}`);
  const gateMissing = want(GATE_TRANSITIONS).filter((t) => !gateSeen.has(t));
  assertEquals(gateMissing, [], `gate transitions not exercised: ${gateMissing.join(", ")}`);
});
