/**
 * Test rig for the bypass module: a fake clock, a store in a temp dir, an event
 * log, and mock drivers that survive a restart of the module (like a real card).
 */
import FakeTimers from "@sinonjs/fake-timers";
import { join } from "node:path";
import { type ConfigInput, validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import type { Clock, ModuleContext, TimerId } from "../mod/module.ts";
import { type BypassModule, createBypassModule } from "../mod/bypass/mod.ts";
import { MockBypassDriver } from "../hw/bypass/mock.ts";
import type { SegmentConfig } from "../hw/bypass/config.ts";

/** Bypass section of a config. */
export type BypassInput = NonNullable<NonNullable<ConfigInput["hardware"]>["bypass"]>;

/** A running rig. */
export interface BypassRig {
  /** The module (started). */
  mod: BypassModule;
  /** The fake clock. */
  fake: ReturnType<typeof FakeTimers.createClock>;
  /** Clock adapter. */
  clock: Clock;
  /** Store. */
  store: Store;
  /** The event bus of the running module (a new one after restart). */
  bus: EventBus;
  /** Events published by module "bypass" since the rig was made. */
  events: KwEvent[];
  /** Simulated cards by segment name. */
  cards: Map<string, MockBypassDriver>;
  /** Advance fake time and let pending work finish. */
  advance(ms: number): Promise<void>;
  /** Events of one kind. */
  kinds(kind: string): KwEvent[];
  /** Stop the module, close and reopen the store, start a new module on the same cards. */
  restart(): Promise<void>;
  /** Stop and clean up. */
  close(): Promise<void>;
}

/** Build and start a rig with this bypass config. */
export async function bypassRig(bypass: BypassInput): Promise<BypassRig> {
  const fake = FakeTimers.createClock(1_700_000_000_000);
  const clock: Clock = {
    now: () => fake.now,
    setTimeout: (fn, ms) => fake.setTimeout(fn, ms) as unknown as TimerId,
    clearTimeout: (id) => fake.clearTimeout(id as never),
    setInterval: (fn, ms) => fake.setInterval(fn, ms) as unknown as TimerId,
    clearInterval: (id) => fake.clearInterval(id as never),
  };
  const dir = await Deno.makeTempDir({ prefix: "kw-bypass-" });
  const config = validateConfig({ dataDir: dir, hardware: { bypass } });
  const cards = new Map<string, MockBypassDriver>();
  const events: KwEvent[] = [];
  const open = () => new Store({ path: join(dir, "keepwire.db"), now: clock.now });
  let currentBus = new EventBus();
  const build = (store: Store) => {
    const bus = new EventBus({ journal: store, now: clock.now });
    bus.subscribe((e) => events.push(e), { module: "bypass" });
    currentBus = bus;
    const ctx: ModuleContext = { config, store, bus, clock };
    return createBypassModule(ctx, {
      driverFactory: (s: SegmentConfig) => {
        let d = cards.get(s.name);
        if (!d) {
          d = new MockBypassDriver({
            ports: s.ports,
            clock,
            initialMode: s.mock?.initialMode,
            switchMs: s.mock?.switchMs,
            stuck: s.mock?.stuck,
            tap: s.mock?.tap,
          });
          cards.set(s.name, d);
        }
        return d;
      },
    });
  };
  // Stopping may switch a slow (simulated) relay: keep fake time moving meanwhile.
  const stopTicking = async (m: BypassModule) => {
    let done = false;
    const p = m.stop().finally(() => done = true);
    for (let i = 0; i < 10_000 && !done; i++) await fake.tickAsync(10);
    await p;
  };
  const rig: BypassRig = {
    mod: undefined as unknown as BypassModule,
    get bus() {
      return currentBus;
    },
    fake,
    clock,
    store: open(),
    events,
    cards,
    async advance(ms: number) {
      await fake.tickAsync(ms);
    },
    kinds: (kind: string) => events.filter((e) => e.kind === kind),
    async restart() {
      await stopTicking(rig.mod);
      rig.store.close();
      rig.store = open();
      rig.mod = build(rig.store);
      await rig.mod.start();
    },
    async close() {
      try {
        await stopTicking(rig.mod);
      } finally {
        for (const c of cards.values()) c.dispose();
        rig.store.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
  rig.mod = build(rig.store);
  try {
    await rig.mod.start();
  } catch (e) {
    rig.store.close();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  return rig;
}
