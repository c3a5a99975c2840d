/**
 * The example SMS gateway on an HA pair under kill -9 (issue 13 "Prove it"), in the
 * namespace lab of ha_lab.ts: both nodes run `keepwire run` with keepalived, the peer link,
 * replication and the smsgw worker subsystem; the client namespace runs the stand-in SMSC
 * and a client submitting at a steady rate to the service address (smsgw_client.ts). The
 * active is killed with SIGKILL `kills` times (alternating nodes: the killed one is
 * restarted, rejoins as standby and is resynced before the next kill). Counted at the end:
 * acknowledged messages missing on the survivor, duplicates the SMSC received, messages
 * never delivered, and per kill the failover time (kill → the next acknowledged submit).
 *
 * Used by tests/e2e/smsgw_pair_test.ts (bounded, CI) and chaos/smsgw_kills.ts (20 kills).
 * @module
 */
import { createHaLab, type HaLab, LAB, type NodeName } from "./ha_lab.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const CLIENT = `${REPO}tests/e2e/smsgw_client.ts`;
const MODULE = `${REPO}examples/smsgw/mod.ts`;
const PORT = 8780;
const SMSC_PORT = 9100;
const KEY = "lab-client-key";

/** What one run measured. */
export interface SmsgwPairFigures {
  /** Kills done. */
  kills: number;
  /** Kills after which the other node served again and the killed one came back. */
  survivedKills: number;
  /** Messages the client submitted (each retried until acknowledged). */
  submitted: number;
  /** Acknowledged by the gateway. */
  acked: number;
  /** Acknowledged as committed locally only (the standby was not confirmed). */
  ackedLocalOnly: number;
  /** Acknowledged, then missing on the survivor. Must be 0 in sync mode. */
  missing: number;
  /** Acknowledged and never delivered to the SMSC. */
  undelivered: number;
  /** Extra copies the SMSC received (a message sent again by a new node-epoch). */
  duplicates: number;
  /**
   * The SMSC's extra copies by what lay between a copy and the one before it: a kill
   * (`acrossKill`, per kill in `perKill`), or none (`noKill`: a bug unless explained), and
   * the first few as `id: node@ms, node@ms` (ms since the run's start) to read.
   */
  duplicateSends?: { acrossKill: number; perKill: number[]; noKill: number; sample: string[] };
  /** Submits answered with an earlier message (a retry with the same clientRef). */
  duplicateAnswers: number;
  /** Per kill: ms from the kill to the next acknowledged submit. */
  failoverMs: number[];
  /** What went wrong per kill (empty when all held). */
  problems: string[];
  /** Seconds the run took. */
  seconds: number;
  /**
   * The handoff phase (with `handoff: true`): messages the standby sent for the active
   * while the active's queue was past the threshold, and what each node said.
   */
  handoff?: { servedByPeer: number; activeSaid: string; standbySaid: string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET /api/repl/status (the parts the lab reads). */
export interface ReplView {
  role?: string;
  epoch?: number;
  link?: string;
  pending?: number;
}

/** The client's progress file (written every 250 ms). */
export interface SmsgwProgress {
  acked: number;
  lastAckAt: number;
  byNode: Record<string, number>;
}

/** What the client wrote at the end (smsgw_client.ts). */
export interface SmsgwClientResult {
  submitted: number;
  acked: number;
  ackedLocalOnly: number;
  retriedSubmits: number;
  duplicateAnswers: number;
  errors: number;
  /** When submits failed (epoch ms; a refused or timed-out try, retried). */
  errorTimes: number[];
  missing: number;
  missingIds: string[];
  /** The missing ones' acknowledgements (first 200): when, and `durable` as answered. */
  missingAcks?: { id: string; at: number; durable: string; tries: number }[];
  undelivered: number;
  smsc: { duplicates: number };
  /** Ids the SMSC received more than once, with each receipt's node and time (first 500). */
  repeats: { id: string; sends: { node: string; at: number }[] }[];
  /** When each acknowledgement arrived (epoch ms). */
  ackTimes: number[];
}

/** One client process (smsgw_client.ts) in the client namespace. */
interface LabClient {
  /** Its progress (`${out}.progress`). */
  progress(): Promise<SmsgwProgress>;
  /** Stop submitting; resolves with its result once it checked every message. */
  finish(): Promise<SmsgwClientResult>;
  /** Kill it (close). */
  kill(): Promise<void>;
  /** Its stderr so far. */
  log(): string;
}

/** Start smsgw_client.ts in the client namespace against `service` (its SMSC on `smscPort`). */
function startClient(
  lab: HaLab,
  service: string,
  smscPort: number,
  rate: number,
  dir: string,
  name: string,
): LabClient {
  const stop = `${dir}/STOP-${name}`;
  const out = `${dir}/${name}.json`;
  const lines: string[] = [];
  const c = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      lab.ns.cl,
      Deno.execPath(),
      "run",
      "-A",
      CLIENT,
      service,
      `${LAB.client}:${smscPort}`,
      String(rate),
      KEY,
      stop,
      out,
    ],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of c.stderr) lines.push(dec.decode(chunk));
  })();
  void c.stdout.cancel();
  return {
    progress: async () => JSON.parse(await Deno.readTextFile(`${out}.progress`)) as SmsgwProgress,
    async finish() {
      await Deno.writeTextFile(stop, "");
      const st = await Promise.race([c.status, sleep(180_000).then(() => null)]);
      if (!st?.success) throw new Error(`client did not finish: ${lines.join("").slice(-800)}`);
      return JSON.parse(await Deno.readTextFile(out)) as SmsgwClientResult;
    },
    async kill() {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status.catch(() => {});
    },
    log: () => lines.join(""),
  };
}

