/**
 * Hardening of the updater's inputs (issue 11 #10, #12): slot class and slot
 * names checked against one strict pattern everywhere (bundle create, manifest,
 * config) and looked up as own names only (a class named `constructor` is just
 * unknown); `config check` refuses the slot layouts install refuses; bounded
 * reads of every file input (an endless file is an error naming it, not a
 * hang); no raw messages from bad `--image` arguments; the bundle header's
 * reserved field is checked.
 */
import { join } from "node:path";
import {
  assembleHead,
  createBundle,
  HEADER_SIZE,
  signManifest,
  verifyBundleFile,
} from "../mod/update/bundle.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { detectBooted } from "../mod/update/slots.ts";
import { createBootEnv } from "../hw/boot/mod.ts";
import { BootEnvError } from "../hw/boot/types.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { MAIN } from "./helpers/cli.ts";
import { makeImage, makeRig, opensslKey } from "./update_fixture.ts";

/** Run the CLI; a run that takes longer than `ms` is killed and fails the test (a hang). */
async function kwWithin(args: string[], ms = 60_000) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ms),
  }).output();
  const dec = new TextDecoder();
  const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  assert(out.signal === null, `keepwire ${args.join(" ")} hung (killed after ${ms} ms)`);
  return r;
}

function noInternalText(s: string): void {
  for (const bad of ["Cannot read properties", "TypeError", "undefined", "    at "]) {
    assert(!s.includes(bad), `internal text ${JSON.stringify(bad)} leaked: ${s}`);
  }
}

Deno.test("hardening: a bundle for slot class `constructor` is refused as an unknown class (422 no_slot), nothing written", async () => {
  const r = await makeRig();
  try {
    const img = join(r.dir, "c.img");
    await makeImage(img, 5_000);
    const out = join(r.dir, "c.kwb");
    await createBundle({
      images: [{ slotClass: "constructor", path: img }],
      compatible: "acme-gw",
      version: "2.0.0",
      keys: [r.key.signer],
      out,
    });
    const writes = JSON.stringify(await r.env.list());
    const e = await assertRejects(() => r.svc.installFrom(out), UpdateError) as UpdateError;
    assertEquals([e.code, e.status], ["no_slot", 422]);
    assertStringIncludes(e.message, `no slot class "constructor"`);
    assertEquals(JSON.stringify(await r.env.list()), writes, "boot env untouched");
    for (const cls of ["toString", "hasOwnProperty"]) {
      const pair = { a: { device: "x", bootname: "A" }, b: { device: "y", bootname: "B" } };
      const c = updateConfigSchema.parse({ slots: { [cls]: pair } });
      assert(Object.hasOwn(c.slots, cls), `${cls} is an ordinary class name`);
    }
    // a JSON `__proto__` key never becomes a class, nor the slots' prototype
    const proto = updateConfigSchema.parse(
      JSON.parse(
        '{"slots":{"__proto__":{"a":{"device":"x","bootname":"A"},"b":{"device":"y","bootname":"B"}}}}',
      ),
    );
    assertEquals(Object.keys(proto.slots), []);
    assertEquals(Object.getPrototypeOf(proto.slots), Object.prototype);
  } finally {
    await r.close();
  }
});

