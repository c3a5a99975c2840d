/**
 * keepalived's side: the configuration rendered from the `ha` section (VRRPv3, one
 * instance, track files, notify FIFO), the lines of its notify FIFO, and the command
 * line keepwire runs it with. Option names follow keepalived.conf(5) of keepalived
 * 2.2.7 (Debian 12) and its parser (keepalived/vrrp/vrrp_parser.c,
 * keepalived/core/global_parser.c); every rendered file passes `keepalived -t`
 * (tests/ha_keepalived_test.ts).
 * @module
 */
import type { HaConfig } from "./config.ts";
import { downTimerAdverts } from "./config.ts";
import { failbackGated } from "./failback.ts";
import type { EngineState } from "./role.ts";

/** The VRRP instance name keepwire renders (what the FIFO lines carry). */
export const INSTANCE = "keepwire";
/** The second heartbeat path's instance (with `ha.syncLink`): no address, same priority. */
export const SYNC_INSTANCE = "keepwire_sync";
/** The second client set's instance (with `ha.activeActive`). */
export const INSTANCE_B = "keepwire_b";
/** Per-set release track files (active-active: `ha failover --set a|b`). */
export const RELEASE_TRACK = { a: "kw_release_a", b: "kw_release_b" } as const;
/** The sync group of the two instances (with `ha.syncLink`). */
export const PATHS_GROUP = "keepwire_paths";
/** Name of the FAULT track file in keepalived's config. */
export const FAULT_TRACK = "kw_fault";
/** Name of the priority track file in keepalived's config. */
export const PRIORITY_TRACK = "kw_priority";

/**
 * The address an instance without virtual addresses carries (the sync link's instance;
 * a layer-3 pair's, which moves the service with ha.hook): keepalived 2.2.7 refuses a
 * VRRPv3 instance without one (its `no_virtual_ipaddress` came later), so the active
 * holds this link-local /32 on that interface (never routed; it marks the active there).
 */
export function markerAddress(vrid: number): string {
  return `169.254.254.${vrid}`;
}

/** Files keepalived reads or writes, all under `<dataDir>/ha`. */
export interface KeepalivedPaths {
  /** Directory of them all. */
  dir: string;
  /** Rendered configuration. */
  config: string;
  /** Notify FIFO. */
  fifo: string;
  /** track_file with weight 0 (non-zero → FAULT). */
  faultFile: string;
  /** track_file with weight 1 (added to the priority). */
  priorityFile: string;
  /** Active-active: per-set release files (weight 0: one set to FAULT). */
  releaseFile: { a: string; b: string };
  /** Parent pid file. */
  pidFile: string;
  /** VRRP child pid file. */
  vrrpPidFile: string;
  /** keepwire's heartbeat: epoch ms written by the main loop every 500 ms. */
  aliveFile: string;
  /** The script keepalived runs every second to check the heartbeat ({@link ALIVE_SCRIPT}). */
  aliveScript: string;
}

/** Name of the liveness script in keepalived's config. */
export const ALIVE_TRACK = "kw_alive";

/**
 * The liveness check keepalived runs (`vrrp_script`, weight 0: failure = FAULT): the
 * heartbeat file holds epoch ms; older than the limit (ms, second argument) fails.
 * It catches what the parent-death signal cannot: keepwire alive but stuck.
 */
export const ALIVE_SCRIPT = `#!/bin/sh
# Rendered by keepwire: fails when keepwire's heartbeat ($1, epoch ms) is older than $2 ms.
read -r t < "$1" || exit 1
[ $(( $(date +%s%3N) - t )) -lt "$2" ]
`;

/** The paths under a data directory. */
export function keepalivedPaths(dataDir: string): KeepalivedPaths {
  const dir = `${dataDir.replace(/\/+$/, "")}/ha`;
  return {
    dir,
    config: `${dir}/keepalived.conf`,
    fifo: `${dir}/notify.fifo`,
    faultFile: `${dir}/fault.track`,
    priorityFile: `${dir}/priority.track`,
    releaseFile: { a: `${dir}/release_a.track`, b: `${dir}/release_b.track` },
    pidFile: `${dir}/keepalived.pid`,
    vrrpPidFile: `${dir}/keepalived_vrrp.pid`,
    aliveFile: `${dir}/alive`,
    aliveScript: `${dir}/alive.sh`,
  };
}

