/** Bundle format: create, verify, keys (openssl, rotation), and each way a bundle can be bad. */
import { join } from "node:path";
import { Buffer } from "node:buffer";
import {
  assembleHead,
  BUNDLE_MAGIC,
  HEADER_SIZE,
  parseKeyring,
  parseManifest,
  readBundleHead,
  signManifest,
  verifyBundleFile,
  verifyBundleHead,
} from "../mod/update/bundle.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { compareSemver } from "../mod/update/semver.ts";
import { fileSource } from "../mod/update/stream.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { kw } from "./helpers/cli.ts";
import { makeBundle, makeImage, opensslKey } from "./update_fixture.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kw-bundle-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejectsCode(
  p: Promise<unknown>,
  code: string,
  includes: string,
): Promise<UpdateError> {
  const e = await assertRejects(() => p, UpdateError) as UpdateError;
  assertEquals(e.code, code, e.message);
  assertStringIncludes(e.message, includes);
  return e;
}

Deno.test("bundle: openssl-generated Ed25519 keys sign and verify; layout is header, manifest, signature, payloads", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const b = await makeBundle(dir, { keys: [k.signer], size: 1_000_003 });
    const r = await verifyBundleFile(b.path, [k.pub]);
    assertEquals([r.keyId, r.manifest.version, r.manifest.images[0].size], [
      k.pub.keyId,
      "2.0.0",
      1_000_003,
    ]);
    const bytes = await Deno.readFile(b.path);
    assertEquals([...bytes.subarray(0, 8)], [...BUNDLE_MAGIC]);
    const src = await fileSource(b.path);
    const head = await readBundleHead(src);
    src.close();
    // the payload starts right after the signature block and is the image, byte for byte
    const img = await Deno.readFile(b.image);
    assertEquals(bytes.length, head.payloadOffset + img.length);
    assertEquals(Buffer.compare(bytes.subarray(head.payloadOffset), img), 0);
    // openssl verifies our signature too (raw Ed25519 over the manifest bytes)
    await Deno.writeFile(join(dir, "m.bin"), head.manifestBytes);
    const sigB64 =
      JSON.parse(new TextDecoder().decode(head.signatureBytes)).signatures[0].signature;
    await Deno.writeFile(join(dir, "m.sig"), Uint8Array.from(atob(sigB64), (c) => c.charCodeAt(0)));
    const out = await new Deno.Command("openssl", {
      args: [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        join(dir, "k.pub.pem"),
        "-rawin",
        "-in",
        join(dir, "m.bin"),
        "-sigfile",
        join(dir, "m.sig"),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertStringIncludes(new TextDecoder().decode(out.stdout), "Signature Verified Successfully");
  });
});

Deno.test("bundle: key rotation — a keyring with several keys; bundles signed by old, new, or both", async () => {
  await withDir(async (dir) => {
    const oldK = await opensslKey(dir, "old"), newK = await opensslKey(dir, "new");
    const ring = await parseKeyring(
      `# rotation keyring\n${oldK.publicPem}\ncomment between keys\n${newK.publicPem}`,
    );
    assertEquals(ring.map((k) => k.keyId), [oldK.pub.keyId, newK.pub.keyId]);
    const byOld = await makeBundle(dir, { keys: [oldK.signer], name: "old" });
    const byNew = await makeBundle(dir, { keys: [newK.signer], name: "new" });
    const byBoth = await makeBundle(dir, { keys: [newK.signer, oldK.signer], name: "both" });
    assertEquals((await verifyBundleFile(byOld.path, ring)).keyId, oldK.pub.keyId);
    assertEquals((await verifyBundleFile(byNew.path, ring)).keyId, newK.pub.keyId);
    // a device that only knows the old key still accepts the dual-signed bundle
    assertEquals((await verifyBundleFile(byBoth.path, [oldK.pub])).keyId, oldK.pub.keyId);
    // after the old key is retired, its bundles are refused
    await rejectsCode(verifyBundleFile(byOld.path, [newK.pub]), "unknown_key", oldK.pub.keyId);
  });
});

