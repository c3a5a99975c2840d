/**
 * Streaming install into file slots: the happy path (grubenv checked with the
 * real grub-editenv, U-Boot scheme, multi-image, hook), and every bad input of
 * the issue with its own test: clear error, booted slot intact, nothing marked good.
 */
import { join } from "node:path";
import { createBootEnv } from "../hw/boot/mod.ts";
import { MockBootEnv } from "../hw/boot/mock.ts";
import { UpdateError } from "../mod/update/errors.ts";
import { streamSource } from "../mod/update/stream.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { missingTools } from "./helpers/tools.ts";
import {
  assertIntact,
  makeBundle,
  makeImage,
  makeRig,
  opensslKey,
  type Rig,
  snapshot,
} from "./update_fixture.ts";

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Run a failing install and check error code/message and that A is intact. */
async function failingInstall(
  r: Rig,
  install: () => Promise<unknown>,
  code: string,
  includes: string,
): Promise<UpdateError> {
  const before = await snapshot(r);
  const e = await assertRejects(install, UpdateError) as UpdateError;
  assertEquals(e.code, code, e.message);
  assertStringIncludes(e.message, includes);
  await assertIntact(r, before);
  return e;
}

Deno.test({
  name:
    "install: grubenv backend — slot B written, verified, recorded, made primary in one write (checked with grub-editenv)",
  ignore: missingTools(["grub-editenv"]) !== undefined,
  fn: async () => {
    const r = await makeRig({
      env: async (dir) => {
        const f = join(dir, "grubenv");
        await run("grub-editenv", [f, "create"]);
        await run("grub-editenv", [
          f,
          "set",
          "ORDER=A B",
          "A_OK=1",
          "A_TRY=0",
          "B_OK=1",
          "B_TRY=0",
        ]);
        return createBootEnv({ backend: "grubenv", file: f });
      },
    });
    try {
      const b = await makeBundle(r.dir, {
        keys: [r.key.signer],
        size: 3_000_001,
        version: "2.0.0",
      });
      const seen: number[] = [];
      const res = await r.svc.installFrom(b.path, { onProgress: (p) => seen.push(p.percent) });
      assertEquals([res.target, res.booted, res.version, res.bytes], [
        "B",
        "A",
        "2.0.0",
        3_000_001,
      ]);
      assert(await sameBytes(r.slotB, b.image), "slot B holds the image");
      const list = await run("grub-editenv", [join(r.dir, "grubenv"), "list"]);
      const vars = Object.fromEntries(
        list.trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)),
      );
      assertEquals([vars.ORDER, vars.A_OK, vars.A_TRY, vars.B_OK, vars.B_TRY], [
        "B A",
        "1",
        "0",
        "1",
        "0",
      ]);
      assertEquals((await Deno.stat(join(r.dir, "grubenv"))).size, 1024);
      const st = await r.svc.status();
      const sb = st.slots.find((s) => s.bootname === "B")!;
      assertEquals([sb.state, sb.status, sb.version, sb.sha256, sb.primary, sb.booted], [
        "trying",
        "pending",
        "2.0.0",
        b.manifest.images[0].sha256,
        true,
        false,
      ]);
      const sa = st.slots.find((s) => s.bootname === "A")!;
      assertEquals([sa.state, sa.booted, sa.primary], ["good", true, false]);
      assert(seen.length > 10 && seen.at(-1) === 100, "progress reported up to 100%");
      for (let i = 1; i < seen.length; i++) {
        assert(seen[i] >= seen[i - 1], "progress never goes back");
      }
      const kinds = r.events.map((e) => e.kind);
      for (const k of ["update.install_started", "update.install_progress", "update.installed"]) {
        assert(kinds.includes(k), k);
      }
      // the only boot env writes: mark B bad first, then B primary at the very end
      assertEquals(r.svc.records.history(1)[0].action, "install");
    } finally {
      await r.close();
    }
  },
});

