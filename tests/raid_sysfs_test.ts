// md sysfs reader against a fake /sys/block tree in a temp dir, the merge rule
// (sysfs wins over mdstat where they differ), and the md driver reading both.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { parseMdstat } from "../hw/raid/mdstat.ts";
import { mergeSysfs, parseSyncCompleted, readMdSysfs } from "../hw/raid/md_sysfs.ts";
import { MdKernelSource, RaidDriverError } from "../hw/raid/mod.ts";
import { arrayStatus } from "../mod/storage/health.ts";

type Tree = { [name: string]: string | Tree };

async function writeTree(root: string, tree: Tree): Promise<void> {
  for (const [name, v] of Object.entries(tree)) {
    const p = join(root, name);
    if (typeof v === "string") await Deno.writeTextFile(p, v);
    else {
      await Deno.mkdir(p, { recursive: true });
      await writeTree(p, v);
    }
  }
}

interface MdDef {
  array_state: string;
  level: string;
  raid_disks: string;
  degraded?: string;
  sync_action?: string;
  sync_completed?: string;
  sync_speed?: string;
  metadata_version?: string;
  devs: Record<string, { slot: string; state: string; errors?: string }>;
}

function mdTree(d: MdDef): Tree {
  const md: Tree = {
    array_state: `${d.array_state}\n`,
    level: `${d.level}\n`,
    raid_disks: `${d.raid_disks}\n`,
    metadata_version: `${d.metadata_version ?? "1.2"}\n`,
  };
  if (d.degraded !== undefined) md.degraded = `${d.degraded}\n`;
  if (d.sync_action !== undefined) md.sync_action = `${d.sync_action}\n`;
  if (d.sync_completed !== undefined) md.sync_completed = `${d.sync_completed}\n`;
  if (d.sync_speed !== undefined) md.sync_speed = `${d.sync_speed}\n`;
  for (const [dev, v] of Object.entries(d.devs)) {
    md[`dev-${dev}`] = {
      slot: `${v.slot}\n`,
      state: `${v.state}\n`,
      errors: `${v.errors ?? "0"}\n`,
    };
  }
  return { md };
}