function quote(s: string): string {
  if (/["\n\\]/.test(s)) throw new Error(`cannot put ${JSON.stringify(s)} in keepalived.conf`);
  return `"${s}"`;
}

/** Seconds with up to two decimals, as keepalived's advert_int wants them. */
function seconds(ms: number): string {
  return String(Math.round(ms / 10) / 100);
}

/** Extra knobs for rendering (tests, the lab). */
export interface RenderOptions {
  /** ping binary for ping tracks. */
  ping?: string;
}

/**
 * keepalived.conf for this node. Both nodes start in BACKUP: with `preempt` off
 * that is the "sticky master" keepalived documents (`nopreempt` needs state BACKUP).
 * The engine writes 1 to the FAULT track file before it spawns keepalived (and
 * `init_file 1` covers a missing file), so keepalived starts in FAULT until keepwire
 * has evaluated its conditions and writes 0. No `overwrite`: keepalived must not
 * reset a value keepwire already wrote.
 */
export function renderKeepalivedConf(
  ha: HaConfig,
  paths: KeepalivedPaths,
  opts: RenderOptions = {},
): string {
  if (ha.interface === undefined || ha.node.address === undefined) {
    throw new Error("ha.interface and ha.node.address are required to render keepalived.conf");
  }
  const iface = ha.interface;
  const ownAddress = ha.node.address.split("/")[0];
  const L: string[] = [];
  L.push("# Rendered by keepwire from its `ha` section at every start; edits here are lost.");
  L.push("global_defs {");
  L.push(`  router_id ${ha.node.id}`);
  L.push("  vrrp_version 3");
  L.push(`  vrrp_notify_fifo ${quote(paths.fifo)}`);
  L.push("  vrrp_notify_priority_changes true");
  // after a dual master, the winner re-sends GARPs when the loser's advert arrives
  L.push("  vrrp_higher_prio_send_advert true");
  L.push("  vrrp_garp_lower_prio_repeat 1");
  L.push("  vrrp_garp_master_delay 1");
  L.push("  vrrp_garp_master_repeat 3");
  // realtime scheduling when timers run late: starvation is the usual cause of split brain
  L.push("  max_auto_priority");
  // the liveness script (and ping tracks) run as root; keepalived refuses scripts in
  // paths a non-root user could write to
  L.push("  script_user root");
  L.push("  enable_script_security");
  L.push("}");
  L.push(`track_file ${FAULT_TRACK} {`);
  L.push(`  file ${quote(paths.faultFile)}`);
  L.push("  weight 0");
  L.push("  init_file 1");
  L.push("}");
  L.push(`track_file ${PRIORITY_TRACK} {`);
  L.push(`  file ${quote(paths.priorityFile)}`);
  L.push("  weight 1");
  L.push("  init_file 0");
  L.push("}");
  if (ha.activeActive) {
    for (const set of ["a", "b"] as const) {
      L.push(`track_file ${RELEASE_TRACK[set]} {`);
      L.push(`  file ${quote(paths.releaseFile[set])}`);
      L.push("  weight 0");
      L.push("  init_file 0");
      L.push("}");
    }
  }
  L.push(`vrrp_script ${ALIVE_TRACK} {`);
  L.push(`  script ${quote(`${paths.aliveScript} ${paths.aliveFile} ${ha.aliveTimeoutMs}`)}`);
  L.push("  interval 1");
  L.push("  timeout 1");
  L.push("  weight 0");
  L.push("  fall 1");
  L.push("  rise 1");
  L.push("}");
  ha.track.ping.forEach((p, i) => {
    const secs = p.intervalMs / 1000;
    L.push(`vrrp_script kw_ping_${i} {`);
    L.push(`  script ${quote(`${opts.ping ?? "/bin/ping"} -n -q -c 1 -W 1 ${p.address}`)}`);
    L.push(`  interval ${secs}`);
    L.push(`  timeout ${Math.max(1, secs)}`);
    L.push(`  weight ${p.weight}`);
    L.push(`  fall ${p.fall}`);
    L.push(`  rise ${p.rise}`);
    L.push("}");
  });
  if (ha.syncLink) {
    // two heartbeat paths: keepalived takes a sync group to MASTER only when every
    // member wants it (vrrp_sync_can_goto_master in keepalived's vrrp_sync.c: "prefer
    // backup state to avoid thrashing"), so the standby takes over only when the
    // active is silent on the LAN AND on the sync link; FAULT of one member (a track
    // file, the LAN's carrier) takes the group to FAULT. The same tracks on both keep
    // their priorities equal (sync_group_tracking_weight allows weighted tracks).
    L.push(`vrrp_sync_group ${PATHS_GROUP} {`);
    L.push("  group {");
    L.push(`    ${INSTANCE}`);
    L.push(`    ${SYNC_INSTANCE}`);
    L.push("  }");
    L.push("  sync_group_tracking_weight");
    L.push("}");
  }
  const unicast = ha.unicast ? { src: ownAddress, peers: ha.peers.map((p) => p.address) } : null;
  const vips = ha.virtualAddresses.length > 0
    ? ha.virtualAddresses.map((v) => `${v} dev ${iface}`)
    : [`${markerAddress(ha.virtualRouterId)}/32 dev ${iface}`];
  const aa = ha.activeActive;
  // with replication keepwire fails back (failback.ts: once the returning owner's channel
  // caught up, the holder drains and hands over): keepalived never preempts there
  const policy: Policy = failbackGated(ha)
    ? { preempt: false, delayMs: 0 }
    : aa
    ? { preempt: aa.failback === "auto", delayMs: aa.failbackDelayMs }
    : { preempt: ha.preempt, delayMs: ha.preemptDelayMs };
  instance(L, ha, INSTANCE, iface, unicast, vips, policy, {
    extraTracks: aa ? [RELEASE_TRACK.a] : [],
  });
  if (aa) {
    // the second set: mirrored priority (this node's is the peer's), its own release file
    instance(
      L,
      { ...ha, virtualRouterId: aa.virtualRouterId },
      INSTANCE_B,
      iface,
      unicast,
      aa.virtualAddresses.map((v) => `${v} dev ${iface}`),
      policy,
      { priority: ha.peers[0]?.priority ?? ha.node.priority, extraTracks: [RELEASE_TRACK.b] },
    );
  }
  if (ha.syncLink) {
    // the sync link: unicast to the peer's sync address, its carrier not tracked (a
    // pulled sync cable alone must move nothing; dont_track_primary)
    const s = ha.syncLink;
    instance(
      L,
      ha,
      SYNC_INSTANCE,
      s.interface,
      {
        src: s.address.split("/")[0],
        peers: [s.peerAddress],
      },
      [`${markerAddress(ha.virtualRouterId)}/32 dev ${s.interface}`],
      policy,
      { dontTrackPrimary: true },
    );
  }
  return L.join("\n") + "\n";
}

/** Preemption of an instance: ha.preempt, or with active-active its failback. */
interface Policy {
  preempt: boolean;
  delayMs: number;
}

function instance(
  L: string[],
  ha: HaConfig,
  name: string,
  iface: string,
  unicast: { src: string; peers: string[] } | null,
  vips: string[],
  policy: Policy,
  o: { dontTrackPrimary?: boolean; priority?: number; extraTracks?: string[] } = {},
): void {
  L.push(`vrrp_instance ${name} {`);
  L.push("  state BACKUP");
  L.push(`  interface ${iface}`);
  if (o.dontTrackPrimary) L.push("  dont_track_primary");
  L.push(`  virtual_router_id ${ha.virtualRouterId}`);
  L.push(`  priority ${o.priority ?? ha.node.priority}`);
  L.push(`  advert_int ${seconds(ha.advertMs)}`);
  if (!policy.preempt) L.push("  nopreempt");
  else if (policy.delayMs > 0) L.push(`  preempt_delay ${policy.delayMs / 1000}`);
  const adverts = downTimerAdverts(ha.holdDownMs, ha.advertMs);
  if (adverts !== 3) L.push(`  down_timer_adverts ${adverts}`);
  if (unicast) {
    L.push(`  unicast_src_ip ${unicast.src}`);
    L.push("  unicast_peer {");
    for (const p of unicast.peers) L.push(`    ${p}`);
    L.push("  }");
    L.push("  check_unicast_src");
  }
  if (vips.length > 0) {
    L.push("  virtual_ipaddress {");
    for (const v of vips) L.push(`    ${v}`);
    L.push("  }");
  }
  L.push("  track_file {");
  L.push(`    ${FAULT_TRACK}`);
  L.push(`    ${PRIORITY_TRACK}`);
  for (const t of o.extraTracks ?? []) L.push(`    ${t}`);
  L.push("  }");
  L.push("  track_script {");
  L.push(`    ${ALIVE_TRACK}`);
  ha.track.ping.forEach((_, i) => L.push(`    kw_ping_${i}`));
  L.push("  }");
  L.push("}");
}

/** One parsed notify FIFO line. */
export type FifoLine =
  | { type: "state"; instance: string; state: EngineState; priority: number }
  | { type: "priority"; instance: string; state: EngineState; priority: number }
  | { type: "rx_lower_priority"; instance: string; priority: number }
  | { type: "group"; group: string; state: EngineState }
  | { type: "other"; line: string };

const FIFO_RE =
  /^INSTANCE "([^"]+)" (MASTER|BACKUP|FAULT|STOP|DELETED|MASTER_RX_LOWER_PRI|MASTER_PRIORITY|BACKUP_PRIORITY|FAULT_PRIORITY) (\d+)$/;

