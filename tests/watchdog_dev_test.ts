/**
 * /dev/watchdog driver. This machine's kernel has no watchdog device and no
 * module support (no softdog), so the driver is tested:
 * - through the REAL libc calls (Deno FFI) against fake device files (regular
 *   files: open/write work, the watchdog ioctls fail with ENOTTY as on any
 *   non-watchdog file) and a fake sysfs dir;
 * - through a fake kernel (the WatchdogSys seam) that implements the watchdog
 *   core's rules: single open (EBUSY), WDIOC_SETTIMEOUT with range and
 *   granularity, GETSUPPORT/GETBOOTSTATUS, magic close, nowayout.
 * A real-device test (softdog) is in tests/e2e/watchdog_softdog_test.ts.
 * These tests never open a real /dev/watchdog.
 */
import { ignored } from "./helpers/tools.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { join } from "node:path";
import {
  denoWatchdogSys,
  DevWatchdog,
  libcWatchdogSys,
  WatchdogError,
  type WatchdogSys,
  WatchdogSysError,
  WDIOC,
  WDIOF,
} from "../hw/watchdog/mod.ts";

async function wdErr(fn: () => Promise<unknown>): Promise<WatchdogError> {
  return (await assertRejects(fn, WatchdogError)) as WatchdogError;
}

/** The watchdog core's behaviour (drivers/watchdog/watchdog_dev.c), in memory. */
class FakeKernel implements WatchdogSys {
  readonly kind = "fake-kernel";
  readonly canIoctl = true;
  opened = false;
  running = false;
  allowRelease = false;
  timeout = 30;
  minTimeout = 1;
  maxTimeout = 300;
  granularity = 1;
  canSetTimeout = true;
  magicClose = true;
  nowayout = false;
  bootstatus = 0;
  pings = 0;
  bytes: number[] = [];
  ownedElsewhere = false;

  open(path: string): number {
    if (path !== "/dev/watchdog") throw new WatchdogSysError("open", 2);
    if (this.opened || this.ownedElsewhere) throw new WatchdogSysError("open", 16);
    this.opened = true;
    this.running = true;
    this.pings++;
    return 7;
  }
  write(fd: number, data: Uint8Array): number {
    assertEquals(fd, 7);
    this.allowRelease = false;
    for (const b of data) if (b === 0x56) this.allowRelease = true;
    this.bytes.push(...data);
    this.pings++;
    return data.length;
  }
  ioctl(fd: number, request: number, arg: Uint8Array): number {
    assertEquals(fd, 7);
    const int = new Int32Array(arg.buffer, arg.byteOffset, 1);
    switch (request) {
      case WDIOC.GETSUPPORT: {
        const dv = new DataView(arg.buffer, arg.byteOffset);
        let opts = WDIOF.KEEPALIVEPING | WDIOF.CARDRESET;
        if (this.canSetTimeout) opts |= WDIOF.SETTIMEOUT;
        if (this.magicClose) opts |= WDIOF.MAGICCLOSE;
        dv.setUint32(0, opts, true);
        dv.setUint32(4, 1, true);
        arg.set(new TextEncoder().encode("Fake Kernel WDT\0"), 8);
        return 0;
      }
      case WDIOC.GETBOOTSTATUS:
        int[0] = this.bootstatus;
        return 0;
      case WDIOC.GETTIMEOUT:
        int[0] = this.timeout;
        return 0;
      case WDIOC.SETTIMEOUT: {
        if (!this.canSetTimeout) throw new WatchdogSysError("ioctl", 95);
        const v = int[0];
        if (v < this.minTimeout || v > this.maxTimeout) throw new WatchdogSysError("ioctl", 22);
        this.timeout = Math.ceil(v / this.granularity) * this.granularity;
        this.pings++;
        int[0] = this.timeout;
        return 0;
      }
      default:
        throw new WatchdogSysError("ioctl", 25);
    }
  }
  close(fd: number): void {
    assertEquals(fd, 7);
    this.opened = false;
    if ((this.allowRelease || !this.magicClose) && !this.nowayout) this.running = false;
  }
}

Deno.test("watchdog dev: ioctl numbers equal linux/watchdog.h on x86_64/arm64", () => {
  assertEquals(WDIOC.GETSUPPORT, 0x80285700);
  assertEquals(WDIOC.GETSTATUS, 0x80045701);
  assertEquals(WDIOC.GETBOOTSTATUS, 0x80045702);
  assertEquals(WDIOC.KEEPALIVE, 0x80045705);
  assertEquals(WDIOC.SETTIMEOUT, 0xc0045706);
  assertEquals(WDIOC.GETTIMEOUT, 0x80045707);
  assertEquals(WDIOC.GETTIMELEFT, 0x8004570a);
});

