/**
 * E2E: the dev watchdog driver against the kernel's softdog (a real
 * /dev/watchdogN): open, WDIOC_SETTIMEOUT, pet, magic close, checked in sysfs.
 *
 * SAFETY: an expiring softdog reboots the machine. This test only opens a
 * softdog that cannot reboot:
 * - it loads softdog itself with `modprobe softdog soft_noboot=1 nowayout=0`
 *   (and unloads it afterwards); or
 * - softdog is already there and KEEPWIRE_TEST_SOFTDOG=soft_noboot confirms it
 *   was loaded with soft_noboot=1 (the parameter is not visible in sysfs).
 * It refuses a softdog with nowayout=1, verifies the device is the softdog by
 * its sysfs identity, and ALWAYS magic-closes in `finally`.
 * On kernels without module support or softdog (like the CI VM this was written
 * on: CONFIG_MODULES is not set), it is ignored with the reason (KW-IGNORED line).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { DevWatchdog } from "../../hw/watchdog/mod.ts";
import { ignored } from "../helpers/tools.ts";

interface Softdog {
  device: string;
  sysfs: string;
  loadedByUs: boolean;
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const d = new TextDecoder();
    return { ok: r.success, out: d.decode(r.stdout) + d.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: String(e) };
  }
}

function findSoftdog(): { device: string; sysfs: string } | null {
  try {
    for (const e of Deno.readDirSync("/sys/class/watchdog")) {
      const sysfs = `/sys/class/watchdog/${e.name}`;
      const id = Deno.readTextFileSync(`${sysfs}/identity`).trim();
      if (id === "Software Watchdog") return { device: `/dev/${e.name}`, sysfs };
    }
  } catch {
    // no watchdog class
  }
  return null;
}

function prepare(): Softdog | string {
  if (Deno.uid() !== 0) return "needs root";
  let found = findSoftdog();
  let loadedByUs = false;
  if (!found) {
    try {
      Deno.statSync("/proc/modules");
    } catch {
      return "no softdog and a kernel without module support (no /proc/modules)";
    }
    const r = run("modprobe", ["softdog", "soft_noboot=1", "nowayout=0", "soft_margin=60"]);
    if (!r.ok) return `modprobe softdog failed: ${r.out.trim()}`;
    loadedByUs = true;
    found = findSoftdog();
    if (!found) return "softdog loaded but no /sys/class/watchdog entry";
    const dmesg = run("dmesg", []);
    const lines = dmesg.out.split("\n").filter((l) => /softdog.*soft_noboot=/.test(l));
    if (dmesg.ok && lines.length && !/soft_noboot=1/.test(lines[lines.length - 1])) {
      run("modprobe", ["-r", "softdog"]);
      return "dmesg says softdog has soft_noboot=0: refusing";
    }
  } else if (Deno.env.get("KEEPWIRE_TEST_SOFTDOG") !== "soft_noboot") {
    return "softdog already loaded by someone else; set KEEPWIRE_TEST_SOFTDOG=soft_noboot " +
      "only if it was loaded with soft_noboot=1";
  }
  const nowayout = Deno.readTextFileSync(`${found.sysfs}/nowayout`).trim();
  if (nowayout !== "0") {
    if (loadedByUs) run("modprobe", ["-r", "softdog"]);
    return `softdog has nowayout=${nowayout}: refusing`;
  }
  try {
    Deno.statSync(found.device);
  } catch {
    if (loadedByUs) run("modprobe", ["-r", "softdog"]);
    return `${found.device} missing`;
  }
  return { ...found, loadedByUs };
}

let softdog: Softdog | null = null;
let skip = "";
try {
  const p = prepare();
  if (typeof p === "string") skip = p;
  else softdog = p;
} catch (e) {
  skip = `cannot probe softdog: ${(e as Error).message}`;
}
if (skip) ignored(`softdog: ${skip}`);

Deno.test({
  name: "e2e watchdog: softdog: open, WDIOC_SETTIMEOUT, pet, magic close (sysfs confirms)",
  ignore: softdog === null,
  async fn() {
    const sd = softdog!;
    const wd = new DevWatchdog({ device: sd.device, timeoutSec: 30, sysfsDir: sd.sysfs });
    try {
      await wd.open();
      const info = wd.info();
      assertEquals(wd.sysKind, "ffi");
      assertEquals(info.identity, "Software Watchdog");
      assertEquals([info.timeoutSec, info.timeoutSource], [30, "ioctl"]);
      assertEquals(info.magicClose, true);
      assertEquals(Deno.readTextFileSync(`${sd.sysfs}/timeout`).trim(), "30");
      assertEquals(Deno.readTextFileSync(`${sd.sysfs}/state`).trim(), "active");
      await wd.pet();
      assertEquals(await wd.setTimeout(45), 45);
      assertEquals(Deno.readTextFileSync(`${sd.sysfs}/timeout`).trim(), "45");
      const second = new DevWatchdog({ device: sd.device, sysfsDir: sd.sysfs });
      const busy = await second.open().then(() => null, (e) => e);
      if (!busy) await second.close({ magic: true });
      assert(busy && busy.code === "busy", `second open: ${busy}`);
    } finally {
      await wd.close({ magic: true });
      assertEquals(Deno.readTextFileSync(`${sd.sysfs}/state`).trim(), "inactive");
      if (sd.loadedByUs) run("modprobe", ["-r", "softdog"]);
    }
  },
});
