/**
 * Silicom driver against a fake /proc/net/bypass tree in a temp dir. The pet file
 * (reset_bypass_wd) is a FIFO: a read of it is observable, and a stray read
 * anywhere else would block, so the tests also prove that only petWatchdog reads it.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { SILICOM_CAPS, SilicomBypassDriver } from "../hw/bypass/silicom.ts";
import { BypassDriverError } from "../hw/bypass/types.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { systemClock } from "../mod/module.ts";
import { createBypassModule } from "../mod/bypass/mod.ts";

const C = SILICOM_CAPS;
const CAPS = C.BP_CAP | C.BP_STATUS_CAP | C.SW_CTL_CAP | C.BP_DIS_CAP | C.STD_NIC_CAP |
  C.BP_PWOFF_ON_CAP | C.BP_PWOFF_OFF_CAP | C.BP_PWOFF_CTL_CAP | C.BP_PWUP_ON_CAP |
  C.BP_PWUP_OFF_CAP | C.BP_PWUP_CTL_CAP | C.WD_CTL_CAP | C.WD_STATUS_CAP | C.WD_TIMEOUT_CAP |
  C.DISC_CAP | C.DISC_PWUP_CTL_CAP;

/** Build a fake procfs tree for master eth2 / slave eth3 (files as bp_proc.c names them). */
async function fakeProc(over: Record<string, string> = {}): Promise<{ root: string; dir: string }> {
  const root = await Deno.makeTempDir({ prefix: "kw-silicom-" });
  const dir = join(root, "bypass_eth2");
  await Deno.mkdir(dir);
  const files: Record<string, string> = {
    bypass_info: "Name\t\t\t PE210G2BPI9\nFirmware version\t 0x9",
    bypass_slave: "eth3",
    bypass_caps: `0x${CAPS.toString(16)}`,
    wd_set_caps: "0x21", // 100 ms min, x2 steps
    bypass: "on",
    bypass_change: "off",
    bypass_wd: "disable",
    wd_expire_time: "disable",
    dis_bypass: "off",
    bypass_pwup: "on",
    bypass_pwoff: "on",
    std_nic: "off",
    tap: "fail",
    tap_change: "fail",
    dis_tap: "fail",
    tap_pwup: "fail",
    two_port_link: "on",
    wd_exp_mode: "bypass",
    wd_autoreset: "0",
    tpl: "off",
    wait_at_pwup: "off",
    hw_reset: "off",
    disc: "off",
    disc_change: "off",
    dis_disc: "off",
    disc_pwup: "off",
    ...over,
  };
  for (const [f, v] of Object.entries(files)) await Deno.writeTextFile(join(dir, f), `${v}\n`);
  const mk = await new Deno.Command("mkfifo", { args: [join(dir, "reset_bypass_wd")] }).output();
  assert(mk.success, "mkfifo");
  return { root, dir };
}

const read = async (dir: string, f: string) => (await Deno.readTextFile(join(dir, f))).trim();

/** Play the card's side of one pet: answer `answer` to the next read of reset_bypass_wd. */
function cardAnswersPet(dir: string, answer = "success"): Promise<void> {
  return (async () => {
    const f = await Deno.open(join(dir, "reset_bypass_wd"), { write: true });
    await f.write(new TextEncoder().encode(`${answer}\n`));
    f.close();
  })();
}

