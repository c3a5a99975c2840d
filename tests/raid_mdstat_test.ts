// mdstat parser against our own samples (tests/fixtures/mdstat, written for this suite to
// cover every grammar feature of md_seq_show/status_resync) and malformed input.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { describeUnknown, MdstatParseError, parseMdstat } from "../hw/raid/mdstat.ts";
import type { MdArray, Mdstat } from "../hw/raid/types.ts";
import { arrayStatus } from "../mod/storage/health.ts";

function assertThrows<E extends Error>(
  fn: () => unknown,
  cls: abstract new (...args: never[]) => E,
): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e}`);
  }
  throw new Error(`expected ${cls.name}, nothing thrown`);
}

const dir = new URL("./fixtures/mdstat/", import.meta.url);
const load = (name: string): Mdstat =>
  parseMdstat(Deno.readTextFileSync(new URL(name, dir)), { source: name });
const byName = (md: Mdstat, name: string): MdArray => {
  const a = md.arrays.find((x) => x.name === name);
  if (!a) throw new Error(`no ${name}`);
  return a;
};

Deno.test("mdstat: every level and its geometry (linear, multipath, raid0/1/4/5/6/10)", () => {
  const md = load("all_levels.mdstat");
  assertEquals(md.personalities, [
    "linear",
    "multipath",
    "raid0",
    "raid1",
    "raid6",
    "raid5",
    "raid4",
    "raid10",
  ]);
  assertEquals(md.arrays.map((a) => a.level), [
    "linear",
    "multipath",
    "raid0",
    "raid1",
    "raid4",
    "raid5",
    "raid6",
    "raid10",
    "raid10",
    "raid10",
  ]);
  assertEquals(md.unknown, []);
  assert(md.complete);
  const linear = byName(md, "md0");
  assertEquals(linear.geometry.roundingKiB, 64);
  assertEquals(linear.members.map((m) => [m.name, m.descNr]), [["sdb1", 1], ["sda1", 0]]);
  assertEquals([linear.raidDisks, linear.pattern], [null, null]);
  assertEquals(arrayStatus(linear).raidDisks, 2, "linear: raidDisks is the member count");
  const mp = byName(md, "md1");
  assertEquals([mp.metadata, mp.raidDisks, mp.workingDisks, mp.pattern], [null, 2, 2, "UU"]);
  const r0 = byName(md, "md2");
  assertEquals([r0.geometry.chunkKiB, r0.blocks, arrayStatus(r0).raidDisks], [512, 3142656, 3]);
  const r4 = byName(md, "md4");
  assertEquals(
    [r4.geometry.levelNum, r4.geometry.chunkKiB, r4.geometry.algorithm, r4.pattern],
    [4, 512, 0, "UUU"],
  );
  const r5 = byName(md, "md5");
  assertEquals([r5.metadata, r5.geometry.levelNum, r5.geometry.chunkKiB], ["1.0", 5, 64]);
  const r6 = byName(md, "md6");
  assertEquals([r6.metadata, r6.geometry.levelNum, r6.geometry.algorithm], ["1.1", 6, 18]);
  const near = byName(md, "md7");
  assertEquals([near.geometry.chunkKiB, near.geometry.nearCopies], [512, 2]);
  const far = byName(md, "md8");
  assertEquals([far.geometry.farCopies, far.raidDisks], [2, 3]);
  const off = byName(md, "md9");
  assertEquals(off.metadata, "non-persistent");
  assertEquals(
    [off.geometry.chunkKiB, off.geometry.offsetCopies, off.geometry.devicesPerSet],
    [256, 2, 2],
  );
  assertEquals(off.members[0].name, "nvme0n1p1");
  for (const a of md.arrays) {
    assertEquals(arrayStatus(a).health, "ok", a.name);
    assertEquals(a.extraStatus, [], a.name);
  }
});

Deno.test("mdstat: member flags (W) (J) (F) (S) (R) and their lists", () => {
  const md = load("flags.mdstat");
  const a = byName(md, "md10");
  assertEquals(a.members.map((m) => [m.name, m.descNr, m.flags]), [
    ["sda2", 0, []],
    ["sdb2", 1, ["W"]],
    ["sdc2", 2, ["W", "S"]],
    ["sdd2", 3, ["F"]],
    ["sde2", 4, ["W", "F"]],
  ]);
  const s = arrayStatus(a);
  assertEquals(s.failed, ["sdd2", "sde2"]);
  assertEquals(s.spares, ["sdc2"]);
  assertEquals(s.writeMostly, ["sdb2", "sdc2", "sde2"]);
  assertEquals(s.health, "ok", "failed members listed, [2/2]: redundancy intact");
  const j = byName(md, "md11");
  assertEquals(j.members[3], {
    name: "nvme0n1p3",
    descNr: 3,
    flags: ["J"],
    slot: null,
    sysfsState: null,
  });
  assertEquals(arrayStatus(j).spares, []);
  const r = arrayStatus(byName(md, "md12"));
  assertEquals(r.replacements, ["sdi2"]);
  assertEquals(r.health, "rebuilding", "recovery onto a replacement");
  assertEquals(r.sync, {
    action: "recovery",
    progress: 0.2737,
    finishSeconds: 30,
    speedKiBps: 24576,
  });
});

Deno.test("mdstat: resync/recovery/check/reshape progress and DELAYED/PENDING/REMOTE", () => {
  const md = load("sync_states.mdstat");
  const sync = (n: string) => byName(md, n).sync;
  assertEquals(sync("md20"), {
    action: "resync",
    status: "running",
    percent: 0.4,
    doneBlocks: 41984,
    totalBlocks: 10477568,
    finishMinutes: 4.1,
    speedKiBps: 41984,
  });
  assertEquals(sync("md21")?.action, "recovery");
  assertEquals(sync("md22")?.percent, 99.9);
  assertEquals(sync("md22")?.finishMinutes, 0);
  assertEquals(sync("md23")?.action, "reshape");
  const queued = (action: string, status: string) => ({
    action,
    status,
    percent: null,
    doneBlocks: null,
    totalBlocks: null,
    finishMinutes: null,
    speedKiBps: null,
  });
  assertEquals(sync("md24"), queued("resync", "delayed"));
  assertEquals(sync("md25"), queued("resync", "pending"));
  assertEquals(byName(md, "md25").readOnly, "auto-read-only");
  assertEquals(byName(md, "md26").readOnly, "read-only");
  assertEquals(sync("md26"), null);
  assertEquals(sync("md27"), queued("resync", "remote"));
  assertEquals(byName(md, "md27").bitmap?.pagesTotal, 1);
  assertEquals(sync("md28"), queued("recovery", "remote"));
  assertEquals(sync("md29"), queued("reshape", "remote"));
  const health = md.arrays.map((a) => [a.name, arrayStatus(a).health]);
  assertEquals(health, [
    ["md20", "ok"],
    ["md21", "rebuilding"],
    ["md22", "ok"],
    ["md23", "ok"],
    ["md24", "ok"],
    ["md25", "ok"],
    ["md26", "ok"],
    ["md27", "ok"],
    ["md28", "degraded"],
    ["md29", "ok"],
  ]);
  assertEquals(arrayStatus(byName(md, "md24")).sync, {
    action: "resync",
    progress: 0,
    finishSeconds: null,
    speedKiBps: null,
  });
  assertEquals(arrayStatus(byName(md, "md25")).readOnly, true);
});

Deno.test("mdstat: bitmap lines (KB chunk, B chunk, external file)", () => {
  const md = load("bitmaps.mdstat");
  assertEquals(byName(md, "md30").bitmap, {
    pagesUsed: 3,
    pagesTotal: 8,
    memKiB: 12,
    chunk: "65536KB",
    chunkBytes: 65536 * 1024,
    file: null,
  });
  assertEquals(byName(md, "md31").bitmap?.chunkBytes, 512);
  assertEquals(byName(md, "md31").bitmap?.chunk, "512B");
  assertEquals(byName(md, "md32").bitmap?.file, "/var/lib/md/md32-bitmap");
});

Deno.test("mdstat: external metadata (imsm/ddf containers and members), unused devices", () => {
  const md = load("external.mdstat");
  const m = byName(md, "md126");
  assertEquals(
    [m.metadata, m.external, m.container, m.subarray],
    ["external:/md127/0", "/md127/0", "md127", "0"],
  );
  const c = byName(md, "md127");
  assertEquals([c.active, c.level, c.external, c.container], [false, null, "imsm", null]);
  assertEquals(arrayStatus(c), {
    name: "md127",
    level: null,
    active: false,
    readOnly: false,
    health: "inactive",
    raidDisks: 0,
    activeDisks: 0,
    degradedDisks: 0,
    failed: [],
    spares: ["sdb", "sda"],
    replacements: [],
    writeMostly: [],
    members: [{ name: "sdb", index: 1, flags: ["S"] }, { name: "sda", index: 0, flags: ["S"] }],
    sync: null,
  });
  const ro = byName(md, "md124");
  assertEquals([ro.readOnly, ro.container, ro.subarray, ro.geometry.chunkKiB], [
    "read-only",
    "md125",
    "1",
    128,
  ]);
  assertEquals(byName(md, "md125").external, "ddf");
  assertEquals(md.unusedDevices, ["sde", "sdf1"]);
});

Deno.test("mdstat: inactive arrays (no level, level printed by old kernels, lone member)", () => {
  const md = load("inactive.mdstat");
  const a = arrayStatus(byName(md, "md40"));
  assertEquals([a.level, a.health, a.raidDisks, a.spares.length], [null, "inactive", 0, 3]);
  const old = byName(md, "md41");
  assertEquals([old.active, old.level, old.raidDisks, old.pattern], [false, "raid5", 3, "U_U"]);
  const s = arrayStatus(old);
  assertEquals([s.health, s.activeDisks, s.degradedDisks, s.failed], ["inactive", 0, 0, [
    "sdd5",
  ]]);
  const lone = arrayStatus(byName(md, "md42"));
  assertEquals([lone.level, lone.raidDisks, lone.health], [null, 1, "inactive"]);
});

Deno.test("mdstat: unknown lines are kept and reported, never fatal (CRLF, old and future lines)", () => {
  const md = load("unknown_lines.mdstat");
  assertEquals(md.arrays.map((a) => a.name), ["md_d0", "md51"]);
  assertEquals(md.unknown.map((u) => [u.line, u.array, u.text.trim()]), [
    [2, null, "read_ahead 1024 sectors"],
    [5, "md_d0", "some-future-kernel-line: 42"],
    [7, null, "md50 : frozen raid1 sdx[0] sdy[1]"],
    [8, null, "104320 blocks [2/2] [UU]"],
    [9, null, "bitmap: 0/1 pages [0KB], 65536KB chunk"],
    [13, "md51", "bitmap: llbitmap enabled"],
    [14, "md51", "resync=SOMEDAY"],
  ]);
  assert(!md.unknown.some((u) => u.text.endsWith("\r")), "CR stripped");
  const faulty = byName(md, "md51");
  assertEquals(faulty.level, "faulty");
  assertEquals(faulty.extraStatus, [
    "WriteTransient=0",
    "ReadTransient=0",
    "WritePersistent=0",
  ]);
  assertEquals(
    describeUnknown(md.unknown)[1],
    'line 5 (in md_d0) not understood: "      some-future-kernel-line: 42"',
  );
});

Deno.test("mdstat: no indentation and a missing 'unused devices' line (truncated capture)", () => {
  const md = load("no_indent_truncated.mdstat");
  assertEquals(md.complete, false);
  assertEquals(md.arrays.length, 2);
  const a = byName(md, "md1");
  assertEquals([a.raidDisks, a.workingDisks, a.pattern, a.sync?.percent], [3, 2, "UU_", 12.6]);
  assertEquals(arrayStatus(a).health, "rebuilding");
  assertEquals(md.unknown, []);
});

Deno.test("mdstat: empty personality list, no arrays", () => {
  const md = parseMdstat("Personalities : \nunused devices: <none>\n");
  assertEquals(md, {
    personalities: [],
    arrays: [],
    unusedDevices: [],
    complete: true,
    unknown: [],
  });
});

const malformed: [string, string, number, RegExp][] = [
  ["empty input", "", 1, /no "Personalities :" line/],
  ["not mdstat", "root:x:0:0:root:/root:/bin/bash\n", 1, /expected the "Personalities :" line/],
  ["bad personality", "Personalities : raid1\n", 1, /bad personality "raid1"/],
  [
    "bad member",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[x] sdb1[1]\n",
    2,
    /bad member "sda1\[x\]"/,
  ],
  [
    "token after members",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[0] raid1\n",
    2,
    /unexpected "raid1"/,
  ],
  [
    "bad [n/m]",
    "Personalities : [raid1]\n\nmd0 : active raid1 sda1[0]\n      100 blocks [2/x] [UU]\n",
    4,
    /bad bracket "\[2\/x\]"/,
  ],
  [
    "working > raid disks",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n      100 blocks [2/3] [UU]\n",
    3,
    /working devices 3 exceed raid devices 2/,
  ],
  [
    "bad pattern",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n      100 blocks [2/2] [UX]\n",
    3,
    /bad bracket "\[UX\]"/,
  ],
  [
    "bad progress",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n      100 blocks [2/2] [UU]\n" +
    "      [==>....]  resync = lots (1/100) finish=1.0min speed=1K/sec\n",
    4,
    /bad progress line/,
  ],
  [
    "bad bitmap",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n      100 blocks [2/2] [UU]\n" +
    "      bitmap: 1/x pages [4KB], 65536KB chunk\n",
    4,
    /bad bitmap line/,
  ],
  [
    "status outside an array",
    "Personalities : [raid1]\n      100 blocks [2/2] [UU]\n",
    2,
    /status line outside an array/,
  ],
  [
    "duplicate array",
    "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n\nmd0 : active raid1 sdb1[0]\n",
    4,
    /array md0 listed twice \(first at line 2\)/,
  ],
];

for (const [what, text, line, re] of malformed) {
  Deno.test(`mdstat: malformed input → MdstatParseError with line number (${what})`, () => {
    const err = assertThrows(() => parseMdstat(text, { source: "t.mdstat" }), MdstatParseError);
    assertEquals(err.line, line, err.message);
    assert(re.test(err.message), err.message);
    assert(err.message.startsWith(`t.mdstat:${line}: `), err.message);
  });
}

Deno.test("mdstat: a blank line ends the array: a stray status line after it is an error, never md0's status", () => {
  // With the blank line not ending md0's block, the stray line would silently turn md0
  // [2/2] [UU] into [2/1] [U_] (a healthy array reported degraded, or worse the reverse).
  const text = "Personalities : [raid1]\n" +
    "md0 : active raid1 sdb1[1] sda1[0]\n" +
    "      1048512 blocks super 1.2 [2/2] [UU]\n" +
    "\n" +
    "      1048512 blocks super 1.2 [2/1] [U_]\n" +
    "\n" +
    "unused devices: <none>\n";
  const err = assertThrows(() => parseMdstat(text, { source: "t.mdstat" }), MdstatParseError);
  assertEquals(err.line, 5, err.message);
  assert(/status line outside an array/.test(err.message), err.message);
  // Without the stray line the same block parses as the healthy array it is.
  const ok = parseMdstat(text.replace("      1048512 blocks super 1.2 [2/1] [U_]\n\n", ""));
  assertEquals(
    ok.arrays.map((a) => [a.name, arrayStatus(a).health, arrayStatus(a).degradedDisks]),
    [
      ["md0", "ok", 0],
    ],
  );
});
