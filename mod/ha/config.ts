/**
 * The `ha` config section: this node, its peer, the virtual addresses, VRRP timing
 * and the failover policy. Disabled by default (the embedded default starts without
 * keepalived). When enabled, the cross-field rules name each bad field:
 * `ha.virtualAddresses[0]: 10.9.0.50 is outside 10.231.0.0/24 (the prefix of ha.node.address)`,
 * `ha.peers[0].priority: equal to ha.node.priority (100)`, `ha.interface: no network
 * interface "eth9" on this machine (/sys/class/net)`, `ha.peers: at least one peer is needed`.
 * @module
 */
import { z } from "zod";
import { formatNetwork, inPrefix, isIpv4, isNetworkOrBroadcast, parseCidr } from "./net.ts";
import { replConfigSchema } from "../repl/config.ts";

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Linux interface names: up to 15 bytes, no `/`, whitespace or `:`. */
const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;

const ipv4Schema = z.string().refine(isIpv4, "expected an IPv4 address, e.g. 10.231.0.12");
const cidrSchema = z.string().refine(
  (s) => parseCidr(s) !== null,
  "expected an IPv4 address with its prefix, e.g. 10.231.0.50/24",
);

/** One peer of this node. */
export const haPeerSchema = z.strictObject({
  address: ipv4Schema.describe("the peer's address (VRRP unicast peer, peer API)"),
  id: z.string().regex(NAME_RE, "lowercase letters, digits, - and _ (max 32)").optional()
    .describe("the peer's node id"),
  priority: z.number().int().min(1).max(254).optional().describe(
    "the peer's priority, when known: checked to differ from this node's",
  ),
});

/** A ping target whose loss lowers this node's priority (keepalived vrrp_script). */
export const haPingTrackSchema = z.strictObject({
  address: ipv4Schema.describe("address to ping (e.g. the default gateway)"),
  weight: z.number().int().min(-253).max(-1).default(-50).describe(
    "added to the priority while the target does not answer",
  ),
  intervalMs: z.number().int().min(1000).max(3_600_000).multipleOf(1000).default(2000).describe(
    "ping period (whole seconds)",
  ),
  fall: z.number().int().min(1).max(100).default(2).describe(
    "failed pings before the weight applies",
  ),
  rise: z.number().int().min(1).max(100).default(2).describe("good pings before it is lifted"),
});

/**
 * The witness: corosync + corosync-qdevice on this node (keepwire runs them), voting with
 * corosync-qnetd on a third host. Defaults are the timings measured in docs/ha.md: token
 * 1000 ms, qdevice timeout 2000 ms and sync_timeout 2000 ms (1250 / 1000 made qnetd drop
 * the connection during a membership change, so both sides lost quorum for ~0.8 s).
 */
export const haWitnessSchema = z.strictObject({
  host: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:-]+$/, "a host name or IP address")
    .describe("corosync-qnetd host (must resolve on this node)"),
  port: z.number().int().min(1).max(65535).default(5403).describe("corosync-qnetd TCP port"),
  algorithm: z.enum(["ffsplit", "lms"]).default("ffsplit").describe(
    "qnetd's decision algorithm: ffsplit (a 50/50 split gives the vote to one side; the " +
      "side holding the active address wins through a heuristic) or lms (last man standing)",
  ),
  tls: z.enum(["off", "on", "required"]).default("on").describe(
    "TLS to qnetd: on/required need the NSS database made by corosync-qdevice-net-certutil; " +
      "off only on a trusted link",
  ),
  tokenMs: z.number().int().min(200).max(60_000).default(1000).describe(
    "corosync totem token timeout: a lost peer is noticed after token + consensus (1.2 x token)",
  ),
  timeoutMs: z.number().int().min(1250).max(120_000).default(2000).describe(
    "quorum.device.timeout: the qdevice's poll period and its heartbeat to qnetd (0.8 x this)",
  ),
  syncTimeoutMs: z.number().int().min(1000).max(120_000).default(2000).describe(
    "quorum.device.sync_timeout: the longest a membership change waits for the qdevice's " +
      "vote; a node cut from everything keeps its old quorum at most this long",
  ),
  demoteBoundMs: z.number().int().min(100).max(10_000).default(500).describe(
    "an active node that lost quorum must see keepalived leave MASTER within this, or it " +
      "stops petting the hardware watchdog (self-fencing)",
  ),
  promoteMarginMs: z.number().int().min(0).max(10_000).default(200).describe(
    "added to syncTimeoutMs + demoteBoundMs: how long after corosync dropped the peer from " +
      "the membership a standby waits before it may take over",
  ),
  clusterName: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "letters, digits, - and _ (max 32)")
    .optional().describe("corosync cluster name, the same on both nodes (default kw-<pair id>)"),
  corosync: z.string().min(1).default("corosync").describe("corosync binary"),
  qdevice: z.string().min(1).default("corosync-qdevice").describe("corosync-qdevice binary"),
});

