/**
 * corosync's side of the witness: corosync.conf rendered from the `ha` section (two
 * nodes, knet with one link per heartbeat path, votequorum with a net-model quorum
 * device voting through corosync-qnetd, a heuristic that passes on the node holding
 * the active role), the command lines keepwire runs corosync and corosync-qdevice
 * with, and the parser of corosync's own log lines, which is how keepwire learns
 * membership and quorum (event-driven, no extra process: the lines are written at the
 * moment votequorum tells its library clients).
 *
 * Option names follow corosync.conf(5), votequorum(5) and corosync-qdevice(8) of
 * Debian 12 (corosync 3.1.7, corosync-qdevice 3.0.3); corosync's parser wants a
 * newline after every `{`.
 * @module
 */
import { createHmac } from "node:crypto";
import type { HaConfig, HaWitnessConfig } from "./config.ts";

/** Files of the witness, all under `<dataDir>/ha/corosync`. */
export interface CorosyncPaths {
  /** Directory (corosync's state_dir too). */
  dir: string;
  /** Rendered corosync.conf. */
  config: string;
  /** The knet key derived from the pair secret. */
  authkey: string;
  /** Present while this node is active: the qdevice heuristic passes then. */
  activeMarker: string;
  /** corosync-qdevice's lock file. */
  qdeviceLock: string;
  /** corosync-qdevice's local socket (corosync-qdevice-tool). */
  qdeviceSocket: string;
}

/** The paths under a data directory. */
export function corosyncPaths(dataDir: string): CorosyncPaths {
  const dir = `${dataDir.replace(/\/+$/, "")}/ha/corosync`;
  return {
    dir,
    config: `${dir}/corosync.conf`,
    authkey: `${dir}/authkey`,
    activeMarker: `${dir}/active`,
    qdeviceLock: `${dir}/corosync-qdevice.pid`,
    qdeviceSocket: `${dir}/corosync-qdevice.sock`,
  };
}

/** One node of the corosync nodelist. */
export interface CorosyncNode {
  /** corosync node id (1 or 2). */
  nodeid: number;
  /** keepwire's node id. */
  name: string;
  /** One address per knet link (ring0_addr, ring1_addr, ...). */
  addrs: string[];
}

