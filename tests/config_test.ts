import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import {
  ConfigError,
  DEFAULT_CONFIG,
  loadConfig,
  splitListen,
  validateConfig,
} from "../mod/config/mod.ts";
import { renderConfigDocs } from "../mod/config/gen_docs.ts";

Deno.test("config: the embedded default validates and runs on mock hardware", () => {
  const c = validateConfig(DEFAULT_CONFIG);
  assertEquals(c.web.listen, "127.0.0.1:8080");
  assertEquals(c.dataDir, "./var");
  assert(c.hardware.bypass.segments.every((s) => s.driver === "mock"));
});

Deno.test("config: a wrong type names the field, the expected form and what was given", () => {
  const e = (() => {
    try {
      validateConfig({ web: { listen: 8080 } });
    } catch (e) {
      return e as ConfigError;
    }
    throw new Error("no error");
  })();
  assert(e instanceof ConfigError);
  assertEquals(e.problems, ['web.listen: expected "host:port" string, got number']);
});

Deno.test("config: every bad field is reported, with paths into arrays and unknown keys", () => {
  try {
    validateConfig({
      web: { listen: "nohost" },
      store: { retention: { maxEvents: "many" } },
      hardware: { bypass: { segments: [{ name: "Bad Name", ports: ["a"] }] } },
      bogus: 1,
    });
    throw new Error("no error");
  } catch (e) {
    assert(e instanceof ConfigError);
    const text = e.problems.join("\n");
    assertStringIncludes(text, 'web.listen: expected "host:port"');
    assertStringIncludes(text, "store.retention.maxEvents: expected number, got string");
    assertStringIncludes(text, 'hardware.bypass.segments[0] (name "Bad Name").name:');
    assertStringIncludes(text, 'hardware.bypass.segments[0] (name "Bad Name").ports:');
    assertStringIncludes(text, "bogus: unknown field");
  }
});

Deno.test("config: the updater config from the issue is accepted as is", () => {
  const c = validateConfig(JSON.parse(
    `{"update":{"compatible":"acme-gw","keyring":"/etc/keepwire/pub.pem","bootedSlot":"A","bootloader":{"backend":"grubenv","file":"/boot/grub/grubenv"},"slots":{"rootfs":{"a":{"device":"/dev/sda2","bootname":"A"},"b":{"device":"/dev/sda3","bootname":"B"}}}}}`,
  ));
  assertEquals(c.update.slots.rootfs.b.device, "/dev/sda3");
});

Deno.test("config: JSONC file with comments, env and flag overrides in that order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cfg-" });
  try {
    const file = `${dir}/kw.jsonc`;
    await Deno.writeTextFile(
      file,
      `// appliance config\n{\n  "identity": { "name": "gw1" }, /* inline */\n  "web": { "listen": "0.0.0.0:9000" },\n}\n`,
    );
    let c = await loadConfig({ file, env: {} });
    assertEquals([c.identity.name, c.web.listen], ["gw1", "0.0.0.0:9000"]);
    c = await loadConfig({ file, env: { KEEPWIRE_LISTEN: "127.0.0.1:9100", KEEPWIRE_DATA: "/x" } });
    assertEquals([c.web.listen, c.dataDir], ["127.0.0.1:9100", "/x"]);
    c = await loadConfig({
      file,
      env: { KEEPWIRE_LISTEN: "127.0.0.1:9100" },
      listen: "[::1]:9200",
      dataDir: "/y",
    });
    assertEquals([c.web.listen, c.dataDir], ["[::1]:9200", "/y"]);
    assertEquals(splitListen(c.web.listen), { hostname: "::1", port: 9200 });
    await Deno.writeTextFile(file, `{\n  "web": { "listen": }\n}`);
    const err = await assertRejects(() => loadConfig({ file, env: {} }), ConfigError);
    assertStringIncludes(err.message, "line 2");
    await assertRejects(
      () => loadConfig({ file: `${dir}/missing.json`, env: {} }),
      ConfigError,
      "cannot read file",
    );
    await assertRejects(
      () => loadConfig({ env: { KEEPWIRE_LISTEN: "127.0.0.1:99999" } }),
      ConfigError,
      "port must be 0..65535",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: docs/config.md is generated from the schema and up to date", async () => {
  const onDisk = await Deno.readTextFile(new URL("../docs/config.md", import.meta.url));
  assertEquals(
    onDisk,
    renderConfigDocs(),
    "docs/config.md is stale: run `tools/deno task docs`",
  );
});
