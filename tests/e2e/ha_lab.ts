/**
 * Network-namespace lab of an HA pair (tests/e2e/ha_pair_test.ts, bench/ha.ts):
 *
 * ```
 * <p>cl  client 10.231.0.100 ─┐
 * <p>n1  node 1 10.231.0.11  ─┼─ br0 in <p>sw (the switch: stp off, forward delay 0)
 * <p>n2  node 2 10.231.0.12  ─┘      virtual address 10.231.0.50/24
 * ```
 * Every name starts with a unique prefix; close() kills what the lab started and
 * deletes the namespaces (also after a failure). Traffic stays inside the lab.
 * Each node runs a real `keepwire run` (main.ts, its own config and data dir) in its
 * namespace, which runs keepalived; and a UDP echo service on port 7007 that
 * answers with the node's name (the "application" a client reaches on the virtual
 * address). The client runs ha_prober.ts: one UDP probe every 10 ms.
 * @module
 */

import { daemonRequest } from "../../mod/cli/client.ts";
import { assertEquals } from "../helpers/assert.ts";
import type { HaStatus } from "../../mod/ha/mod.ts";
import { validateConfig } from "../../mod/config/mod.ts";
import { setInterfaceCheck } from "../../mod/ha/config.ts";
import { keepalivedPaths, renderKeepalivedConf } from "../../mod/ha/keepalived.ts";
import { writeAtomic } from "../../mod/ha/engine.ts";
import type { ReplModuleStatus } from "../../mod/repl/mod.ts";
import type { KwEvent } from "../../mod/events/mod.ts";

/** Why the lab cannot run here, or null when it can. */
export function labSkipReason(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "needs root (network namespaces)";
  for (
    const [cmd, args] of [["ip", ["netns", "list"]], ["keepalived", ["--version"]]] as const
  ) {
    try {
      const r = new Deno.Command(cmd, { args: [...args], stdout: "null", stderr: "null" })
        .outputSync();
      if (!r.success) return `"${cmd} ${args.join(" ")}" fails`;
    } catch {
      return `${cmd} not found (apt-get install ${cmd === "ip" ? "iproute2" : cmd})`;
    }
  }
  return null;
}

/** True when root, iproute2 and keepalived are here. */
export function canRunLab(): boolean {
  return labSkipReason() === null;
}

const REPO = new URL("../../", import.meta.url).pathname;
const MAIN = `${REPO}main.ts`;
const ECHO = `${REPO}tests/e2e/ha_echo.ts`;
const PROBER = `${REPO}tests/e2e/ha_prober.ts`;

/** The lab's addresses. */
export const LAB = {
  vip: "10.231.0.50",
  /** Active-active (`activeActive`): the second client set's address (vrid 52). */
  vipB: "10.231.0.51",
  client: "10.231.0.100",
  nodes: { n1: "10.231.0.11", n2: "10.231.0.12" },
  /**
   * The layer-3 lab (`l3: true`): the switch namespace is a router between three
   * subnets; the service address is on both nodes' loopback and the router's route to
   * it (moved by the nodes' ha.hook) decides which node serves.
   */
  l3: {
    service: "10.231.9.50",
    nodes: { n1: "10.231.1.11", n2: "10.231.2.12" },
    client: "10.231.3.100",
    gw: { n1: "10.231.1.1", n2: "10.231.2.1", cl: "10.231.3.1" },
    /** keepalived's marker address of a VRRP instance without virtual addresses (vrid 51). */
    marker: "169.254.254.51",
  },
  /** Addresses on the sync link (with `sync: true`), a /30 on a second bridge. */
  sync: { n1: "10.232.1.1", n2: "10.232.1.2" },
  /**
   * The witness network (with `witness: true`): a third bridge with the nodes' `wit0` and
   * the witness namespace running corosync-qnetd (TLS off) on `witness`.
   */
  wnet: { n1: "10.231.2.11", n2: "10.231.2.12", witness: "10.231.2.3" },
  port: 7007,
} as const;

/** A node of the pair. */
export type NodeName = "n1" | "n2";

/** One run of the prober. */
export interface ProbeResult {
  /** Start (epoch ms). */
  t0: number;
  /** ms between probes. */
  interval: number;
  /** Probes sent. */
  sent: number;
  /** [seq, node, epoch ms received]. */
  replies: [number, string, number][];
}

/** What a scenario measured. */
export interface ScenarioFigures {
  /** Scenario name. */
  name: string;
  /** ms from the fault to the first reply from the new active (null: none). */
  answeredAfterMs: number | null;
  /** Probes (10 ms) that got no reply in the window. */
  lost: number;
  /** ms during which both nodes held the virtual address (sampled in both namespaces). */
  dualHoldMs: number;
  /** Address moves beyond the expected ones (role flaps). */
  flaps: number;
}

