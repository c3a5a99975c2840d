/**
 * The `.kwb` bundle: a fixed header, the manifest (JSON), a detached Ed25519
 * signature block over the exact manifest bytes, then the payloads in manifest
 * order. The first three parts are small and come first, so a bundle is verified
 * before any payload byte is used, and installs while it streams.
 *
 * ```
 * offset 0   magic   8 bytes  89 4B 57 42 0D 0A 1A 0A  ("\x89KWB\r\n\x1a\n")
 *        8   u32 LE  header format (1)
 *       12   u32 LE  manifest length M (1 .. 1 MiB)
 *       16   u32 LE  signature block length S (0 = unsigned .. 64 KiB)
 *       20   u32 LE  reserved (0)
 *       24   M bytes manifest (UTF-8 JSON)
 *     24+M   S bytes signature block (UTF-8 JSON)
 *   24+M+S   payload of images[0], images[1], ... (sizes from the manifest)
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { errorMessage, UpdateError } from "./errors.ts";
import { SEMVER_RE } from "./semver.ts";
import { SLOT_CLASS_RE, SLOT_CLASS_RULE } from "./names.ts";
import { READ_LIMITS, readTextFileBounded } from "../fs.ts";
import { type ByteSource, fileSource, hashCopy, readFull, writeAll } from "./stream.ts";

/** First 8 bytes of every bundle. */
export const BUNDLE_MAGIC: Uint8Array = new Uint8Array([
  0x89,
  0x4b,
  0x57,
  0x42,
  0x0d,
  0x0a,
  0x1a,
  0x0a,
]);
/** Header format this build writes and reads. */
export const HEADER_FORMAT = 1;
/** Size of the fixed header. */
export const HEADER_SIZE = 24;
/** Largest manifest accepted. */
export const MAX_MANIFEST = 1024 * 1024;
/** Largest signature block accepted. */
export const MAX_SIGNATURES = 64 * 1024;
/** Manifest format this build writes and reads. */
export const MANIFEST_FORMAT = 1;

/** A post-install hook: a command run after the images are written and verified. */
export const hookSchema = z.lazy(() =>
  z.strictObject({
    command: z.array(z.string().min(1)).min(1).describe(
      "argv; KEEPWIRE_* variables name the target slot and devices",
    ),
    timeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
  })
);

/** One image of a bundle. */
export const imageSchema = z.lazy(() =>
  z.strictObject({
    slotClass: z.string().regex(SLOT_CLASS_RE, SLOT_CLASS_RULE),
    filename: z.string().min(1).max(255).refine(
      (f) => !f.includes("/") && f !== "." && f !== "..",
      "a file name, not a path",
    ),
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 lowercase hex digits"),
  })
);

/**
 * A store schema: `module:version` of each module's store migrations, sorted by module,
 * comma-separated (`core:9,history:3,...`): the form a node reports in its rolling-upgrade
 * view and the replication engine digests into its schema version.
 */
export const STORE_SCHEMA_RE =
  /^[a-z][a-z0-9_]{0,63}:\d{1,6}(,[a-z][a-z0-9_]{0,63}:\d{1,6}){0,255}$/;

/** Parse a store schema (`module:version,...`) into a map; parts without `:` are skipped. */
export function parseStoreSchema(s: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const part of s.split(",")) {
    const i = part.lastIndexOf(":");
    if (i > 0) m.set(part.slice(0, i), Number(part.slice(i + 1)));
  }
  return m;
}

/** Format a store schema map as `module:version,...` sorted by module (byte order, as SQLite). */
export function formatStoreSchema(m: ReadonlyMap<string, number>): string {
  return [...m].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([k, v]) => `${k}:${v}`)
    .join(",");
}

/** The manifest (what the signature covers). */
export const manifestSchema = z.lazy(() =>
  z.strictObject({
    format: z.literal(MANIFEST_FORMAT),
    compatible: z.string().min(1).max(255),
    version: z.string().regex(SEMVER_RE, "a semantic version like 1.2.3 or 2.0.0-rc.1"),
    buildTime: z.iso.datetime({ offset: true }),
    description: z.string().max(4096).optional(),
    images: z.array(imageSchema).min(1).max(64).refine(
      (imgs) => new Set(imgs.map((i) => i.slotClass)).size === imgs.length,
      "each slot class at most once",
    ),
    hooks: z.strictObject({ postInstall: hookSchema.optional() }).optional(),
    storeSchema: z.string().regex(STORE_SCHEMA_RE, "module:version,... sorted by module").optional()
      .describe(
        "store schema of the keepwire code in the images (mod/update/bundle_schema.ts); " +
          "a rolling upgrade refuses a bundle whose schema differs from the pair's",
      ),
  })
);

