/**
 * Activation and health gate on fake time: bypass hold before the switch,
 * commit after a continuous healthy period, fallback with an alert when the
 * trial fails, rollback detection after a crash loop, mark-good on every
 * healthy start (fallback starts included), hold kept until then.
 */
import { MockBootEnv } from "../hw/boot/mock.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { Activation, type BypassHolds } from "../mod/update/activation.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { UpdateService } from "../mod/update/service.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { FakeClock } from "./helpers/fake_clock.ts";

class FakeBypass implements BypassHolds {
  calls: string[] = [];
  fail = false;
  held = false;
  hold(target: string, reason: string): Promise<void> {
    this.calls.push(`hold ${target} ${reason}`);
    if (this.fail) return Promise.reject(new Error("relay stuck"));
    this.held = true;
    return Promise.resolve();
  }
  release(target: string, reason: string): Promise<void> {
    this.calls.push(`release ${target} ${reason}`);
    this.held = false;
    return Promise.resolve();
  }
}

function setup(booted: string, env: Record<string, string>) {
  const clock = new FakeClock();
  const config = updateConfigSchema.parse({
    compatible: "acme-gw",
    bootloader: { backend: "file", file: "/nonexistent/unused.json" },
    slots: {
      rootfs: {
        a: { device: "/tmp/none-a", bootname: "A" },
        b: { device: "/tmp/none-b", bootname: "B" },
      },
    },
    activation: { mode: "restart", healthGateMs: 10_000, healthTimeoutMs: 60_000 },
  });
  const store = new Store({ path: ":memory:" });
  const events: KwEvent[] = [];
  const bus = new EventBus({ journal: store, now: clock.now });
  bus.subscribe((e) => events.push(e));
  const bootEnv = new MockBootEnv(env);
  const svc = new UpdateService(config, store, bus, clock, {
    bootEnv,
    detect: { env: { KEEPWIRE_SLOT: booted } },
  });
  const bypass = new FakeBypass();
  let healthy = false;
  const switches: string[] = [];
  const order: string[] = [];
  const act = new Activation({
    config,
    records: svc.records,
    state: svc.state,
    bus,
    clock,
    boot: svc.boot,
    booted,
    bypass: {
      hold: (t, r) => (order.push("hold"), bypass.hold(t, r)),
      release: (t, r) => (order.push("release"), bypass.release(t, r)),
    },
    health: { essentialHealthy: () => healthy },
    switchTo: (reason) => {
      order.push("switch");
      switches.push(reason);
      return Promise.resolve();
    },
  });
  return {
    clock,
    svc,
    bootEnv,
    bypass,
    act,
    events,
    switches,
    order,
    setHealthy: (h: boolean) => (healthy = h),
    kinds: () => events.map((e) => e.kind),
    close: () => (act.stop(), store.close()),
  };
}

const ENV_B_PRIMARY = { ORDER: "B A", A_OK: "1", A_TRY: "0", B_OK: "1", B_TRY: "0" };

Deno.test("activation: hold on every segment first, then record, then switch", async () => {
  const t = setup("A", ENV_B_PRIMARY);
  try {
    t.svc.records.put({
      bootname: "B",
      slotClass: "rootfs",
      device: "/tmp/none-b",
      status: "pending",
      version: "2.0.0",
      compatible: "acme-gw",
      sha256: "a".repeat(64),
      size: 1,
      keyId: null,
      installedAt: 1,
      detail: null,
    });
    t.svc.records.putState({
      target: "B",
      from: "A",
      version: "2.0.0",
      state: "installed",
      detail: null,
    });
    const r = await t.act.activate();
    assertEquals(r, { target: "B", version: "2.0.0" });
    assertEquals(t.order, ["hold", "switch"]);
    assertEquals(t.bypass.calls, ["hold all update"]);
    assertEquals(t.svc.records.state()?.state, "activating");
    assert(t.kinds().includes("update.activating"));
  } finally {
    t.close();
  }
});

