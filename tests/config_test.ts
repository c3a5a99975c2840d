import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import {
  ConfigError,
  DEFAULT_CONFIG,
  loadConfig,
  MAX_CONFIG_DEPTH,
  splitListen,
  tooDeep,
  validateConfig,
} from "../mod/config/mod.ts";
import { InputTooLargeError, readTextFileBounded, readTextFileBoundedSync } from "../mod/fs.ts";
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
  // A KeepwireError: the API answers 400 invalid_config with the field.
  assertEquals([e.status, e.code, e.fields], [400, "invalid_config", {
    "web.listen": 'expected "host:port" string, got number',
  }]);
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
    c = await loadConfig({ file, env: { KEEPWIRE_GOVERNOR: "off" } });
    assertEquals(c.governor.enabled, false);
    assertEquals((await loadConfig({ env: { KEEPWIRE_GOVERNOR: "on" } })).governor.enabled, true);
    await assertRejects(
      () => loadConfig({ file, env: { KEEPWIRE_GOVERNOR: "no" } }),
      ConfigError,
      'KEEPWIRE_GOVERNOR: expected "on" or "off", got "no"',
    );
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

/** Run the real CLI with a deadline: a hang is a failure, not a stuck suite. */
async function kwWithin(args: string[], ms = 120_000) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, signal: out.signal, stderr: dec.decode(out.stderr) };
}

Deno.test("config: nesting deeper than the limit is a config error naming the line, not a stack overflow", async () => {
  assertEquals(tooDeep(`{"a": [1, {"b": "[[[["}], // [[[[\n /* {{{{ */ "c": {}}`, 3), null);
  assertEquals(tooDeep(`{\n  "a": [[1]]}`, 2), "line 2, column 9");
  const dir = await Deno.makeTempDir({ prefix: "kw-cfg-deep-" });
  try {
    const file = `${dir}/deep.json`;
    await Deno.writeTextFile(file, '{"web":'.repeat(20_000) + "1" + "}".repeat(20_000));
    const err = await assertRejects(() => loadConfig({ file, env: {} }), ConfigError);
    assertEquals((err as ConfigError).problems, [
      `line 1, column ${
        7 * MAX_CONFIG_DEPTH + 1
      }: nested deeper than ${MAX_CONFIG_DEPTH} objects/arrays (a keepwire config needs far fewer)`,
    ]);
    // The real command: exit 2 (invalid config) with the message, not exit 1 with a RangeError.
    const r = await kwWithin(["config", "check", file]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, `nested deeper than ${MAX_CONFIG_DEPTH}`);
    assert(!r.stderr.includes("Maximum call stack"), r.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: reads are bounded: an endless file is refused naming the file and the limit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-cfg-big-" });
  try {
    const file = `${dir}/f.txt`;
    await Deno.writeTextFile(file, "x".repeat(100));
    assertEquals((await readTextFileBounded(file, 100)).length, 100);
    assertEquals(readTextFileBoundedSync(file, 100).length, 100);
    const e = await assertRejects(
      () => readTextFileBounded(file, 99, "thing"),
      InputTooLargeError,
    ) as InputTooLargeError;
    assertEquals([e.path, e.limit, e.status, e.code], [file, 99, 413, "input_too_large"]);
    assertStringIncludes(
      e.message,
      `${file} is larger than 99 B, the most keepwire reads as a thing`,
    );
    assert(
      (() => {
        try {
          readTextFileBoundedSync("/dev/zero", 1000);
        } catch (e) {
          return e instanceof InputTooLargeError;
        }
      })(),
    );
    await assertRejects(() => readTextFileBounded("/dev/zero", 1 << 20), InputTooLargeError);
    await assertRejects(() => loadConfig({ file: "/dev/zero", env: {} }), ConfigError, "4.0 MiB");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const r = await kwWithin(["config", "check", "/dev/zero"]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "/dev/zero is larger than 4.0 MiB");
});

Deno.test("config: governor keys and words renamed since the last release fail naming the new ones", () => {
  const problems = (governor: unknown) => {
    try {
      validateConfig({ governor });
    } catch (e) {
      assert(e instanceof ConfigError);
      return e.problems;
    }
    throw new Error("accepted");
  };
  assertEquals(
    problems({
      thresholds: { cpuPressure: { critical: 95 } },
      enterHoldMs: { critical: 100 },
      actions: { uiRefreshMs: { critical: 1000 }, suspendImportantAt: "critical" },
      admission: {
        minCriticality: { critical: "sheddable-plus" },
        defaultCriticality: "critical",
        plusHeadroom: 0.4,
        routes: [{ path: "/x", criticality: "critical-plus" }, {
          path: "/y",
          priority: "sheddable",
        }],
      },
    }),
    [
      'governor.thresholds.cpuPressure.critical: renamed to "severe" (level critical is now severe)',
      'governor.enterHoldMs.critical: renamed to "severe" (level critical is now severe)',
      'governor.actions.uiRefreshMs.critical: renamed to "severe" (level critical is now severe)',
      'governor.actions.suspendImportantAt: level "critical" is now "severe"',
      'governor.admission.minCriticality.critical: renamed to "severe" (level critical is now severe)',
      'governor.admission.minCriticality: renamed to "minPriority" ("sheddable-plus" is now "deferrable")',
      'governor.admission.defaultCriticality: renamed to "defaultPriority" ("critical" is now "standard")',
      'governor.admission.plusHeadroom: renamed to "deferrableHeadroom"',
      'governor.admission.routes[0].criticality: renamed to "priority" ("critical-plus" is now "vital")',
      'governor.admission.routes[1].priority: unknown priority ("sheddable" is now "bulk")',
    ],
  );
  // The new words are accepted.
  const c = validateConfig({
    governor: {
      thresholds: { cpuPressure: { severe: 95 } },
      admission: {
        minPriority: { severe: "deferrable" },
        routes: [{ path: "/x", priority: "vital" }],
      },
    },
  });
  assertEquals(c.governor.thresholds.cpuPressure?.severe, 95);
  assertEquals(c.governor.admission.minPriority.severe, "deferrable");
});
