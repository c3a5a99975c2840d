/**
 * The appliance image booted in qemu (BIOS, GRUB, Debian, systemd, keepwire): KVM when a Linux
 * guest really runs under it, TCG otherwise; serial console captured to a file; user networking
 * with one host forward on 127.0.0.1. First a copy of the factory image boots on UEFI firmware
 * (OVMF: the firmware finds GRUB at EFI/BOOT/BOOTX64.EFI on the EFI system partition) to
 * keepwire's health; then, across real reboots of one VM on BIOS:
 *   1. factory image 1.0.0 boots slot A; /api/health answers through the forward;
 *   2. a signed bundle of a changed rootfs (1.1.0) is installed through the API into slot B and
 *      activated; the VM reboots into B, keepwire passes its health gate and commits B;
 *   3. a broken rootfs (1.2.0, keepwire cannot start) is installed into A and activated; A's
 *      keepwire never starts, systemd's start limit reboots, GRUB skips A (its one try is spent)
 *      and boots B again, whose keepwire marks A bad and journals update.rolled_back.
 * Ignored (with the reason) only when qemu-system-x86_64 or the image tools are missing.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { join } from "node:path";
import { buildImage, missingTools } from "../../image/build.ts";
import { kw } from "../helpers/cli.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const QEMU = "qemu-system-x86_64";

async function has(cmd: string): Promise<boolean> {
  try {
    const o = await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return o.code === 0;
  } catch {
    return false;
  }
}

const reasons: string[] = [];
if (!(await has(QEMU))) reasons.push(`${QEMU} missing (apt-get install qemu-system-x86)`);
/** UEFI firmware for qemu (code read-only, a copy of the variable store per boot). */
const OVMF = { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd" };
try {
  await Deno.stat(OVMF.code);
  await Deno.stat(OVMF.vars);
} catch {
  reasons.push(`${OVMF.code} missing (apt-get install ovmf)`);
}
reasons.push(...(await missingTools()).map((m) => `missing ${m}`));
if (Deno.uid() !== 0) reasons.push("needs root (mmdebstrap --mode=root, chroot)");
if (reasons.length) console.error(`image_boot_test: ignored: ${reasons.join("; ")}`);

const log = (s: string) =>
  console.error(`[image-boot ${new Date().toISOString().slice(11, 19)}] ${s}`);

async function run(cmd: string, args: string[]): Promise<string> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (o.code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(o.stderr)}`);
  return new TextDecoder().decode(o.stdout);
}

/**
 * Does a Linux guest run under KVM here? /dev/kvm may exist and accept KVM_CREATE_VM while a
 * guest kernel hangs (nested virtualisation without vmx/svm): boot the image's kernel with no
 * root file system and look for its banner on the serial console.
 */
export async function kvmWorks(kernel: string, dir: string): Promise<boolean> {
  try {
    await Deno.stat("/dev/kvm");
  } catch {
    return false;
  }
  const serial = join(dir, "kvm-probe.log");
  const child = new Deno.Command(QEMU, {
    args: [
      "-enable-kvm",
      "-m",
      "256",
      "-display",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-kernel",
      kernel,
      "-append",
      "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1",
      "-serial",
      `file:${serial}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000;
  let ok = false;
  while (!ok && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    try {
      ok = /Linux version|Kernel panic/.test(await Deno.readTextFile(serial));
    } catch { /* not yet */ }
  }
  try {
    child.kill("SIGKILL");
  } catch { /* exited */ }
  await child.status;
  return ok;
}

