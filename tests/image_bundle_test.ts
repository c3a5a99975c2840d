/**
 * The one-executable form (image/bundle.ts): the launcher runs the pinned deno on the bundled
 * keepwire.js (its chunks beside it), which serves /api/health and starts a worker subsystem through the bundled
 * Worker host (worker_host.js beside it), the SDK shared with the vendor module.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { asciiOnly, buildBundle, LAUNCHER, V8_FLAGS } from "../image/bundle.ts";
import { workerHostUrl } from "../mod/supervisor/worker.ts";

const WORKER_HOST = "mod/supervisor/worker_host.ts";

Deno.test("bundle: the Worker host URL is worker_host.ts from source, worker_host.js bundled", () => {
  assertEquals(
    workerHostUrl("file:///src/mod/supervisor/worker.ts"),
    "file:///src/mod/supervisor/worker_host.ts",
  );
  assertEquals(
    workerHostUrl("file:///usr/lib/keepwire/keepwire.js"),
    "file:///usr/lib/keepwire/worker_host.js",
  );
  assertEquals(LAUNCHER.trim().split("\n").length, 2);
});

Deno.test("bundle: the launcher, the checkout's ./keepwire and `deno task start` pass the same V8 flags", async () => {
  const flag = `--v8-flags=${V8_FLAGS}`;
  assertStringIncludes(LAUNCHER, flag);
  const root = new URL("..", import.meta.url);
  assertStringIncludes(await Deno.readTextFile(new URL("keepwire", root)), flag);
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks;
  assertStringIncludes(tasks.start, flag);
});

Deno.test("bundle: asciiOnly escapes what is not ASCII and the module means the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-bundle-ascii-" });
  try {
    const f = join(dir, "m.js");
    await Deno.writeTextFile(
      f,
      '/** a \u2192 b \u2014 c */\nexport const s = "\u2192 \u00e9 \u00d7";\nexport const t = `\u2264${1}`;\nexport const r = /\u00b5s/.test("3 \u00b5s");\n',
    );
    await asciiOnly(f);
    const text = await Deno.readTextFile(f);
    assert(!/[\u0080-\uffff]/.test(text), text);
    const m = await import(`file://${f}`);
    assertEquals([m.s, m.t, m.r], ["\u2192 \u00e9 \u00d7", "\u22641", true]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: what deno bundle leaves non-ASCII is comments only, so the ASCII rewrite cannot change a raw template string", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-bundle-raw-" });
  try {
    // why this matters: esbuild escapes strings and plain templates itself, but leaves a
    // tagged template's text as written (its .raw would change), and asciiOnly escapes it
    const f = join(dir, "raw.js");
    // (the TypeScript string holds the arrow itself: the file gets it as one character)
    await Deno.writeTextFile(f, "export const raw = String.raw`\u2192`.length;\n");
    assertEquals((await import(`file://${f}`)).raw, 1);
    await asciiOnly(f);
    assertEquals((await import(`file://${f}?ascii`)).raw, 6, "asciiOnly kept a raw template");
    // so keepwire's bundles must carry no non-ASCII outside comments (none is a template)
    const root = new URL("..", import.meta.url).pathname;
    for (const [out, entry] of [["keepwire.js", "main.ts"], ["worker_host.js", WORKER_HOST]]) {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["bundle", "--platform", "deno", "-o", join(dir, out), entry],
        cwd: root,
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(o.code, 0, new TextDecoder().decode(o.stderr));
      const lines = (await Deno.readTextFile(join(dir, out))).split("\n");
      const bad = lines.flatMap((l, i) =>
        /[\u0080-\uffff]/.test(l) && (!/^\s*(\/\/|\/\*|\*)/.test(l) || /[\u2028\u2029]/.test(l))
          ? [`${out}:${i + 1}: ${l.trim().slice(0, 120)}`]
          : []
      );
      assertEquals(
        bad,
        [],
        "non-ASCII outside a comment line (a tagged template, String.raw or a regular " +
          "expression?): asciiOnly would rewrite it; write the \\u escape in the source",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: keepwire run from the bundle reaches /api/health and a worker subsystem beats", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-bundle-" });
  const bundle = join(dir, "lib");
  const data = join(dir, "data");
  const r = await buildBundle(bundle, { deno: null });
  assert(r.jsBytes > 100_000, `the bundle's JavaScript is only ${r.jsBytes} bytes`);
  // code splitting: keepwire.js and the chunks it and the others import, side by side
  const js = [...Deno.readDirSync(bundle)].filter((e) => e.isFile && e.name.endsWith(".js"))
    .map((e) => e.name);
  assertEquals(js.length, r.jsFiles + 1, js.join(" ")); // + worker_host.js
  assert(r.jsFiles > 2, `only ${r.jsFiles} files: the bundle was not split`);
  // ASCII only: V8 then keeps each source as one byte per character, not two
  for (const f of js) {
    assert(!/[\u0080-\uffff]/.test(await Deno.readTextFile(join(bundle, f))), f);
  }
  // a second build into the same directory leaves no chunk of the first behind, and removes
  // nothing it did not write (here a vendor's own script beside the bundle)
  await Deno.writeTextFile(join(bundle, "vendor.js"), "export const own = 1;\n");
  const again = await buildBundle(bundle, { deno: null });
  const after = [...Deno.readDirSync(bundle)].filter((e) => e.isFile && e.name.endsWith(".js"))
    .map((e) => e.name);
  assert(after.includes("vendor.js"), `a rebuild removed a file it did not write: ${after}`);
  assertEquals(after.length, again.jsFiles + 2, after.join(" ")); // + worker_host.js, vendor.js
  // no source tree next to the bundle: only what the image carries
  for (const f of ["keepwire", "keepwire.js", "worker_host.js", "static/app.css"]) {
    await Deno.stat(join(bundle, f));
  }
  const cfg = join(dir, "keepwire.json");
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      subsystems: [{
        name: "engine",
        kind: "worker",
        module: join(bundle, "examples/heartbeat_worker.ts"),
      }],
    }),
  );
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const env = { NO_COLOR: "1", KEEPWIRE_GOVERNOR: "off", KEEPWIRE_DENO: Deno.execPath() };
  const child = new Deno.Command(join(bundle, "keepwire"), {
    args: ["run", "--config", cfg, "--data", data, "--listen", `127.0.0.1:${port}`],
    cwd: dir,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s.pipeThrough(new TextDecoderStream())) out += c;
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  try {
    const deadline = Date.now() + 60_000;
    let health = 0;
    while (Date.now() < deadline) {
      try {
        const h = await fetch(`http://127.0.0.1:${port}/api/health`);
        health = h.status;
        await h.body?.cancel();
        if (health === 200) break;
      } catch { /* not listening yet */ }
      await new Promise((res) => setTimeout(res, 100));
    }
    assertEquals(health, 200, out);
    // the UI's npm browser library, served from the copy beside the bundle
    const morph = await fetch(`http://127.0.0.1:${port}/static/idiomorph.js`);
    const morphText = await morph.text();
    assertEquals(morph.status, 200);
    assert(morphText.includes("Idiomorph") && !morphText.includes("cannot read"), morphText);
    // the worker: ready and beating (heartbeats come from the SDK inside the Worker)
    let row: { state: string; lastHeartbeatMs: number | null } | undefined;
    while (Date.now() < deadline) {
      const s = await new Deno.Command(join(bundle, "keepwire"), {
        args: ["sub", "list", "--json", "--data", data],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(s.stdout);
      if (s.code === 0) {
        row = JSON.parse(text).subsystems.find((x: { name: string }) => x.name === "engine");
        if (row?.state === "ready" && row.lastHeartbeatMs !== null) break;
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    assertEquals(row?.state, "ready", `${JSON.stringify(row)}\n${out}`);
    assert(row?.lastHeartbeatMs !== null, "no heartbeat from the bundled worker host");
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reading;
    await Deno.remove(dir, { recursive: true });
  }
  assertStringIncludes(out, "running");
});