Deno.test("silicom: capabilities from bypass_caps; reads never touch reset_bypass_wd", async () => {
  const { root, dir } = await fakeProc({ wd_autoreset: "1000", bypass_slave: "eth9" });
  try {
    const d = new SilicomBypassDriver({ ports: ["eth2", "eth3"], root });
    // Every read path runs with no writer on the FIFO: a stray read would hang here.
    const rep = await d.open();
    assertEquals(rep.warnings.length, 2);
    assertStringIncludes(rep.warnings.join("\n"), "wd_autoreset is 1000 ms");
    assertStringIncludes(rep.warnings.join("\n"), "bypass_slave is eth9");
    const caps = await d.capabilities();
    assertEquals(caps.modes, ["inline", "bypass", "disconnect"]);
    assertEquals(caps.policies.powerOff.settable, ["bypass", "inline"]);
    assertEquals(caps.policies.powerUp.settable, ["bypass", "inline", "disconnect"]);
    assertEquals(caps.policies.watchdogExpiry.settable, ["bypass", "disconnect"]);
    assert(caps.watchdog);
    assertEquals(caps.watchdogRangeMs?.min, 100);
    assertEquals(await d.readMode(), "bypass");
    assertEquals(await d.readPolicies(), {
      powerOff: "bypass",
      powerUp: "bypass",
      watchdogExpiry: "bypass",
    });
    assertEquals(await d.readWatchdog(), {
      armed: false,
      timeoutMs: 0,
      remainingMs: null,
      expired: false,
    });
    assertEquals(dir, d.dir);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("silicom: modes are written on/off in a safe order and read back", async () => {
  const { root, dir } = await fakeProc();
  try {
    const d = new SilicomBypassDriver({ ports: ["eth2", "eth3"], root });
    await d.setMode("inline");
    assertEquals(await read(dir, "bypass"), "off");
    assertEquals(await d.readMode(), "inline");
    await d.setMode("disconnect");
    assertEquals(await read(dir, "disc"), "on");
    assertEquals(await read(dir, "bypass"), "off");
    assertEquals(await d.readMode(), "disconnect");
    await d.setMode("bypass");
    assertEquals(await read(dir, "bypass"), "on");
    assertEquals(await read(dir, "disc"), "off");
    assertEquals(await d.readMode(), "bypass");
    await assertRejects(() => d.setMode("tap"), BypassDriverError, "mode tap (this card");
    assertEquals(await read(dir, "tap"), "fail", "an unsupported file is never written");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("silicom: provisioning files and the watchdog (pet = one read of reset_bypass_wd)", async () => {
  const { root, dir } = await fakeProc();
  try {
    const d = new SilicomBypassDriver({ ports: ["eth2", "eth3"], root });
    await d.writePolicies({
      powerOff: "inline",
      powerUp: "disconnect",
      watchdogExpiry: "disconnect",
    });
    assertEquals(await read(dir, "bypass_pwoff"), "off");
    assertEquals(await read(dir, "disc_pwup"), "on");
    assertEquals(await read(dir, "bypass_pwup"), "off");
    assertEquals(await read(dir, "wd_exp_mode"), "disc");
    assertEquals(await d.readPolicies(), {
      powerOff: "inline",
      powerUp: "disconnect",
      watchdogExpiry: "disconnect",
    });
    assertEquals(await d.armWatchdog(5000), 5000);
    assertEquals(await read(dir, "bypass_wd"), "5000");
    await Deno.writeTextFile(join(dir, "wd_expire_time"), "4200\n");
    assertEquals(await d.readWatchdog(), {
      armed: true,
      timeoutMs: 5000,
      remainingMs: 4200,
      expired: false,
    });
    for (let i = 0; i < 3; i++) {
      const card = cardAnswersPet(dir);
      await d.petWatchdog();
      await card;
    }
    const refused = cardAnswersPet(dir, "disable");
    await assertRejects(() => d.petWatchdog(), BypassDriverError, "not armed");
    await refused;
    await Deno.writeTextFile(join(dir, "wd_expire_time"), "expire\n");
    const w = await d.readWatchdog();
    assertEquals([w.armed, w.expired], [false, true]);
    await d.disarmWatchdog();
    assertEquals(await read(dir, "bypass_wd"), "0");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("silicom: a missing port directory, a non-master port and garbage are clear errors", async () => {
  const { root, dir } = await fakeProc();
  try {
    const missing = new SilicomBypassDriver({ ports: ["eth7", "eth8"], root });
    const e = await assertRejects(() => missing.open(), BypassDriverError, "bypass_eth7 missing");
    assertStringIncludes(e.message, "is bpctl_mod loaded");
    await Deno.writeTextFile(join(dir, "bypass"), "maybe\n");
    const d = new SilicomBypassDriver({ ports: ["eth2", "eth3"], root });
    await assertRejects(
      () => d.readMode(),
      BypassDriverError,
      'expected on, off or fail, got "maybe"',
    );
    await Deno.writeTextFile(join(dir, "bypass_caps"), "-1\n");
    await assertRejects(() => d.open(), BypassDriverError, "not a bypass master");
    await Deno.remove(join(dir, "bypass_pwoff"));
    await assertRejects(
      () => d.writePolicies({ powerOff: "bypass" }),
      BypassDriverError,
      "cannot write",
    );
    let gone = false;
    try {
      await Deno.stat(join(dir, "bypass_pwoff"));
    } catch {
      gone = true;
    }
    assert(gone, "a missing attribute file is not created");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("silicom: the bypass module provisions once, goes inline and holds through the files", async () => {
  const { root, dir } = await fakeProc();
  const store = new Store({ path: ":memory:" });
  const bus = new EventBus({ journal: store });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { module: "bypass" });
  const config = validateConfig({
    hardware: {
      bypass: {
        segments: [{
          name: "wan",
          ports: ["eth2", "eth3"],
          driver: "silicom",
          silicom: { root },
          policies: { powerUp: "bypass", powerOff: "bypass", watchdogExpiry: "disconnect" },
        }],
        pollMs: 600_000,
      },
    },
  });
  const mod = createBypassModule({ config, store, bus, clock: systemClock });
  try {
    await mod.start();
    assertEquals(mod.segments()[0].mode, "inline");
    assertEquals(await read(dir, "bypass"), "off");
    assertEquals(await read(dir, "wd_exp_mode"), "disc");
    assertEquals(events.filter((e) => e.kind === "bypass.policies_written").length, 1);
    await mod.hold("wan", "update", "updater");
    assertEquals(await read(dir, "bypass"), "on");
    assertEquals(mod.segments()[0].mode, "bypass");
    await mod.release("wan", "update");
    assertEquals(await read(dir, "bypass"), "off");
    await mod.stop();
    assertEquals(await read(dir, "bypass"), "on", "an orderly stop leaves the wire in bypass");
  } finally {
    await mod.stop();
    store.close();
    await Deno.remove(root, { recursive: true });
  }
});