Deno.test({
  name: "image boot: factory A -> update to B committed after its gate -> broken A rolled back",
  ignore: reasons.length > 0,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t0 = Date.now();
    const dir = await Deno.makeTempDir({ prefix: "kw-image-boot-" });
    const serial = join(dir, "serial.log");
    let qemu: Deno.ChildProcess | undefined;
    try {
      // an admin API token in the factory data partition (the API is reached from outside)
      const seed = join(dir, "seed");
      await Deno.mkdir(seed);
      const tok = await kw(["token", "create", "--name", "e2e", "--role", "admin", "--data", seed]);
      assertEquals(tok.code, 0, tok.stderr);
      const token = tok.stdout.trim().split("\n").pop()!;
      const keys = join(dir, "keys");
      const cache = join(ROOT, "image/out");
      const img = join(dir, "disk.img");
      const built = await buildImage({ out: img, version: "1.0.0", seed, keys, cache, log });
      const good = await buildImage({
        out: join(dir, "good.kwb"),
        version: "1.1.0",
        bundle: true,
        keys,
        cache,
        log,
      });
      await buildImage({
        out: join(dir, "broken.kwb"),
        version: "1.2.0",
        bundle: true,
        broken: true,
        keys,
        cache,
        log,
      });

      // KVM or TCG
      const kernelName = (await run("debugfs", [
        "-R",
        "ls -p /boot",
        `${img}?offset=${36864 * 512}`,
      ])).split("\n").map((l) => l.split("/")[5]).find((n) => n?.startsWith("vmlinuz-"));
      assert(kernelName, "no kernel in /boot of rootfs A");
      const kernel = join(dir, "vmlinuz");
      await run("debugfs", [
        "-R",
        `dump /boot/${kernelName} ${kernel}`,
        `${img}?offset=${36864 * 512}`,
      ]);
      const kvm = await kvmWorks(kernel, dir);
      log(`accelerator: ${kvm ? "KVM" : "TCG (KVM does not run a Linux guest here)"}`);

      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const base = `http://127.0.0.1:${port}`;
      /**
       * One VM on `disk`; UEFI firmware (OVMF) when `varsFile` is given, BIOS otherwise. The UEFI
       * boot gets one vCPU: under TCG a two-vCPU guest once spun for minutes in the kernel's
       * cross-CPU code patching (int3 in udev's getrandom, RCU stalls), and the UEFI step only
       * needs to reach keepwire's health.
       */
      const startVm = (disk: string, varsFile?: string) =>
        new Deno.Command(QEMU, {
          args: [
            ...(kvm ? ["-enable-kvm"] : ["-accel", "tcg"]),
            "-m",
            "1024",
            "-smp",
            varsFile ? "1" : "2",
            "-display",
            "none",
            "-monitor",
            "none",
            ...(varsFile
              ? [
                "-drive",
                `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF.code}`,
                "-drive",
                `if=pflash,format=raw,unit=1,file=${varsFile}`,
              ]
              : []),
            "-drive",
            `file=${disk},format=raw,if=virtio`,
            "-netdev",
            `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:8080`,
            "-device",
            "virtio-net-pci,netdev=n0",
            "-serial",
            `file:${serial}`,
          ],
          stdout: "null",
          stderr: "piped",
        }).spawn();
      const stopVm = async () => {
        if (!qemu) return;
        try {
          qemu.kill("SIGKILL");
        } catch { /* exited */ }
        await qemu.status;
        await qemu.stderr.cancel().catch(() => {});
        qemu = undefined;
      };
      const auth = { authorization: `Bearer ${token}` };
      const serialText = () => Deno.readTextFile(serial).catch(() => "");
      const api = async (path: string, init: RequestInit = {}) => {
        const r = await fetch(`${base}${path}`, {
          ...init,
          headers: { ...auth, ...(init.headers ?? {}) },
        });
        const body = await r.text();
        let json: unknown = body;
        try {
          json = JSON.parse(body);
        } catch { /* text */ }
        return { status: r.status, json: json as Record<string, unknown>, body };
      };
      const waitFor = async <T>(
        what: string,
        ms: number,
        probe: () => Promise<T | undefined>,
      ): Promise<T> => {
        const deadline = Date.now() + ms;
        while (Date.now() < deadline) {
          try {
            const v = await probe();
            if (v !== undefined) return v;
          } catch { /* not yet */ }
          await new Promise((r) => setTimeout(r, 1000));
        }
        throw new Error(
          `timed out waiting for ${what}\n--- serial tail ---\n${
            (await serialText()).slice(-4000)
          }`,
        );
      };
      const healthy = () =>
        waitFor("/api/health 200", 420_000, async () => {
          const r = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(5000) });
          await r.body?.cancel();
          return r.status === 200 ? true : undefined;
        });
      type Status = {
        booted: { bootname: string } | null;
        primary: string | null;
        slots: { bootname: string; state: string; status: string | null; version: string | null }[];
        update: { state: string; target?: string | null; version?: string | null };
      };
      const status = async () => (await api("/api/update")).json as unknown as Status;
      const bootsSeen = async () =>
        ((await serialText()).match(/keepwire: booting slot [AB]/g) ?? []).map((s) => s.slice(-1));

      // 0. UEFI: a copy of the factory image on OVMF, to keepwire's health
      const efiDisk = join(dir, "uefi.img");
      await run("cp", ["--sparse=always", img, efiDisk]);
      const efiVars = join(dir, "uefi-vars.fd");
      await Deno.copyFile(OVMF.vars, efiVars);
      const tEfi = Date.now();
      qemu = startVm(efiDisk, efiVars);
      await healthy();
      const efiReadyS = (Date.now() - tEfi) / 1000;
      const efiSerial = await serialText();
      assert(/efi: EFI v/.test(efiSerial), "the kernel did not see UEFI firmware");
      assert(/keepwire: booting slot A/.test(efiSerial), "UEFI GRUB did not run the A/B script");
      log(`UEFI boot to keepwire ready: ${efiReadyS.toFixed(0)} s (${kvm ? "KVM" : "TCG"})`);
      await stopVm();
      await Deno.remove(efiDisk);
      await Deno.writeTextFile(serial, "");

      // 1. factory boot (BIOS)
      const tBoot = Date.now();
      qemu = startVm(img);
      await healthy();
      const bootToReadyS = (Date.now() - tBoot) / 1000;
      log(`boot to keepwire ready: ${bootToReadyS.toFixed(0)} s (${kvm ? "KVM" : "TCG"})`);
      let s = await status();
      assertEquals(s.booted?.bootname, "A", JSON.stringify(s));

      // 2. update into B through the API, activate (reboot), committed after the gate
      const install = async (file: string) => {
        const f = await Deno.open(file);
        const size = (await f.stat()).size;
        let r;
        try {
          r = await api("/api/update", {
            method: "POST",
            headers: { "content-type": "application/octet-stream", "content-length": String(size) },
            body: f.readable,
          });
        } catch (e) {
          // the console says why keepwire went away (the unit's ExecStopPost line)
          throw new Error(
            `uploading ${file} failed: ${e instanceof Error ? e.message : e}\n` +
              `--- serial tail ---\n${(await serialText()).slice(-3000)}`,
            { cause: e },
          );
        }
        assertEquals(r.status, 200, r.body);
        return r.json;
      };
      // the image reboots 2 s after answering; should the answer still be cut off by the
      // reboot, the reboot the test waits for next is the proof
      const activate = async () => {
        try {
          const act = await api("/api/update/activate", { method: "POST" });
          assertEquals(act.status, 200, act.body);
        } catch (e) {
          if (!(e instanceof TypeError)) throw e;
          log(`activate: no answer (${e.message}); waiting for the reboot`);
        }
      };
      const tInstall = Date.now();
      await install(good.out);
      log(
        `installed 1.1.0 (${(good.bytes / 1048576).toFixed(0)} MiB) in ${
          ((Date.now() - tInstall) / 1000).toFixed(0)
        } s`,
      );
      s = await status();
      assertEquals(s.primary, "B", JSON.stringify(s));
      const before = (await bootsSeen()).length;
      await activate();
      await waitFor(
        "the reboot into B",
        420_000,
        async () => (await bootsSeen()).length > before ? true : undefined,
      );
      await healthy();
      s = await waitFor("slot B committed", 300_000, async () => {
        const x = await status();
        const b = x.slots.find((v) => v.bootname === "B");
        return x.booted?.bootname === "B" && b?.state === "good" &&
            x.update.state !== "activating" &&
            x.update.state !== "trying"
          ? x
          : undefined;
      });
      assertEquals(s.slots.find((v) => v.bootname === "B")?.version, "1.1.0", JSON.stringify(s));
      log(`running 1.1.0 from B, committed (${JSON.stringify(s.update)})`);

      // 3. broken image into A, activate: A never starts keepwire, GRUB falls back to B
      await install(join(dir, "broken.kwb"));
      s = await status();
      assertEquals(s.primary, "A", JSON.stringify(s));
      const before2 = (await bootsSeen()).length;
      await activate();
      await waitFor("boot into A, then the fallback boot into B", 600_000, async () => {
        const seen = (await bootsSeen()).slice(before2);
        return seen.length >= 2 && seen[0] === "A" && seen[seen.length - 1] === "B"
          ? true
          : undefined;
      });
      await healthy();
      s = await waitFor("the rollback recorded", 120_000, async () => {
        const x = await status();
        return x.update.state === "rolled-back" ? x : undefined;
      });
      assertEquals(s.booted?.bootname, "B");
      assertEquals(s.slots.find((v) => v.bootname === "A")?.state, "bad", JSON.stringify(s));
      const ev = await api("/api/events?kind=update.rolled_back");
      assert(ev.body.includes("update.rolled_back"), ev.body.slice(0, 2000));
      log(
        `rollback journaled; whole test ${((Date.now() - t0) / 1000).toFixed(0)} s; image ${
          (built.bytes / 1048576).toFixed(0)
        } MiB, rootfs ${(built.rootfsBytes / 1e6).toFixed(0)} MB`,
      );
    } finally {
      if (qemu) {
        try {
          qemu.kill("SIGKILL");
        } catch { /* exited */ }
        await qemu.status;
        await qemu.stderr.cancel().catch(() => {});
      }
      try {
        await Deno.copyFile(serial, join(ROOT, "image/out/last-boot-serial.log"));
      } catch { /* none */ }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