/** A bundle manifest. */
export type Manifest = z.infer<typeof manifestSchema>;
/** One image entry. */
export type ManifestImage = z.infer<typeof imageSchema>;

/** The signature block. */
export const signatureBlockSchema = z.lazy(() =>
  z.strictObject({
    signatures: z.array(z.strictObject({
      algorithm: z.literal("ed25519"),
      keyId: z.string().regex(/^[0-9a-f]{16}$/),
      signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "base64 of 64 bytes"),
    })).min(1).max(16),
  })
);

/** Header, manifest and signature block as read from the front of a bundle. */
export interface BundleHead {
  /** Exact manifest bytes (what is signed). */
  manifestBytes: Uint8Array<ArrayBuffer>;
  /** Signature block bytes (empty when unsigned). */
  signatureBytes: Uint8Array<ArrayBuffer>;
  /** Offset of the first payload byte. */
  payloadOffset: number;
}

/** A public key of the keyring. */
export interface PublicKey {
  /** First 16 hex digits of sha256 over the SPKI DER. */
  keyId: string;
  /** The imported key. */
  key: CryptoKey;
}

/** A signing key. */
export interface SigningKey {
  /** Key id of its public half. */
  keyId: string;
  /** The private key. */
  key: CryptoKey;
}

// ---------------------------------------------------------------- keys

const ED25519_SPKI_PREFIX = new Uint8Array([
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
]);

function pemBlocks(text: string, label: string): Uint8Array<ArrayBuffer>[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const out: Uint8Array<ArrayBuffer>[] = [];
  for (const m of text.matchAll(re)) {
    const b64 = m[1].replace(/\s+/g, "");
    try {
      out.push(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    } catch {
      throw new UpdateError("bad_key", `PEM block ${out.length + 1} (${label}) is not base64`);
    }
  }
  return out;
}

/** Key id of an Ed25519 public key given as SPKI DER. */
export function keyIdOf(spki: Uint8Array): string {
  return createHash("sha256").update(spki).digest("hex").slice(0, 16);
}

/**
 * Parse a keyring: one or more `-----BEGIN PUBLIC KEY-----` (SPKI) Ed25519 keys,
 * e.g. from `openssl pkey -in key.pem -pubout`. Text between blocks is ignored.
 */
export async function parseKeyring(text: string, source = "keyring"): Promise<PublicKey[]> {
  const blocks = pemBlocks(text, "PUBLIC KEY");
  if (!blocks.length) {
    throw new UpdateError("bad_key", `${source}: no "-----BEGIN PUBLIC KEY-----" block found`);
  }
  const keys: PublicKey[] = [];
  for (const [i, der] of blocks.entries()) {
    let key: CryptoKey;
    try {
      key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, true, ["verify"]);
    } catch (e) {
      throw new UpdateError(
        "bad_key",
        `${source}: public key ${i + 1} is not an Ed25519 SPKI key (${errorMessage(e)})`,
      );
    }
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key));
    keys.push({ keyId: keyIdOf(spki), key });
  }
  return keys;
}

/** Read a keyring file. */
export async function loadKeyring(path: string): Promise<PublicKey[]> {
  let text: string;
  try {
    text = await readTextFileBounded(path, READ_LIMITS.keyring, "keyring");
  } catch (e) {
    throw new UpdateError("bad_key", `cannot read keyring ${path}: ${errorMessage(e)}`);
  }
  return await parseKeyring(text, path);
}

/**
 * Parse an Ed25519 private key in PEM PKCS#8 (`-----BEGIN PRIVATE KEY-----`), as
 * `openssl genpkey -algorithm ed25519` writes it.
 */
export async function parsePrivateKey(text: string, source = "key"): Promise<SigningKey> {
  const blocks = pemBlocks(text, "PRIVATE KEY");
  if (blocks.length !== 1) {
    throw new UpdateError(
      "bad_key",
      `${source}: expected one "-----BEGIN PRIVATE KEY-----" (PKCS#8) block, found ${blocks.length}`,
    );
  }
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("pkcs8", blocks[0], { name: "Ed25519" }, true, ["sign"]);
  } catch (e) {
    throw new UpdateError(
      "bad_key",
      `${source}: not an Ed25519 PKCS#8 private key (${errorMessage(e)})`,
    );
  }
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const raw = Uint8Array.from(
    atob(jwk.x!.replace(/-/g, "+").replace(/_/g, "/")),
    (c) => c.charCodeAt(0),
  );
  const spki = new Uint8Array(ED25519_SPKI_PREFIX.length + raw.length);
  spki.set(ED25519_SPKI_PREFIX);
  spki.set(raw, ED25519_SPKI_PREFIX.length);
  const pub = await crypto.subtle.importKey("spki", spki, { name: "Ed25519" }, true, ["verify"]);
  return { keyId: keyIdOf(new Uint8Array(await crypto.subtle.exportKey("spki", pub))), key };
}