/** The validated witness section. */
export type HaWitnessConfig = z.infer<typeof haWitnessSchema>;

/** How long a standby waits after corosync dropped the peer before it may take over. */
export function promoteWaitMs(w: HaWitnessConfig): number {
  return w.syncTimeoutMs + w.demoteBoundMs + w.promoteMarginMs;
}

/** Can this machine resolve a host name (IP literals always can)? (tests replace it) */
export type HostCheck = (host: string) => string | null;

/** Default host check: IP literals pass; names through `getent ahostsv4` (NSS, 3 s bound). */
export const getentHostCheck: HostCheck = (host: string): string | null => {
  if (isIpv4(host)) return null;
  try {
    const o = new Deno.Command("timeout", {
      args: ["3", "getent", "ahostsv4", host],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (o.success && new TextDecoder().decode(o.stdout).trim() !== "") return null;
    return `cannot resolve "${host}" on this machine (getent ahostsv4)`;
  } catch (e) {
    return `cannot resolve "${host}": ${(e as Error).message}`;
  }
};

let hostCheck: HostCheck = getentHostCheck;

/** Replace the host check (tests); returns the previous one. */
export function setHostCheck(fn: HostCheck): HostCheck {
  const prev = hostCheck;
  hostCheck = fn;
  return prev;
}

/** Can this machine see a network interface by that name? (tests replace it) */
export type InterfaceCheck = (name: string) => boolean;

/** Default interface check: `/sys/class/net/NAME` exists (per network namespace). */
export const sysInterfaceExists: InterfaceCheck = (name: string): boolean => {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
};

let interfaceExists: InterfaceCheck = sysInterfaceExists;

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Replace the interface check (tests); returns the previous one. */
export function setInterfaceCheck(fn: InterfaceCheck): InterfaceCheck {
  const prev = interfaceExists;
  interfaceExists = fn;
  return prev;
}

/** Most adverts keepalived's `down_timer_adverts` accepts. */
export const MAX_DOWN_TIMER_ADVERTS = 100;

/** `down_timer_adverts` for a hold-down: at least 3 (the RFC), more to ride out short outages. */
export function downTimerAdverts(holdDownMs: number, advertMs: number): number {
  return Math.max(3, Math.ceil(holdDownMs / advertMs));
}

const baseSchema = z.strictObject({
  enabled: z.boolean().default(false).describe(
    "run the HA pair (keepalived must be installed); off: no keepalived, role `disabled`",
  ),
  node: z.strictObject({
    id: z.string().regex(NAME_RE, "lowercase letters, digits, - and _ (max 32)").default("node1")
      .describe("this node's id (unique in the pair)"),
    priority: z.number().int().min(1).max(254).default(100).describe(
      "VRRP priority 1..254 (higher wins an election); must differ from the peer's",
    ),
    address: cidrSchema.optional().describe(
      "this node's address on ha.interface with its prefix, e.g. 10.231.0.11/24 (required when enabled)",
    ),
  }).default({ id: "node1", priority: 100 }).describe("this node in the pair"),
  interface: z.string().regex(IFNAME_RE, "a network interface name (max 15 characters)")
    .optional().describe("interface VRRP runs on and the virtual addresses live on"),
  virtualRouterId: z.number().int().min(1).max(255).default(51).describe(
    "VRRP virtual router id 1..255, the same on both nodes, unique on the link",
  ),
  advertMs: z.number().int().min(10).max(40_950).multipleOf(10).default(1000).describe(
    "VRRPv3 advert interval (10 ms steps); failover after ~3 adverts plus skew",
  ),
  virtualAddresses: z.array(cidrSchema).default([]).describe(
    'addresses that move to the active node, with prefix, e.g. ["10.231.0.50/24"]',
  ),
  peers: z.array(haPeerSchema).default([]).describe("the other node of the pair"),
  unicast: z.boolean().default(false).describe(
    "send adverts to the peers' addresses (unicast_peer) instead of multicast",
  ),
  failover: z.enum(["auto", "manual"]).default("auto").describe(
    "auto: the standby takes over by itself; manual: it raises ha.failover_pending and waits " +
      "for `ha failover` on it (needs ha.peerLink)",
  ),
  holdDownMs: z.number().int().min(0).max(3_600_000).default(0).describe(
    "the active must be silent this long before the standby takes over (0: 3 adverts)",
  ),
  preempt: z.boolean().default(false).describe(
    "a returning higher-priority node takes the address back (default off: no flapping); " +
      "with ha.replication only once its replication caught up, by a graceful handover",
  ),
  preemptDelayMs: z.number().int().min(0).max(1_000_000).multipleOf(1000).default(0).describe(
    "with preempt: wait this long (whole seconds) before taking the address back (with " +
      "ha.replication: counted from when its replication caught up)",
  ),
  aliveTimeoutMs: z.number().int().min(1000).max(60_000).default(3000).describe(
    "keepwire's main loop writes a heartbeat every 500 ms; keepalived goes to FAULT when it " +
      "is older than this (a stuck keepwire; checked every second)",
  ),
  failoverHoldMs: z.number().int().min(100).max(600_000).default(3000).describe(
    "`ha failover` keeps this node in FAULT this long so the peer takes over",
  ),
  syncLink: z.strictObject({
    interface: z.string().regex(IFNAME_RE, "a network interface name (max 15 characters)")
      .describe("the dedicated link between the two nodes (a second heartbeat path)"),
    address: cidrSchema.describe("this node's address on it with its prefix, e.g. 10.232.1.1/30"),
    peerAddress: ipv4Schema.describe("the peer's address on it, inside that prefix"),
  }).optional().describe(
    "a second heartbeat path (docs/ha.md): VRRP runs on ha.interface and on this link, and " +
      "the standby takes over only when the active is silent on both",
  ),
  activeActive: z.strictObject({
    virtualRouterId: z.number().int().min(1).max(255).describe(
      "VRID of the second set, the same on both nodes, not ha.virtualRouterId",
    ),
    virtualAddresses: z.array(cidrSchema).min(1).describe(
      "the second client set's addresses (the peer's set: this node is its standby)",
    ),
    failback: z.enum(["manual", "auto"]).default("manual").describe(
      "manual: a set stays where it is until `ha failover --set`; auto: its owner takes it " +
        "back (with ha.replication once that set's channel caught up, by a graceful handover)",
    ),
    failbackDelayMs: z.number().int().min(0).max(1_000_000).multipleOf(1000).default(0)
      .describe(
        "auto failback: wait this long (whole seconds) before taking a set back (with " +
          "ha.replication: counted from when its channel caught up)",
      ),
  }).optional().describe(
    "active-active: a second VRRP instance with mirrored priorities (this node's priority is " +
      "ha.peers[0].priority there), so each node is active for one client set and standby for " +
      "the other; the survivor serves both",
  ),
  hook: z.strictObject({
    command: z.array(z.string().min(1).max(4096)).min(1).max(64).describe(
      "argv of the command run when this node's role becomes active, standby, fault or " +
        "maintenance (absolute path first); KW_HA_ROLE, KW_HA_OLD_ROLE, KW_HA_CAUSE, " +
        "KW_HA_REASON, KW_HA_NODE, KW_HA_PEER, KW_HA_VIRTUAL_ADDRESSES in its environment",
    ),
    timeoutMs: z.number().int().min(100).max(600_000).default(5000).describe(
      "a run taking longer is killed (SIGKILL) and journalled as failed",
    ),
  }).optional().describe(
    "notify hook: moves the service where no address moves (a layer-3 pair: a route, DNS)",
  ),
  peerLink: z.strictObject({
    port: z.number().int().min(1).max(65535).default(7440).describe(
      "TCP port of the peer link on both nodes (own listener, routes /peer/v1/...)",
    ),
    bind: ipv4Schema.optional().describe("address to listen on (default: ha.node.address)"),
    secret: z.string().min(16).max(256).optional().describe(
      "the pair secret, the same on both nodes (at least 16 characters; redacted); not needed " +
        "once the nodes are paired (keepwire ha pair: certificates and a secret of their own)",
    ).meta({ writeOnly: true }),
    pairId: z.string().regex(NAME_RE, "lowercase letters, digits, - and _ (max 32)").optional()
      .describe("the pair's id, the same on both nodes (default: vrid-<virtualRouterId>)"),
    intervalMs: z.number().int().min(100).max(60_000).default(1000).describe(
      "how often each node reads the peer's health",
    ),
    timeoutMs: z.number().int().min(100).max(60_000).default(1500).describe(
      "a poll without an answer this long failed",
    ),
    lostAfter: z.number().int().min(1).max(100).default(3).describe(
      "failed polls in a row before ha.peer_lost",
    ),
  }).optional().describe(
    "mutual monitoring over the peer link (HMAC with the pair secret; no TLS yet)",
  ),
  replication: replConfigSchema.optional().describe(
    "replicate the store's shared tables to the standby over the peer link (docs/ha.md, Replication)",
  ),
  witness: haWitnessSchema.optional().describe(
    "corosync-qnetd witness: quorum decides who may be active (needs ha.peerLink)",
  ),
  track: z.strictObject({
    ping: z.array(haPingTrackSchema).default([]).describe(
      "ping targets; an unanswered one lowers the priority by its weight",
    ),
  }).default({ ping: [] }).describe("conditions that lower this node's priority"),
  keepalived: z.strictObject({
    command: z.string().min(1).default("keepalived").describe("keepalived binary"),
  }).default({ command: "keepalived" }).describe("the keepalived keepwire runs"),
});

type HaBase = z.infer<typeof baseSchema>;

/** The cross-field rules of an enabled `ha` section: [path, message] per problem. */
export function haProblems(ha: HaBase): [PropertyKey[], string][] {
  const out: [PropertyKey[], string][] = [];
  if (!ha.enabled) return out;
  const add = (path: PropertyKey[], msg: string) => out.push([path, msg]);
  if (ha.interface === undefined) add(["interface"], "required when ha.enabled");
  else if (!interfaceExists(ha.interface)) {
    add(["interface"], `no network interface "${ha.interface}" on this machine (/sys/class/net)`);
  }
  const own = ha.node.address === undefined ? null : parseCidr(ha.node.address);
  if (ha.node.address === undefined) add(["node", "address"], "required when ha.enabled");
  else if (own && isNetworkOrBroadcast(own)) {
    add(["node", "address"], `${own.address} is the network or broadcast address of its prefix`);
  }
  if (ha.peers.length === 0) add(["peers"], "at least one peer is needed");
  if (ha.peers.length > 1) add(["peers"], "a pair has exactly one peer (more are not built yet)");
  ha.peers.forEach((p, i) => {
    if (own && p.address === own.address) {
      add(["peers", i, "address"], `${p.address} is this node's own address (ha.node.address)`);
    } else if (own && !ha.unicast && isIpv4(p.address) && !inPrefix(p.address, own)) {
      add(
        ["peers", i, "address"],
        `${p.address} is outside ${formatNetwork(own)} (the prefix of ha.node.address); ` +
          "multicast VRRP needs one link: set ha.unicast for a peer on another subnet",
      );
    }
    if (p.priority !== undefined && p.priority === ha.node.priority) {
      add(
        ["peers", i, "priority"],
        `equal to ha.node.priority (${p.priority}): the nodes need different priorities`,
      );
    }
    if (p.id !== undefined && p.id === ha.node.id) {
      add(["peers", i, "id"], `equal to ha.node.id ("${p.id}")`);
    }
  });
  if (ha.virtualAddresses.length === 0 && ha.hook === undefined) {
    add(
      ["virtualAddresses"],
      "at least one virtual address is needed (or ha.hook, to move the service another way)",
    );
  }
  if (ha.hook !== undefined) {
    const cmd = ha.hook.command[0];
    if (!cmd.startsWith("/")) add(["hook", "command", 0], `"${cmd}" is not an absolute path`);
    else if (!fileExists(cmd)) add(["hook", "command", 0], `${cmd} does not exist on this machine`);
  }
  const seen = new Set<string>();
  ha.virtualAddresses.forEach((v, i) => {
    const c = parseCidr(v);
    if (!c) return;
    if (seen.has(c.address)) add(["virtualAddresses", i], `${c.address} is listed twice`);
    seen.add(c.address);
    if (own) {
      if (!inPrefix(c.address, own)) {
        add(
          ["virtualAddresses", i],
          `${c.address} is outside ${formatNetwork(own)} (the prefix of ha.node.address)`,
        );
      } else if (c.prefix !== own.prefix) {
        add(
          ["virtualAddresses", i],
          `prefix /${c.prefix} differs from ha.node.address's /${own.prefix}`,
        );
      }
      if (c.address === own.address) {
        add(["virtualAddresses", i], `${c.address} is this node's own address`);
      }
    }
    if (isNetworkOrBroadcast(c)) {
      add(["virtualAddresses", i], `${c.address} is the network or broadcast address of ${v}`);
    }
    if (ha.peers.some((p) => p.address === c.address)) {
      add(["virtualAddresses", i], `${c.address} is a peer's own address`);
    }
  });
  if (ha.preemptDelayMs > 0 && !ha.preempt) {
    add(["preemptDelayMs"], "only applies with ha.preempt: true");
  }
  if (downTimerAdverts(ha.holdDownMs, ha.advertMs) > MAX_DOWN_TIMER_ADVERTS) {
    add(
      ["holdDownMs"],
      `at most ${MAX_DOWN_TIMER_ADVERTS} adverts (${
        MAX_DOWN_TIMER_ADVERTS * ha.advertMs
      } ms at advertMs ${ha.advertMs})`,
    );
  }
  if (ha.failover === "manual" && ha.peerLink === undefined) {
    add(
      ["failover"],
      '"manual" needs ha.peerLink (the standby learns from the peer link that the active is gone)',
    );
  }
  // a manual node that has seen its peer active is held in FAULT (mod.ts #manualUpdate), so
  // keepalived's preempt never takes the address back; with replication keepwire fails back
  // (failback.ts): it asks the holder, which hands over, and the hold lets go
  if (ha.failover === "manual" && ha.preempt && !ha.replication?.enabled) {
    add(
      ["preempt"],
      'never acts with ha.failover "manual" (a node that sees its peer active is held in ' +
        "FAULT): switch back with `ha failover` on the active, or add ha.replication (the owner " +
        "then takes the address back once caught up)",
    );
  }
  if (ha.syncLink !== undefined) syncLinkProblems(ha, own, add);
  if (ha.activeActive !== undefined) activeActiveProblems(ha, own, add);
  if (ha.replication?.enabled && ha.peerLink === undefined) {
    add(["replication"], "needs ha.peerLink (replication travels on the peer link)");
  }
  // with replication keepwire fails back (failback.ts), not keepalived: it must know which
  // node owns the address (the higher priority) to have that one take it back
  if (ha.replication?.enabled && ha.preempt && !ha.activeActive && ha.peers[0] !== undefined) {
    if (ha.peers[0].priority === undefined) {
      add(
        ["peers", 0, "priority"],
        "required with ha.preempt and ha.replication (the node with the higher priority takes " +
          "the address back once its replication caught up)",
      );
    }
  }
  if (ha.witness !== undefined) {
    const w = ha.witness;
    const bad = hostCheck(w.host);
    if (bad !== null) add(["witness", "host"], bad);
    if (own && w.host === own.address) {
      add(["witness", "host"], `${w.host} is this node's own address: the witness is a third host`);
    }
    if (ha.peers.some((p) => p.address === w.host)) {
      add(["witness", "host"], `${w.host} is the peer's address: the witness is a third host`);
    }
    if (ha.peerLink === undefined) {
      add(
        ["witness"],
        "needs ha.peerLink (a standby learns from the peer link whether the peer is active " +
          "or hands over)",
      );
    }
    if (w.timeoutMs < w.tokenMs) {
      add(["witness", "timeoutMs"], `below witness.tokenMs (${w.tokenMs})`);
    }
  }
  return out;
}

/** The rules of `ha.activeActive` (a second client set with mirrored priorities). */
function activeActiveProblems(
  ha: HaBase,
  own: ReturnType<typeof parseCidr>,
  add: (path: PropertyKey[], msg: string) => void,
): void {
  const aa = ha.activeActive!;
  if (aa.virtualRouterId === ha.virtualRouterId) {
    add(["activeActive", "virtualRouterId"], `equal to ha.virtualRouterId (${aa.virtualRouterId})`);
  }
  if (ha.peers[0] !== undefined && ha.peers[0].priority === undefined) {
    add(["peers", 0, "priority"], "required with ha.activeActive (the mirrored priority)");
  }
  if (ha.preempt) add(["preempt"], "use ha.activeActive.failback with active-active");
  if (ha.syncLink !== undefined) add(["activeActive"], "not built together with ha.syncLink");
  if (ha.witness !== undefined) add(["activeActive"], "not built together with ha.witness");
  if (ha.failover === "manual") {
    add(["activeActive"], 'not built together with ha.failover "manual"');
  }
  const setA = new Set(ha.virtualAddresses.map((v) => v.split("/")[0]));
  aa.virtualAddresses.forEach((v, i) => {
    const c = parseCidr(v);
    if (!c) return;
    const path = ["activeActive", "virtualAddresses", i];
    if (setA.has(c.address)) add(path, `${c.address} is in ha.virtualAddresses too`);
    if (own && !inPrefix(c.address, own)) {
      add(path, `${c.address} is outside ${formatNetwork(own)} (the prefix of ha.node.address)`);
    } else if (own && c.prefix !== own.prefix) {
      add(path, `prefix /${c.prefix} differs from ha.node.address's /${own.prefix}`);
    }
    if (own && c.address === own.address) add(path, `${c.address} is this node's own address`);
    if (ha.peers.some((p) => p.address === c.address)) {
      add(path, `${c.address} is a peer's own address`);
    }
  });
  if (aa.failbackDelayMs > 0 && aa.failback !== "auto") {
    add(["activeActive", "failbackDelayMs"], 'only applies with failback "auto"');
  }
}

/** The rules of `ha.syncLink` (a second heartbeat path). */
function syncLinkProblems(
  ha: HaBase,
  own: ReturnType<typeof parseCidr>,
  add: (path: PropertyKey[], msg: string) => void,
): void {
  const s = ha.syncLink!;
  if (s.interface === ha.interface) {
    add(["syncLink", "interface"], "the same as ha.interface: the sync link must be a second link");
  } else if (!interfaceExists(s.interface)) {
    add(
      ["syncLink", "interface"],
      `no network interface "${s.interface}" on this machine (/sys/class/net)`,
    );
  }
  const sc = parseCidr(s.address);
  if (!sc) return;
  if (isNetworkOrBroadcast(sc)) {
    add(["syncLink", "address"], `${sc.address} is the network or broadcast address of its prefix`);
  }
  if (own && (inPrefix(sc.address, own) || inPrefix(own.address, sc))) {
    add(
      ["syncLink", "address"],
      `${s.address} overlaps ${
        formatNetwork(own)
      } (ha.node.address): the sync link needs its own subnet`,
    );
  }
  if (isIpv4(s.peerAddress)) {
    if (s.peerAddress === sc.address) {
      add(["syncLink", "peerAddress"], `${s.peerAddress} is this node's own sync address`);
    } else if (!inPrefix(s.peerAddress, sc)) {
      add(
        ["syncLink", "peerAddress"],
        `${s.peerAddress} is outside ${formatNetwork(sc)} (the prefix of ha.syncLink.address)`,
      );
    }
  }
}

/** The `ha` section (validated, with the cross-field rules when enabled). */
export const haConfigSchema = baseSchema.superRefine((ha, ctx) => {
  for (const [path, message] of haProblems(ha)) ctx.addIssue({ code: "custom", path, message });
});

/** The validated `ha` section. */
export type HaConfig = z.infer<typeof haConfigSchema>;