function ipv4Number(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/**
 * The two nodes with their corosync node ids: the lower LAN address is node 1, so both
 * nodes render the same nodelist from their mirrored `ha` sections. `links` are extra
 * heartbeat paths (a dedicated sync link): [own address, peer address] each.
 */
export function corosyncNodes(ha: HaConfig, links: [string, string][] = syncLinks(ha)): {
  self: CorosyncNode;
  peer: CorosyncNode;
} {
  const peer = ha.peers[0];
  if (!peer || ha.node.address === undefined) {
    throw new Error("ha.node.address and one peer are required for the witness");
  }
  const own = ha.node.address.split("/")[0];
  const selfFirst = ipv4Number(own) < ipv4Number(peer.address);
  const self: CorosyncNode = {
    nodeid: selfFirst ? 1 : 2,
    name: ha.node.id,
    addrs: [own, ...links.map((l) => l[0])],
  };
  const other: CorosyncNode = {
    nodeid: selfFirst ? 2 : 1,
    name: peer.id ?? `node${selfFirst ? 2 : 1}`,
    addrs: [peer.address, ...links.map((l) => l[1])],
  };
  return { self, peer: other };
}

/** The sync link (`ha.syncLink`) as a second knet link, when configured. */
export function syncLinks(ha: HaConfig): [string, string][] {
  const s = ha.syncLink;
  return s ? [[s.address.split("/")[0], s.peerAddress]] : [];
}

/** The corosync cluster name: configured, or kw-<pair id>. */
export function clusterName(ha: HaConfig): string {
  return ha.witness?.clusterName ?? `kw-${ha.peerLink?.pairId ?? `vrid-${ha.virtualRouterId}`}`;
}

function quoted(s: string): string {
  if (/["\\\n]/.test(s)) throw new Error(`cannot put ${JSON.stringify(s)} in corosync.conf`);
  return `"${s}"`;
}

/** Options of the rendering. */
export interface CorosyncRenderOptions {
  /** Extra heartbeat paths besides the LAN (default: `ha.syncLink`): [own, peer] each. */
  links?: [string, string][];
  /** The `test` binary of the heuristic (absolute: qdevice uses execv). */
  test?: string;
}

/**
 * corosync.conf for this node. The quorum device has one vote (ffsplit needs exactly
 * 1; `two_node` must be off with a device, votequorum(5)); its heuristic passes on the
 * node that is active (the marker file exists), so in a 50/50 split qnetd gives the
 * vote to the side holding the address and a cut peer link moves nothing. Logging
 * goes to stderr only, which keepwire reads ({@link parseCorosyncLine}).
 */
export function renderCorosyncConf(
  ha: HaConfig,
  paths: CorosyncPaths,
  opts: CorosyncRenderOptions = {},
): string {
  const w = ha.witness;
  if (!w) throw new Error("ha.witness is not configured");
  const { self, peer } = corosyncNodes(ha, opts.links ?? syncLinks(ha));
  const nodes = [self, peer].sort((a, b) => a.nodeid - b.nodeid);
  const L: string[] = [];
  L.push("# Rendered by keepwire from its `ha` section at every start; edits here are lost.");
  L.push("totem {");
  L.push("  version: 2");
  L.push(`  cluster_name: ${clusterName(ha)}`);
  L.push("  transport: knet");
  L.push("  crypto_cipher: aes256");
  L.push("  crypto_hash: sha256");
  L.push(`  keyfile: ${paths.authkey}`);
  L.push(`  token: ${w.tokenMs}`);
  L.push("}");
  L.push("nodelist {");
  for (const n of nodes) {
    L.push("  node {");
    L.push(`    nodeid: ${n.nodeid}`);
    L.push(`    name: ${n.name}`);
    n.addrs.forEach((a, i) => L.push(`    ring${i}_addr: ${a}`));
    L.push("  }");
  }
  L.push("}");
  L.push("quorum {");
  L.push("  provider: corosync_votequorum");
  L.push("  device {");
  L.push("    model: net");
  if (w.algorithm === "ffsplit") L.push("    votes: 1");
  L.push(`    timeout: ${w.timeoutMs}`);
  L.push(`    sync_timeout: ${w.syncTimeoutMs}`);
  L.push("    net {");
  L.push(`      host: ${w.host}`);
  L.push(`      port: ${w.port}`);
  L.push(`      algorithm: ${w.algorithm}`);
  L.push(`      tls: ${w.tls}`);
  L.push("    }");
  L.push("    heuristics {");
  L.push("      mode: sync");
  L.push(`      exec_active: ${opts.test ?? "/usr/bin/test"} -e ${quoted(paths.activeMarker)}`);
  L.push("    }");
  L.push("  }");
  L.push("}");
  L.push("logging {");
  L.push("  to_stderr: yes");
  L.push("  to_syslog: no");
  L.push("  to_logfile: no");
  L.push("  timestamp: off");
  L.push("}");
  L.push("system {");
  L.push(`  state_dir: ${paths.dir}`);
  L.push("}");
  return L.join("\n") + "\n";
}

/**
 * The knet key (256 bytes) derived from the pair secret, so both nodes have the same
 * key without copying a file: HMAC-SHA256(secret, "keepwire corosync authkey <i>") for
 * i = 0..7.
 */
export function deriveAuthkey(secret: string): Uint8Array {
  const out = new Uint8Array(256);
  for (let i = 0; i < 8; i++) {
    out.set(createHmac("sha256", secret).update(`keepwire corosync authkey ${i}`).digest(), i * 32);
  }
  return out;
}

/** corosync's command line (foreground; `setpriv` adds the parent-death signal). */
export function corosyncCommand(
  w: HaWitnessConfig,
  paths: CorosyncPaths,
  setpriv: string | null,
): string[] {
  const cmd = [w.corosync, "-f", "-c", paths.config];
  return setpriv ? [setpriv, "--pdeathsig", "TERM", ...cmd] : cmd;
}

/**
 * corosync-qdevice's command line: foreground, its lock file and local socket under
 * keepwire's data dir (not /var/run).
 */
export function qdeviceCommand(
  w: HaWitnessConfig,
  paths: CorosyncPaths,
  setpriv: string | null,
): string[] {
  const cmd = [
    w.qdevice,
    "-f",
    "-S",
    `lock_file=${paths.qdeviceLock},local_socket_file=${paths.qdeviceSocket}`,
  ];
  return setpriv ? [setpriv, "--pdeathsig", "TERM", ...cmd] : cmd;
}

/** What one corosync log line says about membership and quorum. */
export type CorosyncLine =
  | { type: "token_lost" }
  | { type: "membership"; ring: string; joined: number[]; left: number[] }
  | { type: "quorate"; quorate: boolean }
  | { type: "members"; ids: number[] }
  | { type: "ready" }
  | { type: "other" };

const ids = (s: string | undefined): number[] =>
  (s ?? "").trim().split(/\s+/).filter((x) => x !== "").map(Number);

/**
 * Parse one line corosync logged (exec/totemsrp.c, exec/vsf_quorum.c, exec/main.c of
 * corosync 3.1.7). `quorate` and `members` come from votequorum's decision: the
 * primary/non-primary line only when the state flips, `Members[N]: ids` at every
 * decision (a membership change or a quorum change), at the same moment the quorum
 * library's clients are told.
 */
export function parseCorosyncLine(line: string): CorosyncLine {
  if (line.includes("[QUORUM]")) {
    if (line.includes("This node is within the primary component")) {
      return { type: "quorate", quorate: true };
    }
    if (line.includes("This node is within the non-primary component")) {
      return { type: "quorate", quorate: false };
    }
    const m = /\[QUORUM\] Members\[(\d+)\]:((?: \d+)*)\s*$/.exec(line);
    if (m) return { type: "members", ids: ids(m[2]) };
    return { type: "other" };
  }
  if (line.includes("[TOTEM")) {
    if (line.includes("A processor failed, forming new configuration")) {
      return { type: "token_lost" };
    }
    const m = /A new membership \(([0-9a-fA-F]+\.[0-9a-fA-F]+)\) was formed\.(.*)$/.exec(line);
    if (m) {
      const joined = /Members joined:((?: \d+)*)/.exec(m[2]);
      const left = /Members left:((?: \d+)*)/.exec(m[2]);
      return { type: "membership", ring: m[1], joined: ids(joined?.[1]), left: ids(left?.[1]) };
    }
    return { type: "other" };
  }
  if (line.includes("Completed service synchronization, ready to provide service")) {
    return { type: "ready" };
  }
  return { type: "other" };
}