/** A running lab. */
export interface HaLab {
  /** Namespace names. */
  ns: { sw: string; n1: string; n2: string; cl: string };
  /**
   * Start keepalived ALONE on a node (no keepwire: the baseline of the benchmark), with
   * the configuration keepwire would render, minus the notify FIFO, track files at 0.
   */
  startBare(n: NodeName): Promise<void>;
  /** The baseline's handover: its FAULT track file set to 1 for `ms`, by hand. */
  bareHandover(n: NodeName, ms: number): Promise<void>;
  /** Start keepwire on a node (its keepalived with it); resolves once its API answers. */
  startNode(n: NodeName): Promise<void>;
  /**
   * Kill keepwire on a node with a signal (SIGKILL: no clean stop at all); with `launcher`
   * this signals the launcher only (close() still ends everything in the namespaces).
   */
  killNode(n: NodeName, signal?: Deno.Signal): Promise<void>;
  /** Full HA status of a node through its control socket, or null when it does not answer. */
  status(n: NodeName): Promise<HaStatus | null>;
  /** Send a signal to a node's keepwire without waiting (SIGSTOP: a stuck keepwire). */
  signalNode(n: NodeName, signal: Deno.Signal): void;
  /** POST to a node's API. */
  post(n: NodeName, path: string, body: unknown): Promise<unknown>;
  /** Any request to a node's API (through its control socket); a refusal throws DaemonError. */
  request(n: NodeName, method: string, path: string, body?: unknown): Promise<unknown>;
  /** Wait until a node reports `role` (throws with both nodes' states after `ms`). */
  waitRole(n: NodeName, role: string, ms?: number): Promise<void>;
  /**
   * Hold back (or let through again) the TCP connections a node opens to the peer link port
   * (ha.peerLink.port, default 7440) on its eth0: an htb class at 8 bit/s (the lab's kernel has
   * no drop action, no netem); VRRP and everything else pass. The node's replication to the
   * peer and its polls of the peer stall; the peer's requests to it are unaffected.
   */
  holdPeerLink(n: NodeName, on: boolean, port?: number): Promise<void>;
  /** The node's switch port down or up (its cable pulled). */
  link(n: NodeName, up: boolean): Promise<void>;
  /**
   * Cut a node off the switch keeping its carrier up (its port leaves the bridge), or
   * put it back: a partition the node cannot see locally.
   */
  partition(n: NodeName, cut: boolean): Promise<void>;
  /**
   * The sync link of a node (with `sync: true`): `down` its switch port down (carrier
   * lost), `cut` its port leaves the sync bridge (carrier up), `heal` back to normal.
   */
  syncLink(n: NodeName, how: "down" | "cut" | "heal"): Promise<void>;
  /**
   * A port on the witness network (with `witness: true`): a node's or the witness's
   * (`wt`); `down` carrier lost, `cut` leaves the bridge (carrier up), `heal` back.
   */
  witnessPort(who: NodeName | "wt", how: "down" | "cut" | "heal"): Promise<void>;
  /** Layer 3: the node the router's route to the service address points at, or null. */
  serviceRoute(): Promise<NodeName | null>;
  /** Layer 3: changes of the router's route to the service within [from, to] (epoch ms). */
  routeChanges(from: number, to: number): number;
  /** Layer 3: GET /api/ha of a node over the lab network, from the client namespace. */
  clientAsk(n: NodeName): Promise<unknown>;
  /** GET from a node's API (through its control socket). */
  get<T>(n: NodeName, path: string): Promise<T>;
  /** Put the virtual address on a node by hand for `ms`, then remove it (checks the monitor). */
  addVipByHand(n: NodeName, ms: number): Promise<void>;
  /** Which nodes hold the virtual address now (ip addr in each namespace). */
  holders(): Promise<NodeName[]>;
  /** Run the prober for `ms` (0: until `during` ends); `during` runs once it is probing. */
  probe(ms: number, during: () => Promise<void>, target?: string): Promise<ProbeResult>;
  /** Active-active: which nodes hold the second set's address (LAB.vipB) now. */
  holdersB(): Promise<NodeName[]>;
  /** Active-active: ms both nodes held LAB.vipB within [from, to]. */
  dualHoldMsB(from: number, to: number): number;
  /** Active-active: LAB.vipB additions within [from, to]. */
  vipAddsB(from: number, to: number): number;
  /** ms both nodes held the address within [from, to] (epoch ms), from ip monitor. */
  dualHoldMs(from: number, to: number): number;
  /** A node's virtual-address additions and deletions (ip monitor times, epoch ms). */
  vipEvents(n: NodeName): { t: number; add: boolean }[];
  /** Address additions (either node) within [from, to]. */
  vipAdds(from: number, to: number): number;
  /** Pids of a node's keepwire and of its keepalived (parent and VRRP child), when running. */
  pids(n: NodeName): Promise<{ keepwire: number | null; keepalived: number[] }>;
  /** Output of a node's keepwire (for failure messages). */
  log(n: NodeName): string;
  /** Output of corosync-qnetd (with `witness: true`). */
  qnetdLog(): string;
  /** Kill everything, delete the namespaces and files. */
  close(): Promise<void>;
}

