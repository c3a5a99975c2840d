/**
 * `deno task bench ha`: failover of the HA pair in the namespace lab
 * (tests/e2e/ha_lab.ts), keepwire (each node `keepwire run` with keepalived as its
 * child) next to keepalived alone with the same rendered configuration (the floor),
 * in the same run: N active-node deaths (the active's switch port down, then back as
 * standby) and N/2 graceful handovers (`ha failover` / the FAULT track file set by
 * hand), one client probe every 10 ms throughout. VRRPv3, advert 100 ms, nopreempt,
 * no witness. Also the CPU of an idle node: keepwire + keepalived with HA on, next to
 * keepwire with HA off (same config otherwise), over 15 s each. Needs root, iproute2, keepalived, setpriv. KW_BENCH_HA_N sets N (default 20).
 * @module
 */
import { type BenchRow, percentile } from "./types.ts";
import {
  createHaLab,
  type HaLab,
  labSkipReason,
  type NodeName,
  type ProbeResult,
} from "../tests/e2e/ha_lab.ts";

interface Fault {
  kind: "death" | "handover";
  at: number;
  to: NodeName;
}

interface ModeResult {
  deathMs: number[];
  deathLost: number[];
  handoverMs: number[];
  handoverLost: number[];
  dualMs: number;
  missed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(10);
  }
  throw new Error(`bench ha: timed out waiting for ${what}`);
}

const other = (n: NodeName): NodeName => n === "n1" ? "n2" : "n1";

/**
 * CPU seconds (user + system) used so far by these processes and their reaped children
 * (/proc/PID/stat utime, stime, cutime, cstime: keepalived's liveness-script forks count).
 */
async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // fields 14-17
    } catch { /* gone */ }
  }
  return ticks / 100; // USER_HZ
}

/** CPU % of node n1 (keepwire and its keepalived) while idle for `ms`. */
async function idleCpu(ha: boolean, ms: number): Promise<number> {
  const lab = await createHaLab({ ha });
  try {
    await lab.startNode("n1");
    if (ha) await lab.waitRole("n1", "active");
    await sleep(3000); // start-up work done
    const p = await lab.pids("n1");
    const pids = [p.keepwire ?? 0, ...p.keepalived].filter((x) => x > 0);
    const c0 = await cpuSeconds(pids);
    const t0 = performance.now();
    await sleep(ms);
    const c1 = await cpuSeconds(pids);
    return ((c1 - c0) / ((performance.now() - t0) / 1000)) * 100;
  } finally {
    await lab.close();
  }
}

async function runMode(mode: "keepwire" | "keepalived", n: number): Promise<ModeResult> {
  const lab: HaLab = await createHaLab();
  try {
    const only = (x: NodeName) => async () => {
      const h = await lab.holders();
      return h.length === 1 && h[0] === x;
    };
    if (mode === "keepwire") {
      await lab.startNode("n1");
      await lab.waitRole("n1", "active");
      await lab.startNode("n2");
      await lab.waitRole("n2", "standby");
    } else {
      await lab.startBare("n1");
      await until("n1 holds the address", only("n1"));
      await lab.startBare("n2");
      await sleep(1500);
    }
    const faults: Fault[] = [];
    const p: ProbeResult = await lab.probe(0, async () => {
      for (let i = 0; i < n; i++) {
        const [active] = await lab.holders();
        const to = other(active);
        faults.push({ kind: "death", at: Date.now(), to });
        await lab.link(active, false);
        await until(`${to} takes over`, only(to));
        await sleep(300);
        await lab.link(active, true);
        if (mode === "keepwire") await lab.waitRole(active, "standby");
        await sleep(1200);
      }
      for (let i = 0; i < Math.max(1, Math.floor(n / 2)); i++) {
        const [active] = await lab.holders();
        const to = other(active);
        faults.push({ kind: "handover", at: Date.now(), to });
        if (mode === "keepwire") {
          await lab.post(active, "/api/ha/failover", { by: "bench" });
          await until(`${to} takes over`, only(to));
          await lab.waitRole(active, "standby");
        } else {
          const done = lab.bareHandover(active, 2000);
          await until(`${to} takes over`, only(to));
          await done;
        }
        await sleep(1500);
      }
    });
    const answered = new Map(p.replies.map(([seq, node, t]) => [seq, { node, t }]));
    const r: ModeResult = {
      deathMs: [],
      deathLost: [],
      handoverMs: [],
      handoverLost: [],
      dualMs: Math.round(lab.dualHoldMs(p.t0, p.t0 + p.sent * p.interval)),
      missed: 0,
    };
    for (const f of faults) {
      const first = Math.ceil((f.at - p.t0) / p.interval);
      const last = Math.min(p.sent, first + Math.floor(1500 / p.interval));
      let lost = 0;
      let servedAt: number | null = null;
      for (let seq = first; seq < last; seq++) {
        const a = answered.get(seq);
        if (!a) lost++;
        else if (a.node === f.to && servedAt === null) servedAt = a.t;
      }
      if (servedAt === null) {
        r.missed++;
        continue;
      }
      (f.kind === "death" ? r.deathMs : r.handoverMs).push(servedAt - f.at);
      (f.kind === "death" ? r.deathLost : r.handoverLost).push(lost);
    }
    return r;
  } finally {
    await lab.close();
  }
}