/** Read a private key file. */
export async function loadPrivateKey(path: string): Promise<SigningKey> {
  let text: string;
  try {
    text = await readTextFileBounded(path, READ_LIMITS.keyring, "key file");
  } catch (e) {
    throw new UpdateError("bad_key", `cannot read key ${path}: ${errorMessage(e)}`);
  }
  return await parsePrivateKey(text, path);
}

/** Generate a key pair as PEM (PKCS#8 private, SPKI public), like openssl genpkey. */
export async function generateKeyPem(): Promise<{ privatePem: string; publicPem: string }> {
  const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const pem = (label: string, der: ArrayBuffer) => {
    const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
    return `-----BEGIN ${label}-----\n${
      b64.match(/.{1,64}/g)!.join("\n")
    }\n-----END ${label}-----\n`;
  };
  return {
    privatePem: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", kp.privateKey)),
    publicPem: pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", kp.publicKey)),
  };
}

// ---------------------------------------------------------------- reading

/** Encode the fixed header. */
export function encodeHeader(manifestLength: number, signatureLength: number): Uint8Array {
  const h = new Uint8Array(HEADER_SIZE);
  h.set(BUNDLE_MAGIC);
  const v = new DataView(h.buffer);
  v.setUint32(8, HEADER_FORMAT, true);
  v.setUint32(12, manifestLength, true);
  v.setUint32(16, signatureLength, true);
  v.setUint32(20, 0, true);
  return h;
}

/** Read header, manifest and signature block from the front of a source. */
export async function readBundleHead(src: ByteSource, what = "bundle"): Promise<BundleHead> {
  const h = new Uint8Array(HEADER_SIZE);
  const n = await readFull(src, h);
  if (n < 8 || !BUNDLE_MAGIC.every((b, i) => h[i] === b)) {
    throw new UpdateError("not_a_bundle", `${what} is not a keepwire bundle (.kwb): bad magic`);
  }
  if (n < HEADER_SIZE) {
    throw new UpdateError(
      "truncated",
      `${what} is truncated: header has ${n} of ${HEADER_SIZE} bytes`,
    );
  }
  const v = new DataView(h.buffer);
  const format = v.getUint32(8, true);
  if (format !== HEADER_FORMAT) {
    throw new UpdateError(
      "unsupported_format",
      `${what} has header format ${format}; this keepwire reads format ${HEADER_FORMAT}`,
    );
  }
  const reserved = v.getUint32(20, true);
  if (reserved !== 0) {
    throw new UpdateError(
      "not_a_bundle",
      `${what}: reserved header field is ${reserved}, must be 0 (a damaged bundle, or a format ` +
        `this keepwire does not know)`,
    );
  }
  const mlen = v.getUint32(12, true), slen = v.getUint32(16, true);
  if (mlen < 2 || mlen > MAX_MANIFEST) {
    throw new UpdateError("not_a_bundle", `${what}: manifest length ${mlen} out of range`);
  }
  if (slen > MAX_SIGNATURES) {
    throw new UpdateError("not_a_bundle", `${what}: signature block length ${slen} out of range`);
  }
  const manifestBytes = new Uint8Array(mlen);
  if (await readFull(src, manifestBytes) < mlen) {
    throw new UpdateError("truncated", `${what} is truncated inside the manifest`);
  }
  const signatureBytes = new Uint8Array(slen);
  if (await readFull(src, signatureBytes) < slen) {
    throw new UpdateError("truncated", `${what} is truncated inside the signature block`);
  }
  return { manifestBytes, signatureBytes, payloadOffset: HEADER_SIZE + mlen + slen };
}

/** Parse the manifest without checking the signature (`bundle info`). */
export function parseManifest(bytes: Uint8Array): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new UpdateError("bad_manifest", `manifest is not UTF-8 JSON: ${errorMessage(e)}`);
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) {
    const fields = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new UpdateError("bad_manifest", `invalid manifest: ${fields.join("; ")}`);
  }
  return r.data;
}

