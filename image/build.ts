/**
 * `deno task image`: the appliance disk image, built without mounting anything and with no
 * network beyond the Debian archive (mmdebstrap). A GPT disk in a plain file:
 *
 *   p1 bios      1 MiB   GRUB core.img (BIOS boot partition; boot.img in the MBR points at it)
 *   p2 boot     16 MiB   EFI system partition (FAT): grub.cfg (A/B with boot counting, RAUC's
 *                        GRUB scheme), grubenv, and GRUB for UEFI at EFI/BOOT/BOOTX64.EFI
 *   p3 rootfs_a 640 MiB  ext4 (mke2fs -d): Debian minbase + systemd + kernel + keepwire
 *   p4 rootfs_b 640 MiB  empty until the first update
 *   p5 data     128 MiB  ext4, mounted at /var/lib/keepwire (keepwire's data directory)
 *
 * The same disk boots on BIOS (MBR boot.img → core.img) and on UEFI (the firmware's removable-
 * media path EFI/BOOT/BOOTX64.EFI); both GRUBs read the one grub.cfg and grubenv on p2.
 *
 * `deno task image --bundle` writes a signed `.kwb` of the rootfs instead (for the updater).
 * The Debian base (mmdebstrap) is cached under image/out/cache/ by its package list; outputs are
 * written to a temporary name and renamed at the end, so an interrupted build leaves no half
 * image under the final name.
 *
 * Usage: deno task image [--out FILE] [--version SEMVER] [--bundle] [--broken] [--seed DIR]
 * @module
 */
import { parseArgs } from "node:util";
import { basename, dirname, join } from "node:path";
import { buildBundle, ROOT } from "./bundle.ts";

/** Debian suite and mirror of the rootfs. */
export const SUITE = "bookworm";
/** The Debian archive (the only network source of the build). */
export const MIRROR = Deno.env.get("KEEPWIRE_IMAGE_MIRROR") ?? "http://deb.debian.org/debian";
/** Packages on top of minbase. */
export const PACKAGES = [
  "systemd",
  "systemd-sysv",
  "linux-image-cloud-amd64",
  "udev",
  "e2fsprogs",
  "ca-certificates",
];
/** Compatible string of the image (bundles must carry it). */
export const COMPATIBLE = "keepwire-qemu-x86_64";

