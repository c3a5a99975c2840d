/**
 * E2E (root, network namespaces client — appliance — server, `tc` software
 * bypass): an A/B update in `restart` mode keeps the wire up.
 *
 * The appliance runtime (this file run with `--app`, started by the restart-mode
 * launcher from the primary slot) owns the inline inspection path: its essential
 * `engine` subsystem brings the lab's inspection bridge up and takes it down when
 * the runtime stops. So while keepwire restarts into the other slot, only the
 * bypass carries traffic.
 *
 * Run 1: a 10 ms ping and a TCP stream cross the appliance while a bundle is
 * installed into slot B and activated; the new runtime passes the health gate,
 * commits B and releases the bypass hold. Run 2: a deliberately broken image
 * (its engine never becomes ready) is installed into A and activated; the gate
 * fails, A is marked bad, the launcher falls back to B, the rollback is alerted,
 * and the hold is released only by the healthy runtime in B. Both runs report
 * lost packets and the bypass window and assert 0 lost and an intact TCP stream.
 *
 * Needs root, iproute2, iputils-ping; ignored (with a KW-IGNORED line) otherwise.
 */
import { join } from "node:path";
import { ignored, missingTools } from "../helpers/tools.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createTcLab,
  labRun,
  spawnInNetns as spawnIn,
  type TcLab,
  tcLabUnavailable,
  tcpClientScript,
  tcpServerScript,
} from "./bypass_tc_lab.ts";
import { createBundle, generateKeyPem, parsePrivateKey } from "../../mod/update/bundle.ts";
import { daemonRequest } from "../../mod/cli/client.ts";
import type { UpdateStatusView } from "../../mod/update/service.ts";
import type { ActivationStatus } from "../../mod/update/activation.ts";
import type { KwEvent } from "../../mod/events/mod.ts";

