/**
 * `deno task bench ha`: failover of the HA pair in the namespace lab
 * (tests/e2e/ha_lab.ts), keepwire (each node `keepwire run` with keepalived as its
 * child) next to keepalived alone with the same rendered configuration (the floor),
 * in the same run: N active-node deaths (the active's switch port down, then back as
 * standby) and N/2 graceful handovers (`ha failover` / the FAULT track file set by
 * hand), one client probe every 10 ms throughout. VRRPv3, advert 100 ms, nopreempt,
 * no witness. Also the CPU of an idle node: keepwire + keepalived with HA on, next to
 * keepwire with HA off (same config otherwise), over 15 s each. Needs root, iproute2, keepalived, setpriv. KW_BENCH_HA_N sets N (default 20).
 *
 * The witness column (corosync + corosync-qdevice on both nodes, corosync-qnetd in a
 * witness namespace; needs those three packages): N power losses of the active (all its
 * links down), N/4 graceful handovers, 3 peer-link cuts (the standby off the LAN, keeping
 * the witness) and 3 isolations of the active (off the LAN and the witness, carrier up),
 * with the ms both nodes held the address in each kind; next to it, without a witness, 3
 * partitions of the standby for 2 s (the dual active the witness avoids); and the idle
 * CPU of a node with corosync + qdevice.
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

/** CPU % of node n1 (keepwire and its keepalived; corosync and qdevice with a witness) while idle for `ms`. */
async function idleCpu(ha: boolean, ms: number, witness = false): Promise<number> {
  const lab = await createHaLab({ ha, witness });
  try {
    await lab.startNode("n1");
    if (ha) await lab.waitRole("n1", "active", 60_000);
    await sleep(3000); // start-up work done
    const p = await lab.pids("n1");
    const w = witness ? (await lab.status("n1"))?.witness?.pids ?? [] : [];
    const pids = [p.keepwire ?? 0, ...p.keepalived, ...w].filter((x) => x > 0);
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
        await until("one node holds the address", async () => (await lab.holders()).length === 1);
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
        await until("one node holds the address", async () => (await lab.holders()).length === 1);
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

/** Token of the witness runs (reported in the table). */
const TOKEN_MS = 1000;

interface WitnessResult {
  deathMs: number[];
  deathLost: number[];
  handoverMs: number[];
  handoverLost: number[];
  dualDeathMs: number;
  dualCutMs: number;
  dualIsolatedMs: number;
  cuts: number;
  isolations: number;
  isolatedTakeoverMs: number[];
  /** Isolated active: its quorum loss (role → fault, cause quorum) → its address deleted. */
  demoteMs: number[];
  missed: number;
  promoteWaitMs: number;
}

/** The witness mode: power losses, handovers, peer-link cuts, isolations of the active. */
async function runWitness(n: number): Promise<WitnessResult> {
  const lab: HaLab = await createHaLab({ witness: { tokenMs: TOKEN_MS } });
  try {
    const only = (x: NodeName) => async () => {
      const h = await lab.holders();
      return h.length === 1 && h[0] === x;
    };
    const back = async (x: NodeName) => {
      await until(`${x} back in the membership as standby`, async () => {
        const s = await lab.status(x);
        return s?.role === "standby" && s.witness?.quorate === true &&
          s.witness.peerInMembership === true;
      }, 60_000);
    };
    await lab.startNode("n1");
    await lab.waitRole("n1", "active", 60_000);
    await lab.startNode("n2");
    await back("n2");
    const promoteWaitMs = (await lab.status("n2"))!.witness!.promoteWaitMs;
    const faults: (Fault & { end: number })[] = [];
    const spans: { kind: "death" | "cut" | "isolated"; from: number; to: number }[] = [];
    const isolatedTakeoverMs: number[] = [];
    const demoteMs: number[] = [];
    const p: ProbeResult = await lab.probe(0, async () => {
      for (let i = 0; i < n; i++) {
        await until("one node holds the address", async () => (await lab.holders()).length === 1);
        const [active] = await lab.holders();
        const to = other(active);
        const at = Date.now();
        await lab.link(active, false);
        await lab.witnessPort(active, "down");
        await until(`${to} takes over`, only(to), 30_000);
        faults.push({ kind: "death", at, to, end: Date.now() + 1000 });
        await sleep(300);
        await lab.link(active, true);
        await lab.witnessPort(active, "heal");
        await back(active);
        spans.push({ kind: "death", from: at, to: Date.now() });
        await sleep(1000);
      }
      for (let i = 0; i < Math.max(2, Math.floor(n / 4)); i++) {
        await until("one node holds the address", async () => (await lab.holders()).length === 1);
        const [active] = await lab.holders();
        const to = other(active);
        const at = Date.now();
        await lab.post(active, "/api/ha/failover", { by: "bench" });
        await until(`${to} takes over`, only(to), 30_000);
        faults.push({ kind: "handover", at, to, end: Date.now() + 1000 });
        await back(active);
        await sleep(1000);
      }
      for (let i = 0; i < 3; i++) {
        await until("one node holds the address", async () => (await lab.holders()).length === 1);
        const [active] = await lab.holders();
        const standby = other(active);
        const at = Date.now();
        await lab.partition(standby, true);
        await until(
          `${standby} not quorate`,
          async () => (await lab.status(standby))?.witness?.quorate === false,
          30_000,
        );
        await sleep(2000);
        await lab.partition(standby, false);
        await back(standby);
        spans.push({ kind: "cut", from: at, to: Date.now() });
        await sleep(1000);
      }
      for (let i = 0; i < 3; i++) {
        await until("one node holds the address", async () => (await lab.holders()).length === 1);
        const [active] = await lab.holders();
        const to = other(active);
        const at = Date.now();
        await lab.partition(active, true);
        await lab.witnessPort(active, "cut");
        await until(`${to} takes over`, only(to), 30_000);
        isolatedTakeoverMs.push(Date.now() - at);
        await until(
          `${active} not quorate`,
          async () => (await lab.status(active))?.witness?.quorate === false,
          30_000,
        );
        await until(
          `${active} dropped the address`,
          async () => !(await lab.holders()).includes(active),
          30_000,
        );
        const lostAt = Date.parse(
          (await lab.status(active))!.history.findLast((h) =>
            h.cause === "quorum" && h.from === "active"
          )?.at ?? "",
        );
        const dropped = lab.vipEvents(active).find((e) => !e.add && e.t >= at)?.t;
        if (dropped !== undefined && !Number.isNaN(lostAt)) demoteMs.push(dropped - lostAt);
        await sleep(500);
        await lab.partition(active, false);
        await lab.witnessPort(active, "heal");
        await back(active);
        spans.push({ kind: "isolated", from: at, to: Date.now() });
        await sleep(1000);
      }
    });
    const answered = new Map(p.replies.map(([seq, node, t]) => [seq, { node, t }]));
    const dual = (kind: string) =>
      Math.round(
        spans.filter((s) => s.kind === kind).reduce((a, s) => a + lab.dualHoldMs(s.from, s.to), 0),
      );
    const r: WitnessResult = {
      deathMs: [],
      deathLost: [],
      handoverMs: [],
      handoverLost: [],
      dualDeathMs: dual("death"),
      dualCutMs: dual("cut"),
      dualIsolatedMs: dual("isolated"),
      cuts: spans.filter((s) => s.kind === "cut").length,
      isolations: spans.filter((s) => s.kind === "isolated").length,
      isolatedTakeoverMs,
      demoteMs,
      missed: 0,
      promoteWaitMs,
    };
    for (const f of faults) {
      const first = Math.ceil((f.at - p.t0) / p.interval);
      const last = Math.min(p.sent, Math.ceil((f.end - p.t0) / p.interval));
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

/** Without a witness: the standby partitioned (carrier up) `k` times for 2 s: ms both held. */
async function partitionsWithoutWitness(k: number): Promise<number> {
  const lab = await createHaLab();
  try {
    await lab.startNode("n1");
    await lab.waitRole("n1", "active");
    await lab.startNode("n2");
    await lab.waitRole("n2", "standby");
    const from = Date.now();
    for (let i = 0; i < k; i++) {
      await lab.partition("n2", true);
      await sleep(2000);
      await lab.partition("n2", false);
      await lab.waitRole("n2", "standby");
      await sleep(1000);
    }
    await sleep(300);
    return Math.round(lab.dualHoldMs(from, Date.now()));
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
  const witnessSkip = missingWitnessTools();
  const wit = witnessSkip ? null : await runWitness(n);
  // the witness part is long: its raw figures are printed at once, whatever happens later
  if (wit) console.error(`bench ha witness: ${JSON.stringify(wit)}`);
  const ours = await runMode("keepwire", n);
  const floor = await runMode("keepalived", n);
  const cpuOn = await idleCpu(true, 15_000);
  const cpuOff = await idleCpu(false, 15_000);
  const noWitnessDual = witnessSkip ? null : await partitionsWithoutWitness(3);
  const cpuWitness = witnessSkip ? null : await idleCpu(true, 15_000, true);
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
    ...(wit ? witnessRows(wit, ours, noWitnessDual!, cpuWitness!, cpuOff) : [{
      name: "witness mode",
      ours: "not run",
      baseline: "",
      ratio: "",
      target: witnessSkip ?? "",
    }]),
    {
      name: "faults where the standby never answered",
      ours: String(ours.missed),
      baseline: String(floor.missed),
      ratio: "",
      target: "0",
    },
  ];
}

/** Why the witness column cannot run here (a tool missing), or null. */
function missingWitnessTools(): string | null {
  for (const t of ["corosync", "corosync-qdevice", "corosync-qnetd"]) {
    try {
      new Deno.Command(t, { args: ["-h"], stdout: "null", stderr: "null" }).outputSync();
    } catch {
      return `${t} not found (apt-get install ${t})`;
    }
  }
  return null;
}

/** The witness column next to the mode without one. */
function witnessRows(
  w: WitnessResult,
  ours: ModeResult,
  noWitnessDual: number,
  cpuWitness: number,
  cpuOff: number,
): BenchRow[] {
  const membership = TOKEN_MS + 1.2 * TOKEN_MS;
  const target = `≤ token + consensus + 200 ms = ${membership + 200} ms`;
  const pair = (name: string, a: number[], b: number[], p: number, t?: string): BenchRow => ({
    name: `${name} p${p} (${a.length} / ${b.length})`,
    ours: ms(percentile(a, p)),
    baseline: `no witness ${ms(percentile(b, p))}`,
    ratio: `${(percentile(a, p) / percentile(b, p)).toFixed(1)}x`,
    target: t,
  });
  return [
    pair(
      `witness (token ${TOKEN_MS} ms, promote wait ${w.promoteWaitMs} ms): power loss → served`,
      w.deathMs,
      ours.deathMs,
      50,
    ),
    pair(
      `witness (token ${TOKEN_MS} ms): power loss → served`,
      w.deathMs,
      ours.deathMs,
      99,
      target,
    ),
    {
      name: `witness: power loss, probes lost p50 / p99 (${w.deathLost.length})`,
      ours: `${percentile(w.deathLost, 50)} / ${percentile(w.deathLost, 99)}`,
      baseline: `no witness ${percentile(ours.deathLost, 50)} / ${percentile(ours.deathLost, 99)}`,
      ratio: "",
    },
    {
      name: `witness: graceful handover → served p50, probes lost p99 (${w.handoverMs.length})`,
      ours: `${ms(percentile(w.handoverMs, 50))}, ${percentile(w.handoverLost, 99)}`,
      baseline: `no witness ${ms(percentile(ours.handoverMs, 50))}, ${
        percentile(ours.handoverLost, 99)
      }`,
      ratio: "",
      target: "≤ 10 probes",
    },
    {
      name: `both holding: ${w.cuts} peer-link cuts (standby off the LAN, 2 s)`,
      ours: ms(w.dualCutMs),
      baseline: `no witness, 3 partitions of 2 s: ${ms(noWitnessDual)}`,
      ratio: "",
      target: "0 ms",
    },
    {
      name: `both holding: ${w.isolations} isolations of the active (carrier up); takeover p50`,
      ours: `${ms(w.dualIsolatedMs)}; ${ms(percentile(w.isolatedTakeoverMs, 50))}`,
      baseline: "",
      ratio: "",
      target: "0 ms",
    },
    {
      name: `isolated active: quorum lost → address dropped, p50 / max (${w.demoteMs.length})`,
      ours: `${ms(percentile(w.demoteMs, 50))} / ${ms(Math.max(...w.demoteMs))}`,
      baseline: "",
      ratio: "",
      target: "≤ demoteBoundMs 500 ms",
    },
    {
      name: `both holding: ${w.deathMs.length} power losses`,
      ours: ms(w.dualDeathMs),
      baseline: "",
      ratio: "",
      target: "0 ms",
    },
    {
      name: "witness: faults where the standby never answered",
      ours: String(w.missed),
      baseline: "",
      ratio: "",
      target: "0",
    },
    {
      name: "idle node CPU with a witness: keepwire + keepalived + corosync + qdevice",
      ours: `${cpuWitness.toFixed(2)}%`,
      baseline: `HA off ${cpuOff.toFixed(2)}%`,
      ratio: `+${(cpuWitness - cpuOff).toFixed(2)} pt`,
      target: "HA adds ≤ 1%",
    },
  ];
}