Deno.test("watchdog dev (fake kernel): open sets the timeout by ioctl (granularity), pets, magic close stops", async () => {
  const k = new FakeKernel();
  k.granularity = 4;
  k.bootstatus = WDIOF.CARDRESET;
  let now = 5_000;
  const wd = new DevWatchdog({
    device: "/dev/watchdog",
    timeoutSec: 10,
    sys: k,
    sysfsDir: null,
    clock: { now: () => now },
  });
  await wd.open();
  assert(k.running && k.opened);
  let info = wd.info();
  assertEquals(info.timeoutSec, 12, "the driver rounded 10 up to 12");
  assertEquals(info.timeoutSource, "ioctl");
  assertEquals(info.identity, "Fake Kernel WDT");
  assertEquals(info.magicClose, true);
  assertEquals(info.lastResetByWatchdog, true);
  now = 6_000;
  await wd.pet();
  info = wd.info();
  assertEquals([info.pets, info.lastPetAt], [2, 6_000]); // open pets once
  assertEquals(await wd.setTimeout(21), 24);
  assert(!k.bytes.includes(0x56), "no 'V' before an orderly stop");
  await wd.close({ magic: true });
  assertEquals(k.bytes.at(-1), 0x56);
  assert(!k.opened && !k.running, "magic close stopped the watchdog");
  assertEquals(wd.info().open, false);
  assertEquals((await wdErr(() => wd.pet())).code, "not-open");
});

Deno.test("watchdog dev (fake kernel): plain close leaves it running; nowayout survives magic close", async () => {
  const k = new FakeKernel();
  const wd = new DevWatchdog({ device: "/dev/watchdog", timeoutSec: 30, sys: k, sysfsDir: null });
  await wd.open();
  await wd.close({ magic: false });
  assert(k.running, "still running after a plain close: the box resets unless reopened");
  await wd.open(); // reopen within the timeout (restarted keepwire)
  await wd.close({ magic: true });
  assert(!k.running);
  k.nowayout = true;
  await wd.open();
  await wd.close({ magic: true });
  assert(k.running, "nowayout: never stops");
});

Deno.test("watchdog dev (fake kernel): EBUSY names the owner; missing device", async () => {
  const k = new FakeKernel();
  k.ownedElsewhere = true;
  const e = await wdErr(() =>
    new DevWatchdog({ device: "/dev/watchdog", sys: k, sysfsDir: null }).open()
  );
  assertEquals(e.code, "busy");
  assert(e.message.includes("EBUSY") && e.message.includes("systemd"), e.message);
  assertEquals(e.device, "/dev/watchdog");
  k.ownedElsewhere = false;
  const a = new DevWatchdog({ device: "/dev/watchdog", sys: k, sysfsDir: null });
  await a.open();
  const b = new DevWatchdog({ device: "/dev/watchdog", sys: k, sysfsDir: null });
  assertEquals((await wdErr(() => b.open())).code, "busy", "single open");
  assertEquals((await wdErr(() => a.open())).code, "invalid", "already open");
  await a.close({ magic: true });
  const m = await wdErr(() =>
    new DevWatchdog({ device: "/dev/watchdog9", sys: k, sysfsDir: null }).open()
  );
  assertEquals(m.code, "missing");
});

Deno.test("watchdog dev (fake kernel): a timeout the driver rejects fails open and stops the watchdog", async () => {
  const k = new FakeKernel();
  k.maxTimeout = 60;
  const wd = new DevWatchdog({ device: "/dev/watchdog", timeoutSec: 120, sys: k, sysfsDir: null });
  const e = await wdErr(() => wd.open());
  assertEquals(e.code, "invalid");
  assert(e.message.includes("120") && e.message.includes("EINVAL"), e.message);
  assert(!k.opened && !k.running, "magic-closed after the failed setup");
  assertEquals(k.bytes.at(-1), 0x56);
  await assertRejects(() =>
    new DevWatchdog({ device: "/dev/watchdog", timeoutSec: 0, sys: k }).open()
  );
});