const GROUP_RE = /^GROUP "([^"]+)" (MASTER|BACKUP|FAULT|STOP|DELETED) (\d+)$/;

/**
 * Parse a line of `vrrp_notify_fifo`: `INSTANCE "keepwire" MASTER 100`,
 * `INSTANCE "keepwire" BACKUP_PRIORITY 70` (with vrrp_notify_priority_changes),
 * `INSTANCE "keepwire" MASTER_RX_LOWER_PRI 90`, `GROUP "keepwire_paths" MASTER 0` (a sync
 * group's state). DELETED counts as STOP. Anything else is `other`.
 */
export function parseFifoLine(raw: string): FifoLine {
  const line = raw.trim();
  const g = GROUP_RE.exec(line);
  if (g) {
    return { type: "group", group: g[1], state: g[2] === "DELETED" ? "STOP" : g[2] as EngineState };
  }
  const m = FIFO_RE.exec(line);
  if (!m) return { type: "other", line };
  const [, instance, what, prio] = m;
  const priority = Number(prio);
  if (what === "MASTER_RX_LOWER_PRI") return { type: "rx_lower_priority", instance, priority };
  if (what.endsWith("_PRIORITY")) {
    return { type: "priority", instance, state: what.split("_")[0] as EngineState, priority };
  }
  const state: EngineState = what === "DELETED" ? "STOP" : what as EngineState;
  return { type: "state", instance, state, priority };
}

/**
 * The command line of keepalived under keepwire: VRRP only (`-P`), in the
 * foreground (`-n`), logging to stderr (`-l -D`, no syslog `-G`), no respawn of its
 * child (`-R`: keepwire restarts it), pid files under the data dir. With `setpriv`,
 * keepalived gets SIGTERM when keepwire dies (PR_SET_PDEATHSIG; keepalived's VRRP
 * child already has it against its parent), so a kill -9 of keepwire stops VRRP
 * gracefully: a priority-0 advert and the addresses removed.
 */
export function keepalivedCommand(
  binary: string,
  paths: KeepalivedPaths,
  setpriv: string | null,
): { command: string; args: string[] } {
  const args = [
    "-P",
    "-n",
    "-l",
    "-D",
    "-G",
    "-R",
    "-f",
    paths.config,
    "-p",
    paths.pidFile,
    "-r",
    paths.vrrpPidFile,
  ];
  if (setpriv) return { command: setpriv, args: ["--pdeathsig", "TERM", binary, ...args] };
  return { command: binary, args };
}
