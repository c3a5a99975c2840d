/**
 * POST /api/ha/upgrade through the HA module (fake keepalived, fake rollout driver): refused
 * off the active node and on a bad body, started on the active node, its progress and its
 * stop (step and reason) in the full status, saved in the settings, journalled.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule, haRoutes } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import type { UpgradeDriver, UpgradeNodeView } from "../mod/ha/upgrade.ts";
import { UPGRADE_KEY } from "../mod/ha/upgrade_link.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";
import { Hono } from "hono";
import { errorResponse } from "../mod/web/errors.ts";
import { KeepwireError } from "../mod/errors.ts";

class FakeEngine implements Engine {
  pid: number | null = null;
  config = "fake";
  constructor(public ev: EngineEvents) {}
  start(): Promise<{ pid: number }> {
    this.pid = 4001;
    return Promise.resolve({ pid: 4001 });
  }
  stop(): Promise<void> {
    this.pid = null;
    return Promise.resolve();
  }
  writeTrack(): void {}
  line(state: string, prio = 150): void {
    this.ev.onLine(`INSTANCE "keepwire" ${state} ${prio}`);
  }
}

const view: UpgradeNodeView = {
  node: "n1",
  role: "active",
  version: "1.0.0",
  compatible: "acme-gw",
  schema: "core:1",
  healthy: true,
  activation: "committed",
};

Deno.test("ha routes: POST /api/ha/upgrade refused off the active node, progress and stop in the status", async () => {
  const prev = setInterfaceCheck(() => true);
  const config = (() => {
    try {
      return validateConfig({
        ha: {
          enabled: true,
          node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
          interface: "kwtest0",
          virtualAddresses: ["10.231.0.50/24"],
          peers: [{ address: "10.231.0.12", id: "n2" }],
        },
        dataDir: "/nonexistent",
      });
    } finally {
      setInterfaceCheck(prev);
    }
  })();
  const { clock } = fakeClock();
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha.upgrade" });
  let engine!: FakeEngine;
  const driver: UpgradeDriver = {
    bundle: () => Promise.resolve({ version: "1.1.0", compatible: "acme-gw" }),
    local: () => Promise.resolve(view),
    peer: () => Promise.reject(new Error("connection refused")),
    send: () => Promise.reject(new Error("not reached")),
    peerInstall: () => Promise.reject(new Error("not reached")),
    handover: () => Promise.reject(new Error("not reached")),
    localInstall: () => Promise.reject(new Error("not reached")),
  };
  const mod = createHaModule({ config, store, bus, clock }, {
    engine: (_ha, _dir, ev) => engine = new FakeEngine(ev),
    upgradeDriver: driver,
  });
  await mod.start();
  try {
    const app = new Hono();
    app.onError((err, c) => {
      if (err instanceof KeepwireError) return errorResponse(c, err);
      throw err;
    });
    app.route("/api", haRoutes(mod));
    const post = (body: unknown) =>
      app.request("/api/ha/upgrade", {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
    assertEquals(mod.status().upgrade?.state, "idle");
    engine.line("BACKUP");
    const standby = await post({ bundle: "/tmp/x.kwb" });
    assertEquals(standby.status, 409);
    assertEquals((await standby.json()).error.code, "ha_not_active");
    const bad = await post({ bundl: "/tmp/x.kwb" });
    assertEquals(bad.status, 400);
    assert((await bad.json()).error.fields.bundle);
    assertEquals(events.length, 0);

    engine.line("MASTER");
    const ok = await post({ bundle: "/tmp/x.kwb", by: "alice" });
    assertEquals(ok.status, 200);
    const started = (await ok.json()).upgrade;
    assertEquals([started.state, started.bundle, started.by], ["checking", "/tmp/x.kwb", "alice"]);
    for (let i = 0; i < 2000 && mod.status().upgrade?.state === "checking"; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const u = (await (await app.request("/api/ha/status")).json()).upgrade;
    assertEquals([u.state, u.stoppedAt], ["stopped", "checking"]);
    assert(u.reason.includes("peer not reachable on the peer link: connection refused"), u.reason);
    assertEquals(store.getSetting<{ state: string }>(UPGRADE_KEY)?.state, "stopped");
    assertEquals(events.map((e) => e.kind), ["ha.upgrade_started", "ha.upgrade_stopped"]);
  } finally {
    await mod.stop();
    store.close();
  }
});
