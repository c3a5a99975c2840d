/**
 * THE A/B boot scheme suite (hw/boot/ab.ts): every operation of the `grub` and
 * `uboot` schemes with its exact write, mark-bad as RAUC's backends do it, the
 * boot script's pick (`select`) as RAUC's example scripts do it, and the whole
 * install → trial → crash → fallback cycle on real envs: a grubenv driven by
 * `grub-editenv` (playing contrib/grub.conf) and a U-Boot env driven by
 * `fw_printenv`/`fw_setenv` (playing contrib/uboot.sh), where what our scheme
 * reads must agree with what the real tools print. The updater's install and
 * activation tests use these same objects and agree with this file.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { join } from "node:path";
import {
  type BootScheme,
  type BootSchemeName,
  createBootScheme,
  parseBootInt,
} from "../hw/boot/ab.ts";
import { BootEnvError, GrubEnv, MockBootEnv, UBootEnv } from "../hw/boot/mod.ts";
import { fixture, rawPrintenv } from "./bootenv_uboot_image.ts";
import { missingTools } from "./helpers/tools.ts";

function mock(scheme: BootSchemeName, vars?: Record<string, string>): {
  env: MockBootEnv;
  ab: BootScheme;
} {
  const init = vars ??
    (scheme === "grub"
      ? { ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "1", B_TRY: "0" }
      : { BOOT_ORDER: "A B", BOOT_A_LEFT: "3", BOOT_B_LEFT: "3" });
  const env = new MockBootEnv(init);
  return { env, ab: createBootScheme(scheme, env, { slots: ["A", "B"], attempts: 3 }) };
}

async function states(ab: BootScheme): Promise<string> {
  const v = await ab.read();
  return `${v.order.join(" ")}|${v.slots.map((s) => `${s.name}=${s.state}`).join(" ")}|${
    v.primary ?? "-"
  }`;
}

Deno.test("ab: parseBootInt follows strtoull (base 0 / 16)", () => {
  assertEquals(parseBootInt("1", 0), 1);
  assertEquals(parseBootInt("0x10", 0), 16);
  assertEquals(parseBootInt("010", 0), 8);
  assertEquals(parseBootInt("1abc", 0), 1);
  assertEquals(parseBootInt("", 0), 0);
  assertEquals(parseBootInt("junk", 0), 0);
  assertEquals(parseBootInt(undefined, 0), null);
  assertEquals(parseBootInt("a", 16), 10);
  assertEquals(parseBootInt("0x3", 16), 3);
});

Deno.test("ab grub: each operation is ONE write with RAUC's variables; state and primary follow", async () => {
  const { env, ab } = mock("grub");
  assertEquals(await states(ab), "A B|A=good B=good|A");
  await ab.markBad("B"); // before an install writes B: order untouched (RAUC grub.c)
  assertEquals(env.writes.at(-1), { B_OK: "0", B_TRY: "0" });
  assertEquals(await states(ab), "A B|A=good B=bad|A");
  await ab.setPrimary("B");
  assertEquals(env.writes.at(-1), { B_OK: "1", B_TRY: "0", ORDER: "B A" });
  assertEquals(await states(ab), "B A|A=good B=good|B");
  await env.set({ B_TRY: "1" }); // grub.conf boots B once
  assertEquals(await states(ab), "B A|A=good B=trying|A");
  assertEquals(await ab.state("B"), "trying");
  await ab.markGood("B");
  assertEquals(env.writes.at(-1), { B_OK: "1", B_TRY: "0" });
  assertEquals(await states(ab), "B A|A=good B=good|B");
  assertEquals(env.writes.length, 4, "every operation is one write");
});

Deno.test("ab uboot: mark bad = BOOT_<X>_LEFT=0 AND removed from BOOT_ORDER, one write (RAUC uboot.c)", async () => {
  const { env, ab } = mock("uboot");
  assertEquals(await states(ab), "A B|A=good B=good|A");
  await ab.markBad("B");
  assertEquals(env.writes.at(-1), { BOOT_B_LEFT: "0", BOOT_ORDER: "A" });
  assertEquals(await states(ab), "A|A=good B=bad|A");
  await ab.setPrimary("B");
  assertEquals(env.writes.at(-1), { BOOT_B_LEFT: "3", BOOT_ORDER: "B A" });
  assertEquals(await states(ab), "B A|A=good B=good|B");
  await env.set({ BOOT_B_LEFT: "2" }); // uboot.sh booted B once
  assertEquals(await states(ab), "B A|A=good B=trying|B", "a slot on trial is still picked");
  await env.set({ BOOT_B_LEFT: "0" }); // ... and used up its tries
  assertEquals(await states(ab), "B A|A=good B=bad|A");
  await ab.markGood("B");
  assertEquals(env.writes.at(-1), { BOOT_B_LEFT: "3" });
  assertEquals(await states(ab), "B A|A=good B=good|B");
  assertEquals(env.writes.length, 5, "every operation is one write");
});

Deno.test("ab: mark good appends a slot missing from the order (so it reads back good), never first", async () => {
  for (const scheme of ["grub", "uboot"] as const) {
    const { env, ab } = mock(scheme);
    await ab.markBad("A");
    if (scheme === "uboot") assertEquals(env.snapshot().BOOT_ORDER, "B");
    await ab.markGood("A");
    const order = scheme === "grub" ? "A B" : "B A";
    assertEquals(await states(ab), `${order}|A=good B=good|${order[0]}`, scheme);
    const fresh = mock(scheme, {});
    await fresh.ab.markGood("B");
    assertEquals((await fresh.ab.read()).order, ["B"], scheme);
    assertEquals(await fresh.ab.state("B"), "good", scheme);
    assertEquals(await fresh.ab.state("A"), "bad", scheme);
  }
});

Deno.test("ab select grub (contrib/grub.conf): first OK=1 TRY=0 gets TRY=1; none → TRY reset, null", async () => {
  const { env, ab } = mock("grub", { ORDER: "B A", A_OK: "1", A_TRY: "0", B_OK: "1", B_TRY: "0" });
  assertEquals(await ab.select(), "B");
  assertEquals(env.writes.at(-1), { B_TRY: "1" });
  assertEquals(await ab.select(), "A", "B crashed before mark-good: its one try is used");
  assertEquals(await ab.select(), null, "both tried: the script's rescue case");
  assertEquals(env.writes.at(-1), { A_TRY: "0", B_TRY: "0" });
  assertEquals(await ab.select(), "B");
  // unset ORDER / TRY are the script's defaults (configured order, TRY=0)
  const fresh = mock("grub", { A_OK: "1", B_OK: "1" });
  assertEquals(await fresh.ab.select(), "A");
});

Deno.test("ab select uboot (contrib/uboot.sh): LEFT-1 on the first slot with tries; a slot marked bad stays out after the reset", async () => {
  const { env, ab } = mock("uboot");
  await ab.markBad("B"); // e.g. an install into B was interrupted
  const picks: (string | null)[] = [];
  for (let i = 0; i < 5; i++) picks.push(await ab.select());
  assertEquals(picks, ["A", "A", "A", null, "A"]);
  assertEquals(env.snapshot().BOOT_ORDER, "A", "the reset keeps BOOT_ORDER");
  assertEquals(env.snapshot().BOOT_B_LEFT, "3", "the reset gives every slot its tries back ...");
  assertEquals(await ab.state("B"), "bad", "... but B is out of BOOT_ORDER, so never booted");
  // empty BOOT_ORDER and unset LEFT: the script's defaults, written with the pick
  const fresh = mock("uboot", {});
  assertEquals(await fresh.ab.select(), "A");
  assertEquals(fresh.env.writes, [{ BOOT_ORDER: "A B", BOOT_A_LEFT: "2", BOOT_B_LEFT: "3" }]);
});

Deno.test("ab: unknown slot, bad bootnames and attempt counts are refused; a failed write changes nothing", async () => {
  const { env, ab } = mock("grub");
  for (const op of [() => ab.setPrimary("C"), () => ab.markBad("C"), () => ab.state("C")]) {
    const e = await assertRejects(op, BootEnvError) as BootEnvError;
    assertEquals(e.code, "invalid-name");
  }
  const bad: { slots: string[]; attempts?: number }[] = [
    { slots: [] },
    { slots: ["A B"] },
    { slots: ["A", "b-1"] },
    { slots: ["A", "A"] },
    { slots: ["A", "B"], attempts: 0 },
  ];
  for (const opts of bad) {
    try {
      createBootScheme("uboot", env, opts);
      throw new Error(`accepted ${JSON.stringify(opts)}`);
    } catch (err) {
      assert(err instanceof BootEnvError && err.code === "invalid-config", String(err));
    }
  }
  env.faults.failWrite = 1;
  await assertRejects(() => ab.setPrimary("B"), BootEnvError);
  assertEquals(await ab.primary(), "A");
  assertEquals(ab.describe(), "mock (in memory) (grub scheme)");
});

Deno.test("ab: initialVars is a fresh env with every slot good", async () => {
  for (const scheme of ["grub", "uboot"] as const) {
    const { ab } = mock(scheme, {});
    const env2 = new MockBootEnv(ab.initialVars());
    const ab2 = createBootScheme(scheme, env2, { slots: ["A", "B"] });
    assertEquals(await states(ab2), "A B|A=good B=good|A", scheme);
  }
});

// ------------------------------------------------------------ the real tools

const NO_GRUB = missingTools(["grub-editenv"]);
const NO_UBOOT = missingTools(["fw_printenv", "fw_setenv"]);

Deno.test({
  name:
    "ab grub on a real grubenv: install B, trial boot, crash, fallback to A; grub-editenv agrees",
  ignore: NO_GRUB !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-ab-grub-" });
    try {
      const file = join(dir, "grubenv");
      const ed = async (...args: string[]) => {
        const r = await new Deno.Command("grub-editenv", { args: [file, ...args] }).output();
        assert(r.success, new TextDecoder().decode(r.stderr));
        return new TextDecoder().decode(r.stdout);
      };
      const vars = async () =>
        Object.fromEntries((await ed("list")).trim().split("\n").map((l) => l.split("=")));
      // contrib/grub.conf, played with grub-editenv: first OK=1 TRY=0 slot gets TRY=1
      const bootOnce = async (): Promise<string | null> => {
        const v = await vars();
        for (const s of (v.ORDER ?? "").split(" ")) {
          if (v[`${s}_OK`] === "1" && v[`${s}_TRY`] === "0") {
            await ed("set", `${s}_TRY=1`);
            return s;
          }
        }
        return null;
      };
      await ed("create");
      const ab = createBootScheme("grub", new GrubEnv({ file }), { slots: ["A", "B"] });
      await ab.setPrimary("A");
      await ab.markGood("B");
      assertEquals(await bootOnce(), "A");
      await ab.markGood("A");
      await ab.markBad("B"); // install starts
      assertEquals(await vars(), { ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" });
      await ab.setPrimary("B"); // install done
      assertEquals(await ed("list"), "A_OK=1\nA_TRY=0\nORDER=B A\nB_OK=1\nB_TRY=0\n");
      assertEquals(await ab.primary(), "B");
      assertEquals(await bootOnce(), "B"); // trial boot of B ...
      assertEquals(await states(ab), "B A|A=good B=trying|A");
      assertEquals(await bootOnce(), "A"); // ... B crashed before mark-good: fallback
      await ab.markBad("B");
      await ab.markGood("A");
      assertEquals(await vars(), { ORDER: "B A", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" });
      assertEquals(await states(ab), "B A|A=good B=bad|A");
      // our select and the script pick the same on the same env
      assertEquals(await ab.select(), "A");
      assertEquals((await vars()).A_TRY, "1");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "ab uboot on a real U-Boot env: install B, trial boots, tries used up, fallback to A; fw_printenv agrees",
  ignore: NO_UBOOT !== undefined,
  async fn() {
    const f = await fixture([["BOOT_ORDER", "A B"], ["BOOT_A_LEFT", "3"], [
      "BOOT_B_LEFT",
      "3",
    ]], true);
    try {
      const printed = async () => {
        const out: Record<string, string> = {};
        for (const l of (await rawPrintenv(f.config)).trim().split("\n")) {
          const i = l.indexOf("=");
          out[l.slice(0, i)] = l.slice(i + 1);
        }
        return out;
      };
      const setenv = async (...kv: string[]) => {
        const r = await new Deno.Command("fw_setenv", { args: ["-c", f.config, ...kv] }).output();
        assert(r.success, new TextDecoder().decode(r.stderr));
      };
      // contrib/uboot.sh, played with fw_printenv/fw_setenv
      const bootOnce = async (): Promise<string | null> => {
        const v = await printed();
        for (const s of (v.BOOT_ORDER ?? "").split(" ")) {
          const left = parseInt(v[`BOOT_${s}_LEFT`] ?? "0", 16);
          if (left > 0) {
            await setenv(`BOOT_${s}_LEFT`, (left - 1).toString(16));
            return s;
          }
        }
        await setenv("BOOT_A_LEFT", "3");
        await setenv("BOOT_B_LEFT", "3");
        return null;
      };
      const ab = createBootScheme("uboot", new UBootEnv({ config: f.config }), {
        slots: ["A", "B"],
        attempts: 3,
      });
      assertEquals(await bootOnce(), "A");
      await ab.markGood("A");
      await ab.markBad("B"); // install starts: B must not boot, even after a reset
      assertEquals(await printed(), { BOOT_ORDER: "A", BOOT_A_LEFT: "3", BOOT_B_LEFT: "0" });
      assertEquals(await states(ab), "A|A=good B=bad|A");
      await ab.setPrimary("B"); // install done
      assertEquals(await printed(), { BOOT_ORDER: "B A", BOOT_A_LEFT: "3", BOOT_B_LEFT: "3" });
      assertEquals(await ab.primary(), "B");
      assertEquals([await bootOnce(), await bootOnce(), await bootOnce()], ["B", "B", "B"]);
      assertEquals(await states(ab), "B A|A=good B=bad|A");
      assertEquals(await bootOnce(), "A", "tries used up: fallback");
      await ab.markBad("B"); // the rollback
      await ab.markGood("A");
      assertEquals(await printed(), { BOOT_ORDER: "A", BOOT_A_LEFT: "3", BOOT_B_LEFT: "0" });
      // A crash-loops too: the script's reset revives the tries but B stays out
      assertEquals([await bootOnce(), await bootOnce(), await bootOnce()], ["A", "A", "A"]);
      assertEquals(await bootOnce(), null);
      assertEquals(await printed(), { BOOT_ORDER: "A", BOOT_A_LEFT: "3", BOOT_B_LEFT: "3" });
      assertEquals(await states(ab), "A|A=good B=bad|A");
      // our select and the script pick the same on the same env
      assertEquals(await ab.select(), "A");
      assertEquals((await printed()).BOOT_A_LEFT, "2");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});