Deno.test("watchdog dev (fake kernel): no WDIOC_SETTIMEOUT -> writable sysfs timeout, else a warning", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const k = new FakeKernel();
    k.canSetTimeout = false;
    await Deno.writeTextFile(join(dir, "timeout"), "30\n");
    const wd = new DevWatchdog({ device: "/dev/watchdog", timeoutSec: 20, sys: k, sysfsDir: dir });
    await wd.open();
    assertEquals([wd.info().timeoutSec, wd.info().timeoutSource], [20, "sysfs"]);
    assertEquals(await Deno.readTextFile(join(dir, "timeout")), "20\n");
    await wd.close({ magic: true });
    // read-only sysfs attribute (as in mainline): the driver's timeout stays, with a warning
    await Deno.chmod(join(dir, "timeout"), 0o444);
    const wd2 = new DevWatchdog({ device: "/dev/watchdog", timeoutSec: 45, sys: k, sysfsDir: dir });
    await wd2.open();
    const info = wd2.info();
    assertEquals(info.timeoutSec, 30, "GETTIMEOUT of the driver");
    assert(
      info.warning?.includes("EOPNOTSUPP") && info.warning.includes("read-only"),
      info.warning!,
    );
    const e = await wdErr(() => wd2.setTimeout(50));
    assertEquals(e.code, "unsupported");
    await wd2.close({ magic: true });
    assert(!k.running);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------- real libc (FFI) on fake device files

const ffi = libcWatchdogSys();
if (!ffi) ignored("watchdog dev FFI tests: Deno FFI unavailable (run with -A)");

async function fakeDevice(): Promise<{ dir: string; dev: string; sysfs: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kw-wdt-" });
  const dev = join(dir, "watchdog");
  await Deno.writeFile(dev, new Uint8Array());
  const sysfs = join(dir, "sysfs");
  await Deno.mkdir(sysfs);
  await Deno.writeTextFile(join(sysfs, "timeout"), "60\n");
  await Deno.writeTextFile(join(sysfs, "identity"), "Fake sysfs WDT\n");
  await Deno.writeTextFile(join(sysfs, "nowayout"), "0\n");
  await Deno.writeTextFile(join(sysfs, "bootstatus"), "0\n");
  return { dir, dev, sysfs };
}

for (const [name, sys] of [["ffi", ffi], ["deno", denoWatchdogSys()]] as const) {
  Deno.test({
    name:
      `watchdog dev (${name} syscalls, fake device file): pets are writes, magic close writes 'V'`,
    ignore: sys === null,
    async fn() {
      const f = await fakeDevice();
      try {
        const wd = new DevWatchdog({ device: f.dev, timeoutSec: 15, sysfsDir: f.sysfs, sys: sys! });
        assertEquals(wd.sysKind, name);
        await wd.open();
        const info = wd.info();
        // a regular file answers the watchdog ioctls with ENOTTY: sysfs is used
        assertEquals([info.timeoutSec, info.timeoutSource], [15, "sysfs"]);
        assertEquals([info.identity, info.nowayout, info.lastResetByWatchdog], [
          "Fake sysfs WDT",
          false,
          false,
        ]);
        for (let i = 0; i < 3; i++) await wd.pet();
        await wd.close({ magic: true });
        assertEquals(await Deno.readFile(f.dev), new Uint8Array([0, 0, 0, 0, 0x56]));
        assertEquals(await Deno.readTextFile(join(f.sysfs, "timeout")), "15\n");
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "watchdog dev (ffi): real ENOENT/EISDIR errors; no timeout support at all -> open fails, magic-closed",
  ignore: ffi === null,
  async fn() {
    const f = await fakeDevice();
    try {
      const missing = await wdErr(() =>
        new DevWatchdog({ device: join(f.dir, "nope"), sysfsDir: null }).open()
      );
      assertEquals(missing.code, "missing");
      assert(
        missing.message.includes("no such device") && missing.message.includes("driver"),
        missing.message,
      );
      const dir = await wdErr(() => new DevWatchdog({ device: f.dir, sysfsDir: null }).open());
      assertEquals(dir.code, "io");
      assert(dir.message.includes("EISDIR"), dir.message);
      // no ioctl, no sysfs: the timeout can be neither set nor known
      const wd = new DevWatchdog({ device: f.dev, timeoutSec: 10, sysfsDir: null });
      const e = await wdErr(() => wd.open());
      assertEquals(e.code, "unsupported");
      assert(e.message.includes("ENOTTY") && e.message.includes("unknown"), e.message);
      assertEquals(
        await Deno.readFile(f.dev),
        new Uint8Array([0x56]),
        "stopped with 'V' before failing",
      );
      // without a configured timeout it opens and reports the unknown timeout
      const wd2 = new DevWatchdog({ device: f.dev, sysfsDir: null });
      await wd2.open();
      assertEquals(wd2.info().timeoutSec, null);
      await wd2.close({ magic: false });
      assertEquals((await Deno.readFile(f.dev)).at(-1), 0, "plain close writes no 'V'");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "watchdog dev (ffi): the ioctl int out-parameter reaches the kernel and back (FIONREAD)",
  ignore: ffi === null,
  async fn() {
    const f = await fakeDevice();
    try {
      await Deno.writeFile(f.dev, new Uint8Array(1234));
      const fd = ffi!.open(f.dev);
      try {
        const buf = new Int32Array([-1]);
        // FIONREAD (0x541B) on a regular file returns size - position, like WDIOC_GETTIMEOUT returns an int
        assertEquals(ffi!.ioctl(fd, 0x541b, new Uint8Array(buf.buffer)), 0);
        assertEquals(buf[0], 1234);
        const e = (() => {
          try {
            ffi!.ioctl(fd, WDIOC.SETTIMEOUT, new Uint8Array(4));
          } catch (err) {
            return err;
          }
        })();
        assert(e instanceof WatchdogSysError && e.code === "ENOTTY", String(e));
      } finally {
        ffi!.close(fd);
      }
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});