Deno.test("activation: refused when nothing is installed, and no switch when the hold cannot be placed", async () => {
  const t = setup("A", { ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" });
  try {
    await assertRejects(() => t.act.activate(), UpdateError, "nothing to activate");
    assertEquals(t.order, []);
    const installed = {
      target: "B",
      from: "A",
      version: "2.0.0",
      state: "installed",
      detail: null,
    } as const;
    t.svc.records.putState(installed);
    await assertRejects(
      () => t.act.activate(),
      UpdateError,
      "the primary slot is A, not B",
    );
    await t.bootEnv.set(ENV_B_PRIMARY);
    t.bypass.fail = true;
    await assertRejects(
      () => t.act.activate(),
      UpdateError,
      "cannot put the bypass hold, not switching",
    );
    assertEquals(t.switches, []);
    assertEquals(t.svc.records.state()?.state, "installed");
  } finally {
    t.close();
  }
});

Deno.test("gate: marks good only after healthGateMs of unbroken health; then commits and releases the hold", async () => {
  const t = setup("B", { ...ENV_B_PRIMARY, B_TRY: "1" }); // the launcher recorded the try
  try {
    t.svc.records.putState({
      target: "B",
      from: "A",
      version: "2.0.0",
      state: "activating",
      detail: null,
    });
    await t.act.start();
    assertEquals(t.svc.records.state()?.state, "trying");
    assert(t.kinds().includes("update.trying"));
    t.setHealthy(true);
    await t.clock.advance(6_000);
    t.setHealthy(false); // a blip resets the healthy period
    await t.clock.advance(1_000);
    t.setHealthy(true);
    await t.clock.advance(9_000);
    assertEquals(t.act.gate, "waiting");
    assertEquals(t.bootEnv.snapshot().B_TRY, "1");
    await t.clock.advance(2_000);
    assertEquals(t.act.gate, "passed");
    assertEquals([t.bootEnv.snapshot().B_OK, t.bootEnv.snapshot().B_TRY], ["1", "0"]);
    assertEquals(t.svc.records.state()?.state, "committed");
    assertEquals(t.bypass.calls, ["release all update"]);
    for (const k of ["update.committed", "update.marked_good", "update.hold_released"]) {
      assert(t.kinds().includes(k), k);
    }
    assertEquals(t.switches, []);
  } finally {
    t.close();
  }
});

Deno.test("gate: a trial that never gets healthy is marked bad, raises an alert, keeps the hold and falls back", async () => {
  const t = setup("B", { ...ENV_B_PRIMARY, B_TRY: "1" });
  try {
    t.svc.records.putState({
      target: "B",
      from: "A",
      version: "2.0.0",
      state: "trying",
      detail: null,
    });
    await t.act.start();
    await t.clock.advance(59_000);
    assertEquals(t.switches, []);
    await t.clock.advance(2_000);
    assertEquals(t.act.gate, "failed");
    assertEquals(t.bootEnv.snapshot().B_OK, "0", "new slot marked bad");
    assertEquals(t.svc.records.state()?.state, "gate-failed");
    const alert = t.events.find((e) => e.kind === "update.gate_failed")!;
    assertEquals(alert.severity, "critical");
    assertEquals(t.switches.length, 1);
    assert(t.switches[0].includes("fall back to slot A"));
    assertEquals(
      t.bypass.calls,
      [],
      "the activation's hold stays; no second hold (holds are counted), no release",
    );
    // the next pick of the bootloader/launcher is A
    assertEquals(await t.svc.boot.select(), "A");
  } finally {
    t.close();
  }
});

Deno.test("gate: start in the old slot during a pending activation = rollback (crash loop / tries used up); mark-good on the fallback start releases the hold", async () => {
  const t = setup("A", { ORDER: "B A", A_OK: "1", A_TRY: "1", B_OK: "1", B_TRY: "1" });
  try {
    t.svc.records.putState({
      target: "B",
      from: "A",
      version: "2.0.0",
      state: "trying",
      detail: null,
    });
    await t.act.start();
    const rb = t.events.find((e) => e.kind === "update.rolled_back")!;
    assertEquals([rb.severity, rb.payload.failed, rb.payload.running], ["critical", "B", "A"]);
    assertEquals(t.bootEnv.snapshot().B_OK, "0");
    assertEquals(t.svc.records.state()?.state, "rolled-back");
    assertEquals(t.bypass.calls, [], "hold kept while unhealthy");
    t.setHealthy(true);
    await t.clock.advance(12_000); // gate 10 s + one poll period
    assertEquals(t.act.gate, "passed");
    assertEquals(
      [t.bootEnv.snapshot().A_OK, t.bootEnv.snapshot().A_TRY],
      ["1", "0"],
      "fallback start marked good",
    );
    assertEquals(t.bypass.calls, ["release all update"]);
    assertEquals((await t.svc.status()).primary, "A");
  } finally {
    t.close();
  }
});

Deno.test("gate: after a failed gate the old slot's start reports the rollback", async () => {
  const t = setup("A", { ORDER: "B A", A_OK: "1", A_TRY: "1", B_OK: "0", B_TRY: "0" });
  try {
    t.svc.records.putState({
      target: "B",
      from: "A",
      version: "2.0.0",
      state: "gate-failed",
      detail: "health gate not passed within 60000 ms",
    });
    await t.act.start();
    const rb = t.events.find((e) => e.kind === "update.rolled_back")!;
    assertEquals(rb.payload.reason, "health gate not passed within 60000 ms");
    assertEquals(t.svc.records.state()?.state, "rolled-back");
  } finally {
    t.close();
  }
});

Deno.test("gate: an unhealthy slot not on trial raises an error once, never falls back, and is marked good once healthy", async () => {
  const t = setup("A", { ORDER: "A B", A_OK: "1", A_TRY: "1", B_OK: "0", B_TRY: "0" });
  try {
    await t.act.start();
    await t.clock.advance(120_000);
    assertEquals(t.events.filter((e) => e.kind === "update.unhealthy").length, 1);
    assertEquals(t.switches, []);
    assertEquals(t.bootEnv.snapshot().A_OK, "1");
    t.setHealthy(true);
    await t.clock.advance(11_000);
    assertEquals(t.act.gate, "passed");
    assertEquals(t.bootEnv.snapshot().A_TRY, "0");
  } finally {
    t.close();
  }
});
