/** Mock hardware watchdog on fake time, the `none` driver and the factory. */
import FakeTimers from "@sinonjs/fake-timers";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import type { Clock, TimerId } from "../mod/module.ts";
import {
  createWatchdog,
  DevWatchdog,
  MockWatchdog,
  NoneWatchdog,
  WatchdogError,
  type WatchdogReset,
} from "../hw/watchdog/mod.ts";

function fakeClock(): { clock: Clock; fake: ReturnType<typeof FakeTimers.createClock> } {
  const fake = FakeTimers.createClock(1_000_000);
  const clock: Clock = {
    now: () => fake.now,
    setTimeout: (fn, ms) => fake.setTimeout(fn, ms) as unknown as TimerId,
    clearTimeout: (id) => fake.clearTimeout(id as never),
    setInterval: (fn, ms) => fake.setInterval(fn, ms) as unknown as TimerId,
    clearInterval: (id) => fake.clearInterval(id as never),
  };
  return { clock, fake };
}

async function wdErr(fn: () => Promise<unknown>): Promise<WatchdogError> {
  return (await assertRejects(fn, WatchdogError)) as WatchdogError;
}

Deno.test("watchdog mock: petted in time never fires; a missed pet resets at exactly the timeout", async () => {
  const { clock, fake } = fakeClock();
  const fired: WatchdogReset[] = [];
  const wd = new MockWatchdog({ clock, timeoutSec: 10, onExpire: (r) => fired.push(r) });
  await wd.open();
  for (let i = 0; i < 100; i++) {
    fake.tick(9_999);
    await wd.pet();
  }
  assertEquals(fired.length, 0);
  assertEquals(wd.info().pets, 100);
  const lastPet = clock.now();
  fake.tick(9_999);
  assertEquals(wd.timeLeftMs(), 1);
  assertEquals(fired.length, 0);
  fake.tick(1);
  assertEquals(fired, [{
    at: lastPet + 10_000,
    lastPetAt: lastPet,
    timeoutSec: 10,
    wasOpen: true,
  }]);
  assertEquals(wd.resets.length, 1);
  assertEquals(wd.info().open, false, "after a reset nobody holds the device");
  assertEquals((await wdErr(() => wd.pet())).code, "not-open");
});

Deno.test("watchdog mock: magic close stops it; plain close leaves it running (reset follows)", async () => {
  const { clock, fake } = fakeClock();
  const wd = new MockWatchdog({ clock, timeoutSec: 5 });
  await wd.open();
  await wd.close({ magic: true });
  assertEquals(wd.running, false);
  fake.tick(60_000);
  assertEquals(wd.resets.length, 0);

  await wd.open();
  fake.tick(3_000);
  await wd.close({ magic: false }); // crash-like stop
  assert(wd.running);
  fake.tick(2_000);
  assertEquals(wd.resets.length, 1);
  assertEquals(wd.resets[0].wasOpen, false);

  // reopening within the timeout (a restarted keepwire) catches it in time
  await wd.open();
  await wd.close({ magic: false });
  fake.tick(4_000);
  await wd.open();
  fake.tick(4_000);
  await wd.pet();
  await wd.close({ magic: true });
  fake.tick(60_000);
  assertEquals(wd.resets.length, 1);
});

Deno.test("watchdog mock: nowayout ignores magic close; no magic-close support stops on any close", async () => {
  const { clock, fake } = fakeClock();
  const nwo = new MockWatchdog({ clock, timeoutSec: 5, nowayout: true });
  await nwo.open();
  await nwo.close({ magic: true });
  fake.tick(5_000);
  assertEquals(nwo.resets.length, 1);
  assertEquals(nwo.info().nowayout, true);

  const legacy = new MockWatchdog({ clock, timeoutSec: 5, magicClose: false });
  await legacy.open();
  await legacy.close({ magic: false });
  fake.tick(60_000);
  assertEquals(legacy.resets.length, 0);
});

Deno.test("watchdog mock: setTimeout rounds to granularity, restarts the countdown, rejects out of range", async () => {
  const { clock, fake } = fakeClock();
  const wd = new MockWatchdog({ clock, timeoutSec: 60, granularitySec: 4, maxTimeoutSec: 120 });
  assertEquals((await wdErr(() => wd.setTimeout(10))).code, "not-open");
  await wd.open();
  assertEquals(wd.info().timeoutSec, 60);
  fake.tick(50_000);
  assertEquals(await wd.setTimeout(10), 12);
  assertEquals(wd.timeLeftMs(), 12_000);
  assertEquals((await wdErr(() => wd.setTimeout(121))).code, "invalid");
  assertEquals((await wdErr(() => wd.setTimeout(0))).code, "invalid");
  assertEquals((await wdErr(() => wd.setTimeout(1.5))).code, "invalid");
  fake.tick(12_000);
  assertEquals(wd.resets[0].timeoutSec, 12);
  await wd.open(); // the timeout set earlier stays, as in the kernel
  assertEquals(wd.info().timeoutSec, 12);
  await wd.close({ magic: true });
});

Deno.test("watchdog mock: faults: open missing/busy/permission, pet fails, timeout unsupported; single open", async () => {
  const { clock, fake } = fakeClock();
  const wd = new MockWatchdog({ clock, timeoutSec: 5 });
  for (const f of ["missing", "busy", "permission"] as const) {
    wd.faults.open = f;
    assertEquals((await wdErr(() => wd.open())).code, f);
  }
  wd.faults.open = null;
  await wd.open();
  assertEquals((await wdErr(() => wd.open())).code, "busy", "single open");
  wd.faults.setTimeout = true;
  assertEquals((await wdErr(() => wd.setTimeout(10))).code, "unsupported");
  wd.faults.pet = true;
  fake.tick(4_000);
  assertEquals((await wdErr(() => wd.pet())).code, "injected");
  fake.tick(1_000);
  assertEquals(wd.resets.length, 1, "a failing pet does not restart the countdown");
});

Deno.test("watchdog none driver and factory", async () => {
  const none = new NoneWatchdog();
  await none.open();
  await none.pet();
  await none.close({ magic: false });
  assertEquals(none.info().driver, "none");
  assertEquals((await wdErr(() => none.setTimeout(10))).code, "unsupported");

  const { clock, fake } = fakeClock();
  const fired: WatchdogReset[] = [];
  const mock = createWatchdog({ driver: "mock", timeoutSec: 7 }, {
    clock,
    onExpire: (r) => fired.push(r),
  });
  assert(mock instanceof MockWatchdog);
  await mock.open();
  fake.tick(7_000);
  assertEquals(fired.length, 1);
  assert(createWatchdog({ driver: "none" }) instanceof NoneWatchdog);
  assert(createWatchdog({ driver: "dev", device: "/nonexistent/watchdog" }) instanceof DevWatchdog);
  for (
    const [cfg, field] of [
      [{ driver: "floppy" }, "driver"],
      [{ driver: "dev", timeoutSec: 0 }, "timeoutSec"],
      [{ driver: "mock", typo: 1 }, "typo"],
    ] as const
  ) {
    try {
      createWatchdog(cfg as never);
      throw new Error("accepted");
    } catch (e) {
      assert(e instanceof WatchdogError && e.code === "invalid", String(e));
      assert(e.message.includes(`hardware.watchdog`) && e.message.includes(field), e.message);
    }
  }
});
