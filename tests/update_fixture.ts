/**
 * Shared set-up of the updater tests (not a test file itself): keys, images,
 * bundles, file slots, a service over a chosen boot env, and the checks every
 * bad-input test makes (booted slot intact, nothing marked good). Run as a
 * script it starts a runtime with the update module (`deno run -A
 * tests/update_fixture.ts CONFIG`), standing in for the composition root until
 * runtime.ts builds the module.
 * @module
 */
import { join } from "node:path";
import {
  createBundle,
  type Manifest,
  parseKeyring,
  parsePrivateKey,
  type SigningKey,
} from "../mod/update/bundle.ts";
import type { BootEnv } from "../hw/boot/types.ts";
import { MockBootEnv } from "../hw/boot/mock.ts";
import { type UpdateConfig, updateConfigSchema } from "../mod/update/config.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { systemClock } from "../mod/module.ts";
import { UpdateService } from "../mod/update/service.ts";
import type { PublicKey } from "../mod/update/bundle.ts";
import { assert, assertEquals } from "./helpers/assert.ts";

/** An Ed25519 key pair as PEM text plus the parsed halves. */
export interface TestKey {
  /** PKCS#8 PEM. */
  privatePem: string;
  /** SPKI PEM. */
  publicPem: string;
  /** Signing key. */
  signer: SigningKey;
  /** Public key. */
  pub: PublicKey;
}

/** Generate a key with `openssl genpkey -algorithm ed25519` (what vendors do). */
export async function opensslKey(dir: string, name: string): Promise<TestKey> {
  const priv = join(dir, `${name}.pem`), pub = join(dir, `${name}.pub.pem`);
  for (
    const args of [["genpkey", "-algorithm", "ed25519", "-out", priv], [
      "pkey",
      "-in",
      priv,
      "-pubout",
      "-out",
      pub,
    ]]
  ) {
    const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
  const privatePem = await Deno.readTextFile(priv), publicPem = await Deno.readTextFile(pub);
  return {
    privatePem,
    publicPem,
    signer: await parsePrivateKey(privatePem),
    pub: (await parseKeyring(publicPem))[0],
  };
}

/** Write `size` pseudo-random bytes (deterministic per seed) to `path`. */
export async function makeImage(path: string, size: number, seed = 1): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let x = seed >>> 0 || 1;
    const chunk = new Uint8Array(Math.min(size, 1 << 20));
    let left = size;
    while (left > 0) {
      const n = Math.min(chunk.length, left);
      const v = new Uint32Array(chunk.buffer, 0, Math.floor(n / 4));
      for (let i = 0; i < v.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        v[i] = x >>> 0;
      }
      for (let i = v.length * 4; i < n; i++) chunk[i] = i & 0xff;
      let off = 0;
      while (off < n) off += await f.write(chunk.subarray(off, n));
      left -= n;
    }
  } finally {
    f.close();
  }
}

/** Build a bundle of one rootfs image. */
export async function makeBundle(
  dir: string,
  opts: {
    version?: string;
    compatible?: string;
    size?: number;
    keys: SigningKey[];
    name?: string;
    seed?: number;
    images?: { slotClass: string; path: string }[];
    hooks?: Manifest["hooks"];
    storeSchema?: string;
  },
): Promise<{ path: string; image: string; manifest: Manifest }> {
  const name = opts.name ?? `b-${crypto.randomUUID().slice(0, 6)}`;
  const image = join(dir, `${name}.img`);
  if (!opts.images) await makeImage(image, opts.size ?? 300_000, opts.seed ?? 7);
  const path = join(dir, `${name}.kwb`);
  const manifest = await createBundle({
    images: opts.images ?? [{ slotClass: "rootfs", path: image }],
    compatible: opts.compatible ?? "acme-gw",
    version: opts.version ?? "2.0.0",
    keys: opts.keys,
    out: path,
    hooks: opts.hooks,
    storeSchema: opts.storeSchema,
  });
  return { path, image, manifest };
}

/** A service over file slots in a temp dir. */
export interface Rig {
  /** Temp dir. */
  dir: string;
  /** Config. */
  config: UpdateConfig;
  /** Store (file in dir). */
  store: Store;
  /** Event bus with the store as journal. */
  bus: EventBus;
  /** The service. */
  svc: UpdateService;
  /** The boot env. */
  env: BootEnv;
  /** Slot files. */
  slotA: string;
  /** Slot B file. */
  slotB: string;
  /** The key the keyring trusts. */
  key: TestKey;
  /** Events published. */
  events: KwEvent[];
  /** Close store and remove the dir. */
  close(): Promise<void>;
}