/** Key ids a bundle's signature block names (empty when unsigned or unreadable). */
export function signatureKeyIds(head: BundleHead): string[] {
  try {
    return parseSignatures(head).map((s) => s.keyId);
  } catch {
    return [];
  }
}

function parseSignatures(head: BundleHead): z.infer<typeof signatureBlockSchema>["signatures"] {
  if (head.signatureBytes.length === 0) {
    throw new UpdateError("unsigned", "bundle is not signed (no signature block)");
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(head.signatureBytes));
  } catch (e) {
    throw new UpdateError("bad_signature", `signature block is not JSON: ${errorMessage(e)}`);
  }
  const r = signatureBlockSchema.safeParse(json);
  if (!r.success) {
    throw new UpdateError(
      "bad_signature",
      `invalid signature block: ${r.error.issues.map((i) => i.message).join("; ")}`,
    );
  }
  return r.data.signatures;
}

/**
 * Check the signature over the exact manifest bytes against the keyring, then
 * parse the manifest. Nothing of the manifest is trusted before this returns.
 */
export async function verifyBundleHead(
  head: BundleHead,
  keyring: PublicKey[],
): Promise<{ manifest: Manifest; keyId: string }> {
  const sigs = parseSignatures(head);
  const known = sigs.filter((s) => keyring.some((k) => k.keyId === s.keyId));
  if (!known.length) {
    throw new UpdateError(
      "unknown_key",
      `bundle is signed by key ${sigs.map((s) => s.keyId).join(", ")}, which is not in the ` +
        `keyring (keyring keys: ${keyring.map((k) => k.keyId).join(", ") || "none"})`,
    );
  }
  for (const s of known) {
    const key = keyring.find((k) => k.keyId === s.keyId)!;
    const sig = Uint8Array.from(atob(s.signature), (c) => c.charCodeAt(0));
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key.key, sig, head.manifestBytes);
    if (ok) return { manifest: parseManifest(head.manifestBytes), keyId: s.keyId };
  }
  throw new UpdateError(
    "bad_signature",
    `signature of key ${known.map((s) => s.keyId).join(", ")} does not match the manifest ` +
      `(the manifest or the signature was altered)`,
  );
}

/** Total bundle size the manifest implies. */
export function bundleSize(head: BundleHead, manifest: Manifest): number {
  return head.payloadOffset + manifest.images.reduce((a, i) => a + i.size, 0);
}

// ---------------------------------------------------------------- writing

/** One image to put into a bundle. */
export interface BundleImageInput {
  /** Slot class it goes to. */
  slotClass: string;
  /** File with the image. */
  path: string;
  /** Name recorded in the manifest (default: the file's base name). */
  filename?: string;
}

/** What {@link createBundle} needs. */
export interface CreateBundleOptions {
  /** Images in install order. */
  images: BundleImageInput[];
  /** Compatible string. */
  compatible: string;
  /** Semantic version. */
  version: string;
  /** Signing keys (one or more; none only for tests of unsigned bundles). */
  keys: SigningKey[];
  /** Output file (written to a temp file, then renamed). */
  out: string;
  /** Build time (default now). */
  buildTime?: Date;
  /** Description. */
  description?: string;
  /** Hooks. */
  hooks?: Manifest["hooks"];
  /**
   * Store schema of the code in the images (`module:version,...`, {@link STORE_SCHEMA_RE}),
   * usually `codeStoreSchema()` of that code (mod/update/bundle_schema.ts). Absent: the
   * bundle installs on a single node, and a rolling upgrade refuses it.
   */
  storeSchema?: string;
  /** Chunk size of the copy (default 4 MiB). */
  chunkSize?: number;
}

/** Sign manifest bytes with each key: the signature block bytes. */
export async function signManifest(
  bytes: Uint8Array<ArrayBuffer>,
  keys: SigningKey[],
): Promise<Uint8Array> {
  if (!keys.length) return new Uint8Array(0);
  const signatures = [];
  for (const k of keys) {
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, k.key, bytes));
    signatures.push({
      algorithm: "ed25519" as const,
      keyId: k.keyId,
      signature: btoa(String.fromCharCode(...sig)),
    });
  }
  return new TextEncoder().encode(JSON.stringify({ signatures }));
}

/** Assemble a bundle from already-made parts (tests build broken ones with it). */
export function assembleHead(manifestBytes: Uint8Array, signatureBytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + manifestBytes.length + signatureBytes.length);
  out.set(encodeHeader(manifestBytes.length, signatureBytes.length));
  out.set(manifestBytes, HEADER_SIZE);
  out.set(signatureBytes, HEADER_SIZE + manifestBytes.length);
  return out;
}