Deno.test("hardening: slot class and bootnames follow one strict pattern in the config and the manifest", async () => {
  const slot = (cls: string, a = "A", b = "B") => ({
    slots: { [cls]: { a: { device: "x", bootname: a }, b: { device: "y", bootname: b } } },
  });
  for (const bad of ["", "a b", "-x", "x/y", "x\ny", "é", "a".repeat(65), "1abc"]) {
    const r = updateConfigSchema.safeParse(slot(bad));
    assert(!r.success, `class ${JSON.stringify(bad)} accepted`);
  }
  for (const good of ["rootfs", "app", "app-2", "boot_fw", "constructor"]) {
    assert(updateConfigSchema.safeParse(slot(good)).success, good);
  }
  for (const bad of ["", "A B", "a-1", "x".repeat(33)]) {
    assert(!updateConfigSchema.safeParse(slot("rootfs", bad)).success, `bootname ${bad}`);
  }
  const dir = await Deno.makeTempDir({ prefix: "kw-hard-" });
  try {
    const k = await opensslKey(dir, "k");
    await makeImage(join(dir, "i.img"), 100);
    const e = await assertRejects(
      () =>
        createBundle({
          images: [{ slotClass: "a b", path: join(dir, "i.img") }],
          compatible: "x",
          version: "1.0.0",
          keys: [k.signer],
          out: join(dir, "o.kwb"),
        }),
      UpdateError,
    ) as UpdateError;
    assertEquals(e.code, "bad_request");
    assertStringIncludes(e.message, "images.0.slotClass");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hardening: config check refuses slots sharing a bootname, classes with other bootnames, an unknown launcher class", async () => {
  const bad: [string, unknown, string][] = [
    [
      "same bootname",
      { rootfs: { a: { device: "x", bootname: "A" }, b: { device: "y", bootname: "A" } } },
      "same bootname A",
    ],
    [
      "other bootnames",
      {
        rootfs: { a: { device: "x", bootname: "A" }, b: { device: "y", bootname: "B" } },
        app: { a: { device: "z", bootname: "A" }, b: { device: "w", bootname: "C" } },
      },
      "bootnames A/C differ from A/B",
    ],
  ];
  for (const [what, slots, msg] of bad) {
    const r = updateConfigSchema.safeParse({ slots });
    assert(!r.success, `${what} accepted`);
    assertStringIncludes(JSON.stringify(r.error.issues), msg);
  }
  const launcher = updateConfigSchema.safeParse({
    slots: { rootfs: { a: { device: "x", bootname: "A" }, b: { device: "y", bootname: "B" } } },
    launcher: { slotClass: "app" },
  });
  assert(!launcher.success, "unknown launcher.slotClass accepted");
  // and through the real CLI: exit 2 naming the field
  const dir = await Deno.makeTempDir({ prefix: "kw-hard-" });
  try {
    const cfg = join(dir, "kw.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ dataDir: join(dir, "data"), update: { slots: bad[0][1] } }),
    );
    const r = await kwWithin(["config", "check", cfg]);
    assertEquals(r.code, 2, r.stdout + r.stderr);
    assertStringIncludes(r.stderr, "update.slots.rootfs");
    assertStringIncludes(r.stderr, "same bootname A");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hardening: endless inputs (/dev/zero) end in a clear error naming the file, never a hang", async () => {
  // keyring, private key (CLI)
  let r = await kwWithin(["bundle", "verify", "/dev/zero", "--keyring", "/dev/zero"]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, "/dev/zero");
  assertStringIncludes(r.stderr, "larger than");
  const dir = await Deno.makeTempDir({ prefix: "kw-hard-" });
  try {
    await makeImage(join(dir, "i.img"), 100);
    r = await kwWithin([
      "bundle",
      "create",
      "--image",
      join(dir, "i.img"),
      "--compatible",
      "x",
      "--version",
      "1.0.0",
      "--key",
      "/dev/zero",
      "-o",
      join(dir, "o.kwb"),
    ]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, "/dev/zero");
    // boot env files (file and grubenv backends, fw_env.config), through the CLI
    for (const backend of ["file", "grubenv", "uboot"]) {
      r = await kwWithin(["bootenv", "list", "--backend", backend, "--file", "/dev/zero"]);
      assertEquals(r.code, 1, `${backend}: ${r.stderr}`);
      assertStringIncludes(r.stderr, "/dev/zero");
      noInternalText(r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // the kernel command line file
  const c = updateConfigSchema.parse({
    cmdline: "/dev/zero",
    slots: { rootfs: { a: { device: "x", bootname: "A" }, b: { device: "y", bootname: "B" } } },
  });
  const e = await assertRejects(() => detectBooted(c, { env: {} }), UpdateError) as UpdateError;
  assertEquals(e.code, "booted_unknown");
  assertStringIncludes(e.message, "/dev/zero");
  const fileEnv = createBootEnv({ backend: "file", file: "/dev/zero" });
  const be = await assertRejects(() => fileEnv.list(), BootEnvError) as BootEnvError;
  assertEquals(be.code, "too-large");
});

Deno.test("hardening: bad --image arguments are clear errors naming the argument (no raw messages)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-hard-" });
  try {
    await opensslKey(dir, "k");
    await makeImage(join(dir, "i.img"), 100);
    for (
      const spec of ["../../x=a\nb", "bad class=" + join(dir, "i.img"), "__proto__=x", "=x", ""]
    ) {
      const r = await kwWithin([
        "bundle",
        "create",
        "--image",
        spec,
        "--compatible",
        "x",
        "--version",
        "1.0.0",
        "--key",
        join(dir, "k.pem"),
        "-o",
        join(dir, "o.kwb"),
      ]);
      assertEquals(r.code, 2, `${JSON.stringify(spec)}: ${r.stderr}`);
      assertStringIncludes(r.stderr, "--image");
      noInternalText(r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hardening: a bundle whose reserved header field is not 0 is refused before anything else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-hard-" });
  try {
    const k = await opensslKey(dir, "k");
    const manifest = new TextEncoder().encode(JSON.stringify({ format: 1 }));
    const head = assembleHead(manifest, await signManifest(manifest, [k.signer]));
    new DataView(head.buffer).setUint32(20, 7, true);
    assert(HEADER_SIZE === 24);
    await Deno.writeFile(join(dir, "r.kwb"), head);
    const e = await assertRejects(
      () => verifyBundleFile(join(dir, "r.kwb"), [k.pub]),
      UpdateError,
    ) as UpdateError;
    assertEquals(e.code, "not_a_bundle");
    assertStringIncludes(e.message, "reserved header field is 7");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