const SELF = new URL(import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

// ----------------------------------------------------------------- app mode

/**
 * The appliance runtime of one slot, exactly as `keepwire run` composes it: bypass
 * (tc), supervisor (engine), update (restart mode: an orderly stop, then exit so the
 * launcher starts the primary slot).
 */
async function runApp(cfgPath: string): Promise<void> {
  const { loadConfig } = await import("../../mod/config/mod.ts");
  const { runUntilSignal } = await import("../../mod/runtime.ts");
  const config = await loadConfig({ file: cfgPath });
  console.log(`keepwire e2e app (slot ${Deno.env.get("KEEPWIRE_SLOT")})`);
  Deno.exit(await runUntilSignal(config));
}

if (import.meta.main && Deno.args[0] === "--app") {
  await runApp(Deno.args[1]);
}

// ----------------------------------------------------------------- test

function unavailable(): string | null {
  const missing = missingTools(["ip", "tc", "ping"], { root: true });
  if (missing) return missing;
  const lab = tcLabUnavailable();
  return lab ? ignored(lab) : null;
}
const why = import.meta.main ? "app mode" : unavailable();

const TCP_SERVER = tcpServerScript(5301);
const TCP_CLIENT = tcpClientScript({
  host: "10.77.0.2",
  port: 5301,
  chunkBytes: 8192,
  pauseMs: 10,
  tries: 400,
});

async function text(s: ReadableStream<Uint8Array>): Promise<string> {
  let t = "";
  const d = new TextDecoder();
  for await (const c of s) t += d.decode(c);
  return t;
}

async function waitFor<T>(
  what: string,
  ms: number,
  fn: () => Promise<T | null | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = null;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timeout waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`,
  );
}

/** Samples the switch point (where pa's ingress filter redirects) every ~20 ms. */
function watchSwitchPoint(lab: TcLab): { stop: () => Promise<{ t: number; mode: string }[]> } {
  const samples: { t: number; mode: string }[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const r = await labRun("tc", [
        "-n",
        lab.ns.app,
        "-j",
        "filter",
        "show",
        "dev",
        "pa",
        "ingress",
      ]);
      let mode = "none";
      if (r.out.includes('"to_dev":"pb"')) mode = "bypass";
      else if (r.out.includes('"to_dev":"ia"')) mode = "inline";
      samples.push({ t: Date.now(), mode });
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return samples;
    },
  };
}

function windows(samples: { t: number; mode: string }[]): { startMs: number; endMs: number }[] {
  const out: { startMs: number; endMs: number }[] = [];
  let cur: { startMs: number; endMs: number } | null = null;
  for (const s of samples) {
    if (s.mode === "bypass") {
      if (!cur) cur = { startMs: s.t, endMs: s.t };
      else cur.endMs = s.t;
    } else if (cur) {
      out.push(cur);
      cur = null;
    }
  }
  if (cur) out.push(cur);
  return out;
}

interface Traffic {
  stop: () => Promise<
    {
      transmitted: number;
      received: number;
      lost: number;
      tcp: { sent: number; received: number; firstBad: number; maxGapMs: number };
    }
  >;
}

function startTraffic(lab: TcLab, durMs: number): Traffic {
  const server = spawnIn(lab.ns.srv, [Deno.execPath(), "eval", TCP_SERVER]);
  const serverOut = text(server.stdout);
  const serverErr = text(server.stderr);
  const client = spawnIn(lab.ns.cli, [Deno.execPath(), "eval", TCP_CLIENT], {
    KW_DUR_MS: String(durMs),
  });
  const clientOut = text(client.stdout);
  const clientErr = text(client.stderr);
  const count = Math.ceil(durMs / 10);
  const ping = spawnIn(lab.ns.cli, [
    "ping",
    "-i",
    "0.01",
    "-c",
    String(count),
    "-W",
    "2",
    lab.srvIp,
  ]);
  const pingOut = text(ping.stdout);
  const pingErr = text(ping.stderr);
  return {
    async stop() {
      const [p, pe] = [await pingOut, await pingErr];
      await ping.status;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(p);
      assert(m, `ping summary missing: ${p}${pe}`);
      await client.status;
      const c = JSON.parse((await clientOut).trim() || `{"bytes":-1}`);
      const ce = await clientErr;
      await server.status;
      const sv = (await serverOut).trim();
      assert(sv, `tcp server said nothing: ${await serverErr} ${ce}`);
      const s = JSON.parse(sv);
      return {
        transmitted: Number(m[1]),
        received: Number(m[2]),
        lost: Number(m[1]) - Number(m[2]),
        tcp: { sent: c.bytes, received: s.bytes, firstBad: s.firstBad, maxGapMs: s.maxGapMs },
      };
    },
  };
}

Deno.test({
  name:
    "e2e update restart mode: install + activate with 0 lost packets; a broken image rolls back with 0 lost",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createTcLab("kwup");
    const dir = await Deno.makeTempDir({ prefix: "kw-e2e-upd-" });
    let launcher: Deno.ChildProcess | null = null;
    let launcherLog: Promise<string> | null = null;
    const others: Deno.ChildProcess[] = [];
    const lastStatusRef: { v: unknown } = { v: null };
    try {
      const dataDir = join(dir, "data");
      const kp = await generateKeyPem();
      const signer = await parsePrivateKey(kp.privatePem);
      await Deno.writeTextFile(join(dir, "ring.pem"), kp.publicPem);
      const envFile = join(dir, "bootenv.json");
      await Deno.writeTextFile(
        envFile,
        JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" }),
      );
      const engine = (good: boolean) => ({
        name: "engine",
        kind: "process",
        criticality: "essential",
        command: "sh",
        args: good
          ? [
            "-c",
            `ip -n ${lab.ns.app} link set br0 up; trap 'ip -n ${lab.ns.app} link set br0 down; exit 0' TERM INT; while :; do sleep 0.2; done`,
          ]
          : ["-c", "trap 'exit 0' TERM INT; while :; do sleep 0.2; done"], // never says READY=1
        readyOn: good ? "spawn" : "notify",
        readinessTimeoutMs: 120_000,
        stopTimeoutMs: 3_000,
      });
      const config = (good: boolean) => ({
        dataDir,
        web: { listen: "127.0.0.1:0" },
        hardware: {
          bypass: {
            segments: [{
              name: "wire",
              ports: ["pa", "pb"],
              driver: "tc",
              tc: { netns: lab.ns.app, engine: ["ia", "ib"] },
            }],
          },
        },
        subsystems: [engine(good)],
        update: {
          compatible: "e2e-gw",
          keyring: join(dir, "ring.pem"),
          cmdline: join(dir, "no-cmdline"),
          bootloader: { backend: "file", file: envFile },
          slots: {
            app: {
              a: { device: join(dir, "A.sh"), bootname: "A" },
              b: { device: join(dir, "B.sh"), bootname: "B" },
            },
          },
          activation: { mode: "restart", healthGateMs: 1_500, healthTimeoutMs: 8_000 },
          launcher: { command: ["sh", "{device}"], rescueDelayMs: 500 },
        },
      });
      const goodCfg = join(dir, "good.json"), brokenCfg = join(dir, "broken.json");
      await Deno.writeTextFile(goodCfg, JSON.stringify(config(true)));
      await Deno.writeTextFile(brokenCfg, JSON.stringify(config(false)));
      const image = (version: string, cfg: string) =>
        `#!/bin/sh\n# keepwire e2e appliance image ${version}\nexec "${Deno.execPath()}" run -A "${SELF}" --app "${cfg}"\n`;
      await Deno.writeTextFile(join(dir, "A.sh"), image("1.0.0", goodCfg));
      const mkBundle = async (name: string, version: string, cfg: string) => {
        await Deno.writeTextFile(join(dir, `${name}.sh`), image(version, cfg));
        const out = join(dir, `${name}.kwb`);
        await createBundle({
          images: [{ slotClass: "app", path: join(dir, `${name}.sh`) }],
          compatible: "e2e-gw",
          version,
          keys: [signer],
          out,
        });
        return out;
      };
      const v2 = await mkBundle("v2", "2.0.0", goodCfg);
      const v3 = await mkBundle("v3-broken", "3.0.0", brokenCfg);

      launcher = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "update", "launch", "-c", goodCfg],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lo = text(launcher.stdout), le = text(launcher.stderr);
      launcherLog = Promise.all([lo, le]).then(([a, b]) => a + b);

      const status = () =>
        daemonRequest<UpdateStatusView & { gate: ActivationStatus | null }>(
          dataDir,
          "GET",
          "/api/update",
        );
      const settled = (slot: string) =>
        waitFor(`runtime in slot ${slot} healthy, hold released, wire inline`, 90_000, async () => {
          const s = await status();
          lastStatusRef.v = s;
          if (s.booted?.bootname !== slot || s.gate?.gate !== "passed") return null;
          const tc = await labRun("tc", [
            "-n",
            lab.ns.app,
            "-j",
            "filter",
            "show",
            "dev",
            "pa",
            "ingress",
          ]);
          return tc.out.includes('"to_dev":"ia"') ? s : null;
        });
      await settled("A");
      const warm = await lab.exec(lab.ns.cli, "ping", [
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        lab.srvIp,
      ]);
      assertEquals(warm.code, 0, `no path through the appliance: ${warm.out}${warm.err}`);

      const runOnce = async (
        label: string,
        bundle: string,
        expectBooted: string,
        durMs: number,
      ) => {
        const watch = watchSwitchPoint(lab);
        const traffic = startTraffic(lab, durMs);
        const t0 = Date.now();
        await new Promise((r) => setTimeout(r, 500));
        const res = await daemonRequest<{ target: string; version: string }>(
          dataDir,
          "POST",
          "/api/update",
          undefined,
          {
            raw: await Deno.readFile(bundle),
            headers: { "content-type": "application/octet-stream" },
          },
        );
        const tInstalled = Date.now();
        await daemonRequest(dataDir, "POST", "/api/update/activate");
        const tActivated = Date.now();
        const final = await settled(expectBooted);
        const tSettled = Date.now();
        assert(
          tSettled - t0 < durMs - 500,
          `${label}: the update finished inside the traffic window (${
            tSettled - t0
          } of ${durMs} ms)`,
        );
        const r = await traffic.stop();
        const samples = await watch.stop();
        const wins = windows(samples);
        const report = {
          run: label,
          installed: `${res.version} into ${res.target} in ${tInstalled - t0 - 500} ms`,
          activateToSettledMs: tSettled - tActivated,
          pings: { transmitted: r.transmitted, received: r.received, lost: r.lost },
          tcp: r.tcp,
          bypassWindowsMs: wins.map((w) => w.endMs - w.startMs),
          bypassStartAfterActivateMs: wins.map((w) => w.startMs - tActivated),
        };
        console.log(`e2e update ${JSON.stringify(report)}`);
        assertEquals(r.lost, 0, `${label}: lost packets`);
        assert(r.transmitted >= durMs / 10 * 0.8, `${label}: ping ran (${r.transmitted})`);
        assertEquals(r.tcp.firstBad, -1, `${label}: TCP stream corrupted`);
        assertEquals(r.tcp.received, r.tcp.sent, `${label}: TCP bytes`);
        assert(wins.length >= 1, `${label}: the wire went through bypass during the switch`);
        return { final, report };
      };

      // Run 1: good update A -> B
      const one = await runOnce("good", v2, "B", 30_000);
      const b = one.final.slots.find((s) => s.bootname === "B")!;
      assertEquals([b.state, b.version, b.booted, b.primary], ["good", "2.0.0", true, true]);
      assertEquals(one.final.gate?.activation?.state, "committed");

      // Run 2: broken image into A: gate fails, falls back to B
      const two = await runOnce("broken", v3, "B", 40_000);
      const a = two.final.slots.find((s) => s.bootname === "A")!;
      assertEquals([a.state, a.version, a.booted, a.primary], ["bad", "3.0.0", false, false]);
      assertEquals(two.final.gate?.activation?.state, "rolled-back");
      const events = await daemonRequest<{ events: KwEvent[] } | KwEvent[]>(
        dataDir,
        "GET",
        "/api/events?module=update&limit=200",
      );
      const list = Array.isArray(events) ? events : events.events;
      const kinds = list.map((e) => e.kind);
      for (const k of ["update.gate_failed", "update.rolled_back", "update.committed"]) {
        assert(kinds.includes(k), `${k} in ${kinds.join(",")}`);
      }
      assertEquals(list.find((e) => e.kind === "update.rolled_back")!.severity, "critical");
    } catch (e) {
      console.log(`last /api/update: ${JSON.stringify(lastStatusRef.v)}`);
      const bp = await daemonRequest(join(dir, "data"), "GET", "/api/bypass").catch((x) =>
        String(x)
      );
      console.log(`bypass: ${JSON.stringify(bp)}`);
      throw e;
    } finally {
      if (launcher) {
        try {
          launcher.kill("SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(() => {
          try {
            launcher!.kill("SIGKILL");
          } catch { /* gone */ }
        }, 15_000);
        await launcher.status;
        clearTimeout(t);
        const log = await launcherLog;
        if (Deno.env.get("KW_E2E_VERBOSE")) console.log(log);
      }
      for (const c of others) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await lab.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