Deno.test("install: U-Boot scheme — B marked bad (LEFT=0, out of BOOT_ORDER) before writing, then made primary in one write", async () => {
  const mock = new MockBootEnv({ BOOT_ORDER: "A B", BOOT_A_LEFT: "3", BOOT_B_LEFT: "3" });
  const r = await makeRig({
    env: () => mock,
    update: { scheme: "uboot", activation: { tries: 3 } },
  });
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer] });
    await r.svc.installFrom(b.path);
    // the same writes as the scheme's own suite (bootenv_ab_test.ts) asserts
    assertEquals(mock.writes, [
      { BOOT_B_LEFT: "0", BOOT_ORDER: "A" },
      { BOOT_B_LEFT: "3", BOOT_ORDER: "B A" },
    ]);
  } finally {
    await r.close();
  }
});

Deno.test("install: two images into two slot classes, and a post-install hook sees the target", async () => {
  const r = await makeRig({
    update: {},
  });
  try {
    const appB = join(r.dir, "appB.bin");
    r.config.slots.app = {
      a: { device: join(r.dir, "appA.bin"), bootname: "A" },
      b: { device: appB, bootname: "B" },
    };
    await makeImage(join(r.dir, "root.img"), 200_000, 1);
    await makeImage(join(r.dir, "app.img"), 50_000, 2);
    const hookOut = join(r.dir, "hook.txt");
    const b = await makeBundle(r.dir, {
      keys: [r.key.signer],
      images: [{ slotClass: "rootfs", path: join(r.dir, "root.img") }, {
        slotClass: "app",
        path: join(r.dir, "app.img"),
      }],
      hooks: {
        postInstall: {
          command: [
            "sh",
            "-c",
            `echo "$KEEPWIRE_TARGET_SLOT $KEEPWIRE_SLOT_DEVICE_APP" > ${hookOut}`,
          ],
          timeoutMs: 10_000,
        },
      },
    });
    const res = await r.svc.installFrom(b.path);
    assertEquals(res.images.map((i) => i.slotClass), ["rootfs", "app"]);
    assert(await sameBytes(r.slotB, join(r.dir, "root.img")));
    assert(await sameBytes(appB, join(r.dir, "app.img")));
    assertEquals((await Deno.readTextFile(hookOut)).trim(), `B ${appB}`);
  } finally {
    await r.close();
  }
});

Deno.test("install: a failing post-install hook fails the install before the slot is made primary", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, {
      keys: [r.key.signer],
      hooks: {
        postInstall: { command: ["sh", "-c", "echo broken >&2; exit 3"], timeoutMs: 10_000 },
      },
    });
    await failingInstall(r, () => r.svc.installFrom(b.path), "hook_failed", "exited 3: broken");
  } finally {
    await r.close();
  }
});

Deno.test("bad input: unsigned bundle", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [] });
    await failingInstall(r, () => r.svc.installFrom(b.path), "unsigned", "not signed");
    assertEquals((r.env as MockBootEnv).writes, [], "not even the target was touched");
  } finally {
    await r.close();
  }
});

Deno.test("bad input: bundle signed by an unknown key", async () => {
  const r = await makeRig();
  try {
    const other = await opensslKey(r.dir, "other");
    const b = await makeBundle(r.dir, { keys: [other.signer] });
    await failingInstall(r, () => r.svc.installFrom(b.path), "unknown_key", other.pub.keyId);
  } finally {
    await r.close();
  }
});

Deno.test("bad input: tampered manifest", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer] });
    const bytes = await Deno.readFile(b.path);
    const i = new TextDecoder().decode(bytes.subarray(0, 400)).indexOf("acme-gw");
    bytes[i] = "A".charCodeAt(0);
    await Deno.writeFile(b.path, bytes);
    await failingInstall(
      r,
      () => r.svc.installFrom(b.path),
      "bad_signature",
      "does not match the manifest",
    );
    assertEquals((r.env as MockBootEnv).writes, []);
  } finally {
    await r.close();
  }
});

Deno.test("bad input: tampered payload is caught by the on-the-fly sha256; B stays bad", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 500_000 });
    const f = await Deno.open(b.path, { read: true, write: true });
    await f.seek(-250_000, Deno.SeekMode.End);
    await f.write(new Uint8Array([1, 2, 3, 4]));
    f.close();
    await failingInstall(
      r,
      () => r.svc.installFrom(b.path),
      "hash_mismatch",
      "altered or corrupted",
    );
    assertEquals(
      (r.env as MockBootEnv).snapshot().B_OK,
      "0",
      "target marked bad before the first write, and left bad",
    );
    assertEquals(r.svc.records.slot("B", "rootfs")?.status, "failed");
  } finally {
    await r.close();
  }
});

