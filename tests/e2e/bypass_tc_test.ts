/**
 * E2E (root, network namespaces): a 10 ms ping and a TCP stream cross the
 * appliance namespace while the bypass module switches its `tc` segment
 * inline ↔ bypass 20 times. Reports probes, lost and duplicated packets, TCP
 * bytes and retransmits, switch times, and how many frames went through the
 * engine in each phase; asserts nothing was lost or duplicated, the TCP stream
 * arrived intact, and traffic really took the engine path only while inline.
 *
 * Needs root, iproute2 and iputils-ping; ignored (with a KW-IGNORED line) otherwise.
 */
import { ignored, missingTools } from "../helpers/tools.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import {
  createTcLab,
  labRun,
  spawnInNetns as spawnIn,
  tcLabUnavailable,
  tcpClientScript,
  tcpServerScript,
} from "./bypass_tc_lab.ts";
import { validateConfig } from "../../mod/config/mod.ts";
import { EventBus } from "../../mod/events/mod.ts";
import { Store } from "../../mod/store/mod.ts";
import { systemClock } from "../../mod/module.ts";
import { createBypassModule } from "../../mod/bypass/mod.ts";
import { percentile } from "../../bench/types.ts";

const SWITCHES = 20;
const GAP_MS = 200;
const PROBES = 500;

function unavailable(): string | null {
  const missing = missingTools(["ip", "tc", "ping"], { root: true });
  if (missing) return missing;
  const lab = tcLabUnavailable();
  return lab ? ignored(lab) : null;
}

const why = unavailable();

const SERVER = tcpServerScript(5201);
const CLIENT = tcpClientScript({
  host: "10.77.0.2",
  port: 5201,
  chunkBytes: 16384,
  pauseMs: 5,
  tries: 200,
});

async function retransSegs(exec: (c: string, a: string[]) => Promise<{ out: string }>) {
  const snmp = (await exec("cat", ["/proc/net/snmp"])).out.split("\n").filter((l) =>
    l.startsWith("Tcp:")
  );
  const head = snmp[0].split(/\s+/), vals = snmp[1].split(/\s+/);
  return Number(vals[head.indexOf("RetransSegs")]);
}

Deno.test({
  name: "e2e bypass tc: ping + TCP cross 20 inline↔bypass switches with no loss",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lab = await createTcLab();
    const store = new Store({ path: ":memory:" });
    const children: Deno.ChildProcess[] = [];
    const mod = createBypassModule({
      config: validateConfig({
        hardware: {
          bypass: {
            segments: [{
              name: "e2e",
              ports: ["pa", "pb"],
              driver: "tc",
              tc: { netns: lab.ns.app, engine: ["ia", "ib"] },
            }],
            pollMs: 600_000,
          },
        },
      }),
      store,
      bus: new EventBus({ journal: store }),
      clock: systemClock,
    });
    try {
      await mod.start();
      assertEquals(mod.segments()[0].mode, "inline");
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

      const retrans0 = await retransSegs((c, a) => lab.exec(lab.ns.cli, c, a));
      const server = spawnIn(lab.ns.srv, [Deno.execPath(), "eval", SERVER]);
      children.push(server);
      const durMs = 400 + (SWITCHES + 1) * (GAP_MS + 30) + 800;
      const client = spawnIn(lab.ns.cli, [Deno.execPath(), "eval", CLIENT], {
        KW_DUR_MS: String(durMs),
      });
      children.push(client);
      const ping = spawnIn(lab.ns.cli, [
        "ping",
        "-i",
        "0.01",
        "-c",
        String(PROBES),
        "-W",
        "2",
        lab.srvIp,
      ]);
      children.push(ping);

      await new Promise((r) => setTimeout(r, 400));
      const switchMs: number[] = [];
      const enginePhase: { mode: string; frames: number }[] = [];
      // Frames into the engine are counted between switches (a phase is all one mode).
      let afterSwitch = await lab.rxPackets("ea");
      for (let i = 0; i <= SWITCHES; i++) {
        await new Promise((r) => setTimeout(r, GAP_MS));
        const beforeSwitch = await lab.rxPackets("ea");
        enginePhase.push({ mode: mod.segments()[0].mode, frames: beforeSwitch - afterSwitch });
        if (i === SWITCHES) break;
        if (i % 2 === 0) await mod.hold("e2e", "e2e-test", "test");
        else await mod.release("e2e", "e2e-test");
        switchMs.push(mod.segments()[0].lastSwitchMs ?? NaN);
        afterSwitch = await lab.rxPackets("ea");
      }

      const dec = new TextDecoder();
      const pingOut = await ping.output();
      const pingText = dec.decode(pingOut.stdout) + dec.decode(pingOut.stderr);
      const m = /(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?/.exec(pingText);
      assert(m, `ping summary missing: ${pingText.slice(-400)}`);
      const sent = Number(m[1]), received = Number(m[2]), dups = Number(m[3] ?? 0);
      const clientOut = await client.output();
      const serverOut = await server.output();
      const c = JSON.parse(dec.decode(clientOut.stdout).trim() || "{}") as { bytes?: number };
      const sv = JSON.parse(dec.decode(serverOut.stdout).trim() || "{}") as {
        bytes?: number;
        firstBad?: number;
      };
      const retrans = (await retransSegs((cmd, a) => lab.exec(lab.ns.cli, cmd, a))) - retrans0;

      const inlineFrames = enginePhase.filter((p) => p.mode === "inline").map((p) => p.frames);
      const bypassFrames = enginePhase.filter((p) => p.mode === "bypass").map((p) => p.frames);
      console.log(
        [
          `switches: ${SWITCHES} (${switchMs.length} measured), switch+read-back p50 ${
            percentile(switchMs, 50).toFixed(1)
          } ms, p99 ${percentile(switchMs, 99).toFixed(1)} ms`,
          `ping -i 0.01: ${sent} sent, ${received} received, lost ${
            sent - received
          }, duplicated ${dups}`,
          `tcp: client sent ${c.bytes} B, server got ${sv.bytes} B, first bad byte ${sv.firstBad}, retransmitted segments ${retrans}`,
          `frames into the engine per inline phase: ${inlineFrames.join(" ")}`,
          `frames into the engine per bypass phase: ${bypassFrames.join(" ")}`,
        ].join("\n"),
      );
      assertEquals(pingOut.code, 0, pingText.slice(-300));
      assertEquals(sent, PROBES);
      assertEquals(sent - received, 0, "lost packets");
      assertEquals(dups, 0, "duplicated packets");
      assertEquals(clientOut.code, 0, dec.decode(clientOut.stderr));
      assertEquals(serverOut.code, 0, dec.decode(serverOut.stderr));
      assert((c.bytes ?? 0) > 0);
      assertEquals(sv.bytes, c.bytes, "the TCP stream arrived complete");
      assertEquals(sv.firstBad, -1, "the TCP stream arrived intact");
      assert(inlineFrames.reduce((a, b) => a + b, 0) > 0, "inline traffic went through the engine");
      assert(
        bypassFrames.every((f) => f <= 1),
        `bypass traffic avoided the engine (${bypassFrames.join(" ")})`,
      );
      assertEquals(mod.segments()[0].mode, "inline");
      assertEquals(mod.segments()[0].failures, 0);
    } finally {
      for (const ch of children) {
        try {
          ch.kill("SIGKILL");
        } catch { /* exited */ }
        await ch.status.catch(() => {});
      }
      await mod.stop().catch(() => {});
      store.close();
      await lab.close();
      const left = await labRun("ip", ["netns", "list"]);
      assert(!left.out.includes(lab.ns.app), "namespaces removed");
    }
  },
});
