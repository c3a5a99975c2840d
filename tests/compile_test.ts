import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { dirname } from "node:path";
import { cachedDenortPath, resolveDenort } from "../image/compile.ts";

const TARGET = "x86_64-unknown-linux-gnu";

Deno.test("compile: without DENORT_BIN and without a cached denort, one clear sentence", async () => {
  // An empty deno cache of our own: the missing case is shown on every machine, also on one
  // that has a denort archive cached.
  const denoDir = await Deno.makeTempDir({ prefix: "kw-denodir-" });
  try {
    const r = await resolveDenort({ DENO_DIR: denoDir }, TARGET);
    assertEquals(r.ok, false);
    if (!r.ok) assertStringIncludes(r.message, "set DENORT_BIN");
    // the real task says the same and exits 1
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../image/compile.ts", import.meta.url).pathname],
      env: { DENORT_BIN: "", NO_COLOR: "1", DENO_DIR: denoDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 1);
    const err = new TextDecoder().decode(out.stderr).trim();
    assertStringIncludes(err, "cannot be downloaded here: set DENORT_BIN");
    assertEquals(err.split("\n").length, 1);
    // with the archive in that cache, deno compile can use it
    const zip = cachedDenortPath(TARGET, { DENO_DIR: denoDir });
    assertEquals(zip.startsWith(denoDir), true);
    await Deno.mkdir(dirname(zip), { recursive: true });
    await Deno.writeFile(zip, new Uint8Array([0x50, 0x4b, 5, 6]));
    assertEquals(await resolveDenort({ DENO_DIR: denoDir }, TARGET), { ok: true });
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});

Deno.test("compile: DENORT_BIN that is missing or not executable is named", async () => {
  let r = await resolveDenort({ DENORT_BIN: "/nonexistent/denort" }, TARGET);
  assertEquals(r, { ok: false, message: "DENORT_BIN=/nonexistent/denort does not exist." });
  const f = await Deno.makeTempFile();
  try {
    r = await resolveDenort({ DENORT_BIN: f }, TARGET);
    assertEquals(r, { ok: false, message: `DENORT_BIN=${f} is not an executable file.` });
    await Deno.chmod(f, 0o755);
    r = await resolveDenort({ DENORT_BIN: f }, TARGET);
    assertEquals(r, { ok: true, denortBin: f });
  } finally {
    await Deno.remove(f);
  }
});
