/**
 * The store schema a bundle declares (manifest `storeSchema`, mod/update/bundle_schema.ts):
 * written, signed and read back; absent in older bundles, which still verify; the CLI
 * writes this code's own schema by default; and this code's schema is exactly what a store
 * reports after every module ran its migrations (what a running node reports).
 */
import { join } from "node:path";
import {
  createBundle,
  HEADER_SIZE,
  readBundleInfo,
  verifyBundleFile,
} from "../mod/update/bundle.ts";
import { CODE_MIGRATIONS, codeStoreSchema } from "../mod/update/bundle_schema.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { Store } from "../mod/store/mod.ts";
import { Users } from "../mod/web/users.ts";
import { Outbox } from "../mod/alert/outbox.ts";
import { UpdateRecords } from "../mod/update/records.ts";
import { HistoryStore } from "../mod/history/store.ts";
import { BypassHoldStore } from "../mod/bypass/hold_store.ts";
import { SdkHost } from "../mod/sdk/host.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { kw } from "./helpers/cli.ts";
import { makeBundle, makeImage, opensslKey } from "./update_fixture.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kw-bundle-schema-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bundle: storeSchema is written, signed and read back; a changed one fails the signature", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const b = await makeBundle(dir, { keys: [k.signer], storeSchema: "alert:1,core:4" });
    assertEquals(b.manifest.storeSchema, "alert:1,core:4");
    assertEquals((await readBundleInfo(b.path)).manifest.storeSchema, "alert:1,core:4");
    assertEquals((await verifyBundleFile(b.path, [k.pub])).manifest.storeSchema, "alert:1,core:4");
    // the signature covers it: core:4 -> core:5 in the manifest bytes
    const bytes = await Deno.readFile(b.path);
    const text = new TextDecoder().decode(bytes.subarray(HEADER_SIZE, HEADER_SIZE + 2000));
    bytes[HEADER_SIZE + text.indexOf("core:4") + 5] = "5".charCodeAt(0);
    await Deno.writeFile(b.path, bytes);
    assertEquals((await readBundleInfo(b.path)).manifest.storeSchema, "alert:1,core:5");
    const e = await assertRejects(() => verifyBundleFile(b.path, [k.pub]), UpdateError);
    assertEquals((e as UpdateError).code, "bad_signature");
  });
});

Deno.test("bundle: without storeSchema (an older bundle) it still verifies; a malformed one is refused", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const old = await makeBundle(dir, { keys: [k.signer] });
    const r = await verifyBundleFile(old.path, [k.pub]);
    assertEquals(r.manifest.storeSchema, undefined);
    assert(!(await Deno.readTextFile(old.path).catch(() => "")).includes("storeSchema"));
    await makeImage(join(dir, "x.img"), 1000);
    for (const bad of ["core", "core:4,", "Core:4", "core:4;alert:1"]) {
      const e = await assertRejects(
        () =>
          createBundle({
            images: [{ slotClass: "rootfs", path: join(dir, "x.img") }],
            compatible: "acme-gw",
            version: "2.0.0",
            keys: [k.signer],
            out: join(dir, "bad.kwb"),
            storeSchema: bad,
          }),
        UpdateError,
      );
      assertStringIncludes((e as UpdateError).message, "storeSchema");
    }
  });
});

Deno.test("bundle: this code's store schema is what a store reports after every module migrated", () => {
  const store = new Store({ path: ":memory:" });
  try {
    new Users(store, { now: () => 0 });
    new Outbox(store, () => 0);
    new UpdateRecords(store, () => 0);
    new HistoryStore(store, { maxAgeMs: 1000, maxSamplesPerSeries: 10, maxSeries: 10 });
    new BypassHoldStore(store, () => 0);
    new SdkHost({
      store,
      registry: { defineGroup: () => {}, registerTables: () => {} },
    });
    const rows = store.db.prepare("SELECT module, version FROM schema_versions ORDER BY module")
      .all() as { module: string; version: number }[];
    // the form the rolling upgrade's node view reports (mod/ha/upgrade_link.ts)
    assertEquals(codeStoreSchema(), rows.map((r) => `${r.module}:${r.version}`).join(","));
  } finally {
    store.close();
  }
});

Deno.test("bundle: every module that migrates the store is in the code's schema", async () => {
  const root = new URL("../mod/", import.meta.url).pathname;
  const found = new Set<string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(join(d, e.name));
      else if (e.name.endsWith(".ts")) {
        const src = await Deno.readTextFile(join(d, e.name));
        for (const m of src.matchAll(/\.migrate\(\s*"([a-z0-9_]+)"/g)) found.add(m[1]);
      }
    }
  };
  await walk(root);
  assert(found.size >= 8, `found ${[...found]}`);
  for (const m of found) {
    assert(m in CODE_MIGRATIONS, `module "${m}" migrates the store but is not in CODE_MIGRATIONS`);
  }
});

Deno.test("cli: bundle create declares this keepwire's store schema; --store-schema sets or omits it", async () => {
  await withDir(async (dir) => {
    await opensslKey(dir, "k");
    await makeImage(join(dir, "root.img"), 10_000);
    const create = (out: string, ...extra: string[]) =>
      kw([
        "bundle",
        "create",
        "--image",
        join(dir, "root.img"),
        "--compatible",
        "acme-gw",
        "--version",
        "3.1.0",
        "--key",
        join(dir, "k.pem"),
        "-o",
        join(dir, out),
        ...extra,
      ]);
    let r = await create("a.kwb");
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, `store schema: ${codeStoreSchema()}`);
    r = await kw(["bundle", "info", join(dir, "a.kwb"), "--json"]);
    assertEquals(JSON.parse(r.stdout).manifest.storeSchema, codeStoreSchema());
    r = await kw(["bundle", "info", join(dir, "a.kwb")]);
    assertStringIncludes(r.stdout, `store schema ${codeStoreSchema()}`);
    r = await create("b.kwb", "--store-schema", "core:9,zz:1");
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await readBundleInfo(join(dir, "b.kwb"))).manifest.storeSchema, "core:9,zz:1");
    r = await create("c.kwb", "--store-schema", "none");
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "store schema: (not declared)");
    assertEquals((await readBundleInfo(join(dir, "c.kwb"))).manifest.storeSchema, undefined);
    r = await create("d.kwb", "--store-schema", "core=9");
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "--store-schema");
  });
});
