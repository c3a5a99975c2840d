/**
 * uboot backend, proven with the real libubootenv tools (Debian libubootenv-tool)
 * against file-backed single and redundant envs described in a fw_env.config in a
 * temp dir. The images are built here (CRC32 + flags layout) and cross-checked
 * against `mkenvimage` (u-boot-tools) when it is installed.
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { join } from "node:path";
import { parseFwPrintenv, UBootEnv } from "../hw/boot/uboot.ts";
import { BootEnvError } from "../hw/boot/types.ts";
import { missingTools } from "./helpers/tools.ts";
import { buildImage, fixture, parseImage, rawPrintenv, SIZE } from "./bootenv_uboot_image.ts";

const HAVE_TOOLS = missingTools(["fw_printenv", "fw_setenv"]) === undefined;
const HAVE_MKENVIMAGE = missingTools(["mkenvimage"]) === undefined;
const ignore = !HAVE_TOOLS;

async function bootErr(fn: () => Promise<unknown>): Promise<BootEnvError> {
  return (await assertRejects(fn, BootEnvError)) as BootEnvError;
}

const INITIAL: Array<[string, string]> = [
  ["bootcmd", "run distro_bootcmd"],
  ["BOOT_ORDER", "A B"],
  ["BOOT_A_LEFT", "3"],
  ["BOOT_B_LEFT", "3"],
];

// ------------------------------------------------------------ tests

Deno.test({
  name: "uboot: our test image layout is byte-identical to mkenvimage (single and -r)",
  ignore: ignore || !HAVE_MKENVIMAGE,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const txt = join(dir, "env.txt");
      await Deno.writeTextFile(txt, INITIAL.map(([k, v]) => `${k}=${v}\n`).join(""));
      for (const redundant of [false, true]) {
        const out = join(dir, `mk-${redundant}.bin`);
        const args = ["-s", `0x${SIZE.toString(16)}`, ...(redundant ? ["-r"] : []), "-o", out, txt];
        const r = await new Deno.Command("mkenvimage", { args }).output();
        assert(r.success, new TextDecoder().decode(r.stderr));
        assertEquals(
          await Deno.readFile(out),
          buildImage(INITIAL, redundant),
          `redundant=${redundant}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "uboot: single env: list/get/set through the tools, CRC valid, raw fw_printenv agrees",
  ignore,
  async fn() {
    const f = await fixture(INITIAL, false);
    try {
      const env = new UBootEnv({ config: f.config });
      assertEquals({ ...(await env.list()) }, Object.fromEntries(INITIAL));
      assertEquals(await env.get("BOOT_ORDER"), "A B");
      assertEquals(await env.get("nope"), undefined);
      await env.set({
        BOOT_ORDER: "B A",
        BOOT_B_LEFT: "3",
        EQ: "a=b=c",
        SPACES: "  lead and trail  ",
        bootcmd: null,
      });
      const img = parseImage(await Deno.readFile(f.copies[0]), false);
      assert(img.crcOk, "CRC of the written env");
      assertEquals(img.vars.BOOT_ORDER, "B A");
      assertEquals(img.vars.SPACES, "  lead and trail  ");
      assertEquals(img.vars.bootcmd, undefined);
      const raw = await rawPrintenv(f.config);
      assert(raw.includes("BOOT_ORDER=B A\n") && raw.includes("EQ=a=b=c\n"), raw);
      assert(!raw.includes("bootcmd="), raw);
      assertEquals(await env.get("EQ"), "a=b=c");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "uboot: redundant env: one set writes ONE copy (the older) with flags+1 and all vars",
  ignore,
  async fn() {
    const f = await fixture(INITIAL, true);
    try {
      const env = new UBootEnv({ config: f.config });
      const before = await Promise.all(f.copies.map((c) => Deno.readFile(c)));
      await env.set({ BOOT_ORDER: "B A", BOOT_B_LEFT: "3", BOOT_A_LEFT: "0" });
      const after = await Promise.all(f.copies.map((c) => Deno.readFile(c)));
      const changed = [0, 1].filter((i) => !equalBytes(before[i], after[i]));
      assertEquals(changed.length, 1, "exactly one copy written");
      const w = parseImage(after[changed[0]], true);
      const old = parseImage(after[1 - changed[0]], true);
      assert(w.crcOk && old.crcOk);
      assertEquals(w.flags, old.flags! + 1);
      assertEquals([w.vars.BOOT_ORDER, w.vars.BOOT_A_LEFT, w.vars.BOOT_B_LEFT], ["B A", "0", "3"]);
      assertEquals(old.vars.BOOT_ORDER, "A B"); // the other copy is the previous state
      // the next write goes to the other copy
      await env.set({ BOOT_ORDER: "A B" });
      const third = await Promise.all(f.copies.map((c) => parseImage(Deno.readFileSync(c), true)));
      assertEquals(third[1 - changed[0]].flags, w.flags! + 1);
      assertEquals(third[1 - changed[0]].vars.BOOT_ORDER, "A B");
      assertEquals(third[1 - changed[0]].vars.BOOT_A_LEFT, "0");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "uboot: newest copy corrupt -> falls back to the good copy; next set repairs",
  ignore,
  async fn() {
    const f = await fixture(INITIAL, true);
    try {
      const env = new UBootEnv({ config: f.config });
      await env.set({ BOOT_ORDER: "B A" }); // newest copy now has B A
      const imgs = f.copies.map((c) => parseImage(Deno.readFileSync(c), true));
      const newest = imgs[0].flags! > imgs[1].flags! ? 0 : 1;
      assertEquals(imgs[newest].vars.BOOT_ORDER, "B A");
      // flip one byte in the newest copy's data: its CRC no longer matches
      const bytes = await Deno.readFile(f.copies[newest]);
      bytes[10] ^= 0xff;
      await Deno.writeFile(f.copies[newest], bytes);
      assertEquals(await env.get("BOOT_ORDER"), "A B", "value of the good (older) copy");
      await env.set({ BOOT_ORDER: "A B", MARK: "1" });
      assertEquals(await env.get("MARK"), "1");
      const fixed = f.copies.map((c) => parseImage(Deno.readFileSync(c), true));
      assert(fixed.every((i) => i.crcOk), "both copies valid again");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "uboot: all copies corrupt -> 'corrupt', set refuses and writes nothing",
  ignore,
  async fn() {
    const f = await fixture(INITIAL, true);
    try {
      for (const c of f.copies) {
        const b = await Deno.readFile(c);
        b[20] ^= 0xff;
        await Deno.writeFile(c, b);
      }
      const before = await Promise.all(f.copies.map((c) => Deno.readFile(c)));
      const nodefault = join(f.dir, "no-default-env");
      const env = new UBootEnv({ config: f.config, defaultEnv: nodefault });
      const e1 = await bootErr(() => env.list());
      assertEquals(e1.code, "corrupt");
      assert(e1.message.includes("no copy has a valid CRC"), e1.message);
      assertEquals((await bootErr(() => env.set({ X: "1" }))).code, "corrupt");
      // with a default env file present, libubootenv falls back silently: still refused
      const defenv = join(f.dir, "u-boot-initial-env");
      await Deno.writeTextFile(defenv, "bootcmd=default\nBOOT_ORDER=A B\n");
      const env2 = new UBootEnv({ config: f.config, defaultEnv: defenv });
      const e2 = await bootErr(() => env2.set({ X: "1" }));
      assertEquals(e2.code, "corrupt");
      assert(e2.message.includes("allowDefaultEnv"), e2.message);
      const after = await Promise.all(f.copies.map((c) => Deno.readFile(c)));
      assert(equalBytes(before[0], after[0]) && equalBytes(before[1], after[1]), "nothing written");
      // a fresh board: allowed explicitly, the default env plus the change is stored
      const env3 = new UBootEnv({ config: f.config, defaultEnv: defenv, allowDefaultEnv: true });
      assertEquals((await env3.list()).bootcmd, "default");
      await env3.set({ BOOT_A_LEFT: "3" });
      assertEquals({ ...(await env.list()) }, {
        BOOT_A_LEFT: "3",
        BOOT_ORDER: "A B",
        bootcmd: "default",
      });
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "uboot: missing tools, config or env copy give clear errors",
  ignore,
  async fn() {
    const f = await fixture(INITIAL, false);
    try {
      const noTool = new UBootEnv({ config: f.config, fwPrintenv: join(f.dir, "no-fw_printenv") });
      const e1 = await bootErr(() => noTool.list());
      assertEquals(e1.code, "tool-missing");
      assert(e1.message.includes("libubootenv-tool"), e1.message);
      const noSet = new UBootEnv({ config: f.config, fwSetenv: "/nonexistent/fw_setenv" });
      assertEquals((await bootErr(() => noSet.set({ A: "1" }))).code, "tool-missing");
      const noCfg = new UBootEnv({ config: join(f.dir, "missing.config") });
      const e2 = await bootErr(() => noCfg.list());
      assertEquals(e2.code, "missing");
      assert(e2.message.includes("missing.config"), e2.message);
      await Deno.remove(f.copies[0]);
      const e3 = await bootErr(() => new UBootEnv({ config: f.config }).list());
      assertEquals(e3.code, "missing");
      assert(e3.message.includes(f.copies[0]), e3.message);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "uboot: newline values refused, empty value unsets, newline set by the tool is read",
  ignore,
  async fn() {
    const f = await fixture(INITIAL, false);
    try {
      const env = new UBootEnv({ config: f.config });
      const e = await bootErr(() => env.set({ SCRIPT: "a\nb" }));
      assertEquals(e.code, "invalid-value");
      assertEquals((await bootErr(() => env.set({ "bad name": "1" }))).code, "invalid-name");
      await env.set({ BOOT_A_LEFT: "" });
      assertEquals(await env.get("BOOT_A_LEFT"), undefined);
      const r = await new Deno.Command("fw_setenv", {
        args: ["-c", f.config, "multi", "line1\nline2=x\n"],
      }).output();
      assert(r.success);
      assertEquals(await env.get("multi"), "line1\nline2=x\n"); // get is exact
      const listed = await env.list(); // list: a "word=" line after a newline is ambiguous
      assertEquals(listed.multi, "line1");
      await env.set({ multi: null });
      await new Deno.Command("fw_setenv", { args: ["-c", f.config, "multi", "one\ntwo\n"] })
        .output();
      assertEquals((await env.list()).multi, "one\ntwo\n");
      assertEquals(await env.get("BOOT_ORDER"), "A B");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test("uboot: fw_printenv output parser", () => {
  assertEquals({ ...parseFwPrintenv("a=1\nb=x=y\nc=\n") }, { a: "1", b: "x=y", c: "" });
  assertEquals({ ...parseFwPrintenv("s=one\ntwo three\n\nz=1\n") }, {
    s: "one\ntwo three\n",
    z: "1",
  });
  assertEquals({ ...parseFwPrintenv("") }, {});
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