/** Hash a file (streaming): size and sha256. */
export async function hashFile(
  path: string,
  chunkSize = 4 * 1024 * 1024,
): Promise<{ size: number; sha256: string }> {
  const src = await fileSource(path);
  try {
    const size = src.size ?? 0;
    return { size, sha256: await hashCopy(src, size, null, { chunkSize, what: path }) };
  } finally {
    src.close();
  }
}

/** Build, sign and write a bundle; returns its manifest. */
export async function createBundle(opts: CreateBundleOptions): Promise<Manifest> {
  const chunkSize = opts.chunkSize ?? 4 * 1024 * 1024;
  const images: ManifestImage[] = [];
  for (const img of opts.images) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(img.path);
    } catch (e) {
      throw new UpdateError("bad_request", `cannot read image ${img.path}: ${errorMessage(e)}`);
    }
    if (!st.isFile) throw new UpdateError("bad_request", `image ${img.path} is not a regular file`);
    const h = await hashFile(img.path, chunkSize);
    images.push({
      slotClass: img.slotClass,
      filename: img.filename ?? img.path.split("/").pop()!,
      size: h.size,
      sha256: h.sha256,
    });
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    compatible: opts.compatible,
    version: opts.version,
    buildTime: (opts.buildTime ?? new Date()).toISOString(),
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    images,
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    ...(opts.storeSchema !== undefined ? { storeSchema: opts.storeSchema } : {}),
  };
  const checked = manifestSchema.safeParse(manifest);
  if (!checked.success) {
    throw new UpdateError(
      "bad_request",
      `invalid bundle: ${
        checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")
      }`,
    );
  }
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
  const head = assembleHead(manifestBytes, await signManifest(manifestBytes, opts.keys));
  const tmp = `${opts.out}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const out = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
  let ok = false;
  try {
    await writeAll(out, head);
    for (const [i, img] of opts.images.entries()) {
      const src = await fileSource(img.path);
      try {
        const sha = await hashCopy(src, images[i].size, out, { chunkSize, what: img.path });
        if (sha !== images[i].sha256) {
          throw new UpdateError("io", `image ${img.path} changed while the bundle was written`);
        }
      } finally {
        src.close();
      }
    }
    await out.sync();
    ok = true;
  } finally {
    out.close();
    if (!ok) await Deno.remove(tmp).catch(() => {});
  }
  await Deno.rename(tmp, opts.out);
  return manifest;
}

/** Result of a full bundle verification. */
export interface VerifyResult {
  /** Verified manifest. */
  manifest: Manifest;
  /** Key that signed it. */
  keyId: string;
  /** Total size. */
  size: number;
}

/** Verify a whole bundle file: signature, then every payload's size and sha256, no trailing bytes. */
export async function verifyBundleFile(path: string, keyring: PublicKey[]): Promise<VerifyResult> {
  const src = await fileSource(path);
  try {
    const head = await readBundleHead(src, path);
    const { manifest, keyId } = await verifyBundleHead(head, keyring);
    const size = bundleSize(head, manifest);
    if (src.size !== undefined && src.size < size) {
      throw new UpdateError("truncated", `${path} is truncated: ${src.size} of ${size} bytes`);
    }
    for (const img of manifest.images) {
      const sha = await hashCopy(src, img.size, null, {
        chunkSize: 4 * 1024 * 1024,
        what: `payload ${img.filename}`,
      });
      if (sha !== img.sha256) {
        throw new UpdateError(
          "hash_mismatch",
          `payload ${img.filename} (${img.slotClass}) has sha256 ${sha}, manifest says ${img.sha256}`,
        );
      }
    }
    if (src.size !== undefined && src.size > size) {
      throw new UpdateError(
        "trailing_data",
        `${path} has ${src.size - size} bytes after the last payload`,
      );
    }
    return { manifest, keyId, size };
  } finally {
    src.close();
  }
}

/** Read a bundle's manifest without verifying it (for `bundle info`). */
export async function readBundleInfo(
  path: string,
): Promise<
  { head: BundleHead; manifest: Manifest; keyIds: string[]; fileSize: number | undefined }
> {
  const src = await fileSource(path);
  try {
    const head = await readBundleHead(src, path);
    return {
      head,
      manifest: parseManifest(head.manifestBytes),
      keyIds: signatureKeyIds(head),
      fileSize: src.size,
    };
  } finally {
    src.close();
  }
}