/** A running smsgw pair with its client submitting to the service address. */
export interface SmsgwPair {
  lab: HaLab;
  /** Submits per second. */
  rate: number;
  /** GET /api/repl/status of a node. */
  repl(n: NodeName): Promise<ReplView>;
  /** The smsgw subsystem of a node is ready. */
  smsgwReady(n: NodeName): Promise<boolean>;
  /** The standby is a resynced copy, the active's link to it is up, smsgw ready on it. */
  paired(active: NodeName, standby: NodeName): Promise<boolean>;
  /** The client's progress. */
  progress(): Promise<SmsgwProgress>;
  /** Where the client writes (the driver slows the SMSC through `${out}.smsc_delay`). */
  out: string;
  /** Stop submitting; resolves with the client's result once it checked every message. */
  finish(): Promise<SmsgwClientResult>;
  /**
   * Active-active (`activeActive`): set b's client, submitting to set b's address
   * (LAB.vipB; its own SMSC); set b is handed to n2 before the clients start.
   */
  b?: { progress(): Promise<SmsgwProgress>; finish(): Promise<SmsgwClientResult> };
  /** Kill the client, close the lab, remove the files (also after a failure). */
  close(): Promise<void>;
}

/** Poll `cond` every 100 ms until true; throws naming `what` after `ms`. */
export async function until(
  cond: () => Promise<boolean>,
  what: string,
  ms: number,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Build the lab, start n1 (active) then n2 (a resynced standby), both running smsgw, and
 * the client in the client namespace; resolves after the first `rate` acknowledgements.
 * `config` adds top-level config per node, `launcher` runs each keepwire under the update
 * launcher (ha_lab.ts).
 */
export async function startSmsgwPair(opts: {
  rate?: number;
  log?: (s: string) => void;
  config?: (n: NodeName, file: string) => Record<string, unknown>;
  launcher?: boolean;
  /** Active-active with this failback: smsgw serves set b on LAB.vipB, a client per set. */
  activeActive?: "manual" | "auto";
}): Promise<SmsgwPair> {
  const log = opts.log ?? (() => {});
  const rate = opts.rate ?? 20;
  const started = Date.now();
  const lab = await createHaLab({
    extra: {
      peerLink: { secret: "lab-pair-secret-0123456789", pairId: "lab", intervalMs: 300 },
      replication: { ackTimeoutMs: 1500 },
    },
    launcher: opts.launcher,
    activeActive: opts.activeActive,
    config: (n, file) => ({
      subsystems: [{
        name: "smsgw",
        kind: "worker",
        module: MODULE,
        criticality: "important",
        env: {
          SMSGW_LISTEN: `0.0.0.0:${PORT}`,
          SMSGW_SMSC_URL: `http://${LAB.client}:${SMSC_PORT}/submit`,
          SMSGW_ACCOUNTS: `lab:${KEY}`,
          SMSGW_ACTIVE_URL: `http://${LAB.vip}:${PORT}`,
          SMSGW_PEER_KEY: "lab-internal-key",
          ...(opts.activeActive
            ? {
              SMSGW_SET_B_HOSTS: LAB.vipB,
              SMSGW_SMSC_URL_B: `http://${LAB.client}:${SMSC_PORT + 1}/submit`,
            }
            : {}),
        },
      }],
      ...opts.config?.(n, file),
    }),
  });
  const dir = await Deno.makeTempDir({ prefix: "kw-smsgw-lab-" });
  const out = `${dir}/a.json`;
  let client: LabClient | undefined;
  let clientB: LabClient | undefined;
  const close = async () => {
    await client?.kill();
    await clientB?.kill();
    await lab.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const repl = (n: NodeName) => lab.get<ReplView>(n, "/api/repl/status");
  const smsgwReady = async (n: NodeName) => {
    const r = await lab.get<{ subsystem: { state: string } }>(n, "/api/subsystems/smsgw");
    return r.subsystem.state === "ready";
  };
  const paired = async (active: NodeName, standby: NodeName) => {
    const [a, s] = [await repl(active), await repl(standby)];
    return a.role === "primary" && a.link === "up" && s.role === "standby" &&
      s.epoch === a.epoch && (await smsgwReady(standby));
  };
  const progress = () => client!.progress();
  try {
    await lab.startNode("n1");
    await lab.waitRole("n1", "active", 60_000);
    await lab.startNode("n2");
    await lab.waitRole("n2", "standby", 60_000);
    await until(() => paired("n1", "n2"), "n2 a resynced standby running smsgw", 60_000);
    await until(() => smsgwReady("n1"), "smsgw ready on n1", 30_000);
    if (opts.activeActive) {
      // set b to its owner (manual failback: the first node up took both), channel b with it
      if (opts.activeActive === "manual") {
        await lab.post("n1", "/api/ha/failover", { by: "lab", set: "b" });
      }
      await until(
        async () => (await lab.holdersB())[0] === "n2" && await channelsPaired(repl, "n2", "n1"),
        "n2 active for set b, primary of channel b with n1 its standby",
        60_000,
      );
    }
    log(`pair up after ${Math.round((Date.now() - started) / 1000)} s`);
    client = startClient(lab, `${LAB.vip}:${PORT}`, SMSC_PORT, rate, dir, "a");
    if (opts.activeActive) {
      clientB = startClient(lab, `${LAB.vipB}:${PORT}`, SMSC_PORT + 1, rate, dir, "b");
    }
    for (const c of [client, clientB]) {
      if (!c) continue;
      await until(
        async () => (await c.progress()).acked >= rate,
        "the first acknowledgements",
        60_000,
      )
        .catch((e) => {
          throw new Error(`${e.message}; client: ${c.log().slice(-800)}`);
        });
    }
  } catch (e) {
    for (const n of ["n1", "n2"] as const) log(`${n} log tail: ${lab.log(n).slice(-1500)}`);
    await close();
    throw e;
  }
  const b = clientB;
  return {
    lab,
    rate,
    repl,
    smsgwReady,
    paired,
    progress,
    out,
    finish: () => client!.finish(),
    ...(b ? { b: { progress: () => b.progress(), finish: () => b.finish() } } : {}),
    close,
  };
}

/** One channel's part of GET /api/repl/status. */
export interface ChannelView {
  channel: string;
  role: string;
  epoch: number;
  seq: number;
  link: string;
  resync: { bytes: number; total: number } | null;
}

/** The channels of a node (active-active). */
export async function channelsOf(
  repl: (n: NodeName) => Promise<ReplView>,
  n: NodeName,
): Promise<Record<string, ChannelView>> {
  const r = await repl(n) as ReplView & { channels?: ChannelView[] };
  return Object.fromEntries((r.channels ?? []).map((c) => [c.channel, c]));
}

/**
 * Channel b's primary is `bOwner` and the other node its standby at the same epoch with
 * the link up; channel a likewise with the other node as primary.
 */
export async function channelsPaired(
  repl: (n: NodeName) => Promise<ReplView>,
  bOwner: NodeName,
  aOwner: NodeName,
): Promise<boolean> {
  const other = (n: NodeName): NodeName => n === "n1" ? "n2" : "n1";
  for (const [ch, p] of [["a", aOwner], ["b", bOwner]] as const) {
    const P = (await channelsOf(repl, p))[ch];
    const S = (await channelsOf(repl, other(p)))[ch];
    if (!P || !S || P.role !== "primary" || P.link !== "up" || S.role !== "standby") return false;
    if (S.epoch !== P.epoch || S.seq !== P.seq || S.resync) return false;
  }
  return true;
}

/** Run the scenario. */
export async function runSmsgwPair(
  opts: { kills: number; rate?: number; handoff?: boolean; log?: (s: string) => void },
): Promise<SmsgwPairFigures> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const pair = await startSmsgwPair({ rate: opts.rate, log });
  const { lab, rate, paired, progress, out } = pair;
  type Handoff = { target: string; to: string; reason: string };
  const handoffOf = (n: NodeName) => lab.get<Handoff>(n, "/api/sdk/smsgw/handoff");
  const figures: SmsgwPairFigures = {
    kills: 0,
    survivedKills: 0,
    submitted: 0,
    acked: 0,
    ackedLocalOnly: 0,
    missing: 0,
    undelivered: 0,
    duplicates: 0,
    duplicateAnswers: 0,
    failoverMs: [],
    problems: [],
    seconds: 0,
  };
  const killTimes: number[] = [];
  /** Per kill: from just before the signal until the killed process was reaped (+ 500 ms). */
  const killWindows: { from: number; to: number }[] = [];
  try {
    if (opts.handoff) {
      // the active's queue past the threshold (a slow SMSC): new messages go to the standby
      // node, which sends them; below the off mark they stay on the active again
      await lab.post("n1", "/api/sdk/smsgw/handoff", { enabled: true, onAt: 30, offAt: 5 });
      await Deno.writeTextFile(`${out}.smsc_delay`, "1500");
      await until(
        async () => (await handoffOf("n2")).target === "peer",
        "the handoff on n2",
        60_000,
      );
      const [a, b] = [await handoffOf("n1"), await handoffOf("n2")];
      await until(
        async () => ((await progress()).byNode.n2 ?? 0) >= 5,
        "the standby sending",
        60_000,
      );
      await Deno.writeTextFile(`${out}.smsc_delay`, "0");
      await until(
        async () => (await handoffOf("n1")).target === "local",
        "the handoff off",
        60_000,
      );
      await lab.post("n1", "/api/sdk/smsgw/handoff", { enabled: false, onAt: 30, offAt: 5 });
      figures.handoff = {
        servedByPeer: (await progress()).byNode.n2 ?? 0,
        activeSaid: `to ${a.to}: ${a.reason}`,
        standbySaid: `to ${b.to}: ${b.reason}`,
      };
      log(`handoff: ${JSON.stringify(figures.handoff)}, until +${Date.now() - started} ms`);
    }
    for (let k = 0; k < opts.kills; k++) {
      const holders = await lab.holders();
      if (holders.length !== 1) throw new Error(`holders before kill ${k}: ${holders.join(",")}`);
      const active = holders[0];
      const peer: NodeName = active === "n1" ? "n2" : "n1";
      // traffic flows through this active for a moment
      const before = (await progress()).acked;
      await until(async () => (await progress()).acked >= before + rate / 2, "traffic", 30_000);
      const view = await pair.repl(active).catch(() => ({}));
      const at = Date.now();
      killTimes.push(at);
      log(`kill ${k + 1} at +${at - started} ms; ${active}'s replication ${JSON.stringify(view)}`);
      figures.kills++;
      await lab.killNode(active, "SIGKILL");
      // + 500 ms: a request the node sent before it died is taken by the SMSC a little later
      killWindows.push({ from: at, to: Date.now() + 500 });
      try {
        await lab.waitRole(peer, "active", 20_000);
        await until(
          async () => (await progress()).lastAckAt > at,
          "an acknowledgement after the kill",
          60_000,
        );
        await lab.startNode(active);
        await lab.waitRole(active, "standby", 30_000);
        await until(() => paired(peer, active), `${active} resynced as standby`, 90_000);
        figures.survivedKills++;
        log(`kill ${k + 1}: ${active} killed, ${peer} serves; ${active} back as standby`);
      } catch (e) {
        figures.problems.push(`kill ${k + 1} (${active}): ${(e as Error).message}`);
        log(`kill ${k + 1}: ${(e as Error).message}`);
        break;
      }
    }
    const seen = (await progress()).acked;
    await until(
      async () => (await progress()).acked >= seen + rate,
      "traffic after the last kill",
      30_000,
    )
      .catch(() => {});
    const r = await pair.finish();
    await explainRun(lab, r, started, log);
    Object.assign(figures, {
      submitted: r.submitted,
      acked: r.acked,
      ackedLocalOnly: r.ackedLocalOnly,
      missing: r.missing,
      undelivered: r.undelivered,
      duplicates: r.smsc.duplicates,
      duplicateAnswers: r.duplicateAnswers,
      duplicateSends: classifyRepeats(r.repeats ?? [], killWindows, started),
    });
    const acks = r.ackTimes;
    figures.failoverMs = killTimes.map((t) => {
      const next = acks.find((a) => a > t);
      return next === undefined ? -1 : next - t;
    });
    if (r.missing) figures.problems.push(`missing on the survivor: ${r.missingIds.join(", ")}`);
  } catch (e) {
    figures.problems.push((e as Error).message);
    for (const n of ["n1", "n2"] as const) log(`${n} log tail: ${lab.log(n).slice(-1500)}`);
  } finally {
    await pair.close();
    figures.seconds = Math.round((Date.now() - started) / 1000);
  }
  return figures;
}

/**
 * Log what tells why acknowledged messages went missing or were sent twice: when the
 * missing ones were acknowledged (spans, with `durable` as the gateway answered) and both
 * nodes' role changes, dual actives, promotions, standby lost/back and tails set aside
 * (times in ms since `t0`). Both nodes must answer (call before closing the lab).
 */
export async function explainRun(
  lab: HaLab,
  r: SmsgwClientResult,
  t0: number,
  log: (s: string) => void,
): Promise<void> {
  const started = t0;
  // when the missing ones were acknowledged, and how durable the gateway said they were
  const lost = [...(r.missingAcks ?? [])].sort((a, b) => a.at - b.at);
  const spans: { from: number; to: number; n: number; durable: Record<string, number> }[] = [];
  for (const a of lost) {
    const last = spans.at(-1);
    const span = last && a.at - last.to <= 1000
      ? last
      : { from: a.at, to: a.at, n: 0, durable: {} };
    if (span !== last) spans.push(span);
    span.to = a.at;
    span.n++;
    span.durable[a.durable] = (span.durable[a.durable] ?? 0) + 1;
  }
  for (const sp of spans) {
    log(
      `missing: ${sp.n} acknowledged +${sp.from - started}..+${sp.to - started} ms, durable ${
        JSON.stringify(sp.durable)
      }`,
    );
  }
  // role changes on either node (a node-epoch each): what a duplicate with no kill follows
  for (const n of ["n1", "n2"] as const) {
    for (
      const kind of [
        "ha.role_changed",
        "ha.dual_active",
        "repl.promoted",
        "repl.standby_lost",
        "repl.standby_back",
        "repl.tail_saved",
      ]
    ) {
      const ev = await lab.get<{ events: { time: number; payload: Record<string, unknown> }[] }>(
        n,
        `/api/events?kind=${kind}&limit=50`,
      ).catch(() => ({ events: [] }));
      const at = ev.events.map((e) => {
        const p = e.payload;
        return `+${e.time - started}` + (p.to ? ` ${p.from}→${p.to}` : "") +
          (p.epoch ? ` epoch ${p.epoch}` : "") + (p.frames ? ` ${p.frames} frames` : "") +
          (p.yields !== undefined ? ` yields ${p.yields}` : "") +
          (p.to === "fault" ? ` (${String(p.reason).slice(0, 80)})` : "");
      }).reverse();
      if (at.length) log(`${n} ${kind}: ${at.join(", ")}`);
    }
  }
}

/**
 * Sort the SMSC's extra copies (`repeats`) by whether a kill (`kills`: from just before the
 * signal until the process was reaped) lies between a copy and the copy before it (the dead
 * node's send whose outcome it could not record).
 */
export function classifyRepeats(
  repeats: SmsgwClientResult["repeats"],
  kills: { from: number; to: number }[],
  t0: number,
): NonNullable<SmsgwPairFigures["duplicateSends"]> {
  const out = { acrossKill: 0, perKill: kills.map(() => 0), noKill: 0, sample: [] as string[] };
  for (const r of repeats) {
    let noKill = false;
    const sends = [...r.sends].sort((a, b) => a.at - b.at);
    for (let i = 1; i < sends.length; i++) {
      const k = kills.findIndex((w) => sends[i - 1].at <= w.to && sends[i].at >= w.from);
      if (k >= 0) {
        out.acrossKill++;
        out.perKill[k]++;
      } else {
        out.noKill++;
        noKill = true;
      }
    }
    const line = `${r.id.slice(0, 8)}: ${sends.map((x) => `${x.node}@${x.at - t0}`).join(", ")}`;
    // those with no kill in between first: they are the ones to explain
    if (noKill) out.sample.unshift(line);
    else out.sample.push(line);
  }
  out.sample = out.sample.slice(0, 12);
  return out;
}

/** One line of figures. */
export function smsgwFiguresLine(f: SmsgwPairFigures): string {
  const fo = f.failoverMs.filter((x) => x >= 0).sort((a, b) => a - b);
  return `smsgw pair: ${f.kills} kills (${f.survivedKills} survived), ${f.acked}/${f.submitted} acknowledged ` +
    `(${f.ackedLocalOnly} local only), missing ${f.missing}, undelivered ${f.undelivered}, ` +
    `SMSC duplicates ${f.duplicates}` +
    (f.duplicateSends
      ? ` (across a kill ${f.duplicateSends.acrossKill}: ${
        f.duplicateSends.perKill.join("/")
      } per kill, ` +
        `no kill between ${f.duplicateSends.noKill})`
      : "") +
    `, retried submits answered with the first message ${f.duplicateAnswers}, ` +
    `failover ms median ${fo[Math.floor(fo.length / 2)] ?? "-"} max ${
      fo.at(-1) ?? "-"
    }, ${f.seconds} s` +
    (f.handoff ? `; handoff: the standby sent ${f.handoff.servedByPeer} for the active` : "");
}

export type { HaLab };
