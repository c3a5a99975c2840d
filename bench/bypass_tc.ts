/**
 * tc software-bypass switch time (p50/p99 over N switches) in a network-namespace
 * lab, next to baselines measured in the same run on the same lab:
 * - the driver's switch (one `tc -batch` with two `filter replace`) vs a bare
 *   single `tc filter replace` exec (one direction only: the floor of any tc switch);
 * - a full module switch (hold/release: switch + read-back + events + store) vs
 *   the bridge-based bypass of the hardware notes (`ip -batch`: both ports
 *   `master br` / `nomaster`).
 *
 * Needs root and iproute2; otherwise one row says skipped.
 * Run standalone: `tools/deno run -A bench/bypass_tc.ts [N]`.
 * @module
 */
import { type BenchRow, percentile, printTable } from "./types.ts";
import { createTcLab, labRun, tcLabUnavailable } from "../tests/e2e/bypass_tc_lab.ts";
import { TcBypassDriver } from "../hw/bypass/tc.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { systemClock } from "../mod/module.ts";
import { createBypassModule } from "../mod/bypass/mod.ts";

function stats(xs: number[]): { p50: number; p99: number } {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99) };
}

function fmt(s: { p50: number; p99: number }): string {
  return `p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms`;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Run the benchmark: `n` switches per measure. */
export async function bench(n = 100): Promise<BenchRow[]> {
  const why = tcLabUnavailable();
  if (why) {
    return [{ name: "tc bypass switch", ours: `skipped: ${why}`, baseline: "-", ratio: "-" }];
  }
  const lab = await createTcLab("kwbb");
  const store = new Store({ path: ":memory:" });
  const app = lab.ns.app;
  try {
    const drv = new TcBypassDriver({ ports: ["pa", "pb"], engine: ["ia", "ib"], netns: app });
    await drv.open();
    await drv.setMode("inline");
    const ours: number[] = [];
    for (let i = 0; i < n; i++) {
      ours.push(await timed(() => drv.setMode(i % 2 === 0 ? "bypass" : "inline")));
    }
    const bare: number[] = [];
    for (let i = 0; i < n; i++) {
      const line = drv.filterLine("replace", "pa", i % 2 === 0 ? "pb" : "ia");
      bare.push(
        await timed(async () => {
          const r = await labRun("tc", ["-n", app, ...line.split(" ")]);
          if (r.code !== 0) throw new Error(r.err);
        }),
      );
    }
    await drv.setMode("inline");

    const mod = createBypassModule({
      config: validateConfig({
        hardware: {
          bypass: {
            segments: [{
              name: "bench",
              ports: ["pa", "pb"],
              driver: "tc",
              tc: { netns: app, engine: ["ia", "ib"] },
            }],
            pollMs: 600_000,
          },
        },
      }),
      store,
      bus: new EventBus({ journal: store }),
      clock: systemClock,
    });
    await mod.start();
    const full: number[] = [];
    for (let i = 0; i < n; i++) {
      full.push(
        await timed(() => i % 2 === 0 ? mod.hold("bench", "bench") : mod.release("bench", "bench")),
      );
    }
    await mod.stop();

    const br = await labRun("ip", [
      "-n",
      app,
      "link",
      "add",
      "kwbr",
      "type",
      "bridge",
      "stp_state",
      "0",
      "forward_delay",
      "0",
    ]);
    if (br.code !== 0) throw new Error(br.err);
    await labRun("ip", ["-n", app, "link", "set", "kwbr", "up"]);
    const bridge: number[] = [];
    for (let i = 0; i < n; i++) {
      const cmd = i % 2 === 0
        ? "link set pa master kwbr\nlink set pb master kwbr\n"
        : "link set pa nomaster\nlink set pb nomaster\n";
      bridge.push(
        await timed(async () => {
          const r = await labRun("ip", ["-n", app, "-batch", "-"], cmd);
          if (r.code !== 0) throw new Error(r.err);
        }),
      );
    }
    const o = stats(ours), b = stats(bare), f = stats(full), g = stats(bridge);
    return [
      {
        name: `tc switch, driver (1 tc -batch, 2 filter replaces), n=${n}`,
        ours: fmt(o),
        baseline: `bare tc filter replace (1 exec, 1 direction): ${fmt(b)}`,
        ratio: `${(o.p50 / b.p50).toFixed(2)}x`,
        target: "lossless; notes measured 6.9 ms",
      },
      {
        name: `tc switch, module hold/release (switch + read-back + event + store), n=${n}`,
        ours: fmt(f),
        baseline: `bridge bypass (ip -batch master/nomaster, 2 ports): ${fmt(g)}`,
        ratio: `${(f.p50 / g.p50).toFixed(2)}x`,
      },
    ];
  } finally {
    store.close();
    await lab.close();
  }
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 100);
  printTable("bypass_tc", await bench(Number.isFinite(n) && n > 1 ? n : 100));
}
