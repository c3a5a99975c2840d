// Storage module on the mock driver and fake time: the scripted scenarios walked through
// every array health (ok, degraded, rebuilding, failed, inactive) and every event, module
// health, GET /api/storage, read errors, unknown mdstat lines, and start errors.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import { Hono } from "hono";
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import type { Clock, ModuleContext, TimerId } from "../mod/module.ts";
import { Store } from "../mod/store/mod.ts";
import { createStorageModule, StorageModule, type StorageView } from "../mod/storage/mod.ts";
import { RaidMock } from "../hw/raid/mock.ts";

const T0 = Date.UTC(2026, 0, 1);

interface Rig {
  clock: ReturnType<typeof FakeTimers.createClock>;
  ctx: ModuleContext;
  events: KwEvent[];
  store: Store;
  /** Events as [seconds since T0, kind without "storage.", detail]. */
  log(): [number, string, string][];
}

function rig(raid: Record<string, unknown>): Rig {
  const clock = FakeTimers.createClock(T0);
  const c: Clock = {
    now: () => clock.now,
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms) as unknown as TimerId,
    clearTimeout: (id) => clock.clearTimeout(id as unknown as number),
    setInterval: (fn, ms) => clock.setInterval(fn, ms) as unknown as TimerId,
    clearInterval: (id) => clock.clearInterval(id as unknown as number),
  };
  const store = new Store({ path: ":memory:", now: c.now });
  const bus = new EventBus({ journal: store, now: c.now });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { module: "storage" });
  const config = validateConfig({ hardware: { raid } });
  return {
    clock,
    ctx: { config, store, bus, clock: c },
    events,
    store,
    log: () =>
      events.map((e) => {
        const p = e.payload as Record<string, unknown>;
        const what = [
          p.array,
          p.disk,
          p.device,
          p.action,
          p.from !== undefined ? `${p.from}→${p.to}` : undefined,
          p.step,
        ]
          .filter((x) => x !== undefined && x !== null).join(" ");
        return [(e.time - T0) / 1000, e.kind.slice("storage.".length), what];
      }),
  };
}

/** Advance fake time step by step, letting each poll finish. */
async function advance(r: Rig, m: StorageModule, ms: number, step = 5000): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    await r.clock.tickAsync(step);
    await m.pollMd();
    await m.pollSmart();
  }
}

const arrayOf = (m: StorageModule, name: string) => {
  const a = m.arrays().find((x) => x.name === name);
  if (!a) throw new Error(`no ${name}`);
  return a;
};

