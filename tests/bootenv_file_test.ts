/** file (JSON) and mock boot env backends, and the createBootEnv factory. */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { join } from "node:path";
import {
  BootEnvError,
  createBootEnv,
  FileBootEnv,
  GrubEnv,
  MockBootEnv,
  UBootEnv,
} from "../hw/boot/mod.ts";
import { bootTempPrefix } from "../hw/boot/atomic.ts";

async function bootErr(fn: () => Promise<unknown>): Promise<BootEnvError> {
  return (await assertRejects(fn, BootEnvError)) as BootEnvError;
}

Deno.test("file: missing file is empty; set creates it (and its dir); unset; JSON on disk", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "sub", "bootenv.json");
    const env = new FileBootEnv({ file });
    assertEquals({ ...(await env.list()) }, {});
    await env.set({ ORDER: "A B", A_OK: "1", A_TRY: "0" });
    await env.set({ A_TRY: "1", A_OK: null });
    assertEquals(JSON.parse(await Deno.readTextFile(file)), { ORDER: "A B", A_TRY: "1" });
    assertEquals(await env.get("ORDER"), "A B");
    assertEquals(await env.get("A_OK"), undefined);
    assertEquals(env.describe(), `file ${file}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file: corrupt JSON or non-string values -> 'corrupt' naming the problem; nothing written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "bootenv.json");
    for (
      const [text, msg] of [["{not json", "not valid JSON"], ['{"A": 1}', "at A"], [
        "[]",
        "JSON object",
      ]]
    ) {
      await Deno.writeTextFile(file, text);
      const env = new FileBootEnv({ file });
      const e = await bootErr(() => env.list());
      assertEquals(e.code, "corrupt");
      assert(e.message.includes(msg) && e.message.includes(file), e.message);
      assertEquals((await bootErr(() => env.set({ B: "2" }))).code, "corrupt");
      assertEquals(await Deno.readTextFile(file), text);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file: a variable named __proto__ is an ordinary variable", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "bootenv.json");
    const env = new FileBootEnv({ file });
    await env.set({ ["__proto__"]: "x", A: "1" });
    assertEquals(await env.get("__proto__"), "x");
    assertEquals(Object.keys(await env.list()).sort(), ["A", "__proto__"]);
    assertEquals(await env.get("toString"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file: write is temp + rename (no temp left; stale temp cleaned)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "bootenv.json");
    await Deno.writeTextFile(join(dir, bootTempPrefix(file) + "0badc0de"), "{");
    await new FileBootEnv({ file }).set({ A: "1" });
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["bootenv.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mock: injected write failure changes nothing; failRead; history of writes", async () => {
  const env = new MockBootEnv({ ORDER: "A B" });
  env.faults.failWrite = 1;
  const e = await bootErr(() => env.set({ ORDER: "B A", B_OK: "1" }));
  assertEquals(e.code, "injected");
  assertEquals({ ...env.snapshot() }, { ORDER: "A B" });
  await env.set({ ORDER: "B A", B_OK: "1" }); // the fault was for one write only
  assertEquals({ ...(await env.list()) }, { ORDER: "B A", B_OK: "1" });
  assertEquals(env.writes, [{ ORDER: "B A", B_OK: "1" }]);
  env.faults.failRead = true;
  assertEquals((await bootErr(() => env.get("ORDER"))).code, "corrupt");
  env.faults.failRead = false;
  env.faults.failWrite = true;
  await bootErr(() => env.set({ X: "1" }));
  await bootErr(() => env.set({ X: "1" }));
  assertEquals(await env.get("X"), undefined);
  assertEquals((await bootErr(() => env.set({ "a=b": "1" }))).code, "invalid-name");
});

Deno.test("createBootEnv: picks the backend; a bad config names the field", () => {
  assert(createBootEnv({ backend: "grubenv", file: "/boot/grub/grubenv" }) instanceof GrubEnv);
  assert(createBootEnv({ backend: "uboot" }) instanceof UBootEnv);
  assertEquals(createBootEnv({ backend: "uboot" }).describe(), "uboot /etc/fw_env.config");
  assert(createBootEnv({ backend: "file", file: "x.json" }) instanceof FileBootEnv);
  for (
    const [cfg, field] of [
      [{ backend: "grubenv" }, "file"],
      [{ backend: "floppy", file: "x" }, "backend"],
      [{ backend: "uboot", timeoutMs: 5 }, "timeoutMs"],
      [{ backend: "file", file: "x", extra: 1 }, "extra"],
    ] as const
  ) {
    try {
      createBootEnv(cfg as never);
      throw new Error("accepted");
    } catch (e) {
      assert(e instanceof BootEnvError, String(e));
      assertEquals(e.code, "invalid-config");
      assert(e.message.includes(field), e.message);
    }
  }
});