Deno.test("bad input: truncated file is refused before anything is written; a truncated stream fails mid-way", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 400_000 });
    const bytes = await Deno.readFile(b.path);
    await Deno.writeFile(b.path, bytes.subarray(0, bytes.length - 100_000));
    await failingInstall(r, () => r.svc.installFrom(b.path), "truncated", "300");
    assertEquals((r.env as MockBootEnv).writes, []);
    const cut = bytes.subarray(0, bytes.length - 100_000);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < cut.length; i += 65_536) c.enqueue(cut.slice(i, i + 65_536));
        c.close();
      },
    });
    await failingInstall(
      r,
      () => r.svc.install(streamSource(stream), "upload"),
      "truncated",
      "ended after",
    );
  } finally {
    await r.close();
  }
});

Deno.test("bad input: wrong compatible string", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], compatible: "other-board" });
    await failingInstall(
      r,
      () => r.svc.installFrom(b.path),
      "incompatible",
      `bundle is for "other-board", this device is "acme-gw"`,
    );
  } finally {
    await r.close();
  }
});

Deno.test("bad input: downgrade refused; --allow-downgrade accepts it", async () => {
  const r = await makeRig({ bootedVersion: "3.2.0" });
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], version: "3.1.9" });
    await failingInstall(
      r,
      () => r.svc.installFrom(b.path),
      "downgrade",
      "3.1.9 is older than the booted slot's 3.2.0",
    );
    const res = await r.svc.installFrom(b.path, { allowDowngrade: true });
    assertEquals(res.version, "3.1.9");
  } finally {
    await r.close();
  }
});

Deno.test("bad input: slot too small (configured capacity of a file slot)", async () => {
  const r = await makeRig({ slotBSize: 100_000 });
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 100_001 });
    await failingInstall(
      r,
      () => r.svc.installFrom(b.path),
      "slot_too_small",
      "100001 bytes) does not fit slot rootfs B",
    );
    assertEquals((r.env as MockBootEnv).writes, []);
  } finally {
    await r.close();
  }
});

Deno.test({
  name: "bad input: slot too small (loop block device reports its size)",
  ignore: missingTools(["losetup"], { root: true }) !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kw-loop-" });
    let loop = "";
    try {
      await makeImage(join(dir, "back.img"), 1 << 20);
      loop = (await run("losetup", ["-f", "--show", join(dir, "back.img")])).trim();
      const r = await makeRig({ slotB: loop });
      try {
        const b = await makeBundle(r.dir, { keys: [r.key.signer], size: (1 << 20) + 512 });
        await failingInstall(
          r,
          () => r.svc.installFrom(b.path),
          "slot_too_small",
          `(${loop}, 1048576 bytes)`,
        );
        // and an image that fits is written to the block device
        const ok = await makeBundle(r.dir, { keys: [r.key.signer], size: 700_000 });
        await r.svc.installFrom(ok.path);
        const dev = await Deno.open(loop, { read: true });
        const head = new Uint8Array(700_000);
        let n = 0;
        while (n < head.length) n += (await dev.read(head.subarray(n))) ?? 0;
        dev.close();
        const img = await Deno.readFile(ok.image);
        assert(img.every((v, i) => v === head[i]), "loop device holds the image");
      } finally {
        await r.close();
      }
    } finally {
      if (loop) await run("losetup", ["-d", loop]).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bad input: disk full (slot on a 1 MiB tmpfs) — clear ENOSPC error, booted slot intact",
  ignore: missingTools(["mount", "umount"], { root: true }) !== undefined,
  fn: async () => {
    const mnt = await Deno.makeTempDir({ prefix: "kw-full-" });
    let mounted = false;
    try {
      await run("mount", ["-t", "tmpfs", "-o", "size=1m", "kwtest", mnt]);
      mounted = true;
      const r = await makeRig({ slotB: join(mnt, "B.img") });
      try {
        const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 3_000_000 });
        await failingInstall(r, () => r.svc.installFrom(b.path), "io", "No space left on device");
        assertEquals(r.svc.records.slot("B", "rootfs")?.status, "failed");
      } finally {
        await r.close();
      }
    } finally {
      if (mounted) await run("umount", [mnt]).catch(() => run("umount", ["-l", mnt]));
      await Deno.remove(mnt, { recursive: true });
    }
  },
});