Deno.test("storage: fail-rebuild scenario — ok → degraded → rebuilding → ok with mdadm events", async () => {
  const r = rig({
    driver: "mock",
    scenario: "fail-rebuild",
    pollMs: 5000,
    smartPollMs: 5000,
    expectSpares: { md0: 1 },
  });
  const m = createStorageModule(r.ctx);
  await m.start();
  try {
    await m.pollSmart();
    assertEquals(m.arrays().map((a) => [a.name, a.health]), [["md0", "ok"], ["md1", "ok"]]);
    assertEquals(arrayOf(m, "md0").spares, ["sdc1"]);
    assertEquals(m.disks().length, 7);
    assert(m.disks().every((d) => d.health === "ok"));
    assertEquals(r.events.length, 0, "a clean start publishes nothing");

    await advance(r, m, 10_000); // t = 10 s
    assertEquals(arrayOf(m, "md0").health, "degraded");
    assertEquals(arrayOf(m, "md0").failed, ["sdb1"]);
    assertEquals(m.health(), {
      ok: true,
      essential: false,
      detail: "md0 degraded, /dev/sdb failing",
    });

    await advance(r, m, 15_000); // t = 25 s: rebuilding 10 %
    const a = arrayOf(m, "md0");
    assertEquals([a.health, a.activeDisks, a.degradedDisks, a.spares], ["rebuilding", 1, 1, []]);
    assertEquals(a.sync?.action, "recovery");
    assert(Math.abs(a.sync!.progress - 0.1) < 0.001, String(a.sync!.progress));
    assertEquals(a.sync?.speedKiBps, 104858);
    assertEquals(a.sync?.finishSeconds, 90);

    await advance(r, m, 125_000); // t = 150 s
    assertEquals(arrayOf(m, "md0").health, "ok");
    assertEquals(arrayOf(m, "md0").spares, ["sdg1"]);
    assertEquals(arrayOf(m, "md0").failed, []);
    assertEquals(arrayOf(m, "md0").members.map((x) => x.name), ["sda1", "sdc1", "sdg1"]);

    assertEquals(r.log(), [
      [5, "disk_health_changed", "/dev/sdb ok→warning"],
      [10, "member_failed", "md0 sdb1"],
      [10, "array_degraded", "md0"],
      [10, "array_health_changed", "md0 ok→degraded"],
      [10, "disk_health_changed", "/dev/sdb warning→failing"],
      [15, "rebuild_started", "md0 recovery"],
      [15, "spares_missing", "md0"],
      [15, "array_health_changed", "md0 degraded→rebuilding"],
      [35, "rebuild_progress", "md0 recovery 20"],
      [55, "rebuild_progress", "md0 recovery 40"],
      [75, "rebuild_progress", "md0 recovery 60"],
      [95, "rebuild_progress", "md0 recovery 80"],
      [115, "rebuild_finished", "md0 recovery"],
      [115, "spare_active", "md0 sdc1"],
      [115, "array_health_changed", "md0 rebuilding→ok"],
    ]);
    const sev = Object.fromEntries(r.events.map((e) => [e.kind, e.severity]));
    assertEquals(sev["storage.member_failed"], "critical");
    assertEquals(sev["storage.array_degraded"], "critical");
    assertEquals(sev["storage.rebuild_started"], "warning");
    assertEquals(sev["storage.spare_active"], "info");
    assertEquals(sev["storage.disk_health_changed"], "critical");
    // mdadm --monitor's name of each event stays in the payload.
    assertEquals(r.events.flatMap((e) => e.payload.mdadm ?? []), [
      "Fail",
      "DegradedArray",
      "RebuildStarted",
      "SparesMissing",
      "Rebuild20",
      "Rebuild40",
      "Rebuild60",
      "Rebuild80",
      "RebuildFinished",
      "SpareActive",
    ]);
    const finished = r.events.find((e) => e.kind === "storage.rebuild_finished")!;
    assertEquals(finished.payload.completed, true);
    assertEquals(finished.module, "storage");
    // Every event is in the durable journal.
    assertEquals(r.store.events({ limit: 100 }).filter((e) => e.module === "storage").length, 15);
  } finally {
    await m.stop();
    r.store.close();
  }
});

Deno.test("storage: array-failure scenario — FailSpare, degraded → failed → inactive → gone", async () => {
  const r = rig({ driver: "mock", scenario: "array-failure", pollMs: 5000, smartPollMs: 5000 });
  const m = createStorageModule(r.ctx);
  await m.start();
  try {
    await m.pollSmart();
    assertEquals(arrayOf(m, "md1").spares, ["sdg1"]);
    await advance(r, m, 30_000);
    assertEquals(arrayOf(m, "md1").health, "failed");
    assertEquals(arrayOf(m, "md1").failed, ["sde1", "sdf1", "sdg1"]);
    assertEquals(m.health(), {
      ok: false,
      essential: false,
      detail: "md1 failed, /dev/sde failing, /dev/sdf warning, /dev/sdg failing",
    });
    await advance(r, m, 10_000);
    const inactive = arrayOf(m, "md1");
    assertEquals(
      [inactive.health, inactive.active, inactive.level, inactive.spares],
      ["inactive", false, null, ["sdd1"]],
    );
    assertEquals(m.health().ok, true, "inactive is not failed");
    await advance(r, m, 10_000);
    assertEquals(m.arrays().map((a) => a.name), ["md0"]);
    assertEquals(r.log(), [
      [10, "spare_failed", "md1 sdg1"],
      [10, "disk_health_changed", "/dev/sdg ok→failing"],
      [20, "member_failed", "md1 sde1"],
      [20, "array_degraded", "md1"],
      [20, "array_health_changed", "md1 ok→degraded"],
      [20, "disk_health_changed", "/dev/sde ok→failing"],
      [30, "member_failed", "md1 sdf1"],
      [30, "array_health_changed", "md1 degraded→failed"],
      [30, "disk_health_changed", "/dev/sdf ok→warning"],
      [40, "array_health_changed", "md1 failed→inactive"],
      [50, "array_disappeared", "md1 inactive→null"],
    ]);
    const sev = (k: string) => r.events.find((e) => e.kind === `storage.${k}`)?.severity;
    assertEquals(sev("spare_failed"), "critical");
    assertEquals(sev("array_disappeared"), "critical");
    assertEquals(
      r.events.filter((e) => e.kind === "storage.array_health_changed").map((e) => e.severity),
      ["error", "critical", "warning"],
    );
  } finally {
    await m.stop();
    r.store.close();
  }
});

