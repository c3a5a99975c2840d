/**
 * The restart-mode launcher with real child processes and a file boot env:
 * it starts the primary slot, counts tries, falls back after a crash loop,
 * switches on the restart exit code, and stops its child on stop().
 */
import { join } from "node:path";
import { FileBootEnv } from "../hw/boot/file.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import { expandCommand, Launcher } from "../mod/update/launcher.ts";
import { assertEquals } from "./helpers/assert.ts";

async function rig(
  env: Record<string, string>,
  scripts: { A: string; B: string },
  extra: Record<string, unknown> = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "kw-launch-" });
  const envFile = join(dir, "bootenv.json");
  await Deno.writeTextFile(envFile, JSON.stringify(env));
  for (const s of ["A", "B"] as const) await Deno.writeTextFile(join(dir, `${s}.sh`), scripts[s]);
  const config = updateConfigSchema.parse({
    compatible: "acme-gw",
    bootloader: { backend: "file", file: envFile },
    slots: {
      app: {
        a: { device: join(dir, "A.sh"), bootname: "A" },
        b: { device: join(dir, "B.sh"), bootname: "B" },
      },
    },
    launcher: {
      command: ["sh", "{device}", "{bootname}"],
      env: { KW_DIR: dir },
      stopTimeoutMs: 2_000,
      rescueDelayMs: 50,
    },
    ...extra,
  });
  const log: string[] = [];
  const l = new Launcher({
    config,
    bootEnv: new FileBootEnv({ file: envFile }),
    log: (s) => log.push(s),
    crashDelayMs: 10,
  });
  return {
    dir,
    l,
    log,
    env: async () => JSON.parse(await Deno.readTextFile(envFile)),
    async waitFor(pred: () => boolean, what: string) {
      const deadline = Date.now() + 30_000;
      while (!pred()) {
        if (Date.now() > deadline) {
          throw new Error(`timeout waiting for ${what}; log: ${log.join(" | ")}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await l.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const RUNS =
  `echo "$1 $KEEPWIRE_SLOT" >> "$KW_DIR/started"; trap 'echo term >> "$KW_DIR/started"; exit 0' TERM; while :; do sleep 0.05; done\n`;
const CRASHES = `echo "$1 $KEEPWIRE_SLOT" >> "$KW_DIR/started"; exit 1\n`;

Deno.test("launcher: a new slot that crashes before it is marked good used its one GRUB-scheme try; the launcher falls back", async () => {
  const t = await rig({ ORDER: "B A", A_OK: "1", A_TRY: "0", B_OK: "1", B_TRY: "0" }, {
    A: RUNS,
    B: CRASHES,
  });
  try {
    const running = t.l.run();
    await t.waitFor(() => t.l.launches.length === 2, "fallback start");
    assertEquals(t.l.launches.map((x) => x.slot), ["B", "A"]);
    assertEquals(t.l.launches[0].code, 1);
    const env = await t.env();
    assertEquals([env.B_TRY, env.A_TRY], ["1", "1"], "each start recorded a try");
    await t.waitFor(() => {
      try {
        return Deno.readTextFileSync(join(t.dir, "started")).includes("A A");
      } catch {
        return false;
      }
    }, "A started with KEEPWIRE_SLOT=A");
    await t.l.stop();
    await running;
    assertEquals(Deno.readTextFileSync(join(t.dir, "started")).trim().split("\n"), [
      "B B",
      "A A",
      "term",
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("launcher: exit code 75 asks for a switch; the launcher starts the new primary", async () => {
  // slot A plays a runtime that installed B (made it primary) and activates it
  const ACTIVATE =
    `printf '{"ORDER":"B A","A_OK":"1","A_TRY":"1","B_OK":"1","B_TRY":"0"}' > "$KW_DIR/bootenv.json"; exit 75\n`;
  const t = await rig({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" }, {
    A: ACTIVATE,
    B: RUNS,
  });
  try {
    const running = t.l.run();
    await t.waitFor(() => t.l.launches.length === 2, "second start");
    assertEquals(t.l.launches.map((x) => [x.slot, x.code]), [["A", 75], ["B", null]]);
    assertEquals(t.log.filter((l) => l.includes("asked for a switch")).length, 1);
    assertEquals((await t.env()).B_TRY, "1", "B is on trial until its runtime marks it good");
    await t.l.stop();
    await running;
  } finally {
    await t.close();
  }
});

Deno.test("launcher: U-Boot scheme counts BOOT_<X>_LEFT down: two crashes of B, then A", async () => {
  const t = await rig(
    { BOOT_ORDER: "B A", BOOT_A_LEFT: "3", BOOT_B_LEFT: "2" },
    { A: RUNS, B: CRASHES },
    { scheme: "uboot", activation: { tries: 3 } },
  );
  try {
    const running = t.l.run();
    await t.waitFor(() => t.l.launches.length === 3, "third start");
    assertEquals(t.l.launches.map((x) => x.slot), ["B", "B", "A"]);
    const env = await t.env();
    assertEquals([env.BOOT_B_LEFT, env.BOOT_A_LEFT], ["0", "2"]);
    await t.l.stop();
    await running;
  } finally {
    await t.close();
  }
});

Deno.test("launcher: no bootable slot waits (rescue) and stop() ends it promptly", async () => {
  const t = await rig({ ORDER: "A B", A_OK: "0", A_TRY: "0", B_OK: "0", B_TRY: "0" }, {
    A: RUNS,
    B: RUNS,
  });
  try {
    const running = t.l.run();
    await t.waitFor(() => t.log.some((l) => l.includes("no bootable slot")), "rescue");
    await t.l.stop();
    await running;
    assertEquals(t.l.launches, []);
  } finally {
    await t.close();
  }
});

Deno.test("launcher: command placeholders", () => {
  assertEquals(
    expandCommand(["deno", "run", "{device}", "--slot={bootname}", "{slotClass}"], {
      device: "/s/a",
      bootname: "A",
      slotClass: "app",
    }),
    ["deno", "run", "/s/a", "--slot=A", "app"],
  );
});
