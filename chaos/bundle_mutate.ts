/**
 * Chaos: mutated bundles. A signed two-image bundle is mutated (seeded, so a
 * lost case can be replayed) in every way an attacker or a broken download
 * could: byte flips in the header, manifest, signature block and payloads,
 * header fields set to random values, truncation, trailing bytes, inserted and
 * deleted bytes, a payload swapped for another of the same size, the manifest
 * edited and re-signed by an untrusted key, the signature stripped, a signature
 * from another bundle of the same key. Each is installed through the real
 * updater (UpdateService over file slots, the store, a boot env) from a file
 * (size known) or a stream (size unknown).
 *
 * A mutation survived when the install was refused with an UpdateError and the
 * boot env is exactly as before, or the install succeeded and what it installed
 * is the signed content byte for byte (a mutation of no signed byte). Lost: an
 * install of altered signed content, a crash (any other exception, an
 * unhandled rejection), or a refused install that changed the boot env.
 * Long form: 5,000 mutations; bounded: 500.
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { MockBootEnv } from "../hw/boot/mock.ts";
import { EventBus } from "../mod/events/mod.ts";
import { systemClock } from "../mod/module.ts";
import { Store } from "../mod/store/mod.ts";
import {
  assembleHead,
  createBundle,
  generateKeyPem,
  HEADER_SIZE,
  parsePrivateKey,
  readBundleHead,
  signManifest,
} from "../mod/update/bundle.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { UpdateService } from "../mod/update/service.ts";
import { streamSource } from "../mod/update/stream.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

const INITIAL_ENV = { ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" };

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Base {
  bytes: Uint8Array;
  manifestStart: number;
  manifestEnd: number;
  sigEnd: number;
  images: Uint8Array[];
  other: Uint8Array; // a bundle of the same key with another manifest
  untrusted: Awaited<ReturnType<typeof parsePrivateKey>>;
}

type Mutation = { kind: string; bytes: Uint8Array } | null;

async function mutate(b: Base, r: () => number): Promise<Mutation> {
  const n = (max: number) => Math.floor(r() * max);
  const copy = () => b.bytes.slice();
  const region = (): [number, number] => {
    const k = n(4);
    if (k === 0) return [0, HEADER_SIZE];
    if (k === 1) return [b.manifestStart, b.manifestEnd];
    if (k === 2) return [b.manifestEnd, b.sigEnd];
    return [b.sigEnd, b.bytes.length];
  };
  switch (n(11)) {
    case 0:
    case 1: { // flip 1..4 bytes in one region
      const out = copy();
      const [s, e] = region();
      for (let i = 1 + n(4); i > 0; i--) out[s + n(e - s)] ^= 1 + n(255);
      return { kind: "flip", bytes: out };
    }
    case 2: { // a header field set to a random u32
      const out = copy();
      new DataView(out.buffer).setUint32(8 + 4 * n(4), n(0x100000000), true);
      return { kind: "header-field", bytes: out };
    }
    case 3: // truncated
      return { kind: "truncate", bytes: b.bytes.slice(0, n(b.bytes.length)) };
    case 4: { // trailing bytes
      const extra = new Uint8Array(1 + n(100)).map(() => n(256));
      const out = new Uint8Array(b.bytes.length + extra.length);
      out.set(b.bytes);
      out.set(extra, b.bytes.length);
      return { kind: "trailing", bytes: out };
    }
    case 5: { // one byte inserted or deleted
      const at = n(b.bytes.length);
      if (r() < 0.5) {
        const out = new Uint8Array(b.bytes.length + 1);
        out.set(b.bytes.subarray(0, at));
        out[at] = n(256);
        out.set(b.bytes.subarray(at), at + 1);
        return { kind: "insert", bytes: out };
      }
      const out = new Uint8Array(b.bytes.length - 1);
      out.set(b.bytes.subarray(0, at));
      out.set(b.bytes.subarray(at + 1), at);
      return { kind: "delete", bytes: out };
    }
    case 6: { // the first payload swapped for another of the same size
      const out = copy();
      const other = b.images[0].map((x, i) => (x + 1 + (i % 7)) & 0xff);
      out.set(other, b.sigEnd);
      return { kind: "payload-swap", bytes: out };
    }
    case 7: { // manifest edited, re-signed by an untrusted key
      const m = JSON.parse(
        new TextDecoder().decode(b.bytes.subarray(b.manifestStart, b.manifestEnd)),
      );
      m.images[0].sha256 = sha(new Uint8Array([n(256)]));
      const mb = new TextEncoder().encode(JSON.stringify(m));
      const head = assembleHead(mb, await signManifest(mb, [b.untrusted]));
      const out = new Uint8Array(head.length + b.bytes.length - b.sigEnd);
      out.set(head);
      out.set(b.bytes.subarray(b.sigEnd), head.length);
      return { kind: "resigned-untrusted", bytes: out };
    }
    case 8: { // manifest edited, old signature kept
      const m = JSON.parse(
        new TextDecoder().decode(b.bytes.subarray(b.manifestStart, b.manifestEnd)),
      );
      m.version = `2.0.${1 + n(50)}`;
      const mb = new TextEncoder().encode(JSON.stringify(m, null, 2) + "\n");
      const head = assembleHead(mb, b.bytes.subarray(b.manifestEnd, b.sigEnd));
      const out = new Uint8Array(head.length + b.bytes.length - b.sigEnd);
      out.set(head);
      out.set(b.bytes.subarray(b.sigEnd), head.length);
      return { kind: "manifest-edit", bytes: out };
    }
    case 9: { // signature stripped (unsigned)
      const mb = b.bytes.subarray(b.manifestStart, b.manifestEnd);
      const head = assembleHead(mb, new Uint8Array(0));
      const out = new Uint8Array(head.length + b.bytes.length - b.sigEnd);
      out.set(head);
      out.set(b.bytes.subarray(b.sigEnd), head.length);
      return { kind: "unsigned", bytes: out };
    }
    default: { // the signature block of another bundle signed by the same key
      const o = b.other;
      const src = streamSource(new Blob([o as Uint8Array<ArrayBuffer>]).stream());
      const h = await readBundleHead(src);
      const head = assembleHead(b.bytes.subarray(b.manifestStart, b.manifestEnd), h.signatureBytes);
      const out = new Uint8Array(head.length + b.bytes.length - b.sigEnd);
      out.set(head);
      out.set(b.bytes.subarray(b.sigEnd), head.length);
      return { kind: "foreign-signature", bytes: out };
    }
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult> {
  const total = opts.bounded ? 500 : 5000;
  const seed = Number(Deno.env.get("KEEPWIRE_CHAOS_SEED") ?? Date.now() % 1_000_000);
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-bundle-" });
  const unhandled: string[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled.push(String(e.reason).slice(0, 200));
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  const store = new Store({ path: join(dir, "kw.db") });
  try {
    const keys = await generateKeyPem();
    const signer = await parsePrivateKey(keys.privatePem);
    const untrusted = await parsePrivateKey((await generateKeyPem()).privatePem);
    await Deno.writeTextFile(join(dir, "ring.pem"), keys.publicPem);
    const images: Uint8Array[] = [];
    const paths: string[] = [];
    for (const [i, size] of [40_000, 9_000].entries()) {
      const img = new Uint8Array(size).map((_, j) => (j * (13 + i) + 5) & 0xff);
      images.push(img);
      paths.push(join(dir, `img${i}.bin`));
      await Deno.writeFile(paths[i], img);
    }
    const out = join(dir, "base.kwb");
    await createBundle({
      images: [{ slotClass: "rootfs", path: paths[0] }, { slotClass: "app", path: paths[1] }],
      compatible: "chaos-gw",
      version: "2.0.0",
      keys: [signer],
      out,
    });
    await createBundle({
      images: [{ slotClass: "rootfs", path: paths[0] }],
      compatible: "chaos-gw",
      version: "9.9.9",
      keys: [signer],
      out: join(dir, "other.kwb"),
    });
    const bytes = await Deno.readFile(out);
    const head = await readBundleHead(
      streamSource(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()),
    );
    const base: Base = {
      bytes,
      manifestStart: HEADER_SIZE,
      manifestEnd: HEADER_SIZE + head.manifestBytes.length,
      sigEnd: head.payloadOffset,
      images,
      other: await Deno.readFile(join(dir, "other.kwb")),
      untrusted,
    };
    const slot = (n: string) => join(dir, n);
    const config = updateConfigSchema.parse({
      compatible: "chaos-gw",
      keyring: join(dir, "ring.pem"),
      bootedSlot: "A",
      cmdline: join(dir, "no-cmdline"),
      chunkSize: 65_536,
      slots: {
        rootfs: {
          a: { device: slot("A.root"), bootname: "A" },
          b: { device: slot("B.root"), bootname: "B" },
        },
        app: {
          a: { device: slot("A.app"), bootname: "A" },
          b: { device: slot("B.app"), bootname: "B" },
        },
      },
    });
    await Deno.writeTextFile(slot("A.root"), "factory root A\n");
    await Deno.writeTextFile(slot("A.app"), "factory app A\n");
    const env = new MockBootEnv(INITIAL_ENV);
    const bus = new EventBus({ journal: store });
    const svc = new UpdateService(config, store, bus, systemClock, {
      bootEnv: env,
      detect: { env: {}, readCmdline: () => Promise.resolve(null) },
    });
    // control: the unmutated bundle installs (else every refusal below would prove nothing)
    await svc.installFrom(out);
    if (!equal(await Deno.readFile(slot("B.root")), images[0])) {
      throw new Error("the unmutated bundle did not install its image");
    }
    const r = rng(seed);
    const codes = new Map<string, number>();
    let injected = 0, survived = 0, lost = 0, refused = 0, harmless = 0;
    const kinds = new Map<string, number>();
    const lose = (why: string) => {
      lost++;
      if (lost <= 10) opts.log(`  LOST (seed ${seed}, #${injected}): ${why}`);
    };
    while (injected < total) {
      const m = await mutate(base, r);
      if (!m || equal(m.bytes, base.bytes)) continue;
      injected++;
      kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1);
      await env.set({ ...INITIAL_ENV });
      const before = JSON.stringify(env.snapshot());
      let installed = false;
      try {
        if (injected % 2 === 0) {
          const f = join(dir, "m.kwb");
          await Deno.writeFile(f, m.bytes);
          await svc.installFrom(f);
        } else {
          await svc.install(
            streamSource(new Blob([m.bytes as Uint8Array<ArrayBuffer>]).stream()),
            "stream",
          );
        }
        installed = true;
      } catch (e) {
        if (!(e instanceof UpdateError)) {
          lose(`${m.kind}: crash ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
          continue;
        }
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
      if (installed) {
        const same = equal(await Deno.readFile(slot("B.root")), images[0]) &&
          equal(await Deno.readFile(slot("B.app")), images[1]) &&
          equal(m.bytes.subarray(base.manifestStart, base.manifestEnd), head.manifestBytes);
        if (!same) lose(`${m.kind}: installed altered signed content`);
        else {
          harmless++;
          survived++;
        }
        continue;
      }
      if (JSON.stringify(env.snapshot()) !== before) {
        lose(`${m.kind}: refused, but the boot env changed: ${JSON.stringify(env.snapshot())}`);
        continue;
      }
      if (await Deno.readTextFile(slot("A.root")) !== "factory root A\n") {
        lose(`${m.kind}: slot A was written`);
        continue;
      }
      refused++;
      survived++;
    }
    if (unhandled.length) {
      lost += unhandled.length;
      opts.log(`  LOST: ${unhandled.length} unhandled rejection(s): ${unhandled[0]}`);
    }
    return {
      injected,
      survived,
      lost,
      notes: `seed ${seed}; ${refused} refused (${
        [...codes.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) =>
          `${k} ${v}`
        ).join(", ")
      }), ${harmless} installed unaltered; mutations: ` +
        [...kinds.entries()].map(([k, v]) => `${k} ${v}`).join(", "),
    };
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    store.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "bundle_mutate",
  description: "mutated bundles (flips, header fields, truncation, trailing and inserted bytes, " +
    "swapped payloads, re-signed, unsigned, foreign signatures) through the real updater: none " +
    "installs altered signed content, none crashes, a refused one leaves the boot env as it was",
  run,
};
