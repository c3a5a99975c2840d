/** The mock bypass driver: faults and the card watchdog on an injected clock. */
import FakeTimers from "@sinonjs/fake-timers";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { MockBypassDriver } from "../hw/bypass/mock.ts";
import { BypassDriverError } from "../hw/bypass/types.ts";
import { createBypassDriver } from "../hw/bypass/mod.ts";
import { segmentConfigSchema } from "../hw/bypass/config.ts";
import type { Clock, TimerId } from "../mod/module.ts";

function fakeClock() {
  const fake = FakeTimers.createClock(0);
  const clock: Clock = {
    now: () => fake.now,
    setTimeout: (fn, ms) => fake.setTimeout(fn, ms) as unknown as TimerId,
    clearTimeout: (id) => fake.clearTimeout(id as never),
    setInterval: (fn, ms) => fake.setInterval(fn, ms) as unknown as TimerId,
    clearInterval: (id) => fake.clearInterval(id as never),
  };
  return { fake, clock };
}

Deno.test("mock bypass: switches, reads back, stuck relay and driver errors", async () => {
  const { clock } = fakeClock();
  const d = new MockBypassDriver({ ports: ["a", "b"], clock });
  assertEquals(await d.readMode(), "bypass");
  await d.setMode("inline");
  assertEquals(await d.readMode(), "inline");
  d.injectFault({ stuck: true });
  await d.setMode("bypass");
  assertEquals(await d.readMode(), "inline", "stuck: the relay did not move");
  d.clearFaults();
  d.injectFault({ error: "bus error", errorOn: "set" });
  const e = await assertRejects(() => d.setMode("bypass"), BypassDriverError, "mock: bus error");
  assertEquals((e as BypassDriverError).code, "fault");
  assertEquals(await d.readMode(), "inline", "reads still work with errorOn=set");
  d.injectFault({ errorOn: "read" });
  await assertRejects(() => d.readMode(), BypassDriverError, "bus error");
  d.clearFaults();
  await assertRejects(() => d.setMode("tap"), BypassDriverError, "not supported");
  const caps = await d.capabilities();
  assertEquals(caps.modes, ["inline", "bypass", "disconnect"]);
  assert(caps.watchdog);
});

Deno.test("mock bypass: a slow switch takes its time on the injected clock", async () => {
  const { fake, clock } = fakeClock();
  const d = new MockBypassDriver({ ports: ["a", "b"], clock, switchMs: 400 });
  d.injectFault({ slowMs: 600 });
  let done = false;
  const p = d.setMode("inline").then(() => done = true);
  await fake.tickAsync(999);
  assertEquals(done, false);
  assertEquals(d.mode, "bypass");
  await fake.tickAsync(1);
  await p;
  assertEquals(d.mode, "inline");
});

Deno.test("mock bypass: card watchdog arms, pets, expires into its expiry policy", async () => {
  const { fake, clock } = fakeClock();
  const d = new MockBypassDriver({
    ports: ["a", "b"],
    clock,
    initialMode: "inline",
    policies: { watchdogExpiry: "disconnect" },
  });
  assertEquals(await d.armWatchdog(1450), 1500, "rounded up to 100 ms steps");
  await fake.tickAsync(1000);
  let w = await d.readWatchdog();
  assertEquals(w, { armed: true, timeoutMs: 1500, remainingMs: 500, expired: false });
  await d.petWatchdog();
  await fake.tickAsync(1400);
  assertEquals(d.mode, "inline");
  await fake.tickAsync(100);
  assertEquals(d.mode, "disconnect");
  w = await d.readWatchdog();
  assertEquals(w.expired, true);
  assertEquals(w.armed, false);
  await assertRejects(() => d.petWatchdog(), BypassDriverError, "not armed");
  await d.disarmWatchdog();
  assertEquals((await d.readWatchdog()).expired, false);
  d.dispose();
});

Deno.test("mock bypass: the factory builds it from config; power cycle follows the policies", async () => {
  const { clock } = fakeClock();
  const seg = segmentConfigSchema.parse({
    name: "s",
    ports: ["x", "y"],
    mock: { initialMode: "inline", tap: true },
  });
  const d = createBypassDriver(seg, { clock }) as MockBypassDriver;
  assertEquals(d.kind, "mock");
  assertEquals(await d.readMode(), "inline");
  assert((await d.capabilities()).modes.includes("tap"));
  await d.writePolicies({ powerUp: "tap" });
  d.powerCycle();
  assertEquals(d.mode, "tap");
  assertEquals(d.policyWrites, 1);
});