const ONE = `Personalities : [raid1]
md0 : active raid1 sda1[0] sdb1[1]
      1047552 blocks super 1.2 [2/2] [UU]

unused devices: <none>
`;
const two = (pct: string, done: number) =>
  ONE.replace(
    "unused devices",
    `md5 : active raid1 sdc1[0] sdd1[1]
      1047552 blocks super 1.2 [2/1] [U_]
      [=>...................]  recovery = ${pct}% (${done}/1047552) finish=1.0min speed=16384K/sec

unused devices`,
  );

Deno.test("storage: NewArray, first-sight rebuild, check start/finish, unknown lines, read errors", async () => {
  const r = rig({ driver: "mock", pollMs: 1000 });
  const mock = new RaidMock({ now: () => r.clock.now });
  mock.setMdstat(ONE);
  const m = new StorageModule(r.ctx, { driver: mock.asDriver(["/dev/sda"]) });
  await m.start();
  try {
    mock.setMdstat(two(" 5.0", 52377));
    await advance(r, m, 1000, 1000);
    mock.setMdstat(two("21.0", 219985));
    await advance(r, m, 1000, 1000);
    // A check on md0 starts and ends; an unknown line appears once (reported once).
    mock.setMdstat(
      ONE.replace(
        "[UU]\n",
        "[UU]\n      [>....................]  check =  0.1% (1000/1047552) finish=9.9min speed=1000K/sec\n" +
          "      brand-new-kernel-line\n",
      ),
    );
    await advance(r, m, 2000, 1000);
    mock.setMdstat(ONE);
    await advance(r, m, 1000, 1000);
    // md read fails, then recovers; the failure is reported once.
    mock.injectReadError("mdstat vanished");
    await advance(r, m, 2000, 1000);
    assertEquals(m.health(), {
      ok: false,
      essential: false,
      detail: "cannot read md state: mock md driver: mdstat vanished",
    });
    assertEquals(m.view().error, "mock md driver: mdstat vanished");
    mock.injectReadError(null);
    await advance(r, m, 1000, 1000);
    assertEquals(m.health().ok, true);
    assertEquals(r.log(), [
      [1, "array_appeared", "md5"],
      [1, "array_degraded", "md5"],
      [1, "rebuild_started", "md5 recovery"],
      [1, "array_health_changed", "md5 null→rebuilding"],
      [2, "rebuild_progress", "md5 recovery 20"],
      [3, "mdstat_unknown_lines", ""],
      [3, "rebuild_started", "md0 check"],
      [3, "array_disappeared", "md5 rebuilding→null"],
      [5, "rebuild_finished", "md0 check"],
      [6, "read_failed", ""],
      [8, "read_recovered", ""],
    ]);
    const unk = r.events.find((e) => e.kind === "storage.mdstat_unknown_lines")!;
    assertEquals(unk.payload.lines, [
      'line 5 (in md0) not understood: "      brand-new-kernel-line"',
    ]);
  } finally {
    await m.stop();
    r.store.close();
  }
});

Deno.test("storage: SMART errors make a disk unknown; essential flag; GET /api/storage", async () => {
  const r = rig({ driver: "mock", essential: true, disks: ["/dev/sda", "/dev/sdz"] });
  const m = createStorageModule(r.ctx);
  await m.start();
  try {
    await m.pollSmart();
    const byDev = Object.fromEntries(m.disks().map((d) => [d.device, d]));
    assertEquals(byDev["/dev/sda"].health, "ok");
    assertEquals(byDev["/dev/sda"].model, "KEEPWIRE MOCK DISK 2TB");
    assertEquals(byDev["/dev/sdz"].health, "unknown", "no such disk: smartctl-like exit 1");
    assertEquals(m.health().essential, true);
    (m.driver.md as RaidMock).injectSmartError("/dev/sda", "smartctl killed");
    await m.pollSmart();
    const sda = m.disks().find((d) => d.device === "/dev/sda")!;
    assertEquals([sda.health, sda.error], ["unknown", "mock smartctl: smartctl killed"]);
    assertEquals(r.log(), [[0, "disk_health_changed", "/dev/sda ok→unknown"]]);

    const api = new Hono();
    api.route("/api", m.routes());
    const res = await api.request("/api/storage");
    assertEquals(res.status, 200);
    const body = await res.json() as StorageView;
    assertEquals(Object.keys(body), ["arrays", "disks", "updatedAt", "error"]);
    assertEquals(body.arrays.map((a) => a.name), ["md0", "md1"]);
    assertEquals(Object.keys(body.arrays[0]), [
      "name",
      "level",
      "active",
      "readOnly",
      "health",
      "raidDisks",
      "activeDisks",
      "degradedDisks",
      "failed",
      "spares",
      "replacements",
      "writeMostly",
      "members",
      "sync",
    ]);
    assertEquals(body.disks.map((d) => d.device), ["/dev/sda", "/dev/sdz"]);
    assertEquals(body.updatedAt, T0);
    assertEquals(body.error, null);
    assertEquals((m.status() as { driver: string }).driver, "mock");
  } finally {
    await m.stop();
    r.store.close();
  }
});