async function withTree(tree: Tree, fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "kw_sysfs_" });
  try {
    await writeTree(root, tree);
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const MDSTAT = `Personalities : [raid1] [raid0] [raid5]
md1 : active raid1 sda2[0] sdb2[1]
      467282752 blocks super 1.1 [2/2] [UU]
        resync=DELAYED

md6 : active raid1 sda3[0] sdc[2](S) sdb3[1](F)
      195310144 blocks super 1.2 [2/1] [U_]

md7 : active raid1 sdd1[0] sde1[1](W)
      1047552 blocks super 1.2 [2/2] [UU]

md8 : active raid0 sdf1[0] sdg1[1]
      2095104 blocks super 1.2 512k chunks

md9 : active (auto-read-only) raid1 sdh1[0] sdi1[1]
      1047552 blocks super 1.2 [2/2] [UU]
\tresync=PENDING

md10 : active raid1 sdj1[0] sdk1[1]
      1047552 blocks super 1.2 [2/2] [UU]
      [==>..................]  resync = 12.0% (125706/1047552) finish=0.1min speed=125706K/sec

md11 : active raid5 sdl1[0] sdm1[1] sdn1[2] sdo1[3]
      3142656 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/4] [UUUU]

unused devices: <none>
`;

const TREE: Tree = {
  // A queued check: mdstat says resync=DELAYED, sysfs knows it is a check.
  md1: mdTree({
    array_state: "clean",
    level: "raid1",
    raid_disks: "2",
    degraded: "0",
    sync_action: "check",
    sync_completed: "delayed",
    devs: { sda2: { slot: "0", state: "in_sync" }, sdb2: { slot: "1", state: "in_sync" } },
  }),
  // Recovery started after mdstat was read: the spare has a slot now, progress in sysfs.
  md6: mdTree({
    array_state: "clean",
    level: "raid1",
    raid_disks: "2",
    degraded: "1",
    sync_action: "recover",
    sync_completed: "97655072 / 390620288",
    sync_speed: "259783",
    devs: {
      sda3: { slot: "0", state: "in_sync" },
      sdc: { slot: "1", state: "spare" },
      sdb3: { slot: "none", state: "faulty", errors: "128" },
    },
  }),
  // sysfs knows better: a member failed, the array is degraded, and a member wants replacing.
  md7: mdTree({
    array_state: "active",
    level: "raid1",
    raid_disks: "2",
    degraded: "1",
    sync_action: "idle",
    sync_completed: "none",
    devs: {
      sdd1: { slot: "0", state: "in_sync,want_replacement" },
      sde1: { slot: "none", state: "faulty,write_mostly" },
    },
  }),
  // raid0 that lost a member (newer kernels): array_state broken.
  md8: mdTree({
    array_state: "broken",
    level: "raid0",
    raid_disks: "2",
    devs: { sdf1: { slot: "0", state: "in_sync" }, sdg1: { slot: "1", state: "in_sync" } },
  }),
  // read-only: sync_action idle does not contradict mdstat's PENDING.
  md9: mdTree({
    array_state: "read-auto",
    level: "raid1",
    raid_disks: "2",
    degraded: "0",
    sync_action: "idle",
    sync_completed: "none",
    devs: { sdh1: { slot: "0", state: "in_sync" }, sdi1: { slot: "1", state: "in_sync" } },
  }),
  // The resync finished between the two reads: sysfs (idle) wins.
  md10: mdTree({
    array_state: "clean",
    level: "raid1",
    raid_disks: "2",
    degraded: "0",
    sync_action: "idle",
    sync_completed: "none",
    devs: { sdj1: { slot: "0", state: "in_sync" }, sdk1: { slot: "1", state: "in_sync" } },
  }),
  // md11: no md directory at all (sysfs absent for it) → mdstat stands.
};

Deno.test("md sysfs: attributes and dev-* of a fake tree", async () => {
  await withTree(TREE, async (root) => {
    const s = await readMdSysfs("md6", root);
    assertEquals(s, {
      arrayState: "clean",
      level: "raid1",
      raidDisks: 2,
      degraded: 1,
      syncAction: "recover",
      syncCompleted: { done: 97655072, total: 390620288 },
      syncSpeed: 259783,
      metadataVersion: "1.2",
      devices: [
        { name: "sda3", slot: 0, state: ["in_sync"], errors: 0 },
        { name: "sdb3", slot: null, state: ["faulty"], errors: 128 },
        { name: "sdc", slot: 1, state: ["spare"], errors: 0 },
      ],
    });
    assertEquals(await readMdSysfs("md11", root), null, "no md dir → null");
    assertEquals(await readMdSysfs("md8", root).then((x) => x?.syncAction), null);
  });
});

Deno.test("md sysfs: raid_disks during reshape, container level, sync_completed forms", async () => {
  await withTree({
    md5: mdTree({
      array_state: "active",
      level: "raid6",
      raid_disks: "11 (10)",
      degraded: "0",
      sync_action: "reshape",
      sync_completed: "1569888 / 2093056",
      devs: {},
    }),
    md127: mdTree({
      array_state: "inactive",
      level: "container",
      raid_disks: "",
      metadata_version: "external:imsm",
      devs: {},
    }),
  }, async (root) => {
    const r = await readMdSysfs("md5", root);
    assertEquals([r?.raidDisks, r?.syncCompleted], [11, { done: 1569888, total: 2093056 }]);
    const c = await readMdSysfs("md127", root);
    assertEquals([c?.level, c?.raidDisks, c?.metadataVersion], [
      "container",
      null,
      "external:imsm",
    ]);
  });
  assertEquals(parseSyncCompleted("none"), "none");
  assertEquals(parseSyncCompleted("delayed"), "delayed");
  assertEquals(parseSyncCompleted("garbage"), null);
});

Deno.test("md sysfs: sysfs wins over mdstat where they differ", async () => {
  await withTree(TREE, async (root) => {
    const md = parseMdstat(MDSTAT);
    for (const a of md.arrays) {
      const s = await readMdSysfs(a.name, root);
      if (s) mergeSysfs(a, s);
    }
    const st = (n: string) => arrayStatus(md.arrays.find((a) => a.name === n)!);

    // md1: queued check (mdstat: resync=DELAYED).
    const md1 = md.arrays[0];
    assertEquals([md1.sync?.action, md1.sync?.status], ["check", "delayed"]);
    assertEquals(st("md1").sync, {
      action: "check",
      progress: 0,
      finishSeconds: null,
      speedKiBps: null,
    });

    // md6: recovery visible only in sysfs; the spare holds slot 1 and is no longer (S).
    const s6 = st("md6");
    assertEquals(s6.health, "rebuilding");
    assertEquals(s6.sync, {
      action: "recovery",
      progress: 0.25,
      finishSeconds: null,
      speedKiBps: 259783,
    });
    assertEquals(s6.spares, []);
    assertEquals(s6.failed, ["sdb3"]);
    assertEquals(md.arrays[1].members.map((m) => m.slot), [0, 1, null]);

    // md7: mdstat [2/2] but sysfs says degraded 1 and sde1 faulty.
    const s7 = st("md7");
    assertEquals([s7.health, s7.activeDisks, s7.degradedDisks], ["degraded", 1, 1]);
    assertEquals(s7.failed, ["sde1"]);
    assertEquals(s7.writeMostly, ["sde1"]);
    assertEquals(md.arrays[2].members[0].sysfsState, ["in_sync", "want_replacement"]);

    // md8: raid0 broken → failed.
    assertEquals(st("md8").health, "failed");

    // md9: PENDING kept, auto-read-only from array_state.
    assertEquals(md.arrays[4].sync?.status, "pending");
    assertEquals(md.arrays[4].readOnly, "auto-read-only");

    // md10: resync finished between the reads → no sync.
    assertEquals(st("md10").sync, null);

    // md11: no sysfs → as mdstat printed.
    assertEquals(md.arrays[6].sysfs, null);
    assertEquals(st("md11").health, "ok");
  });
});

Deno.test("md sysfs: array_state readonly / inactive override mdstat", async () => {
  await withTree({
    md0: mdTree({
      array_state: "readonly",
      level: "raid1",
      raid_disks: "2",
      degraded: "0",
      devs: {},
    }),
    md1: mdTree({ array_state: "inactive", level: "", raid_disks: "2", devs: {} }),
  }, async (root) => {
    const md = parseMdstat(
      "Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1]\n      10 blocks [2/2] [UU]\n\n" +
        "md1 : active raid1 sdc1[0] sdd1[1]\n      10 blocks [2/2] [UU]\n\nunused devices: <none>\n",
    );
    for (const a of md.arrays) mergeSysfs(a, (await readMdSysfs(a.name, root))!);
    assertEquals(md.arrays[0].readOnly, "read-only");
    assertEquals(arrayStatus(md.arrays[1]).health, "inactive");
  });
});

Deno.test("md driver: reads mdstat from the configured path and applies sysfs", async () => {
  await withTree(TREE, async (root) => {
    const file = join(root, "mdstat");
    await Deno.writeTextFile(file, MDSTAT);
    const src = new MdKernelSource({ mdstat: file, sysfsRoot: root, now: () => 42 });
    const snap = await src.read();
    assertEquals(snap.time, 42);
    assertEquals(snap.mdstat.arrays.map((a) => arrayStatus(a).health), [
      "ok",
      "rebuilding",
      "degraded",
      "failed",
      "ok",
      "ok",
      "ok",
    ]);
    const plain = await new MdKernelSource({ mdstat: file, sysfsRoot: null }).read();
    assertEquals(plain.mdstat.arrays[1].sync, null, "without sysfs only mdstat counts");
  });
});

Deno.test("md driver: a missing mdstat is a clear error naming hardware.raid.mdstat", async () => {
  const src = new MdKernelSource({ mdstat: "/nonexistent/keepwire/mdstat", sysfsRoot: null });
  try {
    await src.read();
    throw new Error("expected an error");
  } catch (e) {
    assert(e instanceof RaidDriverError, String(e));
    assert(e.message.includes('raid driver "md"'), e.message);
    assert(e.message.includes('hardware.raid.mdstat "/nonexistent/keepwire/mdstat"'), e.message);
  }
});
