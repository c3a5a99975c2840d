// Mock RAID driver: renders kernel-format mdstat on an injected clock (parsed by the real
// parser), scripted scenario steps, direct fault operations, and the driver factory.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { RaidMock } from "../hw/raid/mock.ts";
import { createRaidDriver, MdKernelSource, SmartctlReader } from "../hw/raid/mod.ts";
import { raidConfigSchema } from "../hw/raid/config.ts";
import { arrayStatus } from "../mod/storage/health.ts";

function fakeNow(start = 1_000_000): { now: () => number; tick: (ms: number) => void } {
  let t = start;
  return { now: () => t, tick: (ms) => void (t += ms) };
}

Deno.test("mock: fail-rebuild renders the kernel's mdstat at each step", async () => {
  const c = fakeNow();
  const m = new RaidMock({ scenario: "fail-rebuild", now: c.now });
  c.tick(25_000);
  assertEquals(
    m.renderMdstat(),
    `Personalities : [raid1] [raid6] [raid5] [raid4] 
md0 : active raid1 sda1[0] sdb1[1](F) sdc1[2]
      10485760 blocks super 1.2 [2/1] [U_]
      [==>..................]  recovery = 10.0% (1048576/10485760) finish=1.5min speed=104858K/sec
      bitmap: 0/8 pages [0KB], 65536KB chunk

md1 : active raid5 sdd1[0] sde1[1] sdf1[2]
      3906764800 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/3] [UUU]
      bitmap: 0/8 pages [0KB], 65536KB chunk

unused devices: <none>
`,
  );
  const snap = await m.read();
  assertEquals(snap.time, c.now());
  assertEquals(snap.mdstat.unknown, []);
  assertEquals(arrayStatus(snap.mdstat.arrays[0]).health, "rebuilding");
  c.tick(100_000); // 125 s: recovery done
  assertEquals(arrayStatus((await m.read()).mdstat.arrays[0]).health, "ok");
  c.tick(20_000); // 145 s: sdb1 removed, sdg1 added as spare
  assertEquals(
    (await m.read()).mdstat.arrays[0].members.map((x) => `${x.name}${x.flags.join("")}`),
    ["sda1", "sdc1", "sdg1S"],
  );
  const sdb = await m.asDriver().smart.read("/dev/sdb");
  assertEquals([sdb.health, sdb.passed, sdb.reallocatedSectors], ["failing", false, 1200]);
});

Deno.test("mock: a step long overdue still finishes syncs in order (one big clock jump)", async () => {
  const c = fakeNow();
  const m = new RaidMock({ scenario: "fail-rebuild", now: c.now });
  c.tick(200_000);
  const a = (await m.read()).mdstat.arrays[0];
  assertEquals([arrayStatus(a).health, a.sync], ["ok", null]);
  assertEquals(a.members.map((x) => x.name), ["sda1", "sdc1", "sdg1"]);
});

Deno.test("mock: direct operations and fault injection", async () => {
  const c = fakeNow();
  const m = new RaidMock({ now: c.now });
  m.startSync("md1", "repair", 10_000);
  c.tick(5_000);
  const text = m.renderMdstat();
  assert(text.includes("resync = 50.0%"), "repair prints as resync, as the kernel does");
  m.failMember("md0", "sda1");
  m.failMember("md0", "sdb1");
  assertEquals(arrayStatus((await m.read()).mdstat.arrays[0]).health, "failed");
  m.injectReadError("EIO");
  await m.read().then(() => {
    throw new Error("expected a read error");
  }, (e: Error) => assertEquals(e.message, "mock md driver: EIO"));
  m.injectReadError(null);
  m.setMdstat("Personalities : \nunused devices: <none>\n");
  assertEquals((await m.read()).mdstat.arrays, []);
  m.setMdstat(null);
  assertEquals((await m.read()).mdstat.arrays.length, 2);
  const d = m.asDriver(["/dev/sda"]);
  assertEquals(d.disks, ["/dev/sda"]);
  assertEquals(m.asDriver().disks.length, 7);
  m.setDisk("/dev/sda", { temperatureC: 65 });
  const r = await d.smart.read("/dev/sda");
  assertEquals([r.health, r.reasons], ["warning", ["temperature 65 °C"]]);
});

Deno.test("factory: config picks mock or md; defaults are valid", () => {
  const mock = createRaidDriver(raidConfigSchema.parse({}));
  assertEquals([mock.name, mock.md.driver, mock.disks.length], ["mock", "mock", 7]);
  const md = createRaidDriver(raidConfigSchema.parse({ driver: "md", disks: ["/dev/sda"] }));
  assertEquals(md.name, "md");
  assert(md.md instanceof MdKernelSource);
  assert(md.smart instanceof SmartctlReader);
  assertEquals(md.disks, ["/dev/sda"]);
  const bad = raidConfigSchema.safeParse({ driver: "zfs", disks: ["sda"], scenario: "boom" });
  assert(!bad.success);
  assertEquals(bad.error.issues.map((i) => i.path.join(".")).sort(), [
    "disks.0",
    "driver",
    "scenario",
  ]);
});