Deno.test("storage: md driver without mdstat fails start with an error naming driver and field", async () => {
  const r = rig({ driver: "md", mdstat: "/nonexistent/keepwire/mdstat", useSysfs: false });
  const m = createStorageModule(r.ctx);
  try {
    await m.start();
    throw new Error("start should fail");
  } catch (e) {
    const msg = (e as Error).message;
    assert(msg.startsWith("storage (driver md): "), msg);
    assert(msg.includes('hardware.raid.mdstat "/nonexistent/keepwire/mdstat"'), msg);
  } finally {
    await m.stop();
    r.store.close();
  }
});

Deno.test("storage: md driver on a file + fake sysfs, polled on the clock; a malformed mdstat is reported", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_storage_" });
  const r = rig({ driver: "md", mdstat: `${tmp}/mdstat`, sysfsRoot: `${tmp}/sys`, pollMs: 1000 });
  try {
    await Deno.writeTextFile(`${tmp}/mdstat`, ONE);
    const m = createStorageModule(r.ctx);
    await m.start();
    try {
      assertEquals(m.arrays()[0].health, "ok");
      // mdstat (read a moment earlier) shows the array degraded; sysfs already shows the
      // recovery onto sdb1 half done: sysfs wins.
      await Deno.writeTextFile(`${tmp}/mdstat`, ONE.replace("[2/2] [UU]", "[2/1] [U_]"));
      const md = `${tmp}/sys/md0/md`;
      await Deno.mkdir(`${md}/dev-sdb1`, { recursive: true });
      const attrs: Record<string, string> = {
        array_state: "clean",
        level: "raid1",
        raid_disks: "2",
        degraded: "1",
        sync_action: "recover",
        sync_completed: "1047552 / 2095104",
        sync_speed: "52000",
        "dev-sdb1/slot": "1",
        "dev-sdb1/state": "spare",
      };
      for (const [k, v] of Object.entries(attrs)) await Deno.writeTextFile(`${md}/${k}`, `${v}\n`);
      await advance(r, m, 1000, 1000);
      const a = m.arrays()[0];
      assertEquals([a.health, a.sync?.progress, a.sync?.speedKiBps], ["rebuilding", 0.5, 52000]);
      await Deno.remove(`${tmp}/sys`, { recursive: true });
      await advance(r, m, 1000, 1000);
      assertEquals(m.arrays()[0].health, "degraded", "sysfs gone: mdstat alone");
      await Deno.writeTextFile(`${tmp}/mdstat`, ONE.replace("sda1[0]", "sda1[zero]"));
      await advance(r, m, 1000, 1000);
      assertEquals(m.arrays()[0].health, "degraded", "last good state kept");
      assert(m.view().error?.includes(`${tmp}/mdstat:2: bad member "sda1[zero]"`), m.view().error!);
      assertEquals(r.log().map((x) => x[1]), [
        "array_degraded",
        "rebuild_started",
        "array_health_changed",
        "rebuild_finished",
        "array_health_changed",
        "read_failed",
      ]);
    } finally {
      await m.stop();
    }
  } finally {
    r.store.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("storage: an md member fault re-reads SMART at once, not at the next SMART poll", async () => {
  const r = rig({ driver: "mock", scenario: "clean", pollMs: 5000, smartPollMs: 300_000 });
  const m = createStorageModule(r.ctx);
  await m.start();
  try {
    await m.pollSmart();
    const sdb = () => m.disks().find((d) => d.device === "/dev/sdb")?.health;
    assertEquals(sdb(), "ok");
    const mock = m.driver.md as RaidMock;
    mock.setDisk("/dev/sdb", { passed: false, reallocated: 40 });
    mock.failMember("md0", "sdb1");
    await r.clock.tickAsync(5000); // the md poll, far before the next SMART poll
    await m.pollMd();
    const deadline = Date.now() + 5000;
    while (sdb() !== "failing" && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 10));
    }
    assertEquals(sdb(), "failing");
  } finally {
    await m.stop();
    r.store.close();
  }
});
