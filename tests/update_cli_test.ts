/**
 * `keepwire update ...` and /api/update end to end against what `keepwire run`
 * starts (the real runtime with bypass, supervisor and the one update module):
 * install through the daemon (streamed upload), progress lines when stdout is
 * not a TTY, status (table and JSON), mark-good / mark-bad, API errors, the
 * update state, and the offline paths.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { kw, kwDaemon } from "./helpers/cli.ts";
import { makeBundle, makeImage, opensslKey } from "./update_fixture.ts";
import { createBundle } from "../mod/update/bundle.ts";
import { ProgressOutput } from "../mod/cli/update.ts";
import { DaemonError, daemonRequest } from "../mod/cli/client.ts";
import { Store } from "../mod/store/mod.ts";

/** `keepwire run -c cfg` (the real runtime: bypass, supervisor, governor, update, web). */
async function startDaemon(
  cfg: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const d = await kwDaemon(["-c", cfg]);
  return {
    url: d.url,
    async stop() {
      d.child.kill("SIGTERM");
      const st = await d.child.status;
      assertEquals(st.code, 0, `keepwire run stopped cleanly: ${d.output()}`);
    },
  };
}

Deno.test("cli: update install through the daemon (upload), status, mark-good/mark-bad, API errors, offline paths", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-ucli-" });
  try {
    const key = await opensslKey(dir, "k");
    await Deno.writeTextFile(join(dir, "ring.pem"), key.publicPem);
    await Deno.writeTextFile(join(dir, "A.img"), "factory\n");
    const envFile = join(dir, "bootenv.json");
    await Deno.writeTextFile(
      envFile,
      JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "1", B_OK: "0", B_TRY: "0" }),
    );
    const cfg = join(dir, "kw.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({
        dataDir: join(dir, "data"),
        web: { listen: "127.0.0.1:0" },
        governor: { enabled: false },
        update: {
          compatible: "acme-gw",
          keyring: join(dir, "ring.pem"),
          bootedSlot: "A",
          cmdline: join(dir, "no-cmdline"),
          bootloader: { backend: "file", file: envFile },
          slots: {
            rootfs: {
              a: { device: join(dir, "A.img"), bootname: "A" },
              b: { device: join(dir, "B.img"), bootname: "B" },
            },
          },
          activation: { mode: "restart", healthGateMs: 0 },
        },
      }),
    );
    const good = await makeBundle(dir, {
      keys: [key.signer],
      size: 3_000_000,
      version: "2.0.0",
      name: "good",
    });
    const other = await opensslKey(dir, "other");
    const foreign = await makeBundle(dir, { keys: [other.signer], name: "foreign" });

    // no daemon yet: install needs --offline
    let r = await kw(["update", "install", good.path, "-c", cfg]);
    assertEquals(r.code, 3, r.stderr);
    assertStringIncludes(r.stderr, "--offline");

    const d = await startDaemon(cfg);
    try {
      // the gate (0 ms; no subsystems, so the supervisor's essentials are healthy) marked the
      // booted slot good at start
      const deadline = Date.now() + 20_000;
      for (;;) {
        const env = JSON.parse(await Deno.readTextFile(envFile));
        if (env.A_TRY === "0") break;
        if (Date.now() > deadline) throw new Error("A never marked good");
        await new Promise((res) => setTimeout(res, 50));
      }
      r = await kw(["update", "install", good.path, "-c", cfg]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, "installed 2.0.0 into slot B");
      const lines = r.stdout.split("\n").filter((l) => l.startsWith("install: "));
      assert(lines.length >= 5 && lines.length <= 21, `one line per 5 %: ${lines.length}`);
      assertStringIncludes(lines.at(-1)!, "install: 100%");

      r = await kw(["update", "status", "--json", "-c", cfg]);
      assertEquals(r.code, 0, r.stderr);
      const st = JSON.parse(r.stdout);
      assertEquals(st.booted, { bootname: "A", source: "config" });
      assertEquals(st.primary, "B");
      const b = st.slots.find((s: { bootname: string }) => s.bootname === "B");
      assertEquals([b.state, b.version, b.sha256, b.booted, b.primary, b.device], [
        "trying",
        "2.0.0",
        good.manifest.images[0].sha256,
        false,
        true,
        join(dir, "B.img"),
      ]);
      assert(typeof b.installedAt === "string");
      const a = st.slots.find((s: { bootname: string }) => s.bootname === "A");
      assertEquals([a.state, a.booted, a.primary], ["good", true, false]);
      assertEquals(st.history[0].action, "install");

      r = await kw(["update", "status", "-c", cfg]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, "booted A (from config); primary B");
      assertStringIncludes(r.stdout, "update installed (slot B 2.0.0)");
      assert(/rootfs\s+B\s+\S+B\.img\s+trying\s+2\.0\.0/.test(r.stdout), r.stdout);

      // a bundle signed by a key the keyring does not know: clear error, exit 1
      r = await kw(["update", "install", foreign.path, "-c", cfg]);
      assertEquals(r.code, 1);
      assertStringIncludes(r.stderr, "not in the keyring");

      r = await kw(["update", "mark-bad", "other", "-c", cfg]);
      assertEquals([r.code, r.stdout.trim()], [0, "slot B marked bad"]);
      assertEquals(JSON.parse(await Deno.readTextFile(envFile)).B_OK, "0");
      r = await kw(["update", "mark-good", "other", "-c", cfg]);
      assertEquals([r.code, r.stdout.trim()], [0, "slot B marked good"]);
      r = await kw(["update", "mark-good", "C", "-c", cfg]);
      assertEquals(r.code, 2);
      assertStringIncludes(r.stderr, "unknown slot");

      // API shapes (over the control socket: the TCP port needs a login)
      const api = async (method: string, path: string, body?: BodyInit, type?: string) => {
        try {
          const ok = await daemonRequest(join(dir, "data"), method, path, undefined, {
            raw: body,
            headers: type ? { "content-type": type } : {},
          });
          return { status: 200, body: ok as Record<string, unknown> };
        } catch (e) {
          if (e instanceof DaemonError) {
            return { status: e.status, body: e.body as Record<string, unknown> };
          }
          throw e;
        }
      };
      const errOf = (x: { body: Record<string, unknown> }) =>
        x.body.error as { code: string; fields?: Record<string, string> };
      let x = await api("POST", "/api/update", "--x--", "multipart/form-data; boundary=x");
      assertEquals([x.status, errOf(x).code], [415, "unsupported_media_type"]);
      x = await api(
        "POST",
        "/api/update",
        JSON.stringify({ url: "file:///etc/passwd" }),
        "application/json",
      );
      assertEquals(x.status, 400);
      assertEquals(Object.keys(errOf(x).fields!), ["url"]);
      x = await api(
        "POST",
        "/api/update",
        await Deno.readFile(foreign.path),
        "application/octet-stream",
      );
      assertEquals([x.status, errOf(x).code], [422, "unknown_key"]);
      // a slot class named like an Object method is an unknown class, not a 500
      await makeImage(join(dir, "c.img"), 1_000);
      await createBundle({
        images: [{ slotClass: "constructor", path: join(dir, "c.img") }],
        compatible: "acme-gw",
        version: "2.0.0",
        keys: [key.signer],
        out: join(dir, "c.kwb"),
      });
      x = await api(
        "POST",
        "/api/update",
        await Deno.readFile(join(dir, "c.kwb")),
        "application/octet-stream",
      );
      assertEquals([x.status, errOf(x).code], [422, "no_slot"]);
      assertStringIncludes(JSON.stringify(x.body), `no slot class \\"constructor\\"`);
      x = await api("POST", "/api/update/mark-good", "{not json", "application/json");
      assertEquals(x.status, 400);
      x = await api("GET", "/api/update");
      const g = x.body as { progress: { code: string }; gate: { gate: string } };
      assertEquals(g.progress.code, "no_slot", "progress shows the last upload's failure");
      assertEquals(g.gate.gate, "passed");
      const upd = (x.body as { update: { state: string; target: string; version: string } })
        .update;
      assertEquals([upd.state, upd.target, upd.version], ["installed", "B", "2.0.0"]);
      // exactly one update module runs: its gate marked the booted slot good once, at start
      x = await api("GET", "/api/events?kind=update.marked_good&limit=50");
      const marks = (x.body as { events: { payload: { slot: string; gateMs?: number } }[] })
        .events;
      assertEquals(marks.filter((e) => e.payload.gateMs !== undefined).length, 1);

      r = await kw(["update", "install", good.path, "--offline", "-c", cfg]);
      assertEquals(r.code, 2);
      assertStringIncludes(r.stderr, "a daemon is running");
    } finally {
      await d.stop();
    }

    // offline: status reads the store and the boot env; install works without a daemon
    r = await kw(["update", "status", "--json", "-c", cfg]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      JSON.parse(r.stdout).slots.find((s: { bootname: string }) => s.bootname === "B").version,
      "2.0.0",
    );
    const v3 = await makeBundle(dir, {
      keys: [key.signer],
      size: 500_000,
      version: "3.0.0",
      name: "v3",
    });
    r = await kw(["update", "install", v3.path, "--offline", "-c", cfg]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "installed 3.0.0 into slot B");

    // activate through what `keepwire run` wires: the bypass hold, the record, then the
    // switch (restart mode: the runtime stops and exits with restartExitCode for the launcher)
    const d2 = await kwDaemon(["-c", cfg]);
    const act = await daemonRequest(join(dir, "data"), "POST", "/api/update/activate");
    assertEquals(act, { target: "B", version: "3.0.0" });
    assertEquals((await d2.child.status).code, 75, d2.output());
    r = await kw(["update", "status", "--json", "-c", cfg]);
    const after = JSON.parse(r.stdout);
    assertEquals([after.update.state, after.update.target], ["activating", "B"]);
    const store = new Store({ path: join(dir, "data", "keepwire.db") });
    const kinds =
      (store.db.prepare("SELECT kind FROM events WHERE kind LIKE 'update.%' ORDER BY id")
        .all() as { kind: string }[]).map((e) => e.kind);
    store.close();
    const tail = kinds.slice(kinds.indexOf("update.hold_placed"));
    assertEquals(tail.slice(0, 4), [
      "update.hold_placed",
      "update.transition",
      "update.activating",
      "update.switching",
    ]);
    // no install while the new slot is being activated
    r = await kw(["update", "install", v3.path, "--offline", "-c", cfg]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "the update is activating");

    r = await kw(["update", "mark-bad", "other", "-c", cfg]);
    assertEquals(r.code, 3);
    r = await kw(["update", "mark-bad", "other", "--offline", "-c", cfg]);
    assertEquals(r.code, 0, r.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: progress output prints one plain line per 5 % when not a TTY", () => {
  const lines: string[] = [];
  const p = new ProgressOutput({ tty: false, write: (l) => lines.push(l) });
  for (let i = 0; i <= 1000; i++) p.update(i / 10, "writing");
  p.done();
  assertEquals(lines.length, 21);
  assertEquals([lines[0], lines[20]], ["install: 0% writing", "install: 100% writing"]);
});