Deno.test("bundle: unsigned bundle is refused before any payload byte is used", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const b = await makeBundle(dir, { keys: [] });
    await rejectsCode(verifyBundleFile(b.path, [k.pub]), "unsigned", "not signed");
  });
});

Deno.test("bundle: unknown key names the key and the keyring", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k"), other = await opensslKey(dir, "other");
    const b = await makeBundle(dir, { keys: [other.signer] });
    const e = await rejectsCode(verifyBundleFile(b.path, [k.pub]), "unknown_key", other.pub.keyId);
    assertStringIncludes(e.message, k.pub.keyId);
  });
});

Deno.test("bundle: tampered manifest (one byte) fails the signature", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const b = await makeBundle(dir, { keys: [k.signer] });
    const bytes = await Deno.readFile(b.path);
    const text = new TextDecoder().decode(bytes.subarray(HEADER_SIZE, HEADER_SIZE + 200));
    const at = HEADER_SIZE + text.indexOf("2.0.0");
    bytes[at] = "9".charCodeAt(0); // version 2.0.0 -> 9.0.0
    await Deno.writeFile(b.path, bytes);
    await rejectsCode(
      verifyBundleFile(b.path, [k.pub]),
      "bad_signature",
      "does not match the manifest",
    );
  });
});

Deno.test("bundle: tampered payload fails its sha256", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const b = await makeBundle(dir, { keys: [k.signer] });
    const f = await Deno.open(b.path, { read: true, write: true });
    await f.seek(-1000, Deno.SeekMode.End);
    await f.write(new Uint8Array([0xde, 0xad]));
    f.close();
    await rejectsCode(verifyBundleFile(b.path, [k.pub]), "hash_mismatch", "sha256");
  });
});

Deno.test("bundle: truncated file, trailing bytes, not a bundle, bad header format", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const b = await makeBundle(dir, { keys: [k.signer] });
    const bytes = await Deno.readFile(b.path);
    await Deno.writeFile(join(dir, "t.kwb"), bytes.subarray(0, bytes.length - 10));
    await rejectsCode(verifyBundleFile(join(dir, "t.kwb"), [k.pub]), "truncated", "truncated");
    await Deno.writeFile(join(dir, "h.kwb"), bytes.subarray(0, 30));
    await rejectsCode(verifyBundleFile(join(dir, "h.kwb"), [k.pub]), "truncated", "manifest");
    await Deno.writeFile(join(dir, "x.kwb"), new Uint8Array([...bytes, 1, 2, 3]));
    await rejectsCode(verifyBundleFile(join(dir, "x.kwb"), [k.pub]), "trailing_data", "3 bytes");
    await Deno.writeTextFile(join(dir, "n.kwb"), "hello, not a bundle at all");
    await rejectsCode(verifyBundleFile(join(dir, "n.kwb"), [k.pub]), "not_a_bundle", "bad magic");
    const v2 = bytes.slice(0, bytes.length);
    v2[8] = 2;
    await Deno.writeFile(join(dir, "v.kwb"), v2);
    await rejectsCode(
      verifyBundleFile(join(dir, "v.kwb"), [k.pub]),
      "unsupported_format",
      "format 2",
    );
  });
});

Deno.test("bundle: a validly signed manifest that breaks the schema is refused with the field named", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k");
    const bad = new TextEncoder().encode(JSON.stringify({
      format: 1,
      compatible: "acme-gw",
      version: "v2",
      buildTime: "2026-01-01T00:00:00Z",
      images: [{ slotClass: "rootfs", filename: "../etc/passwd", size: 1, sha256: "ab" }],
    }));
    const head = assembleHead(bad, await signManifest(bad, [k.signer]));
    const e = await assertRejects(
      () =>
        verifyBundleHead({
          manifestBytes: bad,
          signatureBytes: head.slice(HEADER_SIZE + bad.length),
          payloadOffset: head.length,
        }, [k.pub]),
      UpdateError,
    ) as UpdateError;
    assertEquals(e.code, "bad_manifest");
    for (const f of ["version", "images.0.filename", "images.0.sha256"]) {
      assertStringIncludes(e.message, f);
    }
    assertEquals(
      parseManifest(new TextEncoder().encode(JSON.stringify({
        format: 1,
        compatible: "c",
        version: "1.0.0-rc.1+build.5",
        buildTime: "2026-01-01T00:00:00.000Z",
        images: [{ slotClass: "app", filename: "app.js", size: 0, sha256: "a".repeat(64) }],
      }))).version,
      "1.0.0-rc.1+build.5",
    );
  });
});

