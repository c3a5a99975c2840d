/**
 * The appliance image read back without booting it: GPT partitions (sfdisk --json), the MBR
 * boot code pointing at core.img, grub.cfg, grubenv and UEFI GRUB on the EFI system partition
 * (mtools), and
 * inside rootfs A (debugfs): the unit, its drop-in, fstab, the config (valid against the
 * schema, slots by partition label, grubenv backend). Builds the image with the cached Debian
 * base (image/out/cache; the first build downloads it from the Debian archive).
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { buildImage, LAYOUT, missingTools, readPartitions } from "../image/build.ts";
import { configSchema } from "../mod/config/mod.ts";
import { grubEnvVars, parseGrubEnv } from "../hw/boot/grubenv.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const missing = await missingTools();
const isRoot = Deno.uid() === 0;
const ignore = missing.length > 0 || !isRoot;
if (ignore) {
  console.error(
    `image_read_test: ignored: ${
      isRoot ? `missing ${missing.join(", ")}` : "needs root (mmdebstrap --mode=root, chroot)"
    }`,
  );
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assertEquals(out.code, 0, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("image: a missing tool names the Debian package to install", async () => {
  const m = await missingTools({ "kw-no-such-tool": "kw-some-package" }, "/nonexistent");
  assertEquals(m[0], "kw-no-such-tool (apt-get install kw-some-package)");
});

Deno.test({
  name: "image: partitions, boot code, grub.cfg, grubenv, unit, fstab and config read back",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kw-image-" });
    try {
      const img = join(dir, "keepwire.img");
      const r = await buildImage({
        out: img,
        version: "1.0.0",
        keys: join(dir, "keys"),
        cache: join(ROOT, "image/out"),
        log: () => {},
      });
      assert(r.rootfsBytes > 50e6, `rootfs only ${r.rootfsBytes} bytes`);
      // no temporary output left beside it
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assertEquals(names, ["keepwire.img", "keys"]);

      const parts = await readPartitions(img);
      assertEquals(parts.map((p) => p.name), LAYOUT.map((p) => p.name));
      assertEquals(parts.map((p) => p.size), LAYOUT.map((p) => p.mib * 2048));
      assertEquals(parts[0].type, "21686148-6449-6E6F-744E-656564454649");
      // the boot partition is the EFI system partition (UEFI firmware searches it)
      assertEquals(parts[1].type, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
      const at = (n: string) => parts.find((p) => p.name === n)!.start * 512;

      // MBR: GRUB boot.img with the core.img sector; core.img's blocklist continues after it
      const f = await Deno.open(img);
      const sec = new Uint8Array(512);
      await f.read(sec);
      const dv = new DataView(sec.buffer);
      assertEquals(dv.getBigUint64(0x5c, true), BigInt(parts[0].start));
      assertEquals([sec[510], sec[511]], [0x55, 0xaa]);
      await f.seek(at("bios"), Deno.SeekMode.Start);
      await f.read(sec);
      f.close();
      assertEquals(dv.getBigUint64(0x1f4, true), BigInt(parts[0].start + 1));
      assert(dv.getUint16(0x1fc, true) > 10, "core.img blocklist length");

      // FAT boot partition
      const fat = `${img}@@${at("boot")}`;
      const cfg = await run("mtype", ["-i", fat, "::/grub.cfg"]);
      for (
        const s of [
          "load_env",
          "save_env A_TRY A_OK B_TRY B_OK ORDER",
          "set A_TRY=1",
          "set B_TRY=1",
        ]
      ) {
        assertStringIncludes(cfg, s);
      }
      assertStringIncludes(cfg, "root=PARTLABEL=rootfs_a rw rauc.slot=A");
      assertStringIncludes(cfg, "root=PARTLABEL=rootfs_b rw rauc.slot=B");
      // GRUB for UEFI at the removable-media path, an x86-64 PE image ("MZ", machine 0x8664)
      await run("mcopy", ["-i", fat, "::/EFI/BOOT/BOOTX64.EFI", join(dir, "bootx64.efi")]);
      const pe = await Deno.readFile(join(dir, "bootx64.efi"));
      assertEquals([pe[0], pe[1]], [0x4d, 0x5a]);
      const peOff = new DataView(pe.buffer).getUint32(0x3c, true);
      assertEquals(new DataView(pe.buffer).getUint16(peOff + 4, true), 0x8664);
      await run("mcopy", ["-i", fat, "::/grubenv", join(dir, "grubenv")]);
      const env = await Deno.readFile(join(dir, "grubenv"));
      assertEquals(env.length, 1024);
      const vars = grubEnvVars(parseGrubEnv(env));
      assertEquals(
        [vars.ORDER, vars.A_OK, vars.A_TRY, vars.B_OK, vars.B_TRY],
        ["A B", "1", "0", "0", "0"],
      );

      // rootfs A
      const ext = `${img}?offset=${at("rootfs_a")}`;
      const cat = (p: string) => run("debugfs", ["-R", `cat ${p}`, ext]);
      const unit = await cat("/etc/systemd/system/keepwire.service");
      for (
        const s of [
          "Type=notify",
          "WatchdogSec=",
          "Restart=always",
          "OOMScoreAdjust=",
          "StartLimitIntervalSec=",
          "StartLimitBurst=",
          "ExecStart=/usr/bin/keepwire run",
        ]
      ) assertStringIncludes(unit, s);
      assertStringIncludes(
        await cat("/etc/systemd/system/keepwire.service.d/image.conf"),
        "StartLimitAction=reboot",
      );
      const wants = await run("debugfs", [
        "-R",
        "ls -l /etc/systemd/system/multi-user.target.wants",
        ext,
      ]);
      assertStringIncludes(wants, "keepwire.service");
      const fstab = await cat("/etc/fstab");
      assert(/PARTLABEL=data\s+\/var\/lib\/keepwire\s+ext4/.test(fstab), fstab);
      assert(/PARTLABEL=boot\s+\/boot\/grub\s+vfat/.test(fstab), fstab);
      const raw = await cat("/etc/keepwire/keepwire.jsonc");
      const parsed = configSchema.safeParse(JSON.parse(raw.replace(/^\/\/.*\n/, "")));
      assert(parsed.success, `config invalid: ${JSON.stringify(parsed.error?.issues)}`);
      const u = parsed.data.update;
      assertEquals(u.bootloader, { backend: "grubenv", file: "/boot/grub/grubenv", create: false });
      assertEquals(u.slots.rootfs.a.device, "/dev/disk/by-partlabel/rootfs_a");
      assertEquals(u.slots.rootfs.b.device, "/dev/disk/by-partlabel/rootfs_b");
      assertEquals(parsed.data.dataDir, "/var/lib/keepwire");
      assertEquals((await cat("/etc/keepwire/release")).trim(), "1.0.0");
      assertStringIncludes(await cat("/usr/lib/keepwire/keepwire"), "keepwire.js");
      assertStringIncludes(await cat("/etc/keepwire/keyring.pem"), "PUBLIC KEY");
      const ls = await run("debugfs", ["-R", "stat /usr/lib/keepwire/deno", ext]);
      assertStringIncludes(ls, "Mode:  0755");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "image: a build killed half way leaves nothing under the final name",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kw-image-kill-" });
    let pid = 0;
    try {
      const out = join(dir, "keepwire.img");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(ROOT, "image/build.ts"), "--out", out, "--keys", join(dir, "k")],
        stdout: "null",
        stderr: "null",
      }).spawn();
      pid = child.pid;
      // wait for the temporary output to appear (the partition images are done), then kill
      const deadline = Date.now() + 300_000;
      let part: string | undefined;
      while (!part && Date.now() < deadline) {
        part = [...Deno.readDirSync(dir)].map((e) => e.name).find((n) => n.includes(".part-"));
        if (!part) await new Promise((r) => setTimeout(r, 100));
      }
      child.kill("SIGKILL");
      await child.status;
      assert(part, "the build never wrote its temporary output");
      let exists = true;
      try {
        await Deno.stat(out);
      } catch {
        exists = false;
      }
      assert(!exists, "a half image under the final name");
    } finally {
      await Deno.remove(dir, { recursive: true });
      // the killed build's work dir under image/out
      for (const e of Deno.readDirSync(join(ROOT, "image/out"))) {
        if (e.name.startsWith(`work-${pid}-`)) {
          await Deno.remove(join(ROOT, "image/out", e.name), { recursive: true });
        }
      }
    }
  },
});
