/** `keepwire bootenv list|get|set|unset` through runCli (no daemon). */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { missingTools } from "./helpers/tools.ts";
import { join } from "node:path";
import { runCli } from "../mod/cli/mod.ts";

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Run the CLI in-process, capturing console output. */
async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = Deno.stderr.writeSync;
  console.log = (...a: unknown[]) => out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" "));
  // commander writes usage errors through configureOutput -> Deno.stderr.writeSync
  Deno.stderr.writeSync = (p: Uint8Array) => {
    err.push(new TextDecoder().decode(p));
    return p.length;
  };
  try {
    const code = await runCli(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
    Deno.stderr.writeSync = write;
  }
}

const HAVE_GRUB = missingTools(["grub-editenv"]) === undefined;
const HAVE_UBOOT = missingTools(["fw_printenv", "fw_setenv"]) === undefined;

Deno.test({
  name: "bootenv cli: grubenv set/get/list/unset, readable by grub-editenv",
  ignore: !HAVE_GRUB,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "grubenv");
      const g = ["--backend", "grubenv", "--file", file];
      let r = await cli("bootenv", "set", ...g, "ORDER=A B");
      assertEquals(r.code, 1, "missing grubenv without --create is a failure");
      assertStringIncludes(r.err, "no such file");
      r = await cli("bootenv", "set", ...g, "--create", "ORDER=A B", "A_OK=1", "EQ=x=y", "EMPTY=");
      assertEquals(r.code, 0, r.err);
      assertStringIncludes(r.out, "set ORDER, A_OK, EQ, EMPTY");
      const listed = new TextDecoder().decode(
        (await new Deno.Command("grub-editenv", { args: [file, "list"] }).output()).stdout,
      );
      assertEquals(listed, "ORDER=A B\nA_OK=1\nEQ=x=y\nEMPTY=\n");
      r = await cli("bootenv", "get", ...g, "ORDER");
      assertEquals([r.code, r.out], [0, "A B"]);
      r = await cli("bootenv", "get", ...g, "NOPE");
      assertEquals(r.code, 1);
      assertStringIncludes(r.err, "NOPE is not set");
      r = await cli("bootenv", "list", ...g);
      assertEquals(r.out, "ORDER=A B\nA_OK=1\nEQ=x=y\nEMPTY=");
      r = await cli("bootenv", "list", ...g, "--json");
      assertEquals(JSON.parse(r.out), {
        source: `grubenv ${file}`,
        vars: { ORDER: "A B", A_OK: "1", EQ: "x=y", EMPTY: "" },
      });
      r = await cli("bootenv", "unset", ...g, "EQ", "EMPTY");
      assertEquals(r.code, 0, r.err);
      r = await cli("bootenv", "get", ...g, "--json", "EQ");
      assertEquals(JSON.parse(r.out), { name: "EQ", value: null });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("bootenv cli: bad NAME=VALUE -> exit 2 naming the argument; nothing written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "env.json");
    const f = ["--backend", "file", "--file", file];
    for (
      const [arg, why] of [
        ["NOEQUALS", "expected NAME=VALUE"],
        ["=value", "empty name"],
        ["#C=1", "starts with '#'"],
        ["A B=1", "space"],
      ]
    ) {
      const r = await cli("bootenv", "set", ...f, "GOOD=1", arg);
      assertEquals(r.code, 2, arg);
      assertStringIncludes(r.err, JSON.stringify(arg));
      assertStringIncludes(r.err, why);
    }
    const dup = await cli("bootenv", "set", ...f, "A=1", "A=2");
    assertEquals(dup.code, 2);
    assertStringIncludes(dup.err, "given twice");
    await Deno.stat(file).then(() => assert(false, "file written"), () => {});
    const nul = await cli("bootenv", "set", ...f, "A=x\0y");
    assertEquals(nul.code, 2);
    assertStringIncludes(nul.err, "NUL");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bootenv cli: option errors -> exit 2", async () => {
  let r = await cli("bootenv", "list", "--backend", "floppy", "--file", "x");
  assertEquals(r.code, 2);
  assertStringIncludes(r.err, "unknown --backend");
  r = await cli("bootenv", "list", "--backend", "grubenv");
  assertEquals(r.code, 2);
  assertStringIncludes(r.err, "needs --file");
  r = await cli("bootenv", "list", "--file", "x");
  assertEquals(r.code, 2);
  assertStringIncludes(r.err, "--file needs --backend");
  r = await cli("bootenv", "set", "--backend", "file", "--file", "x");
  assertEquals(r.code, 2); // commander: missing required argument
  r = await cli("bootenv", "get", "--backend", "file", "--file", "x", "bad name");
  assertEquals(r.code, 2);
});

Deno.test("bootenv cli: without --backend the configured update.bootloader is used", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const envFile = join(dir, "bootenv.json");
    const cfg = join(dir, "keepwire.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ dataDir: dir, update: { bootloader: { backend: "file", file: envFile } } }),
    );
    let r = await cli("bootenv", "set", "-c", cfg, "ORDER=B A");
    assertEquals(r.code, 0, r.err);
    assertEquals(JSON.parse(await Deno.readTextFile(envFile)), { ORDER: "B A" });
    r = await cli("bootenv", "list", "-c", cfg);
    assertEquals(r.out, "ORDER=B A");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ dataDir: dir, update: { bootloader: { backend: "grubenv" } } }),
    );
    r = await cli("bootenv", "list", "-c", cfg);
    assertEquals(r.code, 2);
    assertStringIncludes(r.err, "update.bootloader");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "bootenv cli: uboot backend with --file as the fw_env.config",
  ignore: !HAVE_UBOOT,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const img = join(dir, "uboot.env");
      // empty env with a valid CRC: u32le crc32 of 0x4000-4 zero bytes
      const data = new Uint8Array(0x4000 - 4);
      const full = new Uint8Array(0x4000);
      full.set(data, 4);
      new DataView(full.buffer).setUint32(0, crc32(data), true);
      await Deno.writeFile(img, full);
      const config = join(dir, "fw_env.config");
      await Deno.writeTextFile(config, `${img} 0x0 0x4000\n`);
      const u = ["--backend", "uboot", "--file", config];
      let r = await cli("bootenv", "set", ...u, "BOOT_ORDER=A B", "BOOT_A_LEFT=3");
      assertEquals(r.code, 0, r.err);
      r = await cli("bootenv", "list", ...u);
      assertEquals(r.out, "BOOT_A_LEFT=3\nBOOT_ORDER=A B");
      r = await cli("bootenv", "set", ...u, "S=a\nb");
      assertEquals(r.code, 2);
      assertStringIncludes(r.err, "newline");
      r = await cli("bootenv", "list", "--backend", "uboot", "--file", join(dir, "nope.config"));
      assertEquals(r.code, 1);
      assertStringIncludes(r.err, "nope.config");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
