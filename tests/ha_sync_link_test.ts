/**
 * The HA module with two heartbeat paths (ha.syncLink), fake keepalived, fake time: the
 * sync group's and the sync instance's FIFO lines are known (not refused), the role
 * follows the address-carrying instance only, and a lower-priority advert on the sync
 * instance is a dual active like one on the LAN.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import { assertEquals } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";

Deno.test("ha module, two heartbeat paths: group and sync-instance lines are known; the role follows the LAN instance", async () => {
  const prev = setInterfaceCheck(() => true);
  const config = (() => {
    try {
      return validateConfig({
        dataDir: "/nonexistent",
        ha: {
          enabled: true,
          node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
          interface: "kwtest0",
          virtualAddresses: ["10.231.0.50/24"],
          peers: [{ address: "10.231.0.12", id: "n2", priority: 100 }],
          syncLink: { interface: "kwtest1", address: "10.232.1.1/30", peerAddress: "10.232.1.2" },
        },
      });
    } finally {
      setInterfaceCheck(prev);
    }
  })();
  const { clock } = fakeClock();
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha." });
  let ev!: EngineEvents;
  const engine: Engine = {
    config: "fake",
    pid: 1,
    start: () => Promise.resolve({ pid: 1 }),
    stop: () => Promise.resolve(),
    writeTrack: () => {},
  };
  const mod = createHaModule({ config, store, bus, clock }, {
    engine: (_h, _d, e) => {
      ev = e;
      return engine;
    },
  });
  await mod.start();
  try {
    ev.onLine('INSTANCE "keepwire_sync" MASTER 150');
    ev.onLine('GROUP "keepwire_paths" MASTER 0');
    assertEquals(mod.status().role, "init", "the sync instance does not drive the role");
    ev.onLine('INSTANCE "keepwire" MASTER 150');
    assertEquals(mod.status().role, "active");
    ev.onLine('INSTANCE "keepwire_sync" FAULT 0');
    assertEquals(mod.status().role, "active");
    ev.onLine('INSTANCE "keepwire_sync" MASTER_RX_LOWER_PRI 150');
    assertEquals(events.filter((e) => e.kind === "ha.dual_active").length, 1);
    assertEquals(mod.status().engine.refusedLines, 0);
    ev.onLine('INSTANCE "other" MASTER 150');
    ev.onLine('GROUP "other" MASTER 0');
    assertEquals(mod.status().engine.refusedLines, 2);
  } finally {
    await mod.stop();
  }
});