/** Partition layout: name, size in MiB, GPT type. */
export const LAYOUT = [
  { name: "bios", mib: 1, type: "21686148-6449-6E6F-744E-656564454649" },
  // EFI system partition: UEFI firmware looks for EFI/BOOT/BOOTX64.EFI on it
  { name: "boot", mib: 16, type: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" },
  { name: "rootfs_a", mib: 640, type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4" },
  { name: "rootfs_b", mib: 640, type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4" },
  { name: "data", mib: 128, type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4" },
] as const;

/** Each tool the build runs and the Debian package that provides it. */
export const TOOLS: Record<string, string> = {
  mmdebstrap: "mmdebstrap",
  sfdisk: "fdisk",
  mke2fs: "e2fsprogs",
  debugfs: "e2fsprogs",
  "mkfs.vfat": "dosfstools",
  mcopy: "mtools",
  mmd: "mtools",
  "grub-mkimage": "grub-common",
  "grub-editenv": "grub-common",
  tar: "tar",
  systemctl: "systemd",
};
/** GRUB's BIOS images (not a tool on PATH). */
export const GRUB_I386 = "/usr/lib/grub/i386-pc";
/** GRUB's x86_64 UEFI modules (not a tool on PATH). */
export const GRUB_EFI = "/usr/lib/grub/x86_64-efi";

/** The error of a build that cannot start or failed; its message says what to do. */
export class ImageError extends Error {}

/** Every missing tool, each with the Debian package to install; empty when all are there. */
export async function missingTools(
  tools: Record<string, string> = TOOLS,
  path = Deno.env.get("PATH") ?? "/usr/bin:/bin",
): Promise<string[]> {
  const dirs = [...path.split(":"), "/usr/sbin", "/sbin"];
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(tools)) {
    let found = false;
    for (const d of dirs) {
      try {
        const st = await Deno.stat(join(d, tool));
        if (st.isFile) {
          found = true;
          break;
        }
      } catch { /* next */ }
    }
    if (!found) missing.push(`${tool} (apt-get install ${pkg})`);
  }
  try {
    await Deno.stat(join(GRUB_I386, "boot.img"));
  } catch {
    missing.push(`${GRUB_I386}/boot.img (apt-get install grub-pc-bin)`);
  }
  try {
    await Deno.stat(join(GRUB_EFI, "linux.mod"));
  } catch {
    missing.push(`${GRUB_EFI}/linux.mod (apt-get install grub-efi-amd64-bin)`);
  }
  return missing;
}

async function sh(cmd: string, args: string[], opts: { stdin?: string; cwd?: string } = {}) {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-15).join("\n");
    throw new ImageError(`${cmd} ${args.slice(0, 3).join(" ")} failed (exit ${out.code}):\n${err}`);
  }
  return text;
}

async function sha256hex(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Arguments of mmdebstrap (also the cache key of the base tarball). */
export function mmdebstrapArgs(out: string): string[] {
  return [
    "--variant=minbase",
    "--mode=root",
    // explicit: mmdebstrap otherwise guesses the format from the output's name, and the
    // temporary name the tarball is built under does not end in .tar (a directory results)
    "--format=tar",
    `--include=${PACKAGES.join(",")}`,
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    SUITE,
    out,
    MIRROR,
  ];
}

/** The Debian base as a tarball, cached under `cacheDir` by its mmdebstrap arguments. */
export async function baseTar(cacheDir: string, log: (s: string) => void): Promise<string> {
  await Deno.mkdir(cacheDir, { recursive: true });
  const key = (await sha256hex(mmdebstrapArgs("OUT").join("\n"))).slice(0, 16);
  const path = join(cacheDir, `base-${SUITE}-${key}.tar`);
  try {
    if ((await Deno.stat(path)).isFile) {
      log(`base: cached ${basename(path)}`);
      return path;
    }
    // not a tarball (left by an older build): build it again
    await Deno.remove(path, { recursive: true });
  } catch { /* build it */ }
  const tmp = `${path}.part-${Deno.pid}`;
  const t0 = performance.now();
  log(`base: mmdebstrap ${SUITE} (${PACKAGES.join(", ")}) from ${MIRROR} ...`);
  try {
    await sh("mmdebstrap", mmdebstrapArgs(tmp));
    await Deno.rename(tmp, path);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  log(`base: built in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return path;
}

/** Options of one rootfs. */
export interface RootfsOptions {
  /** Version written to /etc/keepwire/release (and the bundle's version). */
  version: string;
  /** keepwire cannot start in this rootfs (for rollback tests). */
  broken?: boolean;
  /** Public key(s) of bundle signers (PEM). */
  keyringPem: string;
}

/** The keepwire config the image carries: real slot devices by partition label, grubenv. */
export function applianceConfig(): Record<string, unknown> {
  return {
    identity: { name: "keepwire-appliance", vendor: "keepwire", model: "qemu-x86_64" },
    dataDir: "/var/lib/keepwire",
    web: { listen: "0.0.0.0:8080" },
    subsystems: [{
      name: "example-worker",
      kind: "worker",
      module: "/usr/lib/keepwire/examples/heartbeat_worker.ts",
      criticality: "optional",
      description: "example worker subsystem",
    }],
    update: {
      compatible: COMPATIBLE,
      keyring: "/etc/keepwire/keyring.pem",
      bootloader: { backend: "grubenv", file: "/boot/grub/grubenv" },
      scheme: "grub",
      slots: {
        rootfs: {
          a: { device: "/dev/disk/by-partlabel/rootfs_a", bootname: "A" },
          b: { device: "/dev/disk/by-partlabel/rootfs_b", bootname: "B" },
        },
      },
      activation: {
        mode: "reboot",
        healthGateMs: 5000,
        healthTimeoutMs: 180000,
        // in 2 s, from a transient timer: keepwire answers the activate request first
        rebootCommand: [
          "systemd-run",
          "--on-active=2",
          "--timer-property=AccuracySec=100ms",
          "/bin/systemctl",
          "reboot",
        ],
      },
    },
  };
}

/** fstab of the image: the data partition at keepwire's data dir, the GRUB env partition. */
export const FSTAB = `# keepwire appliance (image/build.ts)
PARTLABEL=data      /var/lib/keepwire  ext4  defaults,noatime        0 2
PARTLABEL=boot      /boot/grub         vfat  defaults,umask=0077     0 0
`;

/** systemd drop-in for keepwire.service: what the image adds to the shipped unit. */
export const UNIT_DROPIN = `# keepwire appliance (image/build.ts): additions to keepwire.service
[Unit]
# keepwire never started within its start limit: reboot, so that GRUB falls back to the
# other slot when this one is on trial (its one try is spent)
StartLimitAction=reboot
RequiresMountsFor=/var/lib/keepwire /boot/grub

[Service]
# deno's cache (transpiled vendor TypeScript of worker subsystems)
CacheDirectory=keepwire
Environment=DENO_DIR=/var/cache/keepwire
Environment=NO_COLOR=1
# keepwire's own lines (warnings and worse, with their <N> priority prefix) also on the serial
# console: what a technician at the box, or a test reading the console, sees of a crash
StandardOutput=journal+console
StandardError=journal+console
# why keepwire stopped (watchdog, signal, exit code), on the console too
ExecStopPost=/bin/sh -c 'echo "<4>keepwire.service stopped: result=$$SERVICE_RESULT code=$$EXIT_CODE status=$$EXIT_STATUS"'
`;

/** networkd: DHCP on every ethernet port (qemu user networking). */
const NETWORK = `[Match]
Name=en* eth*

[Network]
DHCP=ipv4
`;

/** GRUB A/B script: RAUC's GRUB scheme (ORDER, A_OK, A_TRY, B_OK, B_TRY), one try per slot. */
export function grubCfg(): string {
  return `# keepwire A/B boot (image/build.ts). RAUC's GRUB scheme: keepwire writes ORDER, <X>_OK,
# <X>_TRY to grubenv; this script boots the first slot of ORDER with OK=1 and TRY=0 and sets its
# TRY=1 (one try). keepwire marks the booted slot good (TRY=0) after its health gate; a slot
# that never gets there keeps TRY=1 and is skipped on the next boot: fallback.
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
load_env
if [ -z "$ORDER" ]; then set ORDER="A B"; fi
if [ -z "$A_OK" ]; then set A_OK=0; fi
if [ -z "$A_TRY" ]; then set A_TRY=0; fi
if [ -z "$B_OK" ]; then set B_OK=0; fi
if [ -z "$B_TRY" ]; then set B_TRY=0; fi
set SLOT=none
for S in $ORDER; do
  if [ "$SLOT" = "none" ]; then
    if [ "$S" = "A" -a "$A_OK" = "1" -a "$A_TRY" = "0" ]; then
      set SLOT=A; set default=0; set A_TRY=1
    elif [ "$S" = "B" -a "$B_OK" = "1" -a "$B_TRY" = "0" ]; then
      set SLOT=B; set default=1; set B_TRY=1
    fi
  fi
done
if [ "$SLOT" = "none" ]; then
  # no slot left to try: reset the tries of the good slots and boot the first one of ORDER
  if [ "$A_OK" = "1" ]; then set A_TRY=0; fi
  if [ "$B_OK" = "1" ]; then set B_TRY=0; fi
  for S in $ORDER; do
    if [ "$SLOT" = "none" ]; then
      if [ "$S" = "A" ]; then set SLOT=A; set default=0; fi
      if [ "$S" = "B" ]; then set SLOT=B; set default=1; fi
    fi
  done
fi
save_env A_TRY A_OK B_TRY B_OK ORDER
echo "keepwire: booting slot $SLOT (ORDER=$ORDER A_OK=$A_OK A_TRY=$A_TRY B_OK=$B_OK B_TRY=$B_TRY)"

menuentry "keepwire slot A" {
  linux (hd0,gpt3)/vmlinuz root=PARTLABEL=rootfs_a rw rauc.slot=A console=ttyS0,115200 panic=5
  initrd (hd0,gpt3)/initrd.img
}
menuentry "keepwire slot B" {
  linux (hd0,gpt4)/vmlinuz root=PARTLABEL=rootfs_b rw rauc.slot=B console=ttyS0,115200 panic=5
  initrd (hd0,gpt4)/initrd.img
}
`;
}

/**
 * Kernel modules kept (paths under /usr/lib/modules/<version>/kernel/, prefix match): what an
 * appliance in a VM loads — virtio, block, RAID, watchdog, FAT for the GRUB env partition, and
 * the network stack keepwire drives (tc, bridges, VLANs, netfilter, veth). Everything else
 * (wireless, GPUs, foreign file systems, ...) is left out; the initrd keeps its own copy.
 */
export const KEEP_MODULES = [
  "arch/x86/crypto/",
  "block/",
  "crypto/",
  "lib/",
  "drivers/virtio/",
  "drivers/block/",
  "drivers/char/",
  "drivers/watchdog/",
  "drivers/md/",
  "drivers/ata/",
  "drivers/nvme/",
  "drivers/net/virtio_net.ko",
  "drivers/net/net_failover.ko",
  "drivers/net/veth.ko",
  "drivers/net/dummy.ko",
  "drivers/net/macvlan.ko",
  "drivers/net/bonding/",
  "fs/fat/",
  "fs/nls/",
  "fs/fuse/",
  "fs/squashfs/",
  "fs/overlayfs/",
  "net/core/",
  "net/sched/",
  "net/ipv4/",
  "net/ipv6/",
  "net/bridge/",
  "net/8021q/",
  "net/802/",
  "net/llc/",
  "net/netfilter/",
  "net/packet/",
  "net/unix/",
];

/** Files and folders left out of the rootfs besides modules (not needed by an appliance). */
const PRUNE_PATHS = [
  "vmlinuz.old",
  "initrd.img.old",
  "var/cache/apt",
  "var/lib/apt/lists",
  "usr/lib/udev/hwdb.bin",
  "usr/share/perl",
  "usr/lib/x86_64-linux-gnu/perl",
];

async function pruneModules(kernelDir: string, rel = ""): Promise<void> {
  for await (const e of Deno.readDir(join(kernelDir, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) {
      const d = `${p}/`;
      if (KEEP_MODULES.some((k) => d.startsWith(k))) continue;
      if (KEEP_MODULES.some((k) => k.startsWith(d))) await pruneModules(kernelDir, p);
      else await Deno.remove(join(kernelDir, p), { recursive: true });
    } else if (!KEEP_MODULES.some((k) => p.startsWith(k))) {
      await Deno.remove(join(kernelDir, p));
    }
  }
}

/** Extract the base into `root` and add keepwire, its unit, config, fstab, network. */
export async function prepareRootfs(
  base: string,
  root: string,
  bundleDir: string,
  o: RootfsOptions,
): Promise<void> {
  await Deno.mkdir(root, { recursive: true });
  await sh("tar", ["--numeric-owner", "-xpf", base, "-C", root]);
  // smaller: kernel modules a VM never loads, the initrd backup, apt lists, hwdb, perl modules
  const kver = [...Deno.readDirSync(join(root, "usr/lib/modules"))][0].name;
  await pruneModules(join(root, "usr/lib/modules", kver, "kernel"));
  // the rootfs's own depmod (kmod), chrooted: nothing mounted, nothing needed on the host
  await sh("chroot", [root, "/sbin/depmod", kver]);
  for (const p of PRUNE_PATHS) {
    await Deno.remove(join(root, p), { recursive: true }).catch(() => {});
  }

  // keepwire: the pinned deno + the bundle, /usr/bin/keepwire -> the launcher
  const lib = join(root, "usr/lib/keepwire");
  await sh("cp", ["-a", `${bundleDir}/.`, lib]);
  if (o.broken) {
    await Deno.writeTextFile(
      join(lib, "keepwire.js"),
      `throw new Error("broken image ${o.version}: keepwire cannot start");\n`,
    );
  }
  await Deno.symlink("../lib/keepwire/keepwire", join(root, "usr/bin/keepwire"));
  const etc = join(root, "etc");
  await Deno.mkdir(join(etc, "keepwire"), { recursive: true });
  await Deno.writeTextFile(
    join(etc, "keepwire/keepwire.jsonc"),
    `// keepwire appliance configuration (image/build.ts; docs/image.md)\n${
      JSON.stringify(applianceConfig(), null, 2)
    }\n`,
  );
  await Deno.writeTextFile(join(etc, "keepwire/keyring.pem"), o.keyringPem);
  await Deno.writeTextFile(join(etc, "keepwire/release"), `${o.version}\n`);
  await Deno.copyFile(
    join(ROOT, "image/keepwire.service"),
    join(etc, "systemd/system/keepwire.service"),
  );
  await Deno.mkdir(join(etc, "systemd/system/keepwire.service.d"), { recursive: true });
  await Deno.writeTextFile(join(etc, "systemd/system/keepwire.service.d/image.conf"), UNIT_DROPIN);
  await Deno.writeTextFile(join(etc, "systemd/network/20-wired.network"), NETWORK);
  await Deno.writeTextFile(join(etc, "fstab"), FSTAB);
  await Deno.writeTextFile(join(etc, "hostname"), "keepwire\n");
  await Deno.writeTextFile(join(etc, "machine-id"), "");
  await Deno.mkdir(join(root, "var/lib/keepwire"), { recursive: true });
  await Deno.mkdir(join(root, "boot/grub"), { recursive: true });
  await sh("systemctl", [
    `--root=${root}`,
    "enable",
    "keepwire.service",
    "systemd-networkd.service",
  ]);
}

/** Bytes used under `dir` (du). */
async function duBytes(dir: string): Promise<number> {
  const out = await sh("du", ["-sb", dir]);
  return Number(out.split(/\s/)[0]);
}

/** An ext4 image of `dir` (mke2fs -d, no mount). `mib` 0 = the content plus a margin. */
export async function makeExt4(dir: string, out: string, label: string, mib = 0): Promise<number> {
  const size = mib || Math.ceil((await duBytes(dir)) * 1.15 / 1048576) + 48;
  await Deno.remove(out).catch(() => {});
  await sh("mke2fs", [
    "-q",
    "-F",
    "-t",
    "ext4",
    "-L",
    label,
    "-d",
    dir,
    "-E",
    "root_owner=0:0",
    out,
    `${size}M`,
  ]);
  return size;
}

/** GRUB modules both boot images carry (BIOS core.img, UEFI BOOTX64.EFI) besides the disk one. */
const GRUB_MODULES = [
  "part_gpt",
  "fat",
  "ext2",
  "normal",
  "linux",
  "loadenv",
  "test",
  "echo",
  "serial",
  "terminal",
  "configfile",
  "reboot",
  "halt",
];

/** The FAT boot partition (the ESP): grub.cfg, a grubenv (factory state: slot A only), UEFI GRUB. */
async function makeBootFat(out: string, work: string): Promise<void> {
  await Deno.remove(out).catch(() => {});
  await sh("mkfs.vfat", ["-n", "BOOT", "-C", out, String(16 * 1024 - 64)]);
  const cfg = join(work, "grub.cfg");
  await Deno.writeTextFile(cfg, grubCfg());
  const env = join(work, "grubenv");
  await Deno.remove(env).catch(() => {});
  await sh("grub-editenv", [env, "create"]);
  await sh("grub-editenv", [env, "set", "ORDER=A B", "A_OK=1", "A_TRY=0", "B_OK=0", "B_TRY=0"]);
  await sh("mcopy", ["-i", out, cfg, env, "::/"]);
  // GRUB for UEFI at the removable-media path: no NVRAM boot entry is needed; its prefix is
  // this partition, so it reads the same grub.cfg and grubenv as the BIOS GRUB
  const efi = join(work, "BOOTX64.EFI");
  await sh("grub-mkimage", [
    "-O",
    "x86_64-efi",
    "-o",
    efi,
    "-p",
    // with the path spelled out: an EFI GRUB given a device only appends the directory it was
    // loaded from (EFI/BOOT) and finds no grub.cfg
    "(hd0,gpt2)/",
    ...GRUB_MODULES,
    "efi_gop",
  ]);
  await sh("mmd", ["-i", out, "::/EFI", "::/EFI/BOOT"]);
  await sh("mcopy", ["-i", out, efi, "::/EFI/BOOT/BOOTX64.EFI"]);
}

/** GRUB core.img for the BIOS boot partition; its prefix is the FAT boot partition. */
async function makeCoreImg(out: string): Promise<Uint8Array> {
  await sh("grub-mkimage", [
    "-O",
    "i386-pc",
    "-o",
    out,
    "-p",
    "(hd0,gpt2)",
    "biosdisk",
    ...GRUB_MODULES,
  ]);
  return await Deno.readFile(out);
}

/** Write `data` into the open disk file at byte `offset`. */
async function writeAt(f: Deno.FsFile, offset: number, data: Uint8Array): Promise<void> {
  await f.seek(offset, Deno.SeekMode.Start);
  let n = 0;
  while (n < data.length) n += await f.write(data.subarray(n));
}

/** Copy the file `src` into the disk at `offset`, skipping zero blocks (the disk stays sparse). */
async function copyInto(f: Deno.FsFile, offset: number, src: string): Promise<void> {
  const s = await Deno.open(src);
  try {
    const buf = new Uint8Array(1 << 20);
    let pos = 0;
    for (;;) {
      const n = await s.read(buf);
      if (n === null) break;
      const chunk = buf.subarray(0, n);
      if (chunk.some((b) => b !== 0)) await writeAt(f, offset + pos, chunk);
      pos += n;
    }
  } finally {
    s.close();
  }
}

/** The partitions of a disk image as sfdisk reports them. */
export interface PartInfo {
  name: string;
  start: number;
  size: number;
  type: string;
}

/** Partitions of `disk` (sfdisk --json), start and size in 512-byte sectors. */
export async function readPartitions(disk: string): Promise<PartInfo[]> {
  const j = JSON.parse(await sh("sfdisk", ["--json", disk]));
  return (j.partitiontable.partitions as PartInfo[]).map((p) => ({
    name: p.name,
    start: p.start,
    size: p.size,
    type: p.type,
  }));
}

/** Options of a build. */
export interface BuildOptions {
  /** Output: disk image, or the .kwb with `bundle`. */
  out: string;
  version: string;
  bundle?: boolean;
  broken?: boolean;
  /** Files placed into the data partition (e.g. a store with an API token). */
  seed?: string;
  /** Ed25519 key pair dir (private.pem/public.pem); created when missing. */
  keys: string;
  /** Cache and work dir. */
  cache: string;
  log?: (s: string) => void;
}

/** What a build made, with its figures. */
export interface BuildResult {
  out: string;
  seconds: number;
  bytes: number;
  rootfsBytes: number;
  rootfsImageMiB: number;
}

/** The repository's keepwire CLI from the bundle (runs on the host deno). */
async function kwCli(bundleDir: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(join(bundleDir, "keepwire"), {
    args,
    env: { KEEPWIRE_DENO: Deno.execPath(), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new ImageError(
      `keepwire ${args[0]} ${args[1]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Build the disk image (or, with `bundle`, a signed .kwb of the rootfs). */
export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  const missing = await missingTools();
  if (missing.length) {
    throw new ImageError(`missing tools: ${missing.join(", ")}`);
  }
  const t0 = performance.now();
  const base = await baseTar(join(o.cache, "cache"), log);
  const work = await Deno.makeTempDir({ dir: o.cache, prefix: `work-${Deno.pid}-` });
  const tmpOut = join(dirname(o.out), `.${basename(o.out)}.part-${Deno.pid}`);
  try {
    await Deno.mkdir(o.keys, { recursive: true });
    const bundleDir = join(work, "bundle");
    await buildBundle(bundleDir);
    try {
      await Deno.stat(join(o.keys, "private.pem"));
    } catch {
      await kwCli(bundleDir, [
        "bundle",
        "keygen",
        "--private",
        join(o.keys, "private.pem"),
        "--public",
        join(o.keys, "public.pem"),
      ]);
    }
    const keyringPem = await Deno.readTextFile(join(o.keys, "public.pem"));
    const root = join(work, "root");
    log(`rootfs: ${o.version}${o.broken ? " (broken: keepwire cannot start)" : ""}`);
    await prepareRootfs(base, root, bundleDir, {
      version: o.version,
      broken: o.broken,
      keyringPem,
    });
    const rootfsBytes = await duBytes(root);
    const rootImg = join(work, "rootfs.ext4");
    const rootfsImageMiB = await makeExt4(root, rootImg, "rootfs");
    await Deno.remove(root, { recursive: true });
    await Deno.mkdir(dirname(o.out), { recursive: true });
    if (o.bundle) {
      await kwCli(bundleDir, [
        "bundle",
        "create",
        "--image",
        `rootfs=${rootImg}`,
        "--compatible",
        COMPATIBLE,
        "--version",
        o.version,
        "--key",
        join(o.keys, "private.pem"),
        "--description",
        `keepwire appliance rootfs ${o.version}${o.broken ? " (broken)" : ""}`,
        "-o",
        tmpOut,
      ]);
    } else {
      // partition images
      const bootImg = join(work, "boot.vfat");
      await makeBootFat(bootImg, work);
      const dataDir = join(work, "data");
      await Deno.mkdir(dataDir);
      if (o.seed) await sh("cp", ["-a", `${o.seed}/.`, dataDir]);
      const dataImg = join(work, "data.ext4");
      await makeExt4(dataDir, dataImg, "data", LAYOUT[4].mib);
      const core = await makeCoreImg(join(work, "core.img"));
      if (core.length > LAYOUT[0].mib * 1048576) throw new ImageError("core.img too large");
      // the GPT
      const totalMiB = 1 + LAYOUT.reduce((n, p) => n + p.mib, 0) + 1;
      const f = await Deno.open(tmpOut, { write: true, create: true, truncate: true });
      try {
        await f.truncate(totalMiB * 1048576);
      } finally {
        f.close();
      }
      const script = ["label: gpt", "unit: sectors"];
      let start = 2048;
      for (const p of LAYOUT) {
        script.push(`start=${start}, size=${p.mib * 2048}, type=${p.type}, name="${p.name}"`);
        start += p.mib * 2048;
      }
      await sh("sfdisk", ["--quiet", "--no-reread", "--no-tell-kernel", tmpOut], {
        stdin: script.join("\n") + "\n",
      });
      const parts = await readPartitions(tmpOut);
      const at = (name: string) => parts.find((p) => p.name === name)!.start * 512;
      const disk = await Deno.open(tmpOut, { read: true, write: true });
      try {
        // MBR boot code (boot.img), keeping the protective MBR's partition table; it loads
        // core.img from the BIOS boot partition: kernel sector at 0x5c
        const bootImgCode = await Deno.readFile(join(GRUB_I386, "boot.img"));
        const mbr = new Uint8Array(512);
        await disk.seek(0, Deno.SeekMode.Start);
        await disk.read(mbr);
        mbr.set(bootImgCode.subarray(0, 0x1b8));
        const coreSector = at("bios") / 512;
        new DataView(mbr.buffer).setBigUint64(0x5c, BigInt(coreSector), true);
        await writeAt(disk, 0, mbr);
        // core.img: its first sector (diskboot) loads the rest from the blocklist at its
        // end (start sector u64 at 0x1f4, sector count u16 at 0x1fc, set by grub-mkimage)
        new DataView(core.buffer, core.byteOffset).setBigUint64(
          0x1f4,
          BigInt(coreSector + 1),
          true,
        );
        await writeAt(disk, at("bios"), core);
        await copyInto(disk, at("boot"), bootImg);
        await copyInto(disk, at("rootfs_a"), rootImg);
        await copyInto(disk, at("data"), dataImg);
      } finally {
        disk.close();
      }
    }
    await Deno.rename(tmpOut, o.out);
    const bytes = (await Deno.stat(o.out)).size;
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    log(
      `${o.bundle ? "bundle" : "image"}: ${o.out} ${
        (bytes / 1048576).toFixed(0)
      } MiB in ${seconds} s` +
        ` (rootfs ${(rootfsBytes / 1e6).toFixed(0)} MB, ext4 ${rootfsImageMiB} MiB)`,
    );
    return { out: o.out, seconds, bytes, rootfsBytes, rootfsImageMiB };
  } finally {
    await Deno.remove(tmpOut).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      version: { type: "string", default: "1.0.0" },
      bundle: { type: "boolean", default: false },
      broken: { type: "boolean", default: false },
      seed: { type: "string" },
      keys: { type: "string", default: join(ROOT, "image/out/keys") },
    },
    strict: true,
  });
  const outDir = join(ROOT, "image/out");
  try {
    await buildImage({
      out: values.out ??
        join(outDir, values.bundle ? `rootfs-${values.version}.kwb` : "keepwire.img"),
      version: values.version!,
      bundle: values.bundle,
      broken: values.broken,
      seed: values.seed,
      keys: values.keys!,
      cache: outDir,
    });
  } catch (e) {
    console.error(`image: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