async function run(cmd: string[], check = true): Promise<string> {
  const o = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (check && !o.success) {
    throw new Error(`${cmd.join(" ")} failed: ${dec.decode(o.stderr).trim()}`);
  }
  return dec.decode(o.stdout);
}

function drain(stream: ReadableStream<Uint8Array>, sink: string[]): void {
  void (async () => {
    const dec = new TextDecoder();
    try {
      for await (const c of stream) {
        sink.push(dec.decode(c));
        if (sink.length > 400) sink.splice(0, sink.length - 400);
      }
    } catch { /* gone */ }
  })();
}

/**
 * How far apart the two namespaces' `ip -ts monitor` clocks can read one hand-over: each
 * monitor stamps an address change when it reads it, so on a saturated machine one monitor
 * scheduled late shows the old holder's delete late. A graceful handover (the old active
 * drops the address as it sends its priority-0 advert) is checked against this bound, not 0.
 */
export const MONITOR_SLACK_MS = 100;

/** `[2026-12-02T04:06:30.232544] ...` → epoch ms (ip -ts prints local time). */
function monitorTime(line: string): number | null {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\d*\]/.exec(line);
  return m ? new Date(m[1]).getTime() : null;
}

/** Build the lab: namespaces, the bridge, addresses, the echo service on both nodes. */
export async function createHaLab(
  opts: {
    ha?: boolean;
    extra?: Record<string, unknown>;
    /** A second link between the nodes (sync0 on a second bridge) as ha.syncLink. */
    sync?: boolean;
    /**
     * A witness: a namespace running corosync-qnetd on a third bridge (the nodes' wit0),
     * ha.witness and ha.peerLink in both configs, and each keepwire (with its corosync and
     * qdevice) in its own mount namespace with tmpfs over /run, /etc/corosync,
     * /var/lib/corosync and /dev/shm (two corosyncs cannot share them).
     */
    witness?: boolean | Record<string, unknown>;
    /**
     * More top-level config of a node (e.g. its `subsystems`, its `update`); `file` is the
     * path of the node's config file.
     */
    config?: (n: NodeName, file: string) => Record<string, unknown>;
    /**
     * Start each node's keepwire under the restart-mode update launcher (`keepwire update
     * launch`): the launcher runs the primary slot's entry (the node's `update.launcher`),
     * which runs keepwire; an activation in restart mode swaps the running code.
     */
    launcher?: boolean;
    /**
     * Layer 3: a router instead of the bridge, each node on its own subnet, unicast
     * VRRP through the router, no virtual address; ha.hook moves the router's route to
     * the service address (LAB.l3.service) to the node that becomes active.
     */
    l3?: boolean;
    /**
     * Active-active: a second set (LAB.vipB, vrid 52) with mirrored priorities
     * (n1 owns set a, n2 set b), this failback.
     */
    activeActive?: "auto" | "manual";
  } = {},
): Promise<HaLab> {
  const p = `kwha${crypto.randomUUID().slice(0, 4)}`;
  const ns: Record<string, string> & { sw: string; n1: string; n2: string; cl: string } = {
    sw: `${p}sw`,
    n1: `${p}n1`,
    n2: `${p}n2`,
    cl: `${p}cl`,
    ...(opts.witness ? { wt: `${p}wt` } : {}),
  };
  const l3 = opts.l3 ?? false;
  const routeEvents: { t: number; via: string }[] = [];
  const dir = await Deno.makeTempDir({ prefix: `${p}-` });
  const procs: Deno.ChildProcess[] = [];
  const nodes: Partial<Record<NodeName, Deno.ChildProcess>> = {};
  const logs: Record<NodeName, string[]> = { n1: [], n2: [] };
  const qnetdLog: string[] = [];
  const vipEvents: Record<NodeName, { t: number; add: boolean }[]> = { n1: [], n2: [] };
  const vipBEvents: Record<NodeName, { t: number; add: boolean }[]> = { n1: [], n2: [] };
  const dataDir = (n: NodeName) => `${dir}/${n}`;

  const close = async () => {
    for (const c of [...Object.values(nodes), ...procs]) {
      try {
        c?.kill("SIGKILL");
      } catch { /* gone */ }
    }
    for (const c of [...Object.values(nodes), ...procs]) {
      await c?.status.catch(() => {});
    }
    // keepalived dies with keepwire (parent-death signal); make sure nothing of the lab stays
    for (const n of ["n1", "n2"] as const) {
      for (const f of ["ha/keepalived.pid", "ha/keepalived_vrrp.pid", "bare/ha/keepalived.pid"]) {
        try {
          const pid = Number((await Deno.readTextFile(`${dataDir(n)}/${f}`)).trim());
          const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
          if (cmdline.includes(dir)) Deno.kill(pid, "SIGKILL");
        } catch { /* not running */ }
      }
    }
    // corosync, qdevice, qnetd (and anything else) still running in the lab's namespaces
    for (const n of Object.values(ns)) {
      const pids = (await run(["ip", "netns", "pids", n], false)).split(/\s+/).filter((x) => x);
      for (const pid of pids) {
        try {
          Deno.kill(Number(pid), "SIGKILL");
        } catch { /* gone */ }
      }
    }
    for (const n of Object.values(ns)) await run(["ip", "netns", "del", n], false);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    for (const n of Object.values(ns)) {
      await run(["ip", "netns", "add", n]);
      await run(["ip", "-n", n, "link", "set", "lo", "up"]);
    }
    if (!l3) {
      await run([
        "ip",
        "-n",
        ns.sw,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
      ]);
      await run(["ip", "-n", ns.sw, "link", "set", "br0", "up"]);
    } else {
      await run(["ip", "netns", "exec", ns.sw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    }
    const addrs = l3
      ? {
        n1: `${LAB.l3.nodes.n1}/24`,
        n2: `${LAB.l3.nodes.n2}/24`,
        cl: `${LAB.l3.client}/24`,
      }
      : { n1: `${LAB.nodes.n1}/24`, n2: `${LAB.nodes.n2}/24`, cl: `${LAB.client}/24` };
    for (const [k, addr] of Object.entries(addrs) as ["n1" | "n2" | "cl", string][]) {
      const a = `${p}${k}a`;
      const b = `${p}${k}b`;
      await run(["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
      await run(["ip", "link", "set", a, "netns", ns[k]]);
      await run(["ip", "link", "set", b, "netns", ns.sw]);
      await run(["ip", "-n", ns[k], "link", "set", a, "name", "eth0"]);
      await run(["ip", "-n", ns.sw, "link", "set", b, "name", `sw_${k}`]);
      if (!l3) await run(["ip", "-n", ns.sw, "link", "set", `sw_${k}`, "master", "br0"]);
      else await run(["ip", "-n", ns.sw, "addr", "add", `${LAB.l3.gw[k]}/24`, "dev", `sw_${k}`]);
      await run(["ip", "-n", ns.sw, "link", "set", `sw_${k}`, "up"]);
      await run(["ip", "-n", ns[k], "link", "set", "eth0", "up"]);
      await run(["ip", "-n", ns[k], "addr", "add", addr, "dev", "eth0"]);
      if (l3) {
        await run(["ip", "-n", ns[k], "route", "add", "default", "via", LAB.l3.gw[k]]);
        if (k !== "cl") {
          await run(["ip", "-n", ns[k], "addr", "add", `${LAB.l3.service}/32`, "dev", "lo"]);
        }
      }
    }
    if (opts.sync) {
      await run([
        "ip",
        "-n",
        ns.sw,
        "link",
        "add",
        "br1",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
      ]);
      await run(["ip", "-n", ns.sw, "link", "set", "br1", "up"]);
      for (const k of ["n1", "n2"] as const) {
        const a = `${p}${k}s`;
        const b = `${p}${k}t`;
        await run(["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
        await run(["ip", "link", "set", a, "netns", ns[k]]);
        await run(["ip", "link", "set", b, "netns", ns.sw]);
        await run(["ip", "-n", ns[k], "link", "set", a, "name", "sync0"]);
        await run(["ip", "-n", ns.sw, "link", "set", b, "name", `sy_${k}`]);
        await run(["ip", "-n", ns.sw, "link", "set", `sy_${k}`, "master", "br1"]);
        await run(["ip", "-n", ns.sw, "link", "set", `sy_${k}`, "up"]);
        await run(["ip", "-n", ns[k], "link", "set", "sync0", "up"]);
        await run(["ip", "-n", ns[k], "addr", "add", `${LAB.sync[k]}/30`, "dev", "sync0"]);
      }
    }
    if (opts.witness) {
      await run([
        "ip",
        "-n",
        ns.sw,
        "link",
        "add",
        "br2",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
      ]);
      await run(["ip", "-n", ns.sw, "link", "set", "br2", "up"]);
      for (const k of ["n1", "n2", "wt"] as const) {
        const a = `${p}${k}w`;
        const b = `${p}${k}x`;
        await run(["ip", "link", "add", a, "type", "veth", "peer", "name", b]);
        await run(["ip", "link", "set", a, "netns", ns[k]]);
        await run(["ip", "link", "set", b, "netns", ns.sw]);
        await run(["ip", "-n", ns[k], "link", "set", a, "name", "wit0"]);
        await run(["ip", "-n", ns.sw, "link", "set", b, "name", `wi_${k}`]);
        await run(["ip", "-n", ns.sw, "link", "set", `wi_${k}`, "master", "br2"]);
        await run(["ip", "-n", ns.sw, "link", "set", `wi_${k}`, "up"]);
        await run(["ip", "-n", ns[k], "link", "set", "wit0", "up"]);
        const addr = k === "wt" ? LAB.wnet.witness : LAB.wnet[k];
        await run(["ip", "-n", ns[k], "addr", "add", `${addr}/24`, "dev", "wit0"]);
      }
      await Deno.mkdir(`${dir}/qnetd`, { recursive: true });
      const qnetd = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns.wt,
          "corosync-qnetd",
          "-f",
          "-s",
          "off",
          "-4",
          "-l",
          LAB.wnet.witness,
          "-S",
          `lock_file=${dir}/qnetd/qnetd.pid,local_socket_file=${dir}/qnetd/qnetd.sock`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      procs.push(qnetd);
      drain(qnetd.stdout, qnetdLog);
      drain(qnetd.stderr, qnetdLog);
    }
    for (const n of ["n1", "n2"] as const) {
      await Deno.mkdir(dataDir(n), { recursive: true });
      const peer: NodeName = n === "n1" ? "n2" : "n1";
      await Deno.writeTextFile(
        `${dir}/${n}.json`,
        JSON.stringify({
          identity: { name: n },
          dataDir: dataDir(n),
          // layer 3: clients ask either node who is active (GET /api/ha) over the lab
          web: { listen: l3 ? "0.0.0.0:18080" : "127.0.0.1:18080" },
          governor: { enabled: false },
          ...opts.config?.(n, `${dir}/${n}.json`),
          ha: {
            enabled: opts.ha ?? true,
            node: { id: n, priority: n === "n1" ? 150 : 100, address: `${LAB.nodes[n]}/24` },
            interface: "eth0",
            virtualAddresses: [`${LAB.vip}/24`],
            peers: [{ address: LAB.nodes[peer], id: peer, priority: peer === "n1" ? 150 : 100 }],
            advertMs: 100,
            failoverHoldMs: 2000,
            ...(l3
              ? {
                node: {
                  id: n,
                  priority: n === "n1" ? 150 : 100,
                  address: `${LAB.l3.nodes[n]}/24`,
                },
                unicast: true,
                peers: [{
                  address: LAB.l3.nodes[peer],
                  id: peer,
                  priority: peer === "n1" ? 150 : 100,
                }],
                virtualAddresses: [],
                hook: {
                  command: [
                    "/bin/sh",
                    "-c",
                    // the "DNS update or route" of a layer-3 pair: the active claims the route
                    `[ "$KW_HA_ROLE" = active ] || exit 0; ` +
                    `exec ip -n ${ns.sw} route replace ${LAB.l3.service}/32 via ${LAB.l3.nodes[n]}`,
                  ],
                  timeoutMs: 2000,
                },
              }
              : {}),
            ...(opts.activeActive
              ? {
                activeActive: {
                  virtualRouterId: 52,
                  virtualAddresses: [`${LAB.vipB}/24`],
                  failback: opts.activeActive,
                },
              }
              : {}),
            ...(opts.sync
              ? {
                syncLink: {
                  interface: "sync0",
                  address: `${LAB.sync[n]}/30`,
                  peerAddress: LAB.sync[peer],
                },
              }
              : {}),
            ...(opts.witness
              ? {
                peerLink: { secret: "keepwire-lab-pair-secret", intervalMs: 300, lostAfter: 3 },
                witness: {
                  host: LAB.wnet.witness,
                  tls: "off",
                  ...(typeof opts.witness === "object" ? opts.witness : {}),
                },
              }
              : {}),
            ...opts.extra,
          },
        }),
      );
      const echo = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns[n],
          Deno.execPath(),
          "run",
          "-A",
          "--unstable-net",
          ECHO,
          n,
          String(LAB.port),
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      procs.push(echo);
      const mon = new Deno.Command("ip", {
        args: ["-n", ns[n], "-ts", "-o", "monitor", "address"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      procs.push(mon);
      void (async () => {
        const dec = new TextDecoder();
        let pending = "";
        try {
          for await (const c of mon.stdout) {
            pending += dec.decode(c, { stream: true });
            let i: number;
            while ((i = pending.indexOf("\n")) >= 0) {
              const line = pending.slice(0, i);
              pending = pending.slice(i + 1);
              // layer 3: no virtual address; keepalived's marker on eth0 shows who is MASTER
              const b = line.includes(` ${LAB.vipB}/`);
              if (!b && !line.includes(` ${l3 ? LAB.l3.marker : LAB.vip}/`)) continue;
              const t = monitorTime(line);
              if (t !== null) {
                (b ? vipBEvents : vipEvents)[n].push({ t, add: !line.includes("] Deleted ") });
              }
            }
          }
        } catch { /* closed */ }
      })();
    }
    if (l3) {
      const mon = new Deno.Command("ip", {
        args: ["-n", ns.sw, "-ts", "-o", "monitor", "route"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      procs.push(mon);
      void (async () => {
        const dec = new TextDecoder();
        let pending = "";
        try {
          for await (const c of mon.stdout) {
            pending += dec.decode(c, { stream: true });
            let i: number;
            while ((i = pending.indexOf("\n")) >= 0) {
              const line = pending.slice(0, i);
              pending = pending.slice(i + 1);
              if (!line.includes(` ${LAB.l3.service} `) || line.includes("] Deleted ")) continue;
              const t = monitorTime(line);
              const via = / via (\S+)/.exec(line)?.[1] ?? "";
              if (t !== null) routeEvents.push({ t, via });
            }
          }
        } catch { /* closed */ }
      })();
    }
  } catch (e) {
    await close();
    throw e;
  }

  const status = async (n: NodeName): Promise<HaStatus | null> => {
    try {
      return await daemonRequest<HaStatus>(dataDir(n), "GET", "/api/ha/status");
    } catch {
      return null;
    }
  };
  const describe = async () => {
    const parts: string[] = [];
    for (const n of ["n1", "n2"] as const) {
      const s = await status(n);
      parts.push(`${n}: ${s ? `${s.role} (${s.reason}) engine ${s.engine.state}` : "no answer"}`);
    }
    return parts.join("; ");
  };

  /** Hold intervals of one node within [from, to]. */
  const intervals = (
    n: NodeName,
    from: number,
    to: number,
    events = vipEvents,
  ): [number, number][] => {
    const out: [number, number][] = [];
    let held: number | null = null;
    for (const e of events[n]) {
      if (e.add && held === null) held = e.t;
      if (!e.add && held !== null) {
        out.push([held, e.t]);
        held = null;
      }
    }
    if (held !== null) out.push([held, Infinity]);
    return out.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as [number, number])
      .filter(([a, b]) => b > a);
  };

  const barePaths = (n: NodeName) => keepalivedPaths(`${dataDir(n)}/bare`);

  return {
    ns,
    async startBare(n) {
      const raw = JSON.parse(await Deno.readTextFile(`${dir}/${n}.json`));
      const prev = setInterfaceCheck(() => true);
      const cfg = (() => {
        try {
          return validateConfig(raw);
        } finally {
          setInterfaceCheck(prev);
        }
      })();
      const paths = barePaths(n);
      await Deno.mkdir(paths.dir, { recursive: true });
      const conf = renderKeepalivedConf(cfg.ha, paths).split("\n").filter((l) =>
        !l.includes("vrrp_notify_fifo") && !l.includes("vrrp_notify_priority_changes")
      ).join("\n");
      await Deno.writeTextFile(paths.config, conf);
      writeAtomic(paths.faultFile, "0\n");
      writeAtomic(paths.priorityFile, "0\n");
      const c = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns[n],
          "keepalived",
          "-P",
          "-n",
          "-l",
          "-G",
          "-R",
          "-f",
          paths.config,
          "-p",
          paths.pidFile,
          "-r",
          paths.vrrpPidFile,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      procs.push(c);
      drain(c.stdout, logs[n]);
      drain(c.stderr, logs[n]);
    },
    async bareHandover(n, ms) {
      writeAtomic(barePaths(n).faultFile, "1\n");
      await new Promise((r) => setTimeout(r, ms));
      writeAtomic(barePaths(n).faultFile, "0\n");
    },
    async startNode(n) {
      // with a witness, keepwire and its corosync/qdevice get their own mount namespace
      const mountNs = opts.witness
        ? [
          "unshare",
          "-m",
          "--propagation",
          "private",
          "sh",
          "-c",
          "for d in /run /dev/shm /var/lib/corosync /etc/corosync; do " +
          'mkdir -p "$d" && mount -t tmpfs tmpfs "$d" || exit 1; done; exec "$@"',
          "sh",
        ]
        : [];
      const c = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns[n],
          ...mountNs,
          Deno.execPath(),
          "run",
          "-A",
          MAIN,
          ...(opts.launcher ? ["update", "launch"] : ["run"]),
          "-c",
          `${dir}/${n}.json`,
        ],
        cwd: REPO,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      nodes[n] = c;
      drain(c.stdout, logs[n]);
      drain(c.stderr, logs[n]);
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        if (await status(n)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`keepwire on ${n} did not answer within 60 s:\n${logs[n].join("")}`);
    },
    async killNode(n, signal = "SIGKILL") {
      const c = nodes[n];
      if (!c) return;
      c.kill(signal);
      await c.status;
      delete nodes[n];
    },
    signalNode(n, signal) {
      nodes[n]?.kill(signal);
    },
    status,
    post: (n, path, body) => daemonRequest(dataDir(n), "POST", path, body),
    request: (n, method, path, body) => daemonRequest(dataDir(n), method, path, body),
    async waitRole(n, role, ms = 20_000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if ((await status(n))?.role === role) return;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`${n} not ${role} after ${ms} ms: ${await describe()}`);
    },
    async link(n, up) {
      await run(["ip", "-n", ns.sw, "link", "set", `sw_${n}`, up ? "up" : "down"]);
    },
    async holdPeerLink(n, on, port = 7440) {
      const tc = (...a: string[]) => run(["ip", "netns", "exec", ns[n], "tc", ...a]);
      if (!on) {
        await tc("qdisc", "del", "dev", "eth0", "root");
        return;
      }
      await tc("qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1");
      await tc(
        "class",
        "add",
        "dev",
        "eth0",
        "parent",
        "1:",
        "classid",
        "1:1",
        "htb",
        "rate",
        "10gbit",
      );
      await tc(
        "class",
        "add",
        "dev",
        "eth0",
        "parent",
        "1:",
        "classid",
        "1:2",
        "htb",
        "rate",
        "8bit",
        "ceil",
        "8bit",
      );
      await tc(
        "filter",
        "add",
        "dev",
        "eth0",
        "parent",
        "1:",
        "protocol",
        "ip",
        "prio",
        "1",
        "u32",
        "match",
        "ip",
        "protocol",
        "6",
        "0xff",
        "match",
        "ip",
        "dport",
        String(port),
        "0xffff",
        "flowid",
        "1:2",
      );
    },
    async partition(n, cut) {
      await run([
        "ip",
        "-n",
        ns.sw,
        "link",
        "set",
        `sw_${n}`,
        ...(cut ? ["nomaster"] : ["master", "br0"]),
      ]);
    },
    async witnessPort(who, how) {
      const port = `wi_${who}`;
      if (how === "down") await run(["ip", "-n", ns.sw, "link", "set", port, "down"]);
      else if (how === "cut") await run(["ip", "-n", ns.sw, "link", "set", port, "nomaster"]);
      else {
        await run(["ip", "-n", ns.sw, "link", "set", port, "master", "br2"]);
        await run(["ip", "-n", ns.sw, "link", "set", port, "up"]);
      }
    },
    async syncLink(n, how) {
      const port = `sy_${n}`;
      if (how === "down") await run(["ip", "-n", ns.sw, "link", "set", port, "down"]);
      else if (how === "cut") await run(["ip", "-n", ns.sw, "link", "set", port, "nomaster"]);
      else {
        await run(["ip", "-n", ns.sw, "link", "set", port, "master", "br1"]);
        await run(["ip", "-n", ns.sw, "link", "set", port, "up"]);
      }
    },
    async serviceRoute() {
      const out = await run(["ip", "-n", ns.sw, "-o", "route", "show", `${LAB.l3.service}/32`]);
      const via = / via (\S+)/.exec(out)?.[1];
      return via === LAB.l3.nodes.n1 ? "n1" : via === LAB.l3.nodes.n2 ? "n2" : null;
    },
    routeChanges(from, to) {
      let last: string | null = null;
      let n = 0;
      for (const e of routeEvents) {
        if (e.t >= from && e.t <= to && e.via !== last) n++;
        last = e.via;
      }
      return n;
    },
    async clientAsk(n) {
      const out = await run([
        "ip",
        "netns",
        "exec",
        ns.cl,
        Deno.execPath(),
        "eval",
        `const r = await fetch("http://${LAB.l3.nodes[n]}:18080/api/ha", ` +
        `{ signal: AbortSignal.timeout(5000) }); console.log(await r.text());`,
      ]);
      return JSON.parse(out);
    },
    get: <T>(n: NodeName, path: string) => daemonRequest<T>(dataDir(n), "GET", path),
    async addVipByHand(n, ms) {
      await run(["ip", "-n", ns[n], "addr", "add", `${LAB.vip}/24`, "dev", "eth0"]);
      await new Promise((r) => setTimeout(r, ms));
      await run(["ip", "-n", ns[n], "addr", "del", `${LAB.vip}/24`, "dev", "eth0"]);
      await new Promise((r) => setTimeout(r, 200)); // the monitor's lines arrive
    },
    async holders() {
      const out: NodeName[] = [];
      for (const n of ["n1", "n2"] as const) {
        const a = await run(["ip", "-n", ns[n], "-o", "-4", "addr", "show", "dev", "eth0"]);
        if (a.includes(` ${LAB.vip}/`)) out.push(n);
      }
      return out;
    },
    async holdersB() {
      const out: NodeName[] = [];
      for (const n of ["n1", "n2"] as const) {
        const a = await run(["ip", "-n", ns[n], "-o", "-4", "addr", "show", "dev", "eth0"]);
        if (a.includes(` ${LAB.vipB}/`)) out.push(n);
      }
      return out;
    },
    dualHoldMsB(from, to) {
      let total = 0;
      for (const [a1, b1] of intervals("n1", from, to, vipBEvents)) {
        for (const [a2, b2] of intervals("n2", from, to, vipBEvents)) {
          total += Math.max(0, Math.min(b1, b2) - Math.max(a1, a2));
        }
      }
      return total;
    },
    vipAddsB(from, to) {
      return [...vipBEvents.n1, ...vipBEvents.n2].filter((e) => e.add && e.t >= from && e.t <= to)
        .length;
    },
    async probe(ms, during, target) {
      const c = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns.cl,
          Deno.execPath(),
          "run",
          "-A",
          "--unstable-net",
          PROBER,
          target ?? (l3 ? LAB.l3.service : LAB.vip),
          String(LAB.port),
          String(ms),
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      procs.push(c);
      const stdout = new Response(c.stdout).text();
      const errs: string[] = [];
      const reader = c.stderr.pipeThrough(new TextDecoderStream()).getReader();
      const end = Date.now() + 30_000;
      while (!errs.join("").includes("probing")) {
        const { value, done } = await reader.read();
        if (done || Date.now() > end) throw new Error(`prober did not start: ${errs.join("")}`);
        errs.push(value);
      }
      void (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      await new Promise((r) => setTimeout(r, 300)); // a baseline before the fault
      await during();
      await c.stdin.close();
      await c.status;
      const text = (await stdout).trim().split("\n").at(-1) ?? "";
      try {
        return JSON.parse(text) as ProbeResult;
      } catch {
        throw new Error(`prober output not JSON: ${text.slice(0, 200)}`);
      }
    },
    dualHoldMs(from, to) {
      let total = 0;
      for (const [a1, b1] of intervals("n1", from, to)) {
        for (const [a2, b2] of intervals("n2", from, to)) {
          total += Math.max(0, Math.min(b1, b2) - Math.max(a1, a2));
        }
      }
      return total;
    },
    vipEvents: (n) => [...vipEvents[n]],
    vipAdds(from, to) {
      return [...vipEvents.n1, ...vipEvents.n2].filter((e) => e.add && e.t >= from && e.t <= to)
        .length;
    },
    async pids(n) {
      const keepalived: number[] = [];
      for (const f of ["keepalived.pid", "keepalived_vrrp.pid"]) {
        try {
          keepalived.push(Number((await Deno.readTextFile(`${dataDir(n)}/ha/${f}`)).trim()));
        } catch { /* not running */ }
      }
      return { keepwire: nodes[n]?.pid ?? null, keepalived };
    },
    log: (n) => logs[n].join(""),
    qnetdLog: () => qnetdLog.join(""),
    close,
  };
}

/**
 * Figures of one probe window around a fault at `faultAt` (epoch ms): when the client
 * was first answered by `newNode`, probes lost in the window, both-holding ms, flaps.
 */
export function figures(
  lab: HaLab,
  name: string,
  p: ProbeResult,
  faultAt: number,
  newNode: NodeName,
  expectedMoves: number,
): ScenarioFigures {
  const answered = new Set(p.replies.map(([seq]) => seq));
  let lost = 0;
  for (let i = 0; i < p.sent; i++) if (!answered.has(i)) lost++;
  const first =
    p.replies.filter(([seq, node]) => node === newNode && p.t0 + seq * p.interval >= faultAt).map((
      [, , t],
    ) => t).sort((a, b) => a - b)[0];
  const end = p.t0 + p.sent * p.interval;
  return {
    name,
    answeredAfterMs: first === undefined ? null : first - faultAt,
    lost,
    dualHoldMs: Math.round(lab.dualHoldMs(p.t0, end)),
    flaps: Math.max(0, lab.vipAdds(p.t0, end) - expectedMoves),
  };
}

/** Print one scenario's figures as the `HA-LAB` line docs/ha.md quotes. */
export function showFigures(f: ScenarioFigures): void {
  console.log(
    `HA-LAB ${f.name}: answered by the new active after ${f.answeredAfterMs} ms, ` +
      `${f.lost} probes lost (10 ms), both holding ${f.dualHoldMs} ms, ${f.flaps} flaps`,
  );
}

/** Assert, every 100 ms for `ms`, that exactly the nodes `expect` hold the address. */
export async function holdersFor(
  lab: HaLab,
  ms: number,
  expect: string[],
  msg?: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    assertEquals(await lab.holders(), expect, msg);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wait until the async `cond` holds, polling every 100 ms; a throw counts as not yet. */
export async function untilLab(
  cond: () => Promise<boolean>,
  what: string,
  ms = 30_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A node's replication status (`/api/repl/status`). */
export const replStatus = (lab: HaLab, n: NodeName): Promise<ReplModuleStatus> =>
  lab.get<ReplModuleStatus>(n, "/api/repl/status");

/** The user names a node holds (`/api/users`). */
export const userNames = async (lab: HaLab, n: NodeName): Promise<string[]> =>
  (await lab.get<{ users: { name: string }[] }>(n, "/api/users")).users.map((u) => u.name);

/** A node's latest journalled events of one kind (up to 50). */
export const eventsOf = async (lab: HaLab, n: NodeName, kind: string): Promise<KwEvent[]> =>
  (await lab.get<{ events: KwEvent[] }>(n, `/api/events?kind=${kind}&limit=50`)).events;
