import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { kw, kwDaemon } from "./helpers/cli.ts";
import { Store } from "../mod/store/mod.ts";

Deno.test("cli: unknown command or flag prints usage and exits 2", async () => {
  let r = await kw(["frobnicate"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "unknown command");
  r = await kw(["status", "--bogus"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "unknown option");
  r = await kw(["config", "check"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "missing required argument");
});

Deno.test("cli: help is generated for every command; version prints", async () => {
  let r = await kw(["--help"]);
  assertEquals(r.code, 0);
  for (const c of ["run", "status", "config", "version"]) assertStringIncludes(r.stdout, c);
  r = await kw(["run", "--help"]);
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "--listen");
  r = await kw(["version", "--json"]);
  assertEquals(r.code, 0);
  assertEquals(JSON.parse(r.stdout).deno, Deno.version.deno);
});

Deno.test("cli: config check names the bad field and exits 2; a good file exits 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cli-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, `{"web": {"listen": 8080}}`);
    let r = await kw(["config", "check", `${dir}/bad.json`]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, 'web.listen: expected "host:port" string, got number');
    await Deno.writeTextFile(`${dir}/good.jsonc`, `// ok\n{"identity": {"name": "a"}}`);
    r = await kw(["config", "check", `${dir}/good.jsonc`]);
    assertEquals(r.code, 0);
    r = await kw(["config", "show", "--config", `${dir}/good.jsonc`, "--data", `${dir}/d`]);
    assertEquals(r.code, 0);
    const shown = JSON.parse(r.stdout);
    assertEquals([shown.identity.name, shown.dataDir], ["a", `${dir}/d`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: run with an invalid config exits 2 and starts nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.json`,
      `{"dataDir": "${dir}/data", "web": {"listen": "x"}}`,
    );
    const r = await kw(["run", "--config", `${dir}/bad.json`]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "web.listen");
    let exists = true;
    try {
      await Deno.stat(`${dir}/data`);
    } catch {
      exists = false;
    }
    assert(!exists, "a data dir was created although the config was invalid");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: run serves health; status --json finds the daemon through --data; a second run on the data directory is refused; SIGTERM stops the subsystems before the runtime", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cli-" });
  const cfg = `${dir}/keepwire.json`;
  const worker = new URL("../examples/heartbeat_worker.ts", import.meta.url).pathname;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({ subsystems: [{ name: "engine", kind: "worker", module: worker }] }),
  );
  const d = await kwDaemon(["--config", cfg, "--data", dir, "--listen", "127.0.0.1:0"]);
  try {
    const deadline = Date.now() + 30_000;
    let h = await fetch(`${d.url}/api/health`);
    while (h.status !== 200 && Date.now() < deadline) {
      await h.body?.cancel();
      await new Promise((r) => setTimeout(r, 50));
      h = await fetch(`${d.url}/api/health`);
    }
    assertEquals(h.status, 200);
    assertEquals((await h.json()).ok, true);
    const r = await kw(["status", "--json", "--data", dir]);
    assertEquals(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assertEquals([s.running, s.health.ok], [true, true]);

    // a second daemon on the same data directory: refused at once, naming the holder
    const second = await kw(["run", "--data", dir, "--listen", "127.0.0.1:0"]);
    assertEquals(second.code, 1, second.stderr);
    assertStringIncludes(second.stderr, `in use by keepwire pid ${d.child.pid}`);
    assertEquals((await fetch(`${d.url}/api/health`)).status, 200);
    assert((await Deno.stat(`${dir}/keepwire.sock`)).isSocket, "the first one's socket is gone");

    d.child.kill("SIGTERM");
    const st = await d.child.status;
    assertEquals(st.code, 0, d.output());
    assertStringIncludes(d.output(), "stopped");
    const store = new Store({ path: `${dir}/keepwire.db` });
    const events = store.events({ order: "asc", limit: 10_000 });
    store.close();
    const kinds = events.filter((e) => e.kind.startsWith("runtime.")).map((e) => e.kind);
    assertEquals(kinds, ["runtime.started", "runtime.stopped"]);
    const engineStopped = events.findIndex((e) =>
      e.kind === "supervisor.transition" && e.payload.subsystem === "engine" &&
      e.payload.to === "stopped"
    );
    const runtimeStopped = events.findIndex((e) => e.kind === "runtime.stopped");
    assert(engineStopped >= 0, "the subsystem was not stopped");
    assert(engineStopped < runtimeStopped, "the runtime stopped before its subsystems");
    await Deno.stat(`${dir}/keepwire.sock`).then(
      () => assert(false, "control socket left behind"),
      () => {},
    );
    // without a daemon, status reads the store
    const off = await kw(["status", "--json", "--data", dir]);
    assertEquals(off.code, 3, "status exits 3 when no daemon runs");
    const o = JSON.parse(off.stdout);
    assertEquals([o.running, o.lastRuntimeEvent.kind], [false, "runtime.stopped"]);
  } finally {
    try {
      d.child.kill("SIGKILL");
    } catch { /* exited */ }
    await d.child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: KEEPWIRE_LISTEN and KEEPWIRE_DATA override the embedded default", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cli-" });
  const d = await kwDaemon([], { env: { KEEPWIRE_LISTEN: "127.0.0.1:0", KEEPWIRE_DATA: dir } });
  try {
    assertEquals((await fetch(`${d.url}/api/health`)).status, 200);
    await Deno.stat(`${dir}/keepwire.db`);
  } finally {
    d.child.kill("SIGINT");
    await d.child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: docs/cli.md is generated from the program and up to date", async () => {
  const { renderCliDocs } = await import("../mod/cli/gen_docs.ts");
  const onDisk = await Deno.readTextFile(new URL("../docs/cli.md", import.meta.url));
  assertEquals(onDisk, renderCliDocs(), "docs/cli.md is stale: run `tools/deno task docs`");
});

Deno.test("cli: config show redacts secrets marked in the schema and nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/secret.json`,
      JSON.stringify({
        alert: {
          channels: {
            mail: {
              type: "email",
              host: "127.0.0.1",
              from: "kw@example.org",
              user: "kw",
              password: "smtp-pass-not-shown",
            },
          },
        },
      }),
    );
    const r = await kw(["config", "show", "--config", `${dir}/secret.json`, "--data", `${dir}/d`]);
    assertEquals(r.code, 0, r.stderr);
    assert(!r.stdout.includes("smtp-pass-not-shown"), "the SMTP password was printed");
    const shown = JSON.parse(r.stdout);
    assertEquals(shown.alert.channels.mail.password, "(redacted)");
    assertEquals(shown.alert.channels.mail.user, "kw");
    // a field whose name merely contains "pass" is not a secret
    assert(typeof shown.hardware.bypass === "object", "hardware.bypass was redacted");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
