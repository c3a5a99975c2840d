// Array health classification (ok | degraded | rebuilding | failed | inactive) per level and
// state, and the transition events of the storage monitor on hand-made polls.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseMdstat } from "../hw/raid/mdstat.ts";
import type { MdArray } from "../hw/raid/types.ts";
import { arrayHealth, arrayStatus } from "../mod/storage/health.ts";
import { StorageMonitor } from "../mod/storage/monitor.ts";

/** One array from a header tail and a status tail (and optional extra lines). */
function one(header: string, status: string, ...extra: string[]): MdArray {
  const text = `Personalities : [raid1]\nmd0 : ${header}\n      1000 blocks super 1.2 ${status}\n${
    extra.map((l) => `      ${l}\n`).join("")
  }\nunused devices: <none>\n`;
  return parseMdstat(text).arrays[0];
}
const health = (header: string, status: string, ...extra: string[]) =>
  arrayHealth(one(header, status, ...extra));
const PROGRESS = (action: string) =>
  `[=>...................]  ${action} =  5.0% (50/1000) finish=1.0min speed=1000K/sec`;

Deno.test("health: raid1, raid4/5, raid6 tolerance", () => {
  assertEquals(health("active raid1 a[0] b[1] c[2]", "[3/1] [U__]"), "degraded");
  assertEquals(health("active raid1 a[0] b[1](F)", "[2/0] [__]"), "failed");
  assertEquals(
    health("active raid5 a[0] b[1] c[2]", "level 5, 64k chunk, algorithm 2 [3/2] [UU_]"),
    "degraded",
  );
  assertEquals(
    health("active raid5 a[0] b[1] c[2]", "level 5, 64k chunk, algorithm 2 [3/1] [U__]"),
    "failed",
  );
  assertEquals(
    health("active raid4 a[0] b[1] c[2]", "level 4, 64k chunk, algorithm 0 [3/1] [_U_]"),
    "failed",
  );
  assertEquals(
    health("active raid6 a[0] b[1] c[2] d[3]", "level 6, 64k chunk, algorithm 2 [4/2] [U__U]"),
    "degraded",
  );
  assertEquals(
    health("active raid6 a[0] b[1] c[2] d[3]", "level 6, 64k chunk, algorithm 2 [4/1] [U___]"),
    "failed",
  );
  assertEquals(health("active multipath a[0] b[1]", "[2/1] [U_]"), "degraded");
});

Deno.test("health: raid10 near/far layouts lose data only when every copy is gone", () => {
  const near4 = (p: string) =>
    health("active raid10 a[0] b[1] c[2] d[3]", `512K chunks 2 near-copies [4/2] [${p}]`);
  assertEquals(near4("U__U"), "degraded", "pairs (0,1) and (2,3) each keep a copy");
  assertEquals(near4("__UU"), "failed", "pair (0,1) gone");
  const near3 = (p: string) =>
    health("active raid10 a[0] b[1] c[2]", `512K chunks 2 near-copies [3/1] [${p}]`);
  assertEquals(near3("_U_"), "failed", "3 disks near-2: chunk on (2,0) lost");
  const far4 = (p: string) =>
    health("active raid10 a[0] b[1] c[2] d[3]", `512K chunks 2 far-copies [4/2] [${p}]`);
  assertEquals(far4("U__U"), "failed", "far: copies on neighbouring devices");
  assertEquals(far4("_U_U"), "degraded");
});

Deno.test("health: raid0/linear without [n/m] fail when a member fails", () => {
  assertEquals(health("active raid0 a[0] b[1](F)", "64k chunks"), "failed");
  assertEquals(health("active linear a[0] b[1]", "0k rounding"), "ok");
  const s = arrayStatus(one("active raid0 a[0] b[1](F)", "64k chunks"));
  assertEquals([s.raidDisks, s.activeDisks, s.degradedDisks], [2, 1, 1]);
});

Deno.test("health: syncs — recovery/reshape rebuild, resync/check/repair are ok, queued is not rebuilding", () => {
  assertEquals(health("active raid1 a[0] b[1]", "[2/1] [U_]", PROGRESS("recovery")), "rebuilding");
  assertEquals(health("active raid1 a[0] b[1]", "[2/1] [U_]", "resync=DELAYED"), "degraded");
  assertEquals(
    health("active raid1 a[0] b[1](R) c[2]", "[2/2] [UU]", PROGRESS("recovery")),
    "rebuilding",
  );
  assertEquals(health("active raid1 a[0] b[1]", "[2/2] [UU]", PROGRESS("resync")), "ok");
  assertEquals(health("active raid1 a[0] b[1]", "[2/2] [UU]", PROGRESS("check")), "ok");
  assertEquals(
    health(
      "active raid5 a[0] b[1] c[2]",
      "level 5, 64k chunk, algorithm 2 [3/3] [UUU]",
      PROGRESS("reshape"),
    ),
    "ok",
  );
  assertEquals(
    health(
      "active raid5 a[0] b[1] c[2]",
      "level 5, 64k chunk, algorithm 2 [3/2] [UU_]",
      PROGRESS("reshape"),
    ),
    "rebuilding",
  );
  assertEquals(health("inactive a[0](S) b[1](S)", ""), "inactive");
});

const poll = (mon: StorageMonitor, text: string) =>
  mon.observeArrays(
    parseMdstat(`Personalities : [raid1]\n${text}\nunused devices: <none>\n`).arrays,
  )
    .map((e) => {
      const p = e.payload as Record<string, unknown>;
      return [e.kind.slice("storage.".length), p.step, p.device].filter((x) => x !== undefined)
        .map(String)
        .join(" ");
    });

Deno.test("monitor: first sight, FailSpare of a member that appears failed, RebuildNN jumps, action change", () => {
  const mon = new StorageMonitor({ increment: 20 });
  const md = (members: string, status: string, extra = "") =>
    `md0 : active raid1 ${members}\n      1000 blocks ${status}\n${extra}`;
  // First sight of a degraded, recovering array.
  assertEquals(poll(mon, md("a[0] b[1]", "[2/1] [U_]", `      ${PROGRESS("recovery")}\n`)), [
    "array_degraded",
    "rebuild_started",
    "array_health_changed",
  ]);
  // 5 % → 65 %: one event for the highest step crossed.
  assertEquals(
    poll(
      mon,
      md(
        "a[0] b[1]",
        "[2/1] [U_]",
        "      [=============>.......]  recovery = 65.0% (650/1000) finish=0.1min speed=1000K/sec\n",
      ),
    ),
    ["rebuild_progress 60"],
  );
  // The recovery target fails; a new member shows up already failed (counted as a spare).
  assertEquals(poll(mon, md("a[0] b[1](F) c[2](F)", "[2/1] [U_]")), [
    "member_failed b",
    "spare_failed c",
    "rebuild_finished",
    "array_health_changed",
  ]);
  // A resync replaced by a check: finished + started.
  const mon2 = new StorageMonitor();
  poll(mon2, md("a[0] b[1]", "[2/2] [UU]", `      ${PROGRESS("resync")}\n`));
  assertEquals(poll(mon2, md("a[0] b[1]", "[2/2] [UU]", `      ${PROGRESS("check")}\n`)), [
    "rebuild_finished",
    "rebuild_started",
  ]);
  // Active count up without a known spare: SpareActive without a device.
  const mon3 = new StorageMonitor();
  poll(mon3, md("a[0] b[1]", "[2/1] [U_]"));
  assertEquals(poll(mon3, md("a[0] b[1]", "[2/2] [UU]")), [
    "spare_active null",
    "array_health_changed",
  ]);
});