/**
 * A minimal HTTP/1.1 server on a raw TCP listener that serves `file` with Range
 * support; `drop(reqIndex, from)` says after how many body bytes to cut the
 * connection (null: send all). Cutting closes the socket, as a broken link does.
 */
function serveBundle(file: Uint8Array, drop: (req: number, from: number) => number | null) {
  const ranges: (string | null)[] = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serveOne = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      let head = "";
      const buf = new Uint8Array(4096);
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const m = /^range:\s*bytes=(\d+)-\s*$/im.exec(head);
      const idx = ranges.length;
      ranges.push(m ? `bytes=${m[1]}-` : null);
      const from = m ? Number(m[1]) : 0;
      const body = file.subarray(from);
      const status = m ? "206 Partial Content" : "200 OK";
      const extra = m ? `content-range: bytes ${from}-${file.length - 1}/${file.length}\r\n` : "";
      const hdr =
        `HTTP/1.1 ${status}\r\ncontent-length: ${body.length}\r\netag: "v1"\r\naccept-ranges: bytes\r\n${extra}connection: close\r\n\r\n`;
      const cut = drop(idx, from);
      const end = cut === null ? body.length : Math.min(cut, body.length);
      const out = new Uint8Array(hdr.length + end);
      out.set(new TextEncoder().encode(hdr));
      out.set(body.subarray(0, end), hdr.length);
      let off = 0;
      while (off < out.length) off += await conn.write(out.subarray(off));
    } catch {
      /* client went away */
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) void serveOne(conn);
  })().catch(() => {});
  return {
    ranges,
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/b.kwb`,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

Deno.test("bad input: HTTP connection dropped mid-stream — resumed with Range, slot verified", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 2_000_000 });
    const bytes = await Deno.readFile(b.path);
    // first request breaks after 40 %, the first resume after another 30 %
    const s = serveBundle(
      bytes,
      (
        i,
      ) => (i === 0
        ? Math.floor(bytes.length * 0.4)
        : i === 1
        ? Math.floor(bytes.length * 0.3)
        : null),
    );
    try {
      const res = await r.svc.installFrom(s.url);
      assertEquals(res.target, "B");
      assert(await sameBytes(r.slotB, b.image));
      assertEquals(s.ranges.length, 3);
      assertEquals(s.ranges[0], null);
      assert(
        /^bytes=\d+-$/.test(s.ranges[1]!) && /^bytes=\d+-$/.test(s.ranges[2]!),
        JSON.stringify(s.ranges),
      );
      assert(Number(s.ranges[1]!.slice(6, -1)) > 0);
    } finally {
      await s.close();
    }
  } finally {
    await r.close();
  }
});

Deno.test("bad input: HTTP connection keeps dropping — retries used up, clear error, booted slot intact", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 1_000_000 });
    const bytes = await Deno.readFile(b.path);
    const s = serveBundle(bytes, (i) => (i === 0 ? 600_000 : 0));
    try {
      await failingInstall(r, () => r.svc.installFrom(s.url), "download", "resume(s) failed");
      assertEquals(s.ranges.length, 1 + r.config.download.retries);
    } finally {
      await s.close();
    }
  } finally {
    await r.close();
  }
});

Deno.test("bad input: HTTP 404 and unsupported URL schemes are clear errors", async () => {
  const r = await makeRig();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no", { status: 404 }),
  );
  try {
    await failingInstall(
      r,
      () => r.svc.installFrom(`http://127.0.0.1:${server.addr.port}/x.kwb`),
      "download",
      "HTTP 404",
    );
    await failingInstall(
      r,
      () => r.svc.installFrom("ftp://example.invalid/x.kwb"),
      "bad_request",
      "unsupported URL scheme",
    );
  } finally {
    await server.shutdown();
    await r.close();
  }
});

Deno.test("install: a second install while one runs is refused (busy)", async () => {
  const r = await makeRig();
  try {
    const b = await makeBundle(r.dir, { keys: [r.key.signer], size: 2_000_000 });
    const first = r.svc.installFrom(b.path);
    await assertRejects(() => r.svc.installFrom(b.path), UpdateError, "another install is running");
    await first;
  } finally {
    await r.close();
  }
});