/** Options of {@link makeRig}. */
export interface RigOptions {
  /** Extra update config (merged). */
  update?: Record<string, unknown>;
  /** Boot env (default MockBootEnv: order A B, A good, B bad = never installed). */
  env?: (dir: string) => BootEnv | Promise<BootEnv>;
  /** Factory version recorded for slot A (default 1.0.0). */
  bootedVersion?: string | null;
  /** Key (default: a new openssl key). */
  key?: TestKey;
  /** Slot B path (default dir/B.img). */
  slotB?: string;
  /** Slot B configured size. */
  slotBSize?: number;
}

/** Build a rig: file slots A (booted, contents "factory") and B, keyring with one key. */
export async function makeRig(opts: RigOptions = {}): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "kw-upd-" });
  const key = opts.key ?? await opensslKey(dir, "signer");
  await Deno.writeTextFile(join(dir, "keyring.pem"), key.publicPem);
  const slotA = join(dir, "A.img"), slotB = opts.slotB ?? join(dir, "B.img");
  await Deno.writeTextFile(slotA, "factory image A\n");
  const config = updateConfigSchema.parse({
    compatible: "acme-gw",
    keyring: join(dir, "keyring.pem"),
    bootedSlot: "A",
    bootloader: { backend: "file", file: join(dir, "bootenv.json") },
    slots: {
      rootfs: {
        a: { device: slotA, bootname: "A" },
        b: { device: slotB, bootname: "B", ...(opts.slotBSize ? { size: opts.slotBSize } : {}) },
      },
    },
    chunkSize: 65_536,
    download: { retries: 3, retryDelayMs: 10, maxRetryDelayMs: 50, stallTimeoutMs: 5_000 },
    ...opts.update,
  });
  const env = opts.env
    ? await opts.env(dir)
    : new MockBootEnv({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" });
  const store = new Store({ path: join(dir, "kw.db") });
  const bus = new EventBus({ journal: store });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const svc = new UpdateService(config, store, bus, systemClock, {
    bootEnv: env,
    detect: { env: {}, readCmdline: () => Promise.resolve(null) },
  });
  if (opts.bootedVersion !== null) {
    svc.records.put({
      bootname: "A",
      slotClass: "rootfs",
      device: slotA,
      status: "good",
      version: opts.bootedVersion ?? "1.0.0",
      compatible: "acme-gw",
      sha256: "0".repeat(64),
      size: 16,
      keyId: null,
      installedAt: 1_000,
      detail: null,
    });
  }
  return {
    dir,
    config,
    store,
    bus,
    svc,
    env,
    slotA,
    slotB,
    key,
    events,
    async close() {
      store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Snapshot of what must not change when an install fails. */
export interface Intact {
  /** Boot env variables of slot A and the order. */
  env: Record<string, string | undefined>;
  /** Store row of A. */
  rowA: unknown;
  /** Bytes of slot A. */
  slotA: string;
}

/** Take the snapshot. */
export async function snapshot(r: Rig): Promise<Intact> {
  const vars = await r.env.list();
  return {
    env: {
      ORDER: vars.ORDER,
      A_OK: vars.A_OK,
      A_TRY: vars.A_TRY,
      BOOT_ORDER: vars.BOOT_ORDER,
      BOOT_A_LEFT: vars.BOOT_A_LEFT,
    },
    rowA: r.svc.records.slot("A", "rootfs"),
    slotA: await Deno.readTextFile(r.slotA),
  };
}

/** Assert the booted slot is intact and nothing is marked good or primary besides it. */
export async function assertIntact(r: Rig, before: Intact): Promise<void> {
  const after = await snapshot(r);
  assertEquals(after, before, "booted slot A (env, store row, contents) unchanged");
  const st = await r.svc.status();
  assertEquals(st.primary, "A", "A stays primary");
  const b = st.slots.find((s) => s.bootname === "B")!;
  assert(b.state !== "good", `slot B must not be good, is ${b.state}`);
  assert(!["good", "pending", "installed"].includes(b.status ?? ""), `slot B status ${b.status}`);
  assert(
    !r.events.some((e) => e.kind === "update.installed" || e.kind === "update.marked_good"),
    "no installed/marked_good event",
  );
}
