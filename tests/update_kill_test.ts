/**
 * kill -9 of `keepwire update install --offline` at random points (by progress
 * and by time): afterwards the booted slot A is intact and primary and nothing
 * is marked good — unless the kill came after the final boot env write, in which
 * case B holds the verified image and is primary.
 */
import { join } from "node:path";
import { Store } from "../mod/store/mod.ts";
import { UpdateRecords } from "../mod/update/records.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { MAIN } from "./helpers/cli.ts";
import { makeBundle, opensslKey } from "./update_fixture.ts";

Deno.test("bad input: kill -9 of keepwire at random points during an install", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-kill-" });
  try {
    const key = await opensslKey(dir, "k");
    await Deno.writeTextFile(join(dir, "ring.pem"), key.publicPem);
    const b = await makeBundle(dir, {
      keys: [key.signer],
      size: 48 * 1024 * 1024,
      version: "2.0.0",
    });
    const slotA = join(dir, "A.img"),
      slotB = join(dir, "B.img"),
      envFile = join(dir, "bootenv.json");
    await Deno.writeTextFile(slotA, "factory A\n");
    const cfg = join(dir, "kw.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({
        dataDir: join(dir, "data"),
        update: {
          compatible: "acme-gw",
          keyring: join(dir, "ring.pem"),
          bootedSlot: "A",
          cmdline: join(dir, "no-cmdline"),
          bootloader: { backend: "file", file: envFile },
          chunkSize: 1024 * 1024,
          slots: {
            rootfs: { a: { device: slotA, bootname: "A" }, b: { device: slotB, bootname: "B" } },
          },
        },
      }),
    );
    const initialEnv = { ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" };
    const aRow = {
      bootname: "A",
      slotClass: "rootfs",
      device: slotA,
      status: "good" as const,
      version: "1.0.0",
      compatible: "acme-gw",
      sha256: "0".repeat(64),
      size: 10,
      keyId: null,
      installedAt: 1000,
      goodAt: 1000,
      detail: null,
    };
    const imgSha = b.manifest.images[0].sha256;
    // thresholds in percent (-1 = by time only), plus random ones
    const plan: { pct: number; ms: number }[] = [
      { pct: -1, ms: 50 }, // before the install starts
      { pct: 1, ms: 60_000 },
      { pct: 30, ms: 60_000 },
      { pct: 75, ms: 60_000 },
      { pct: 99, ms: 60_000 },
    ];
    for (let i = 0; i < 3; i++) plan.push({ pct: Math.floor(Math.random() * 101), ms: 60_000 });
    plan.push({ pct: -1, ms: 200 + Math.floor(Math.random() * 2500) });
    let completed = 0, interrupted = 0;
    for (const step of plan) {
      await Deno.writeTextFile(envFile, JSON.stringify(initialEnv));
      await Deno.remove(join(dir, "data"), { recursive: true }).catch(() => {});
      {
        const s = new Store({ path: join(dir, "data", "keepwire.db") });
        new UpdateRecords(s).put(aRow);
        s.close();
      }
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "update", "install", b.path, "--offline", "--config", cfg],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      let killed = false;
      const kill = () => {
        if (!killed) {
          killed = true;
          try {
            child.kill("SIGKILL");
          } catch { /* exited */ }
        }
      };
      const timer = setTimeout(kill, step.ms);
      let text = "";
      const dec = new TextDecoder();
      const reading = (async () => {
        for await (const chunk of child.stdout) {
          text += dec.decode(chunk);
          const pcts = [...text.matchAll(/install: (\d+)%/g)].map((m) => Number(m[1]));
          if (step.pct >= 0 && pcts.length && Math.max(...pcts) >= step.pct) kill();
        }
      })();
      const errText = (async () => {
        let t = "";
        for await (const c of child.stderr) t += dec.decode(c);
        return t;
      })();
      const st = await child.status;
      clearTimeout(timer);
      await reading;
      const stderr = await errText;
      // what survived
      const env = JSON.parse(await Deno.readTextFile(envFile));
      const s = new Store({ path: join(dir, "data", "keepwire.db") });
      const rec = new UpdateRecords(s);
      const a = rec.slot("A", "rootfs"), bRow = rec.slot("B", "rootfs");
      s.close();
      assertEquals(a, aRow, `booted slot's record unchanged (step ${JSON.stringify(step)})`);
      assertEquals(await Deno.readTextFile(slotA), "factory A\n");
      assertEquals([env.A_OK, env.A_TRY], ["1", "0"], "A stays good");
      if (env.ORDER === "B A") {
        // killed after the final write (or not killed at all): a complete install
        completed++;
        assertEquals([env.B_OK, env.B_TRY], ["1", "0"]);
        assertEquals(bRow?.sha256, imgSha);
        const got = await Deno.readFile(slotB), want = await Deno.readFile(b.image);
        assert(
          got.length === want.length && got.every((v, j) => v === want[j]),
          "B holds the verified image",
        );
      } else {
        interrupted++;
        assertEquals(env.ORDER, "A B", "boot order untouched");
        assertEquals(env.B_OK, "0", "B never marked good");
        assert(
          !bRow || ["installing", "failed", "installed"].includes(bRow.status),
          `B row ${bRow?.status}`,
        );
        assert(killed || st.code !== 0, `an interrupted install was killed: ${stderr}`);
      }
    }
    console.log(
      `kill -9 plan: ${plan.length} runs, ${interrupted} interrupted, ${completed} completed`,
    );
    assert(interrupted >= 4, "most kills land inside the install");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
