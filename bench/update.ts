/**
 * Update bench: install a 256 MiB and a 1 GiB image into a file slot and report
 * throughput next to, in the same run, `openssl dgst -sha256` alone, `dd bs=4M
 * conv=fsync` alone, and RAUC 1.8 (plain bundle, file slot, custom backend)
 * installing the same image; plus peak RSS. Big files are removed at the end.
 *
 * Run: `deno run -A bench/update.ts [--sizes 256,1024] [--runs 2]`.
 * @module
 */
import { join } from "node:path";
import {
  createBundle,
  generateKeyPem,
  parseKeyring,
  parsePrivateKey,
} from "../mod/update/bundle.ts";
import { updateConfigSchema } from "../mod/update/config.ts";
import type { BenchRow } from "./types.ts";
import { printTable } from "./types.ts";

const SELF = new URL(import.meta.url).pathname;
const MiB = 1024 * 1024;

async function sh(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const o = await new Deno.Command(cmd, {
      args,
      env: opts.env,
      cwd: opts.cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { ok: o.success, out: d.decode(o.stdout), err: d.decode(o.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

async function has(tool: string): Promise<boolean> {
  return (await sh("sh", ["-c", `command -v ${tool}`])).ok;
}

async function timed(cmd: string, args: string[], env?: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await sh(cmd, args, { env });
  const ms = performance.now() - t0;
  if (!r.ok) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.err.trim() || r.out.trim()}`);
  return ms;
}

function procStatus(pid: number | "self"): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]] = Number(m[2]) / 1024;
    }
  } catch { /* gone */ }
  return out;
}

/** Child mode: one install with the real service; prints JSON {ms, hwmMb}. */
async function child(
  args: { dir: string; bundle: string; slotB: string; keyring: string },
): Promise<void> {
  const { Store } = await import("../mod/store/mod.ts");
  const { EventBus } = await import("../mod/events/mod.ts");
  const { systemClock } = await import("../mod/module.ts");
  const { UpdateService } = await import("../mod/update/service.ts");
  const config = updateConfigSchema.parse({
    compatible: "bench",
    keyring: args.keyring,
    bootedSlot: "A",
    cmdline: join(args.dir, "no-cmdline"),
    bootloader: { backend: "file", file: join(args.dir, "kw-bootenv.json") },
    slots: {
      rootfs: {
        a: { device: join(args.dir, "kw-A.img"), bootname: "A" },
        b: { device: args.slotB, bootname: "B" },
      },
    },
  });
  const store = new Store({ path: join(args.dir, "kw-bench.db") });
  const svc = new UpdateService(config, store, new EventBus({ journal: store }), systemClock, {
    detect: { env: {} },
  });
  const t0 = performance.now();
  await svc.installFrom(args.bundle);
  const ms = performance.now() - t0;
  store.close();
  console.log(JSON.stringify({ ms, hwmMb: procStatus("self").VmHWM }));
}

interface Rauc {
  install(bundle: string): Promise<{ ms: number; anonPeakMb: number; hwmMb: number }>;
  stop(): Promise<void>;
}

async function startRauc(dir: string, slotB: string): Promise<Rauc> {
  const d = join(dir, "rauc");
  await Deno.mkdir(join(d, "boot"), { recursive: true });
  await Deno.mkdir(join(d, "data"), { recursive: true });
  await Deno.mkdir(join(d, "mnt"), { recursive: true });
  const backend = join(d, "backend.sh");
  await Deno.writeTextFile(
    backend,
    `#!/bin/sh\nD=${
      join(d, "boot")
    }\ncase "$1" in\n  get-primary) cat $D/primary 2>/dev/null || echo A ;;\n  set-primary) echo "$2" > $D/primary; echo good > $D/state.$2 ;;\n  get-state) cat $D/state.$2 2>/dev/null || echo good ;;\n  set-state) echo "$3" > $D/state.$2 ;;\n  *) exit 1 ;;\nesac\n`,
    { mode: 0o755 },
  );
  await Deno.writeTextFile(
    join(d, "system.conf"),
    `[system]\ncompatible=bench\nbootloader=custom\nmountprefix=${join(d, "mnt")}\ndata-directory=${
      join(d, "data")
    }\n\n[keyring]\npath=${
      join(d, "cert.pem")
    }\n\n[handlers]\nbootloader-custom-backend=${backend}\n\n[slot.rootfs.0]\ndevice=${
      join(dir, "rauc-A.img")
    }\ntype=raw\nbootname=A\n\n[slot.rootfs.1]\ndevice=${slotB}\ntype=raw\nbootname=B\n`,
  );
  await Deno.writeTextFile(join(dir, "rauc-A.img"), "A");
  await Deno.writeTextFile(
    join(d, "dbus.conf"),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n<busconfig><type>system</type><listen>unix:path=${
      join(d, "bus")
    }</listen><auth>EXTERNAL</auth><policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>\n`,
  );
  const dbus = new Deno.Command("dbus-daemon", {
    args: [`--config-file=${join(d, "dbus.conf")}`, "--nofork"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const env = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(d, "bus")}`, TMPDIR: d };
  for (let i = 0; i < 100; i++) {
    try {
      await Deno.stat(join(d, "bus"));
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const svc = new Deno.Command("sh", {
    args: [
      "-c",
      `exec rauc service --conf=${join(d, "system.conf")} --override-boot-slot=A 2>${
        join(d, "service.log")
      }`,
    ],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    ready = (await sh("rauc", ["status"], { env })).ok;
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    for (const p of [svc, dbus]) {
      try {
        p.kill("SIGTERM");
      } catch { /* gone */ }
      await p.status;
    }
  };
  if (!ready) {
    await stop();
    throw new Error("rauc service did not come up");
  }
  return {
    async install(bundle) {
      let anonPeak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const s = procStatus(svc.pid);
          anonPeak = Math.max(anonPeak, s.RssAnon ?? 0);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      let ms: number;
      try {
        ms = await timed("rauc", ["install", bundle], env);
      } catch (e) {
        const log = await Deno.readTextFile(join(d, "service.log")).catch(() => "");
        throw new Error(
          `${(e as Error).message}\nrauc service log:\n${log.split("\n").slice(-15).join("\n")}`,
        );
      } finally {
        sampling = false;
      }
      await sampler;
      return { ms, anonPeakMb: anonPeak, hwmMb: procStatus(svc.pid).VmHWM ?? NaN };
    },
    stop,
  };
}

function rate(bytes: number, ms: number): string {
  return `${(bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
}

/** Run the bench; returns rows. */
export async function bench(): Promise<
  { name: string; ours: string; baseline: string; ratio: string; target?: string }[]
> {
  const sizesArg = Deno.args.find((a) => a.startsWith("--sizes="))?.slice(8);
  const sizes = (sizesArg ?? "256,1024").split(",").map((s) => Number(s) * MiB);
  const runs = Number(Deno.args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 2);
  const rows: BenchRow[] = [];
  const dir = await Deno.makeTempDir({ prefix: "kw-bench-update-" });
  const haveRauc = (await has("rauc")) && (await has("mksquashfs")) && (await has("dbus-daemon"));
  let rauc: Rauc | null = null;
  try {
    const kp = await generateKeyPem();
    const signer = await parsePrivateKey(kp.privatePem);
    await Deno.writeTextFile(join(dir, "ring.pem"), kp.publicPem);
    await parseKeyring(kp.publicPem);
    if (haveRauc) {
      const r = await sh("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        join(dir, "rkey.pem"),
        "-out",
        join(dir, "rcert.pem"),
        "-subj",
        "/O=bench/CN=bench",
        "-days",
        "30",
      ]);
      if (!r.ok) throw new Error(`openssl req: ${r.err}`);
      await Deno.mkdir(join(dir, "rauc"), { recursive: true });
      await Deno.copyFile(join(dir, "rcert.pem"), join(dir, "rauc", "cert.pem"));
      rauc = await startRauc(dir, join(dir, "rauc-B.img"));
    }
    for (const size of sizes) {
      const label = size >= 1024 * MiB ? `${size / 1024 / MiB} GiB` : `${size / MiB} MiB`;
      const img = join(dir, "content", "rootfs.img");
      await Deno.mkdir(join(dir, "content"), { recursive: true });
      await timed("dd", [
        "if=/dev/urandom",
        `of=${img}`,
        "bs=4M",
        `count=${size / (4 * MiB)}`,
        "iflag=fullblock",
        "status=none",
      ]);
      const kwb = join(dir, "b.kwb");
      await createBundle({
        images: [{ slotClass: "rootfs", path: img }],
        compatible: "bench",
        version: "2.0.0",
        keys: [signer],
        out: kwb,
      });
      const raucb = join(dir, "b.raucb");
      if (rauc) {
        await Deno.remove(raucb).catch(() => {});
        await Deno.writeTextFile(
          join(dir, "content", "manifest.raucm"),
          "[update]\ncompatible=bench\nversion=2.0.0\n\n[image.rootfs]\nfilename=rootfs.img\n",
        );
        const r = await sh("rauc", [
          "bundle",
          `--cert=${join(dir, "rcert.pem")}`,
          `--key=${join(dir, "rkey.pem")}`,
          "--mksquashfs-args=-noI -noD -noF -noX",
          join(dir, "content"),
          raucb,
        ]);
        if (!r.ok) throw new Error(`rauc bundle: ${r.err}`);
      }
      for (const f of ["dd-slot.img", "kw-B.img", "rauc-B.img"]) {
        await Deno.writeFile(join(dir, f), new Uint8Array(0));
      }
      const best = {
        ours: Infinity,
        hwm: 0,
        dd: Infinity,
        sha: Infinity,
        rauc: Infinity,
        raucAnon: 0,
        raucHwm: 0,
      };
      for (let i = 0; i < runs; i++) {
        best.sha = Math.min(best.sha, await timed("openssl", ["dgst", "-sha256", img]));
        best.dd = Math.min(
          best.dd,
          await timed("dd", [
            `if=${img}`,
            `of=${join(dir, "dd-slot.img")}`,
            "bs=4M",
            "conv=fsync",
            "status=none",
          ]),
        );
        const c = await sh(Deno.execPath(), [
          "run",
          "-A",
          SELF,
          "--child",
          JSON.stringify({
            dir,
            bundle: kwb,
            slotB: join(dir, "kw-B.img"),
            keyring: join(dir, "ring.pem"),
          }),
        ]);
        if (!c.ok) throw new Error(`our install failed: ${c.err}`);
        const res = JSON.parse(c.out.trim().split("\n").pop()!);
        best.ours = Math.min(best.ours, res.ms);
        best.hwm = Math.max(best.hwm, res.hwmMb);
        if (rauc) {
          const r = await rauc.install(raucb);
          best.rauc = Math.min(best.rauc, r.ms);
          best.raucAnon = Math.max(best.raucAnon, r.anonPeakMb);
          best.raucHwm = Math.max(best.raucHwm, r.hwmMb);
        }
      }
      rows.push({
        name: `install ${label} vs openssl dgst -sha256 alone`,
        ours: rate(size, best.ours),
        baseline: rate(size, best.sha),
        ratio: (best.sha / best.ours).toFixed(2),
      });
      rows.push({
        name: `install ${label} vs dd bs=4M conv=fsync alone`,
        ours: rate(size, best.ours),
        baseline: rate(size, best.dd),
        ratio: (best.dd / best.ours).toFixed(2),
        target: ">= 0.90",
      });
      rows.push({
        name: `install ${label} vs RAUC 1.8 (plain, file slot, custom)`,
        ours: `${(best.ours / 1000).toFixed(2)} s`,
        baseline: rauc
          ? `${(best.rauc / 1000).toFixed(2)} s`
          : "n/a (rauc, mksquashfs or dbus-daemon missing)",
        ratio: rauc ? `${(best.rauc / best.ours).toFixed(2)}x faster` : "-",
        target: "> 1.00x",
      });
      rows.push({
        name: `peak RSS ${label} (ours: VmHWM; RAUC: anon peak / VmHWM)`,
        ours: `${best.hwm.toFixed(0)} MB`,
        baseline: rauc ? `${best.raucAnon.toFixed(1)} / ${best.raucHwm.toFixed(0)} MB` : "n/a",
        ratio: "-",
        target: size >= 1024 * MiB ? "<= 100 MB" : undefined,
      });
      for (
        const f of [
          img,
          kwb,
          raucb,
          join(dir, "dd-slot.img"),
          join(dir, "kw-B.img"),
          join(dir, "rauc-B.img"),
        ]
      ) {
        await Deno.remove(f).catch(() => {});
      }
    }
  } finally {
    await rauc?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return rows;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--child");
  if (i >= 0) {
    await child(JSON.parse(Deno.args[i + 1]));
  } else {
    printTable("update: streaming install vs openssl, dd and RAUC (same run)", await bench());
  }
}