Deno.test("bundle: bad key files are clear errors", async () => {
  await assertRejects(
    () => parseKeyring("no pem here"),
    UpdateError,
    'no "-----BEGIN PUBLIC KEY-----"',
  );
  // an RSA public key is not Ed25519
  const rsa = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 1024,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const der = new Uint8Array(await crypto.subtle.exportKey("spki", rsa.publicKey));
  const pem = `-----BEGIN PUBLIC KEY-----\n${
    btoa(String.fromCharCode(...der))
  }\n-----END PUBLIC KEY-----\n`;
  await assertRejects(() => parseKeyring(pem), UpdateError, "public key 1 is not an Ed25519");
});

Deno.test("semver: precedence as semver.org says", () => {
  const order = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.10.0",
    "2.0.0",
  ];
  for (let i = 0; i + 1 < order.length; i++) {
    assert(compareSemver(order[i], order[i + 1]) < 0, `${order[i]} < ${order[i + 1]}`);
    assert(compareSemver(order[i + 1], order[i]) > 0);
  }
  assertEquals(compareSemver("1.2.3+a", "1.2.3+b"), 0);
});

Deno.test("cli: bundle create (slotclass=FILE, two keys), info, verify; exit codes", async () => {
  await withDir(async (dir) => {
    const k = await opensslKey(dir, "k"), k2 = await opensslKey(dir, "k2");
    await makeImage(join(dir, "root.img"), 70_000);
    await makeImage(join(dir, "app.img"), 5_000, 3);
    const out = join(dir, "o.kwb");
    let r = await kw([
      "bundle",
      "create",
      "--image",
      join(dir, "root.img"),
      "--image",
      `app=${join(dir, "app.img")}`,
      "--compatible",
      "acme-gw",
      "--version",
      "3.1.0",
      "--key",
      join(dir, "k.pem"),
      "--key",
      join(dir, "k2.pem"),
      "-o",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "acme-gw 3.1.0");
    r = await kw(["bundle", "info", out, "--json"]);
    assertEquals(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assertEquals(info.manifest.images.map((i: { slotClass: string }) => i.slotClass), [
      "rootfs",
      "app",
    ]);
    assertEquals(info.signedBy, [k.pub.keyId, k2.pub.keyId]);
    assertEquals(info.verified, false);
    r = await kw(["bundle", "verify", out, "--keyring", join(dir, "k2.pub.pem")]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, `OK — acme-gw 3.1.0, signed by ${k2.pub.keyId}`);
    const other = await opensslKey(dir, "other");
    r = await kw(["bundle", "verify", out, "--keyring", join(dir, "other.pub.pem")]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, other.pub.keyId);
    assertStringIncludes(r.stderr, "[unknown_key]");
    r = await kw([
      "bundle",
      "create",
      "--image",
      join(dir, "root.img"),
      "--compatible",
      "x",
      "--version",
      "1.0",
      "--key",
      join(dir, "k.pem"),
      "-o",
      out,
    ]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "--version");
    r = await kw([
      "bundle",
      "create",
      "--image",
      join(dir, "root.img"),
      "--compatible",
      "x",
      "--version",
      "1.0.0",
      "--key",
      join(dir, "k.pub.pem"),
      "-o",
      out,
    ]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "PRIVATE KEY");
  });
});