const ms = (v: number) => `${Math.round(v)} ms`;

/** The benchmark rows. */
export async function bench(): Promise<BenchRow[]> {
  const skip = labSkipReason();
  if (skip) throw new Error(`bench ha needs the namespace lab: ${skip}`);
  const n = Number(Deno.env.get("KW_BENCH_HA_N") ?? 20);
  const ours = await runMode("keepwire", n);
  const floor = await runMode("keepalived", n);
  const cpuOn = await idleCpu(true, 15_000);
  const cpuOff = await idleCpu(false, 15_000);
  const row = (
    name: string,
    a: number[],
    b: number[],
    p: number,
    fmt: (v: number) => string,
    target?: string,
  ): BenchRow => {
    const x = percentile(a, p);
    const y = percentile(b, p);
    return {
      name: `${name} p${p} (${a.length} / ${b.length})`,
      ours: fmt(x),
      baseline: fmt(y),
      ratio: y > 0 ? `${(x / y).toFixed(2)}x` : `+${fmt(x - y)}`,
      target,
    };
  };
  return [
    row("node death → client served by the standby", ours.deathMs, floor.deathMs, 50, ms),
    row(
      "node death → client served by the standby",
      ours.deathMs,
      floor.deathMs,
      99,
      ms,
      "≤ 400 ms and ≤ keepalived alone + 50 ms",
    ),
    row("node death: probes lost (10 ms)", ours.deathLost, floor.deathLost, 50, String),
    row("node death: probes lost (10 ms)", ours.deathLost, floor.deathLost, 99, String),
    row("graceful handover → served", ours.handoverMs, floor.handoverMs, 50, ms),
    row(
      "graceful handover: probes lost",
      ours.handoverLost,
      floor.handoverLost,
      99,
      String,
      "≤ 10",
    ),
    {
      name: "both nodes holding the address (whole run)",
      ours: ms(ours.dualMs),
      baseline: ms(floor.dualMs),
      ratio: "",
      target: "0 ms",
    },
    {
      name: "idle node CPU: keepwire + keepalived, HA on (active, advert 100 ms)",
      ours: `${cpuOn.toFixed(2)}%`,
      baseline: `HA off ${cpuOff.toFixed(2)}%`,
      ratio: `+${(cpuOn - cpuOff).toFixed(2)} pt`,
      target: "HA adds ≤ 1%",
    },
    {
      name: "faults where the standby never answered",
      ours: String(ours.missed),
      baseline: String(floor.missed),
      ratio: "",
      target: "0",
    },
  ];
}
