/**
 * grubenv backend, proven against the real `grub-editenv` (Debian grub-common)
 * in both directions, byte for byte, plus crash safety (kill -9 of a writer).
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { join } from "node:path";
import { GrubEnv, GRUBENV_SIZE, parseGrubEnv, serializeGrubEnv } from "../hw/boot/grubenv.ts";
import { BootEnvError } from "../hw/boot/types.ts";
import { bootTempPrefix } from "../hw/boot/atomic.ts";
import { missingTools } from "./helpers/tools.ts";

async function bootErr(fn: () => Promise<unknown>): Promise<BootEnvError> {
  return (await assertRejects(fn, BootEnvError)) as BootEnvError;
}

const ignore = missingTools(["grub-editenv"]) !== undefined;

async function editenv(file: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("grub-editenv", { args: [file, ...args] }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`grub-editenv ${args.join(" ")} failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
}

async function editenvCode(file: string, ...args: string[]): Promise<number> {
  return (await new Deno.Command("grub-editenv", { args: [file, ...args], stderr: "null" })
    .output()).code;
}

const TRICKY: Record<string, string> = {
  BACKSLASH: "x\\y",
  NEWLINE: "line1\nline2",
  BOTH: "a\\\nb\\",
  EQUALS: "k=v=w",
  SPACES: "  lead and trail  ",
  EMPTY: "",
  HASH: "#not-a-comment",
  UTF8: "grün ✓",
  ORDER: "A B",
};

Deno.test({
  name: "grubenv: a new block is byte-identical to grub-editenv create + set",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const ours = join(dir, "ours");
      const theirs = join(dir, "theirs");
      await new GrubEnv({ file: ours, create: true }).set({ ORDER: "A B", A_OK: "1" });
      await editenv(theirs, "create");
      await editenv(theirs, "set", "ORDER=A B", "A_OK=1");
      assertEquals(await Deno.readFile(ours), await Deno.readFile(theirs));
      assertEquals((await Deno.stat(ours)).size, GRUBENV_SIZE);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "grubenv: we write escapes, grub-editenv list reads them",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "grubenv");
      await editenv(file, "create");
      const env = new GrubEnv({ file });
      await env.set(TRICKY);
      const listed = await editenv(file, "list");
      const expected = Object.entries(TRICKY).map(([k, v]) => `${k}=${v}\n`).join("");
      assertEquals(listed, expected);
      // grub-editenv can still edit what we wrote (block not broken)
      await editenv(file, "set", "AFTER=1");
      assertEquals(await env.get("AFTER"), "1");
      assertEquals((await env.list()).BOTH, TRICKY.BOTH);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "grubenv: grub-editenv set writes escapes, we read them",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "grubenv");
      await editenv(file, "create");
      await editenv(file, "set", ...Object.entries(TRICKY).map(([k, v]) => `${k}=${v}`));
      const vars = await new GrubEnv({ file }).list();
      assertEquals({ ...vars }, TRICKY);
      assertEquals(Object.keys(vars), Object.keys(TRICKY)); // stored order kept
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "grubenv: every set/unset step is byte-identical to grub-editenv",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const ours = join(dir, "ours");
      const theirs = join(dir, "theirs");
      await editenv(ours, "create");
      await editenv(theirs, "create");
      const env = new GrubEnv({ file: ours });
      const steps: Array<Record<string, string | null>> = [
        { ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "1", B_TRY: "0" },
        { A_TRY: "1" }, // same length in place
        { ORDER: "B A", B_TRY: "0" },
        { A_OK: "a much longer value than before\\with\nescapes" }, // grows in place
        { A_OK: "0" }, // shrinks in place
        { B_OK: null }, // unset in the middle
        { NEW: "appended", TRICK: "x\\y" },
        { ORDER: null, NEW: null },
      ];
      for (const [i, step] of steps.entries()) {
        await env.set(step);
        const sets = Object.entries(step).filter(([, v]) => v !== null).map(([k, v]) =>
          `${k}=${v}`
        );
        const unsets = Object.entries(step).filter(([, v]) => v === null).map(([k]) => k);
        if (sets.length) await editenv(theirs, "set", ...sets);
        if (unsets.length) await editenv(theirs, "unset", ...unsets);
        assertEquals(await Deno.readFile(ours), await Deno.readFile(theirs), `step ${i}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "grubenv: always exactly 1024 bytes, not sparse, mode kept",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "grubenv");
      await editenv(file, "create");
      await Deno.chmod(file, 0o600);
      const env = new GrubEnv({ file });
      for (let i = 0; i < 5; i++) {
        await env.set({ V: "x".repeat(i * 100) });
        const st = await Deno.stat(file);
        assertEquals(st.size, 1024);
        assert(st.blocks !== null && st.blocks * 512 >= 1024, `sparse: ${st.blocks} blocks`);
        assertEquals(st.mode! & 0o777, 0o600);
      }
      const bytes = await Deno.readFile(file);
      assertEquals(bytes[bytes.length - 1], 0x23); // '#' padding to the end
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "grubenv: too large for the block fails like grub-editenv and changes nothing",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "grubenv");
      await editenv(file, "create");
      await editenv(file, "set", "KEEP=me");
      const before = await Deno.readFile(file);
      const big = "y".repeat(1000);
      const err = await bootErr(() => new GrubEnv({ file }).set({ BIG: big }));
      assertEquals(err.code, "too-large");
      assert(err.message.includes("environment block too small"), err.message);
      assertEquals(await Deno.readFile(file), before);
      assert((await editenvCode(file, "set", `BIG=${big}`)) !== 0, "grub-editenv accepted it");
      // the largest value that fits is accepted by both
      const room = 1024 - 25 - GRUB_WARNING_LEN - "KEEP=me\n".length - "BIG=\n".length;
      await new GrubEnv({ file }).set({ BIG: "z".repeat(room) });
      assertEquals((await editenv(file, "list")).split("\n")[1], `BIG=${"z".repeat(room)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
const GRUB_WARNING_LEN = 69;

Deno.test("grubenv: corrupt blocks give clear errors and are never overwritten", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "grubenv");
    const cases: Array<[string, Uint8Array, string]> = [
      [
        "no header",
        new TextEncoder().encode("A=1\n".padEnd(1024, "#")),
        "not a GRUB environment block",
      ],
      [
        "no newline before padding",
        new TextEncoder().encode("# GRUB Environment Block\nA=1".padEnd(1024, "#")),
        "no newline",
      ],
      [
        "line without =",
        new TextEncoder().encode("# GRUB Environment Block\nA=1\ngarbage\n".padEnd(1024, "#")),
        "line 3 has no '='",
      ],
      [
        "trailing backslash",
        new TextEncoder().encode("# GRUB Environment Block\nA=1\\\n".padEnd(1024, "#")),
        "not terminated",
      ],
    ];
    for (const [what, bytes, msg] of cases) {
      await Deno.writeFile(file, bytes);
      const env = new GrubEnv({ file });
      const e1 = await bootErr(() => env.list());
      assertEquals(e1.code, "corrupt", what);
      assert(e1.message.includes(msg) && e1.message.includes(file), `${what}: ${e1.message}`);
      const e2 = await bootErr(() => env.set({ X: "1" }));
      assertEquals(e2.code, "corrupt", what);
      assertEquals(await Deno.readFile(file), bytes, `${what}: file changed`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("grubenv: missing file is an error unless create; bad names are refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "grubenv");
    const env = new GrubEnv({ file });
    assertEquals((await bootErr(() => env.list())).code, "missing");
    assertEquals((await bootErr(() => env.set({ A: "1" }))).code, "missing");
    await assertRejects(() => Deno.stat(file));
    const created = new GrubEnv({ file, create: true });
    assertEquals({ ...(await created.list()) }, {});
    await created.set({ A: "1" });
    assertEquals(await env.get("A"), "1");
    assertEquals(await env.get("NOPE"), undefined);
    for (const bad of ["", "#x", "a=b", "a b", "tab\t", "nl\n"]) {
      const e = await bootErr(() => env.set({ [bad]: "1" }));
      assertEquals(e.code, "invalid-name", JSON.stringify(bad));
    }
    const nul = await bootErr(() => env.set({ A: "a\0b" }));
    assertEquals(nul.code, "invalid-value");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("grubenv: parse/serialize round trip keeps unknown comments and odd bytes", () => {
  const raw = new Uint8Array(1024).fill(0x23);
  const head = new TextEncoder().encode("# GRUB Environment Block\n# my comment\nA=1\n");
  raw.set(head, 0);
  raw.set([0x4c, 0x3d, 0xe9, 0x0a], head.length); // L=<latin-1 byte>\n, not UTF-8
  const block = parseGrubEnv(raw);
  assertEquals(serializeGrubEnv(block), raw);
});

Deno.test("grubenv: concurrent writers (two instances) lose no update", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "grubenv");
    await new GrubEnv({ file, create: true }).set({ INIT: "1" });
    const a = new GrubEnv({ file });
    const b = new GrubEnv({ file });
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 10; i++) {
      jobs.push(a.set({ [`A${i}`]: String(i) }));
      jobs.push(b.set({ [`B${i}`]: String(i) }));
    }
    await Promise.all(jobs);
    const vars = await a.list();
    for (let i = 0; i < 10; i++) {
      assertEquals(vars[`A${i}`], String(i));
      assertEquals(vars[`B${i}`], String(i));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "grubenv: crash safety: kill -9 of a writer always leaves a whole old or new block",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "grubenv");
      await editenv(file, "create");
      const writer = join(dir, "writer.ts");
      const mod = new URL("../hw/boot/grubenv.ts", import.meta.url).href;
      await Deno.writeTextFile(
        writer,
        `import { GrubEnv } from ${JSON.stringify(mod)};
const env = new GrubEnv({ file: Deno.args[0] });
for (let i = 1; ; i++) {
  // N and PAD always change together: a torn write would break the pairing
  await env.set({ N: String(i), PAD: "p".repeat(i % 400) });
  if (i === 1) console.log("started");
}
`,
      );
      const kills = 10;
      let maxN = 0;
      for (let k = 0; k < kills; k++) {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--no-lock", writer, file],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const reader = child.stdout.getReader();
        await reader.read(); // "started": the writer is in its loop
        await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 80)));
        child.kill("SIGKILL");
        await child.status;
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
        // the block is whole: grub-editenv and we both read it, and N/PAD agree
        const listed = await editenv(file, "list");
        const vars = await new GrubEnv({ file }).list();
        const n = Number(vars.N);
        assert(n >= 1, `N=${vars.N}`);
        assertEquals(vars.PAD, "p".repeat(n % 400), `torn block at N=${n}`);
        assert(listed.includes(`N=${n}\n`));
        assertEquals((await Deno.stat(file)).size, 1024);
        maxN = Math.max(maxN, n);
      }
      // a later write removes temp files a killed writer may have left
      await new GrubEnv({ file }).set({ DONE: "1" });
      const leftovers = [];
      for await (const e of Deno.readDir(dir)) {
        if (e.name.startsWith(bootTempPrefix(file))) leftovers.push(e.name);
      }
      assertEquals(leftovers, []);
      console.log(`grubenv crash test: ${kills} kills, up to N=${maxN} writes, no torn block`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("grubenv: a stale temp file from a crash is removed on the next write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "grubenv");
    await new GrubEnv({ file, create: true }).set({ A: "1" });
    const stale = join(dir, bootTempPrefix(file) + "deadbeef");
    await Deno.writeTextFile(stale, "half a block");
    await new GrubEnv({ file }).set({ A: "2" });
    await assertRejects(() => Deno.stat(stale));
    assertEquals(await new GrubEnv({ file }).get("A"), "2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
