/**
 * HA module: this node's half of an HA pair. keepalived (VRRPv3) is the engine and
 * keepwire's child process; keepwire renders its configuration from the `ha`
 * section, learns role changes from its notify FIFO (role.ts), and drives it
 * through two track files (track.ts): FAULT for an application-layer failure,
 * maintenance or a graceful handover, a priority penalty for softer conditions.
 *
 * A dual active (both nodes active) seen in keepalived's adverts or over the peer link
 * is journalled (`ha.dual_active`, once per episode) and resolved by priority (dual.ts).
 *
 * With `ha.peerLink`, each node reads the other's health over the peer link (peer.ts):
 * `ha.peer_lost`, `ha.peer_degraded`, `ha.peer_recovered`, `ha.peer_version`.
 *
 * With `failover: manual`, a standby is held in FAULT (it never takes over by itself),
 * raises `ha.failover_pending` when the active is gone and takes over on `ha failover`.
 *
 * With `ha.witness`, corosync + corosync-qdevice run beside keepalived and quorum
 * decides who may be active (witness.ts, witness_driver.ts).
 *
 * With `ha.syncLink`, heartbeats run over two paths (keepalived.ts: a sync group); with
 * `ha.hook`, a command moves the service on role changes (hook.ts: layer-3 pairs).
 *
 * With `ha.replication`, `ha.preempt` and `ha.activeActive.failback: "auto"` are done by
 * keepwire, not keepalived (failback.ts): the returning owner waits until its channel of
 * the set caught up with the holder's, then the holder hands over gracefully.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Module, ModuleContext, ModulePage, PartHealth, TimerId } from "../module.ts";
import { HA_PAGE } from "./page.tsx";
import type { MetricFamily } from "../web/metrics.ts";
import { jsonBody, parseOr400 } from "../web/errors.ts";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";
import { haPublicStatusSchema, haStatusSchema } from "./status.ts";
import type { HaConfig } from "./config.ts";
import { HaDisabledError, HaNotActiveError, HaNoTakeoverPendingError } from "./errors.ts";
import {
  type Engine,
  type EngineFactory,
  KeepalivedEngine,
  type KeepalivedEngineOptions,
} from "./engine.ts";
import { INSTANCE, INSTANCE_B, parseFifoLine, PATHS_GROUP, SYNC_INSTANCE } from "./keepalived.ts";
import { DUAL_ACTIVE_YIELD, DualActiveWatch } from "./dual.ts";
import { CATCHING_UP, CatchUpHold, PeerUnsupportedError } from "./catch_up.ts";
import { HookRunner, type HookSpawn } from "./hook.ts";
import { RoleMachine, ROLES, type RoleTransition } from "./role.ts";
import {
  type ConditionReader,
  HA_CONDITIONS,
  onlyHeld,
  TrackControl,
  type TrackView,
  WITNESS_HOLD,
} from "./track.ts";
import type { CorosyncWitnessOptions, WitnessFactory } from "./witness.ts";
import { WitnessDriver } from "./witness_driver.ts";
import {
  FAILBACK_PEER_PATH,
  FAILBACK_STATES,
  type FailbackChannel,
  failbackDelayMs,
  FailbackDriver,
  failbackGated,
  failbackRequestSchema,
  type FailbackSet,
  failbackSets,
  type FailbackView,
  failbackViewSchema,
  holderBlocker,
} from "./failback.ts";
import { KeepwireError } from "../errors.ts";
import {
  createPeerFetch,
  PEER_HEALTH_PATH,
  PEER_PROTOCOL,
  PEER_UNPAIRED_PATH,
  peerAnswer,
  type PeerHealth,
  PeerMonitor,
  type PeerMount,
  type PeerRefusal,
  peerRoutes,
  type PeerTls,
  peerTlsFetch,
  servePeerTls,
} from "./peer.ts";
import { VERSION } from "../version.ts";
import {
  certFingerprint,
  certNotAfter,
  checkUnpairNotice,
  loadUnpaired,
  type PairCredentials,
  PairError,
  Pairing,
  peerCertProblem,
  unpairNoticeMac,
} from "./pairing.ts";
import { pairRoutes } from "./pair_routes.ts";
import { expiryWarnings, type PairCert, type UnackedChanges, unpairLoss } from "./pair_ops.ts";
import { HaHandoverNotReadyError, HaRotateError, HaUnpairLossError } from "./errors.ts";
import {
  haUpgradeBodySchema,
  HaUpgradeRefusedError,
  type RollingUpgrade,
  type UpgradeDriver,
  type UpgradeStatus,
} from "./upgrade.ts";
import {
  createRollingUpgrade,
  handoverBlocker,
  type ReplSyncView,
  type UpgradeUpdater,
} from "./upgrade_link.ts";
export { updaterOf } from "./upgrade_link.ts";
import type { HaPublicStatus, HaStatus } from "./types.ts";
import "./events.ts";
import type { EventMap } from "../events/mod.ts";

export { type HaConfig, haConfigSchema } from "./config.ts";
export type { HaPublicStatus, HaStatus } from "./types.ts";
export { HA_EVENTS } from "./events.ts";
export {
  HaDisabledError,
  HaEngineError,
  HaNotActiveError,
  HaNoTakeoverPendingError,
} from "./errors.ts";
export { type HaRole, ROLE_TRANSITIONS, RoleMachine } from "./role.ts";
export { HA_CONDITIONS, haReaders, type HaSources } from "./track.ts";
export { PEER_HEALTH_PATH, PEER_PROTOCOL, type PeerHealth, type PeerView } from "./peer.ts";

/** Store key of the persisted maintenance flag. */
export const MAINTENANCE_KEY = "ha.maintenance";

/** What the HA module offers the web, the CLI and other modules. */
export interface HaApi {
  /** Full status. */
  status(): HaStatus;
  /** Public fields only. */
  publicStatus(): HaPublicStatus;
  /**
   * On the active node: hand the active role to the peer (FAULT for
   * ha.failoverHoldMs; priority-0 advert). On a standby with `failover: manual` and a
   * takeover pending: confirm the takeover (the hold is released).
   */
  failover(by: string, set?: "a" | "b"): HaStatus;
  /**
   * {@link failover} after replication drained: when this node gives up the active role
   * (of `set`, or of the node), new replicated writes are refused and the standby must
   * confirm everything acknowledged here first ({@link HANDOVER_DRAIN_MS}), else
   * {@link HaHandoverNotReadyError} and nothing changes. The API, the CLI and the rolling
   * upgrade hand over through this.
   */
  handOver(by: string, set?: "a" | "b"): Promise<HaStatus>;
  /** Maintenance on/off (persisted; a node in maintenance never becomes active). */
  setMaintenance(on: boolean, by: string): HaStatus;
  /** On the active node: start a rolling upgrade of the pair (mod/ha/upgrade.ts). */
  upgrade(bundle: string, by: string): UpgradeStatus;
  /**
   * Leave the pair (`ha unpair`): refused with {@link HaUnpairLossError} while this node is
   * the only copy of changes the peer never acknowledged, unless `force`.
   */
  unpair(by: string, force: boolean): Promise<{ lost: string | null }>;
  /**
   * Replace this node's peer link certificate (`ha rotate-cert`): the peer gets the new one
   * over the link first and accepts both until this node confirms it switched.
   */
  rotateCert(by: string): Promise<void>;
}

/** How long a graceful handover waits for the standby to confirm every change. */
export const HANDOVER_DRAIN_MS = 5000;

/** The HA module. */
export interface HaModule extends Module, HaApi {
  /** Module name. */
  readonly name: "ha";
  /** Full status (also /api/status's `ha` part). */
  status(): HaStatus;
  /** Health: not ok while keepalived is not running (never essential). */
  health(): PartHealth;
  /** Re-read every condition now (tests; the module polls). */
  evaluate(): TrackView | null;
  /** Poll the peer now (tests; the module polls every ha.peerLink.intervalMs). */
  pollPeer(): Promise<void>;
  /** Pairing on this node (null before start or without ha.peerLink). */
  readonly pairing: Pairing | null;
  /** The peer link lent to replication (mod/repl: PeerLinkAccess). */
  readonly peerAccess: {
    mount(m: PeerMount): void;
    fetch(): typeof fetch | null;
    peerOrigin(): string | null;
    pairId(): string;
    role(): string;
    /**
     * Active-active: this node's role for client set `b` (`active` while its instance is
     * MASTER, else `standby`); null without ha.activeActive or before keepalived said.
     */
    setRole(set: "b"): "active" | "standby" | null;
  };
}

/** What the HA module is wired with besides its context. */
export interface HaDeps {
  /**
   * Readers of the conditions in HA_CONDITIONS by name; a condition without a reader
   * never holds. The runtime wires them from the supervisor, bypass, storage, governor.
   */
  readers?: Partial<Record<string, ConditionReader>>;
  /** Build the engine (tests pass a fake; default: keepalived). */
  engine?: EngineFactory;
  /** Options of the default keepalived engine (the lab wraps it into a namespace). */
  engineOptions?: KeepalivedEngineOptions;
  /** Re-evaluation period of the conditions (default 1000 ms). */
  pollMs?: number;
  /** This node's health for the peer (the runtime's /api/health document). */
  health?: () => { ok: boolean; parts: Record<string, PartHealth> };
  /** Where the peer link listens (tests: 127.0.0.1 and port 0). */
  peerListen?: { hostname: string; port: number };
  /** Runs the notify hook (tests; default: a child process). */
  hookSpawn?: HookSpawn;
  /** The peer's health URL (tests; default http://<peer>:<port>/peer/v1/health). */
  peerUrl?: string;
  /** Build the witness (tests pass a fake; default: corosync + corosync-qdevice). */
  witness?: WitnessFactory;
  /** Options of the default witness (the lab wraps it). */
  witnessOptions?: CorosyncWitnessOptions;
  /**
   * The watchdog module's gate: with a witness, petting stops while quorum is lost and
   * keepalived stays MASTER past witness.demoteBoundMs (self-fencing).
   */
  watchdog?: { addGate(name: string, gate: () => string | null): () => void };
  /**
   * Replication's status (the repl module is built after this one): `ha upgrade` hands
   * over only once the standby caught up.
   */
  replication?: () => ReplSyncView;
  /**
   * Replication's drain before a graceful handover (see ReplModule.prepareHandover): null
   * when the standby confirmed everything (writes stay refused until the demotion).
   */
  prepareHandover?: (ms: number, channels?: readonly ("a" | "b")[]) => Promise<string | null>;
  /** A prepared handover that did not happen: writes are taken again. */
  cancelHandover?: () => void;
  /** The updater, for `ha upgrade` (absent: the rolling upgrade is refused). */
  update?: UpgradeUpdater;
  /** Drive the rolling upgrade with this instead of the updater and peer link (tests). */
  upgradeDriver?: UpgradeDriver;
  /**
   * Changes this node made as primary that the peer has not acknowledged (replication;
   * `ha unpair` refuses to drop them without `--force`).
   */
  unacknowledged?: () => UnackedChanges | null;
  /** Validity of certificates a rotation makes (tests of the expiry warning; default 10 years). */
  certValidDays?: number;
}

/** Body of POST /api/ha/failover. */
export const haFailoverBodySchema = z.strictObject({
  by: z.string().min(1).max(64).optional(),
  set: z.enum(["a", "b"]).optional().describe(
    "active-active: hand only this client set to the peer (a: ha.virtualAddresses, b: " +
      "ha.activeActive.virtualAddresses)",
  ),
});

/** Body of POST /api/ha/maintenance. */
export const haMaintenanceBodySchema = z.strictObject({
  on: z.boolean(),
  by: z.string().min(1).max(64).optional(),
});

// keepalived restarts: a node without keepalived cannot take over, so the backoff
// stays short (0.5 s doubling to 5 s) and resets after 10 s of running. Found by
// chaos/ha_kills: with 1 s doubling to 30 s (reset after 60 s), repeated kills left a
// standby without keepalived for 16-30 s, and the pair without a node to take over.
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 5000;
const STABLE_MS = 10_000;
const LOG_LINES = 40;

/** Path of the certificate rotation on the peer link (`/commit` confirms the switch). */
const PEER_CERT_PATH = "/peer/v1/pair/cert";

const peerCertBodySchema = z.union([
  z.strictObject({ cert: z.string().min(1).max(8192) }),
  z.strictObject({ fingerprint: z.string().regex(/^[0-9a-f]{64}$/) }),
]);

function tlsOf(c: PairCredentials): PeerTls {
  return {
    cert: c.cert,
    key: c.key,
    peerCert: c.peerCert,
    ...(c.peerCertNext ? { peerCertNext: c.peerCertNext } : {}),
  };
}

/** Build the HA module (inert when ha.enabled is false). */
export function createHaModule(ctx: ModuleContext, deps: HaDeps = {}): HaModule {
  return new HaModuleImpl(ctx, deps);
}

class HaModuleImpl implements HaModule {
  readonly name = "ha" as const;
  #ctx: ModuleContext;
  #cfg: HaConfig;
  #deps: HaDeps;
  #machine: RoleMachine;
  #track: TrackControl | null = null;
  #engine: Engine | null = null;
  #unsubs: (() => void)[] = [];
  #pollTimer: TimerId | undefined;
  #restartTimer: TimerId | undefined;
  #restartDelay = RESTART_MIN_MS;
  #engineStartedAt = 0;
  #running = false;
  #stopping = false;
  #restarts = 0;
  #lastError: string | null = null;
  #refused = 0;
  #log: string[] = [];
  #dual: DualActiveWatch | null = null;
  #hook: HookRunner | null = null;
  /** Active-active: keepalived's last state of the second set's instance. */
  #setB: string | null = null;
  #peer: PeerMonitor | null = null;
  #peerServer: { shutdown(): Promise<void>; update?(tls: PeerTls): void } | null = null;
  #peerTls: { close(): void; update(tls: PeerTls): void } | null = null;
  /** The peer said it left the pair (signed notice), or null. */
  #peerUnpaired: { at: string; node: string } | null = null;
  #probeAt = 0;
  /** A rotation this node still has to confirm to the peer (the new fingerprint). */
  #commitPending: string | null = null;
  #certExpiry = new Map<string, Date | null>();
  #certWarned = new Map<string, number>();
  #expiryCheckAt = 0;
  #pairing: Pairing | null = null;
  #paired: PairCredentials | null = null;
  #peerListening: string | null = null;
  #peerUrl = "";
  #mounts: PeerMount[] = [];
  #peerFetch: typeof fetch | null = null;
  #upgrade: RollingUpgrade | null = null;
  readonly peerAccess = {
    mount: (m: PeerMount) => void this.#mounts.push(m),
    fetch: () => this.#peerFetch,
    peerOrigin: () => this.#peerUrl ? new URL(this.#peerUrl).origin : null,
    pairId: () => this.#pairId(),
    role: () => this.#machine.role as string,
    setRole: (_set: "b") =>
      !this.#cfg.activeActive || this.#setB === null
        ? null
        : this.#setB === "MASTER"
        ? "active" as const
        : "standby" as const,
  };
  // failover: manual
  #peerKnown = false;
  #peerSeenActive = false;
  #releasedUntil: number | null = null;
  #releaseTimer: TimerId | undefined;
  #pending: string | null = null;
  #manualBusy = false;
  #witness: WitnessDriver | null = null;
  /** Automatic failback with replication (this node owns a set it takes back), or null. */
  #failback: FailbackDriver | null = null;
  /** With replication and a peer link: held out of MASTER from the start until caught up. */
  #catchUp: CatchUpHold | null = null;

  constructor(ctx: ModuleContext, deps: HaDeps) {
    this.#ctx = ctx;
    this.#cfg = ctx.config.ha;
    this.#deps = deps;
    this.#machine = new RoleMachine(ctx.clock, (t) => this.#onTransition(t));
    this.#mounts.push({ prefix: PEER_CERT_PATH, fetch: (r) => this.#peerCertRoute(r) });
    this.#mounts.push({ prefix: FAILBACK_PEER_PATH, fetch: (r) => this.#failbackRoute(r) });
  }

  async start(): Promise<void> {
    if (!this.#cfg.enabled) return;
    this.#stopping = false;
    const node = this.#cfg.node.id;
    this.#track = new TrackControl({
      clock: this.#ctx.clock,
      sets: !!this.#cfg.activeActive,
      readers: this.#deps.readers ?? {},
      write: (v, view) => {
        if (this.#running) {
          try {
            this.#engine?.writeTrack(v);
          } catch (e) {
            this.#lastError = `cannot write the track files: ${(e as Error).message}`;
          }
        }
        queueMicrotask(() => this.#reapplyEngineState());
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.track_changed",
          // a hold that keeps a standby from taking over is no fault (onlyHeld)
          severity: view.fault && !onlyHeld(view) ? "warning" : "info",
          payload: {
            node,
            fault: view.fault,
            faultReasons: view.faultReasons,
            penalty: view.penalty,
            penalties: view.penalties.map((p) => `${p.name}: ${p.detail}`),
          },
        });
      },
    });
    this.#dual = this.#dualWatch();
    this.#hook = this.#hookRunner();
    this.#machine.start();
    this.#manualUpdate();
    const saved = this.#ctx.store.getSetting<{ on: boolean; by: string }>(MAINTENANCE_KEY);
    if (saved?.on) {
      this.#track.setMaintenance(true);
      this.#machine.setMaintenance(true, `${saved.by} (restored)`);
    }
    for (const source of new Set(HA_CONDITIONS.map((c) => c.source))) {
      this.#unsubs.push(
        this.#ctx.bus.subscribe(() => this.#track?.evaluate(), { kindPrefix: `${source}.` }),
      );
    }
    this.#pollTimer = this.#ctx.clock.setInterval(
      () => {
        this.#witness?.update();
        this.#track?.evaluate();
        this.#reapplyEngineState();
        this.#pairUpkeep();
      },
      this.#deps.pollMs ?? 1000,
    );
    const factory: EngineFactory = this.#deps.engine ??
      ((ha, dataDir, ev) => new KeepalivedEngine(ha, dataDir, ev, this.#deps.engineOptions));
    this.#engine = factory(this.#cfg, this.#ctx.config.dataDir, {
      onLine: (line) => this.#onLine(line),
      onExit: (reason) => this.#onEngineExit(reason),
      onLog: (line) => {
        this.#log.push(line);
        if (this.#log.length > LOG_LINES) this.#log.shift();
      },
    });
    if (this.#cfg.witness) {
      this.#witness = this.#witnessDriver();
      this.#unsubs.push(
        this.#deps.watchdog?.addGate("ha", () => this.#witness?.fenceReason() ?? null) ??
          (() => {}),
      );
    }
    const witnessStarted = this.#witness?.start();
    // before keepalived starts: it must not become MASTER with a stale copy
    if (this.#cfg.replication?.enabled && this.#cfg.peerLink && this.#cfg.peers[0]) {
      this.#catchUp = this.#catchUpHold(this.#cfg.peerLink.intervalMs);
      this.#catchUp.start();
    }
    await this.#startEngine();
    await this.#startPeerLink();
    const sets = this.#cfg.peerLink ? failbackSets(this.#cfg) : [];
    if (sets.length > 0 && !this.#stopping) {
      this.#failback = this.#failbackDriver(sets, this.#cfg.peerLink!.intervalMs);
      this.#failback.start();
    }
    if (this.#deps.update || this.#deps.upgradeDriver) this.#startUpgrade();
    await witnessStarted;
  }

  #witnessDriver(): WitnessDriver {
    return new WitnessDriver({
      ctx: this.#ctx,
      ha: this.#cfg,
      factory: this.#deps.witness,
      witnessOptions: this.#deps.witnessOptions,
      role: () => this.#machine.role,
      engine: () => this.#machine.snapshot().engine,
      peer: () => {
        const v = this.#peer?.view;
        return v && v.lastSeenAt !== null
          ? { reachable: v.reachable, role: v.role, handingOver: v.handingOver }
          : null;
      },
      apply: (v, quorate, text) => {
        this.#machine.setQuorum(quorate, text);
        this.#track?.setWitness({ fault: v.fault, hold: v.hold });
        queueMicrotask(() => this.#reapplyEngineState());
      },
    });
  }

  #dualWatch(): DualActiveWatch {
    const peer = this.#cfg.peers[0];
    const node = this.#cfg.node.id;
    const peerName = peer ? peer.id ?? peer.address : "unknown";
    return new DualActiveWatch({
      clock: this.#ctx.clock,
      node: {
        id: node,
        priority: this.#cfg.node.priority,
        address: this.#cfg.node.address?.split("/")[0] ?? "",
      },
      peer: { name: peerName, priority: peer?.priority ?? null, address: peer?.address ?? "" },
      // with replication keepalived does not preempt (keepwire fails back by a handover)
      preempt: this.#cfg.preempt && !failbackGated(this.#cfg),
      report: (r) =>
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.dual_active",
          severity: "warning",
          payload: { node, peer: peerName, ...r },
        }),
      setYield: (reason) => this.#track?.setHold(DUAL_ACTIVE_YIELD, reason),
    });
  }

  #hookRunner(): HookRunner | null {
    const h = this.#cfg.hook;
    if (!h) return null;
    const peer = this.#cfg.peers[0];
    const node = this.#cfg.node.id;
    return new HookRunner({
      command: h.command,
      timeoutMs: h.timeoutMs,
      now: () => this.#ctx.clock.now(),
      spawn: this.#deps.hookSpawn,
      env: {
        KW_HA_NODE: node,
        KW_HA_PEER: peer ? peer.id ?? peer.address : "",
        KW_HA_VIRTUAL_ADDRESSES: this.#cfg.virtualAddresses.join(" "),
      },
      onResult: (t, r) => {
        if (r.ok) {
          this.#ctx.bus.publish({
            module: "ha",
            kind: "ha.hook_ran",
            payload: { node, role: t.role, from: t.from, ms: r.ms },
          });
        } else {
          this.#ctx.bus.publish({
            module: "ha",
            kind: "ha.hook_failed",
            severity: "error",
            payload: {
              node,
              role: t.role,
              from: t.from,
              error: r.error ?? "failed",
              output: r.output.slice(-500),
              ms: r.ms,
            },
          });
        }
      },
    });
  }

  /** The pair id on the peer link. */
  #pairId(): string {
    return this.#paired?.pairId ?? this.#cfg.peerLink?.pairId ??
      `vrid-${this.#cfg.virtualRouterId}`;
  }

  /** This node's document for the peer. */
  #peerHealth(): PeerHealth {
    const own = this.health();
    const h = this.#deps.health?.() ?? { ok: own.ok, parts: { ha: own } };
    const snap = this.#machine.snapshot();
    return {
      protocol: PEER_PROTOCOL,
      pairId: this.#pairId(),
      node: this.#cfg.node.id,
      version: VERSION,
      role: this.#machine.role,
      since: new Date(snap.since).toISOString(),
      takeoverPending: this.#pending !== null,
      handingOver: !!this.#track &&
        (this.#track.view.maintenance || this.#track.view.handoverUntil !== null),
      health: {
        ok: h.ok,
        parts: Object.fromEntries(
          Object.entries(h.parts).map(([n, p]) => [n, {
            ok: p.ok,
            essential: p.essential,
            ...(p.detail === undefined ? {} : { detail: String(p.detail).slice(0, 500) }),
          }]),
        ),
      },
    };
  }

  #peerRefused(direction: "inbound" | "outbound", reason: PeerRefusal, detail: string, n: number) {
    if (n !== 1 && n % 100 !== 0) return;
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.peer_refused",
      severity: "warning",
      payload: { node: this.#cfg.node.id, direction, reason, detail, count: n },
    });
  }

  /** Pairing on this node (null without ha.peerLink). */
  get pairing(): Pairing | null {
    return this.#pairing;
  }

  /** Restart the peer link (after pairing: HTTPS with the pinned certificates). */
  async #restartPeerLink(): Promise<void> {
    this.#peer?.stop();
    this.#peer = null;
    await this.#peerServer?.shutdown().catch(() => {});
    this.#peerServer = null;
    this.#peerTls?.close();
    this.#peerTls = null;
    await this.#startPeerLink();
  }

  async #startPeerLink(): Promise<void> {
    const link = this.#cfg.peerLink;
    const peer = this.#cfg.peers[0];
    if (!link || !peer || this.#stopping) return;
    const node = this.#cfg.node.id;
    const peerName = peer.id ?? peer.address;
    const ownIp = this.#cfg.node.address!.split("/")[0];
    this.#pairing ??= new Pairing({
      dataDir: this.#ctx.config.dataDir,
      node,
      ips: [ownIp, ...(link.bind ? [link.bind] : []), "127.0.0.1"],
      now: () => this.#ctx.clock.now(),
      // answer first (over the link as it is), then restart it with the credentials
      onPaired: (c) => {
        this.#peerUnpaired = null;
        this.#paired = c; // the pair's id from now on (replication rebuilds under it)
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.paired",
          payload: { node, peer: c.peerNode, pairId: c.pairId },
        });
        setTimeout(() => void this.#restartPeerLink(), 300);
      },
    });
    try {
      this.#paired = this.#pairing.credentials();
    } catch (e) {
      this.#paired = null;
      this.#lastError = `pair credentials unreadable: ${(e as Error).message}`;
    }
    const paired = this.#paired;
    // the pair's credentials replace the configured secret; without either, the link
    // only serves pairing
    const secret = paired?.secret ?? link.secret ?? "";
    let inbound = 0;
    const app = peerRoutes({
      secret,
      pairId: this.#pairId(),
      clock: this.#ctx.clock,
      health: () => this.#peerHealth(),
      mounts: this.#mounts,
      pair: paired ? undefined : (b) => this.#pairing!.answer(b),
      unpaired: paired ? undefined : (nonce) => this.#unpairNotice(nonce),
      onRefused: (reason, detail) => {
        inbound++;
        this.#peer?.countInbound();
        this.#peerRefused("inbound", reason, detail, inbound);
      },
    });
    const listen = this.#deps.peerListen ??
      { hostname: link.bind ?? ownIp, port: link.port };
    const tls = paired ? tlsOf(paired) : null;
    void this.#refreshCertExpiry();
    try {
      if (tls) {
        const srv = await servePeerTls(listen, tls, app.fetch);
        this.#peerServer = srv;
        this.#peerListening = `${srv.addr.hostname}:${srv.addr.port}`;
      } else {
        const srv = Deno.serve({
          hostname: listen.hostname,
          port: listen.port,
          onListen: () => {},
        }, app.fetch);
        this.#peerServer = srv;
        const a = srv.addr as Deno.NetAddr;
        this.#peerListening = `${a.hostname}:${a.port}`;
      }
    } catch (e) {
      this.#lastError = `peer link cannot listen on ${listen.hostname}:${listen.port}: ${
        (e as Error).message
      }`;
    }
    const scheme = tls ? "https" : "http";
    this.#peerUrl = this.#deps.peerUrl?.replace(/^https?:/, `${scheme}:`) ??
      `${scheme}://${peer.address}:${link.port}${PEER_HEALTH_PATH}`;
    if (!secret) {
      // unpaired and no configured secret: pairing only. No peer to catch up with: the
      // catch-up hold lets go (at start, and after `ha unpair` while it held)
      this.#catchUp?.end("unpaired", "no peer link (not paired, no ha.peerLink.secret)");
      return;
    }
    const tlsFetch = tls ? peerTlsFetch(tls) : null;
    this.#peerTls = tlsFetch;
    const pub = <K extends "ha.peer_lost" | "ha.peer_degraded" | "ha.peer_recovered">(
      kind: K,
      severity: "warning" | "notice",
      payload: Omit<EventMap[K], "node" | "peer">,
    ) =>
      this.#ctx.bus.publish({
        module: "ha",
        kind,
        severity,
        payload: { node, peer: peerName, ...payload } as EventMap[K],
      });
    this.#peerFetch = createPeerFetch({
      secret,
      pairId: this.#pairId(),
      node,
      clock: this.#ctx.clock,
      fetch: tlsFetch?.fetch,
    });
    this.#peer = new PeerMonitor({
      clock: this.#ctx.clock,
      url: this.#peerUrl,
      fetch: tlsFetch?.fetch,
      secret,
      pairId: this.#pairId(),
      node,
      peerId: peer.id ?? null,
      version: VERSION,
      intervalMs: link.intervalMs,
      timeoutMs: link.timeoutMs,
      lostAfter: link.lostAfter,
      on: {
        lost: (reason) => {
          this.#peerKnown = true;
          pub("ha.peer_lost", "warning", { reason });
          this.#dual?.peerLost();
          void this.#catchUp?.tick();
          this.#manualUpdate();
          this.#witness?.update();
        },
        degraded: (parts) => pub("ha.peer_degraded", "warning", { parts }),
        recovered: (from) => pub("ha.peer_recovered", "notice", { from }),
        version: (peerVersion) =>
          this.#ctx.bus.publish({
            module: "ha",
            kind: "ha.peer_version",
            severity: "warning",
            payload: { node, peer: peerName, peerVersion, version: VERSION },
          }),
        refused: (reason, detail, n) => this.#peerRefused("outbound", reason, detail, n),
        seen: (h) => {
          this.#dual?.peerAnswer(this.#machine.role, h.role);
          this.#peerKnown = true;
          void this.#catchUp?.tick();
          this.#manualUpdate();
          this.#witness?.update();
        },
      },
    });
    this.#peer.start();
  }

  /** The pairing, or a 409 naming why there is none. */
  #paired409(): { p: Pairing; c: PairCredentials } {
    const p = this.#pairing;
    const c = p?.credentials() ?? null;
    if (!p || !c) throw new PairError(409, "pair_not_paired", "this node is not paired");
    return { p, c };
  }

  async unpair(by: string, force: boolean): Promise<{ lost: string | null }> {
    const { p, c } = this.#paired409();
    const lost = unpairLoss(this.#deps.unacknowledged?.() ?? null, c.peerNode);
    if (lost && !force) throw new HaUnpairLossError(lost);
    p.unpair(by);
    this.#peerUnpaired = null;
    this.#commitPending = null;
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.unpaired",
      severity: "warning",
      payload: {
        node: this.#cfg.node.id,
        peer: c.peerNode,
        pairId: c.pairId,
        by,
        forced: lost !== null,
        lost,
      },
    });
    await this.#restartPeerLink();
    return { lost };
  }

  /** This node's signed "left the pair" for the peer's probe (null while paired). */
  #unpairNotice(nonce: string): unknown | null {
    const u = loadUnpaired(this.#ctx.config.dataDir);
    if (!u) return null;
    const n = { pairId: u.pairId, node: u.node, unpairedAt: u.unpairedAt };
    return { ...n, mac: unpairNoticeMac(u.key, { ...n, nonce }) };
  }

  /**
   * Paired and the peer does not answer on the link: ask it in plain HTTP whether it left
   * the pair (a signed notice; anything else proves nothing and is ignored).
   */
  async #probeUnpaired(): Promise<void> {
    const c = this.#paired;
    if (!c || !this.#peerUrl) return;
    const nonce = Array.from(
      crypto.getRandomValues(new Uint8Array(16)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const url = new URL(PEER_UNPAIRED_PATH, this.#peerUrl.replace(/^https:/, "http:"));
    url.searchParams.set("nonce", nonce);
    let body: unknown;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      body = r.ok ? await r.json() : (await r.body?.cancel(), null);
    } catch {
      return;
    }
    if (!body || !checkUnpairNotice(c, body, nonce) || this.#peerUnpaired) return;
    const at = (body as { unpairedAt: string }).unpairedAt;
    this.#peerUnpaired = { at, node: c.peerNode };
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.peer_unpaired",
      severity: "warning",
      payload: { node: this.#cfg.node.id, peer: c.peerNode, pairId: c.pairId, unpairedAt: at },
    });
  }

  /** Timer work of the pair: the unpaired probe, a rotation to confirm, expiry warnings. */
  #pairUpkeep(): void {
    const now = this.#ctx.clock.now();
    const interval = Math.max(2000, (this.#cfg.peerLink?.intervalMs ?? 1000) * 3);
    if (this.#paired && this.#peer?.view.lastError && now - this.#probeAt >= interval) {
      this.#probeAt = now;
      void this.#probeUnpaired();
    }
    if (this.#commitPending && now - this.#probeAt >= interval) {
      this.#probeAt = now;
      void this.#confirmRotation();
    }
    if (now - this.#expiryCheckAt >= 3_600_000) {
      this.#expiryCheckAt = now;
      this.#checkExpiry();
    }
  }

  /** The certificates of the pair with their expiry (cached per certificate). */
  async #refreshCertExpiry(): Promise<void> {
    const c = this.#paired;
    if (!c) return;
    for (const pem of [c.cert, c.peerCert, c.peerCertNext]) {
      if (!pem) continue;
      const fp = certFingerprint(pem);
      if (!this.#certExpiry.has(fp)) this.#certExpiry.set(fp, await certNotAfter(pem));
    }
    this.#checkExpiry();
  }

  /** Expiry of a certificate (ISO), or null when unknown. */
  #expiryOf(pem: string): string | null {
    return this.#certExpiry.get(certFingerprint(pem))?.toISOString() ?? null;
  }

  #checkExpiry(): void {
    const c = this.#paired;
    if (!c) return;
    const certs: PairCert[] = [];
    for (
      const [whose, holder, pem] of [
        ["this node", c.node, c.cert],
        ["peer", c.peerNode, c.peerCert],
      ] as const
    ) {
      const fp = certFingerprint(pem);
      const notAfter = this.#certExpiry.get(fp);
      if (notAfter) certs.push({ whose, holder, fingerprint: fp, notAfter });
    }
    for (const w of expiryWarnings(certs, this.#ctx.clock.now(), this.#certWarned)) {
      this.#ctx.bus.publish({
        module: "ha",
        kind: "ha.cert_expiring",
        severity: "warning",
        payload: {
          node: this.#cfg.node.id,
          whose: w.whose,
          holder: w.holder,
          fingerprint: w.fingerprint,
          notAfter: w.notAfter.toISOString(),
          daysLeft: w.daysLeft,
        },
      });
    }
  }

  /** Apply the stored credentials to the running link (no restart; see servePeerTls). */
  #applyTls(): void {
    const c = this.#pairing?.credentials() ?? null;
    if (!c) return;
    this.#paired = c;
    this.#peerServer?.update?.(tlsOf(c));
    this.#peerTls?.update(tlsOf(c));
    void this.#refreshCertExpiry();
  }

  async rotateCert(by: string): Promise<void> {
    const { p, c } = this.#paired409();
    const f = this.#peerFetch;
    const origin = this.peerAccess.peerOrigin();
    if (!f || !origin || !this.#peerTls) {
      throw new HaRotateError("the peer link is not running");
    }
    const next = await p.makeCert(this.#deps.certValidDays);
    const fp = certFingerprint(next.cert);
    // 1. the peer accepts the new certificate alongside the old one
    let res: Response;
    try {
      res = await f(`${origin}${PEER_CERT_PATH}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ cert: next.cert }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      throw new HaRotateError(
        `the peer ${c.peerNode} did not take the new certificate: ${
          (e as Error).message.split("\n")[0]
        }`,
      );
    }
    const { refusal } = await peerAnswer(res);
    if (refusal !== null) {
      throw new HaRotateError(
        `the peer ${c.peerNode} refused the new certificate (HTTP ${res.status}: ${refusal})`,
      );
    }
    // 2. switch here: new handshakes present the new certificate
    const previous = certFingerprint(c.cert);
    p.update((x) => ({
      ...x,
      cert: next.cert,
      key: next.key,
      rotatedAt: new Date(this.#ctx.clock.now()).toISOString(),
    }));
    this.#applyTls();
    await this.#refreshCertExpiry();
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.cert_rotated",
      severity: "notice",
      payload: {
        node: this.#cfg.node.id,
        peer: c.peerNode,
        by,
        fingerprint: fp,
        previous,
        notAfter: this.#expiryOf(next.cert),
      },
    });
    // 3. tell the peer (over the new identity) to drop the old one; retried until it does
    this.#commitPending = fp;
    await this.#confirmRotation();
  }

  async #confirmRotation(): Promise<void> {
    const fp = this.#commitPending;
    const f = this.#peerFetch;
    const origin = this.peerAccess.peerOrigin();
    if (!fp || !f || !origin) return;
    try {
      const r = await f(`${origin}${PEER_CERT_PATH}/commit`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ fingerprint: fp }),
        signal: AbortSignal.timeout(10_000),
      });
      await r.body?.cancel();
      if (r.ok && this.#commitPending === fp) this.#commitPending = null;
    } catch {
      // the peer accepts both certificates until it hears this; the timer asks again
    }
  }

  /** The peer's side of a rotation (`/peer/v1/pair/cert`, behind the link's authentication). */
  async #peerCertRoute(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const fail = (status: number, code: string, message: string) =>
      Response.json({ error: { code, message } }, { status });
    const p = this.#pairing;
    if (!p?.credentials()) return fail(409, "pair_not_paired", "this node is not paired");
    if (req.method !== "POST") return fail(405, "method_not_allowed", "POST only");
    const body = peerCertBodySchema.safeParse(await req.json().catch(() => null));
    if (!body.success) return fail(400, "bad_request", "expected {cert} or {fingerprint}");
    if (path === PEER_CERT_PATH && "cert" in body.data) {
      const cert = body.data.cert;
      // kept as it is (the old certificate stays pinned) when the new one is unfit
      const problem = await peerCertProblem(cert, this.#ctx.clock.now());
      if (problem) return fail(400, "bad_certificate", `certificate refused: ${problem}`);
      p.update((c) => ({ ...c, peerCertNext: cert }));
      this.#applyTls();
      return Response.json({ ok: true, fingerprint: certFingerprint(cert) });
    }
    if (path === `${PEER_CERT_PATH}/commit` && "fingerprint" in body.data) {
      const fp = body.data.fingerprint;
      const c = p.credentials()!;
      if (certFingerprint(c.peerCert) === fp) return Response.json({ ok: true });
      if (!c.peerCertNext || certFingerprint(c.peerCertNext) !== fp) {
        return fail(409, "unknown_certificate", "no such certificate was announced");
      }
      p.update((x) => {
        const { peerCertNext: _, ...rest } = x;
        return { ...rest, peerCert: x.peerCertNext! };
      });
      this.#applyTls();
      this.#ctx.bus.publish({
        module: "ha",
        kind: "ha.peer_cert_rotated",
        severity: "notice",
        payload: { node: this.#cfg.node.id, peer: c.peerNode, fingerprint: fp },
      });
      return Response.json({ ok: true });
    }
    return fail(404, "not_found", `no route ${path}`);
  }

  /** Is this node active for a client set (a: the node's role; b: set b's instance)? */
  #holds(set: FailbackSet): boolean {
    return set === "a" ? this.#machine.role === "active" : this.#setB === "MASTER";
  }

  /** A rolling upgrade this node drives is under way (its step), or null. */
  #upgradeBusy(): string | null {
    const st = this.#upgrade?.status().state;
    return st === undefined || st === "idle" || st === "done" || st === "stopped" ? null : st;
  }

  /** This node's replication channel of a set (null when replication does not run). */
  #channelOf(set: FailbackSet): FailbackChannel | null {
    const r = this.#deps.replication?.();
    if (!r?.enabled) return null;
    return r.channels?.find((c) => c.channel === set) ?? null;
  }

  /** This node's view of a set for a returning owner (`GET /peer/v1/failback?set=`). */
  #failbackView(set: FailbackSet): FailbackView {
    const v = this.#track?.view;
    return {
      node: this.#cfg.node.id,
      set,
      holding: this.#holds(set),
      handingOver: !!v && (v.maintenance || v.handoverUntil !== null || v.released.includes(set)),
      channel: this.#channelOf(set),
    };
  }

  /**
   * The holder's side of the automatic failback (behind the peer link's authentication):
   * GET answers {@link failbackView}; POST {set, node} hands the set over gracefully
   * (handOver: replication drained first) when this node holds it and its channel of the
   * set is caught up ({@link holderBlocker}), else 409 saying why.
   */
  async #failbackRoute(req: Request): Promise<Response> {
    const fail = (status: number, code: string, message: string) =>
      Response.json({ error: { code, message } }, { status });
    const url = new URL(req.url);
    if (url.pathname !== FAILBACK_PEER_PATH) return fail(404, "not_found", `no ${url.pathname}`);
    if (!this.#cfg.enabled || !this.#track) return fail(409, "ha_disabled", "HA is not running");
    if (req.method === "GET") {
      const set = url.searchParams.get("set");
      if (set !== "a" && set !== "b") return fail(400, "bad_request", "expected set=a or set=b");
      return Response.json(this.#failbackView(set));
    }
    if (req.method !== "POST") return fail(405, "method_not_allowed", "GET or POST");
    const body = failbackRequestSchema.safeParse(await req.json().catch(() => null));
    if (!body.success) return fail(400, "bad_request", "expected {set, node}");
    const { set, node } = body.data;
    if (set === "b" && !this.#cfg.activeActive) {
      return fail(
        409,
        "failback_no_set",
        "no set b on this node (ha.activeActive is not configured)",
      );
    }
    if (!this.#holds(set)) {
      return fail(409, "failback_not_holding", `${this.#cfg.node.id} is not active for set ${set}`);
    }
    if (failbackSets(this.#cfg).includes(set)) {
      // both configs name their own node the owner (the priorities differ between the two
      // files): handing over would flap the set between them at every delay
      return fail(
        409,
        "failback_conflict",
        `${this.#cfg.node.id} owns set ${set} by its own config too (ha.node.priority ` +
          `${this.#cfg.node.priority} above ha.peers[0].priority): the two configs disagree`,
      );
    }
    const up = this.#upgradeBusy();
    if (up !== null) {
      // the rollout hands over itself and expects this node active until then
      return fail(
        409,
        "failback_not_ready",
        `a rolling upgrade runs on ${this.#cfg.node.id} (${up})`,
      );
    }
    const why = holderBlocker(this.#channelOf(set));
    if (why !== null) return fail(409, "failback_not_ready", why);
    try {
      await this.handOver(`failback to ${node}`, this.#cfg.activeActive ? set : undefined);
    } catch (e) {
      if (e instanceof KeepwireError) return fail(409, e.code, e.message);
      throw e;
    }
    return Response.json({ ok: true });
  }

  /** A request to the peer's failback route; rejects with the peer's reason. */
  async #failbackCall(path: string, init: RequestInit, ms: number): Promise<unknown> {
    const f = this.#peerFetch;
    const origin = this.peerAccess.peerOrigin();
    if (!f || !origin) throw new Error("the peer link is not up");
    let res: Response;
    try {
      res = await f(`${origin}${path}`, { ...init, signal: AbortSignal.timeout(ms) });
    } catch (e) {
      throw new Error((e as Error).message.split("\n")[0]);
    }
    const { json, refusal } = await peerAnswer(res);
    if (res.status === 404) {
      throw new PeerUnsupportedError(
        "the peer does not know the automatic failback (an older keepwire?)",
      );
    }
    if (refusal !== null) throw new Error(`${refusal} (HTTP ${res.status})`);
    return json;
  }

  /** The peer's view of a set (`GET /peer/v1/failback?set=`). */
  async #askFailbackView(set: FailbackSet): Promise<FailbackView> {
    return failbackViewSchema.parse(
      await this.#failbackCall(`${FAILBACK_PEER_PATH}?set=${set}`, {}, 5000),
    );
  }

  /** The catch-up hold (catch_up.ts). */
  #catchUpHold(pollMs: number): CatchUpHold {
    const node = this.#cfg.node.id;
    const p = this.#cfg.peers[0]!;
    const peer = p.id ?? p.address;
    return new CatchUpHold({
      clock: this.#ctx.clock,
      sets: this.#cfg.activeActive ? ["a", "b"] : ["a"],
      pollMs,
      peerName: peer,
      peer: () => {
        const m = this.#peer;
        if (!m) return { state: "unknown", detail: "the peer link is not up" };
        if (m.lost) return { state: "lost", detail: m.view.lastError };
        return m.view.reachable
          ? { state: "up", detail: null }
          : { state: "unknown", detail: m.view.lastError };
      },
      own: (set) => this.#channelOf(set),
      ask: (set) => this.#askFailbackView(set),
      setHold: (reason) =>
        this.#track?.setHold(CATCHING_UP, reason === null ? null : `${CATCHING_UP}: ${reason}`),
      publish: (_kind, reason) =>
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.catching_up",
          severity: "notice",
          payload: { node, peer, reason },
        }),
      publishEnd: (how, reason, heldMs) =>
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.caught_up",
          severity: "notice",
          payload: { node, peer, how, reason, heldMs },
        }),
    });
  }

  /** The returning owner's side of the automatic failback (failback.ts). */
  #failbackDriver(sets: FailbackSet[], pollMs: number): FailbackDriver {
    const node = this.#cfg.node.id;
    return new FailbackDriver({
      clock: this.#ctx.clock,
      sets,
      delayMs: failbackDelayMs(this.#cfg),
      pollMs,
      // the holder's drain, its FAULT advert, keepalived's skew time here, with margin
      takeMs: HANDOVER_DRAIN_MS + this.#cfg.failoverHoldMs + 10 * this.#cfg.advertMs,
      holding: (set) => this.#holds(set),
      local: () => {
        if (!this.#running) {
          return `keepalived is not running here (${this.#lastError ?? "starting"})`;
        }
        const role = this.#machine.role;
        if (role === "maintenance") return "maintenance is on here";
        // the rollout handed the role over to upgrade this node: not back before it is done
        const up = this.#upgradeBusy();
        if (up !== null) return `a rolling upgrade runs here (${up})`;
        const v = this.#track?.view;
        if (v?.fault && !onlyHeld(v)) return `held in FAULT here: ${v.faultReasons.join(", ")}`;
        if (role !== "standby" && role !== "active") return `this node is ${role}`;
        return null;
      },
      peer: () => {
        if (!this.#peerFetch) return "the peer link is not up (not paired, no ha.peerLink.secret)";
        const v = this.#peer?.view;
        if (!v?.reachable) {
          return `the peer does not answer on the peer link${
            v?.lastError ? `: ${v.lastError}` : ""
          }`;
        }
        return null;
      },
      own: (set) => this.#channelOf(set),
      ask: (set) => this.#askFailbackView(set),
      ready: () => {
        if (!this.#catchUp?.held) return null;
        void this.#catchUp.tick(); // the same condition: it lets go at this look
        return "this node's catch-up hold lets go first";
      },
      request: async (set) =>
        void await this.#failbackCall(FAILBACK_PEER_PATH, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ set, node }),
        }, HANDOVER_DRAIN_MS + 10_000),
      publish: (kind, set, reason) =>
        this.#ctx.bus.publish({
          module: "ha",
          kind: `ha.failback_${kind}`,
          severity: kind === "refused" ? "warning" : "notice",
          payload: { node, set, reason },
        }),
    });
  }

  async stop(): Promise<void> {
    if (!this.#cfg.enabled) return;
    this.#stopping = true;
    if (this.#pollTimer !== undefined) this.#ctx.clock.clearInterval(this.#pollTimer);
    if (this.#restartTimer !== undefined) this.#ctx.clock.clearTimeout(this.#restartTimer);
    for (const u of this.#unsubs) u();
    this.#unsubs = [];
    this.#peer?.stop();
    this.#failback?.stop();
    this.#catchUp?.stop();
    this.#setRelease(null);
    if (this.#peerServer) {
      await this.#peerServer.shutdown().catch(() => {});
      this.#peerServer = null;
    }
    this.#peerTls?.close();
    this.#peerTls = null;
    this.#track?.close();
    this.#dual?.close();
    this.#running = false;
    await this.#engine?.stop();
    await this.#witness?.stop();
    this.#machine.stop("keepwire stopping");
    await this.#hook?.idle();
  }

  async pollPeer(): Promise<void> {
    await this.#peer?.pollNow();
  }

  evaluate(): TrackView | null {
    return this.#track?.evaluate() ?? null;
  }

  async #startEngine(): Promise<void> {
    const engine = this.#engine;
    if (!engine || this.#stopping) return;
    try {
      const { pid } = await engine.start();
      if (this.#stopping) {
        await engine.stop();
        return;
      }
      this.#running = true;
      this.#engineStartedAt = this.#ctx.clock.now();
      this.#lastError = null;
      this.#machine.engineStarted();
      this.#ctx.bus.publish({
        module: "ha",
        kind: "ha.engine_started",
        payload: { node: this.#cfg.node.id, pid },
      });
      // the engine wrote FAULT before spawning keepalived: write what holds now
      this.#track?.resetWritten();
      this.#track?.evaluate();
    } catch (e) {
      if (!this.#stopping) this.#engineFailed((e as Error).message, null);
    }
  }

  #onEngineExit(reason: string): void {
    this.#running = false;
    if (this.#stopping) return;
    this.#engineFailed(reason, this.#ctx.clock.now() - this.#engineStartedAt);
  }

  /** keepalived is down; `ranMs`: how long it ran (null: it did not start). */
  #engineFailed(reason: string, ranMs: number | null): void {
    this.#running = false;
    this.#lastError = reason;
    this.#machine.engineDown(reason);
    if (ranMs !== null && ranMs > STABLE_MS) this.#restartDelay = RESTART_MIN_MS;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(RESTART_MAX_MS, delay * 2);
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.engine_failed",
      severity: "error",
      payload: { node: this.#cfg.node.id, reason, restartInMs: delay },
    });
    if (this.#restartTimer !== undefined) this.#ctx.clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = this.#ctx.clock.setTimeout(() => {
      this.#restartTimer = undefined;
      this.#restarts++;
      void this.#startEngine();
    }, delay);
  }

  #onLine(line: string): void {
    const l = parseFifoLine(line);
    const sync = !!this.#cfg.syncLink;
    // with ha.syncLink: the group's and the sync instance's lines are known; the role
    // follows the address-carrying instance (the group moves both together)
    if (l.type === "group" && sync && l.group === PATHS_GROUP) return;
    if (l.type !== "other" && l.type !== "group" && sync && l.instance === SYNC_INSTANCE) {
      if (l.type === "rx_lower_priority") this.#dual?.lowerAdvert(l.instance, l.priority);
      return;
    }
    if (
      l.type !== "other" && l.type !== "group" && this.#cfg.activeActive &&
      l.instance === INSTANCE_B
    ) {
      if (l.type === "state") {
        const from = this.#setB;
        this.#setB = l.state;
        if (from !== l.state) {
          this.#ctx.bus.publish({
            module: "ha",
            kind: "ha.set_changed",
            severity: "info",
            payload: {
              node: this.#cfg.node.id,
              set: "b",
              from: from === null ? null : from === "MASTER" ? "active" : "standby",
              to: l.state === "MASTER" ? "active" : "standby",
            },
          });
        }
      } else if (l.type === "rx_lower_priority") this.#dual?.lowerAdvert(l.instance, l.priority);
      return;
    }
    if (l.type === "other" || l.type === "group" || l.instance !== INSTANCE) {
      this.#refused++;
      if (this.#refused === 1 || this.#refused % 100 === 0) {
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.engine_line_refused",
          severity: "warning",
          payload: { node: this.#cfg.node.id, line: line.slice(0, 200) },
        });
      }
      return;
    }
    if (l.type === "state") {
      const before = this.#machine.snapshot();
      if (before.engine === "MASTER" && l.state === "BACKUP") {
        this.#dual?.masterToBackup(l.instance, before.priority);
      }
      this.#machine.engineReport(l.state, l.priority, this.#heldText());
    } else if (l.type === "priority") this.#machine.enginePriority(l.priority);
    else this.#dual?.lowerAdvert(l.instance, l.priority);
  }

  /** Why keepalived's FAULT is only a hold (manual, witness: a standby), or undefined. */
  #heldText(): string | undefined {
    const v = this.#track?.view;
    if (!v || !onlyHeld(v)) return undefined;
    const w = v.faultReasons.find((r) => r.startsWith(`${WITNESS_HOLD}: `));
    if (w !== undefined && !v.manualHold) return w.slice(WITNESS_HOLD.length + 2);
    const c = v.faultReasons.find((r) => r.startsWith(`${CATCHING_UP}: `));
    if (c !== undefined && !v.manualHold) {
      return `catching up (not elected before its copy is safe): ${
        c.slice(CATCHING_UP.length + 2)
      }`;
    }
    return this.#pending
      ? `failover manual: takeover pending (${this.#pending}); waiting for ha failover here`
      : this.#peerKnown
      ? "failover manual: the peer is active; this node does not take over by itself"
      : "failover manual: waiting for the peer link before joining";
  }

  /** keepalived still in FAULT while what holds it changed: the role may differ. */
  #reapplyEngineState(): void {
    const snap = this.#machine.snapshot();
    if (snap.engine === "FAULT" && this.#running) {
      this.#machine.engineReport("FAULT", snap.priority ?? 0, this.#heldText());
    }
  }

  /**
   * `failover: manual`: decide the hold and the pending takeover. A node that is not
   * active holds keepalived in FAULT (so it cannot take over by itself) from its start
   * until the peer link has answered or is lost, and after that whenever it has seen
   * the peer active, unless an operator confirmed a takeover or the peer hands over
   * (ha failover / maintenance there). Held while the peer is lost or not active: a
   * takeover is pending (`ha.failover_pending`, once per episode).
   */
  #manualUpdate(): void {
    if (this.#cfg.failover !== "manual" || !this.#track || this.#manualBusy || this.#stopping) {
      return;
    }
    this.#manualBusy = true;
    try {
      const role = this.#machine.role;
      const pv = this.#peer?.view;
      if (role === "active") {
        this.#peerSeenActive = false;
        this.#setRelease(null);
      } else if (pv?.reachable && pv.role === "active") this.#peerSeenActive = true;
      const handingOver = !!pv?.reachable && pv.handingOver;
      const hold = role !== "active" && this.#releasedUntil === null && !handingOver &&
        (!this.#peerKnown || this.#peerSeenActive);
      let reason: string | null = null;
      if (hold && this.#peerKnown && role !== "maintenance" && role !== "stopped") {
        if (this.#peer?.lost) reason = `the peer is lost: ${pv?.lastError ?? "no answer"}`;
        else if (pv?.reachable && pv.role !== "active") reason = `the peer is ${pv.role}`;
      }
      if (reason !== null && this.#pending === null) {
        const peer = this.#cfg.peers[0];
        this.#ctx.bus.publish({
          module: "ha",
          kind: "ha.failover_pending",
          severity: "error",
          payload: { node: this.#cfg.node.id, peer: peer?.id ?? peer?.address ?? "", reason },
        });
      }
      this.#pending = reason;
      this.#track.setManualHold(hold);
      // the values written may not change (FAULT for another reason too): the role may
      queueMicrotask(() => this.#reapplyEngineState());
    } finally {
      this.#manualBusy = false;
    }
  }

  #setRelease(until: number | null): void {
    if (this.#releaseTimer !== undefined) this.#ctx.clock.clearTimeout(this.#releaseTimer);
    this.#releaseTimer = undefined;
    this.#releasedUntil = until;
    if (until !== null) {
      this.#releaseTimer = this.#ctx.clock.setTimeout(() => {
        this.#releaseTimer = undefined;
        this.#releasedUntil = null;
        this.#manualUpdate();
      }, until - this.#ctx.clock.now());
    }
  }

  #onTransition(t: RoleTransition): void {
    this.#hook?.transition({
      role: t.to,
      from: t.from,
      cause: t.reason.cause,
      reason: t.reason.text,
    });
    queueMicrotask(() => {
      this.#manualUpdate();
      this.#witness?.update();
    });
    const snap = this.#machine.snapshot();
    const bad = t.to === "fault" || (t.from === "active" && t.to !== "maintenance");
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.role_changed",
      severity: bad ? "warning" : "notice",
      payload: {
        node: this.#cfg.node.id,
        from: t.from,
        to: t.to,
        cause: t.reason.cause,
        reason: t.reason.text,
        afterMs: t.afterMs,
        priority: snap.priority,
      },
    });
  }

  failover(by: string, set?: "a" | "b"): HaStatus {
    if (!this.#cfg.enabled || !this.#track) throw new HaDisabledError();
    if (set !== undefined) return this.#releaseSet(set, by);
    const role = this.#machine.role;
    if (role !== "active" && this.#cfg.failover === "manual" && role !== "maintenance") {
      this.#manualUpdate();
      const reason = this.#pending;
      if (reason === null) {
        const pv = this.#peer?.view;
        throw new HaNoTakeoverPendingError(
          pv?.reachable
            ? `the peer ${pv.id ?? ""} is ${pv.role}`
            : "the peer link has no answer yet",
        );
      }
      // released long enough for keepalived's master-down timer, then held again if
      // this node did not become active (e.g. the peer was alive after all)
      const ms = Math.max(10_000, 20 * this.#cfg.advertMs + this.#cfg.holdDownMs);
      this.#setRelease(this.#ctx.clock.now() + ms);
      this.#ctx.bus.publish({
        module: "ha",
        kind: "ha.takeover_confirmed",
        severity: "notice",
        payload: { node: this.#cfg.node.id, by, reason },
      });
      this.#manualUpdate();
      return this.status();
    }
    if (role !== "active") throw new HaNotActiveError(role);
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.failover_manual",
      severity: "notice",
      payload: { node: this.#cfg.node.id, by, holdMs: this.#cfg.failoverHoldMs },
    });
    this.#track.handover(this.#cfg.failoverHoldMs);
    return this.status();
  }

  async handOver(by: string, set?: "a" | "b"): Promise<HaStatus> {
    if (!this.#cfg.enabled || !this.#track) throw new HaDisabledError();
    const giving = set === undefined
      ? this.#machine.role === "active"
      : set === "a"
      ? this.#machine.role === "active"
      : this.#setB === "MASTER";
    if (!giving || !this.#deps.prepareHandover) return this.failover(by, set);
    const why = await this.#deps.prepareHandover(HANDOVER_DRAIN_MS, set ? [set] : undefined);
    if (why) throw new HaHandoverNotReadyError(why);
    try {
      return this.failover(by, set);
    } catch (e) {
      this.#deps.cancelHandover?.();
      throw e;
    }
  }

  /**
   * Active-active: hand one client set to the peer (its instance in FAULT for
   * ha.failoverHoldMs: a priority-0 advert on that set only) — the manual failback.
   */
  #releaseSet(set: "a" | "b", by: string): HaStatus {
    if (!this.#cfg.activeActive) {
      throw new HaNotActiveError(`${this.#machine.role} (ha.activeActive is not configured)`);
    }
    const held = set === "a" ? this.#machine.role === "active" : this.#setB === "MASTER";
    if (!held) {
      const r = set === "a" ? this.#machine.role : (this.#setB ?? "unknown").toLowerCase();
      throw new HaNotActiveError(`${r} for set ${set}`);
    }
    this.#ctx.bus.publish({
      module: "ha",
      kind: "ha.failover_manual",
      severity: "notice",
      payload: {
        node: this.#cfg.node.id,
        by: `${by} (set ${set})`,
        holdMs: this.#cfg.failoverHoldMs,
      },
    });
    this.#track!.release(set, this.#cfg.failoverHoldMs);
    return this.status();
  }

  setMaintenance(on: boolean, by: string): HaStatus {
    if (!this.#cfg.enabled || !this.#track) throw new HaDisabledError();
    this.#ctx.store.setSetting(MAINTENANCE_KEY, { on, by, at: this.#ctx.clock.now() });
    const was = this.#track.view.maintenance;
    this.#track.setMaintenance(on);
    this.#machine.setMaintenance(on, by);
    if (was !== on) {
      this.#ctx.bus.publish({
        module: "ha",
        kind: "ha.maintenance_changed",
        severity: "notice",
        payload: { node: this.#cfg.node.id, on, by },
      });
    }
    return this.status();
  }

  publicStatus(): HaPublicStatus {
    const peer = this.#cfg.peers[0];
    return {
      node: this.#cfg.node.id,
      role: this.#cfg.enabled ? this.#machine.role : "disabled",
      peer: peer
        ? {
          id: this.#peer?.view.id ?? peer.id ?? null,
          role: this.#peer?.view.role ?? "unknown",
        }
        : null,
      virtualAddresses: [...this.#cfg.virtualAddresses],
    };
  }

  #startUpgrade(): void {
    const update = this.#deps.update;
    this.#upgrade = createRollingUpgrade({
      ctx: this.#ctx,
      node: this.#cfg.node.id,
      compatible: this.#ctx.config.update.compatible,
      updater: update ?? {
        installFrom: () => Promise.reject(new Error("no updater")),
        activate: () => Promise.reject(new Error("no updater")),
        state: () => "idle",
      },
      role: () => this.#machine.role,
      healthy: () => {
        const h = this.#deps.health?.();
        if (!h) return { ok: true };
        const bad = Object.entries(h.parts).filter(([, p]) => !p.ok && p.essential);
        return {
          ok: h.ok,
          detail: bad.map(([n, p]) => `${n}: ${p.detail ?? "failed"}`).join(", "),
        };
      },
      ready: () =>
        handoverBlocker(this.#deps.replication?.() ?? null, this.#peer?.view.degraded ?? []),
      handover: async () => void await this.handOver("ha upgrade"),
      peerFetch: () => this.#peerFetch,
      peerOrigin: () => this.peerAccess.peerOrigin(),
      mount: (m) => this.peerAccess.mount(m),
      driver: this.#deps.upgradeDriver,
    });
  }

  upgrade(bundle: string, by: string): UpgradeStatus {
    if (!this.#cfg.enabled) throw new HaDisabledError();
    if (!this.#upgrade) throw new HaUpgradeRefusedError("the updater is not wired on this node");
    if (this.#machine.role !== "active") throw new HaNotActiveError(this.#machine.role);
    return this.#upgrade.start(bundle, by);
  }

  status(): HaStatus {
    const snap = this.#machine.snapshot();
    const iso = (t: number | null) => t === null ? null : new Date(t).toISOString();
    const enabled = this.#cfg.enabled;
    return {
      ...this.publicStatus(),
      enabled,
      since: enabled ? iso(snap.since) : null,
      reason: enabled ? snap.reason.text : null,
      priority: this.#cfg.node.priority,
      engine: {
        running: this.#running,
        pid: this.#engine?.pid ?? null,
        state: snap.engine,
        effectivePriority: snap.priority,
        restarts: this.#restarts,
        lastError: this.#lastError,
        refusedLines: this.#refused,
        log: [...this.#log],
      },
      dualActive: {
        count: this.#dual?.count ?? 0,
        lastAt: iso(this.#dual?.lastAt ?? null),
        lastSeen: this.#dual?.last?.seen ?? null,
        yielding: this.#dual?.yielding ?? null,
      },
      track: this.#track?.view ?? null,
      policy: {
        failover: this.#cfg.failover,
        preempt: this.#cfg.preempt,
        advertMs: this.#cfg.advertMs,
        holdDownMs: this.#cfg.holdDownMs,
      },
      peers: this.#cfg.peers.map((p) => ({ address: p.address, id: p.id ?? null })),
      hook: this.#hook?.view ?? null,
      activeActive: this.#cfg.activeActive && enabled
        ? {
          virtualRouterId: this.#cfg.activeActive.virtualRouterId,
          virtualAddresses: [...this.#cfg.activeActive.virtualAddresses],
          priority: this.#cfg.peers[0]?.priority ?? this.#cfg.node.priority,
          failback: this.#cfg.activeActive.failback,
          state: this.#setB,
        }
        : null,
      manual: this.#cfg.failover === "manual" && enabled
        ? {
          held: this.#track?.view.manualHold ?? false,
          pending: this.#pending !== null,
          reason: this.#pending,
          releasedUntil: iso(this.#releasedUntil),
        }
        : null,
      peerLink: this.#peer
        ? { ...this.#peer.view, url: this.#peerUrl, listening: this.#peerListening }
        : null,
      failback: this.#failback?.status() ?? null,
      catchUp: this.#catchUp?.status() ?? null,
      witness: this.#witness?.status() ?? null,
      upgrade: this.#upgrade?.status() ?? null,
      history: snap.history.map((t) => ({
        from: t.from,
        to: t.to,
        cause: t.reason.cause,
        reason: t.reason.text,
        at: new Date(t.time).toISOString(),
        afterMs: t.afterMs,
      })),
      transitions: snap.counts,
      lastActiveAt: iso(snap.lastActiveAt),
    };
  }

  health(): PartHealth {
    if (!this.#cfg.enabled) return { ok: true, essential: false, detail: "disabled" };
    if (!this.#running) {
      return {
        ok: false,
        essential: false,
        detail: `keepalived not running: ${this.#lastError ?? "starting"}`,
      };
    }
    const w = this.#witness?.health();
    if (w) return w;
    return { ok: true, essential: false, detail: `${this.#machine.role}` };
  }

  routes(): Hono {
    const app = haRoutes(this);
    app.route(
      "/",
      pairRoutes(() => this.#pairing, {
        port: () => this.#cfg.peerLink?.port ?? null,
        pairId: () => this.#pairId(),
        config: () => ({
          enabled: this.#cfg.enabled,
          peerLink: !!this.#cfg.peerLink && this.#cfg.peers.length > 0,
          secret: !!this.#cfg.peerLink?.secret,
          peerUnpaired: this.#peerUnpaired,
        }),
        expiry: (pem) => this.#expiryOf(pem),
        unpair: (by, force) => this.unpair(by, force),
        rotate: (by) => this.rotateCert(by),
      }),
    );
    return app;
  }

  pages(): ModulePage[] {
    return [HA_PAGE];
  }

  metrics(): MetricFamily[] {
    if (!this.#cfg.enabled) return [];
    const snap = this.#machine.snapshot();
    const view = this.#track?.view;
    return [
      {
        name: "ha_role",
        help: "1 for this node's current HA role",
        type: "gauge",
        samples: ROLES.map((r) => ({ labels: { role: r }, value: snap.role === r ? 1 : 0 })),
      },
      {
        name: "ha_transitions_total",
        help: "HA role transitions since start, by target role",
        type: "counter",
        samples: ROLES.map((r) => ({ labels: { to: r }, value: snap.counts[r] })),
      },
      {
        name: "ha_last_failover_seconds",
        help: "seconds since this node last became active (absent: never since start)",
        type: "gauge",
        samples: snap.lastActiveAt === null
          ? []
          : [{ value: (this.#ctx.clock.now() - snap.lastActiveAt) / 1000 }],
      },
      {
        name: "ha_priority",
        help: "keepalived's effective VRRP priority as last reported",
        type: "gauge",
        samples: snap.priority === null ? [] : [{ value: snap.priority }],
      },
      {
        name: "ha_fault_forced",
        help: "1 while keepwire holds keepalived in FAULT (conditions, maintenance, handover)",
        type: "gauge",
        samples: [{ value: view?.fault ? 1 : 0 }],
      },
      {
        name: "ha_engine_up",
        help: "1 while keepalived runs",
        type: "gauge",
        samples: [{ value: this.#running ? 1 : 0 }],
      },
      {
        name: "ha_engine_restarts_total",
        help: "keepalived restarts by keepwire since start",
        type: "counter",
        samples: [{ value: this.#restarts }],
      },
      {
        name: "ha_dual_active_total",
        help: "dual actives this node saw (episodes: VRRP adverts or the peer link)",
        type: "counter",
        samples: [{ value: this.#dual?.count ?? 0 }],
      },
      ...(this.#peer
        ? [{
          name: "ha_peer_reachable",
          help: "1 while the peer answers on the peer link",
          type: "gauge" as const,
          samples: [{ value: this.#peer.view.reachable ? 1 : 0 }],
        }, {
          name: "ha_peer_messages_refused_total",
          help: "peer link messages refused (unauthenticated, stale, replay, other pair, " +
            "malformed, incompatible), by direction",
          type: "counter" as const,
          samples: [
            { labels: { direction: "outbound" }, value: this.#peer.view.refused },
            { labels: { direction: "inbound" }, value: this.#peer.view.refusedInbound },
          ],
        }]
        : []),
      ...(this.#failback
        ? [{
          name: "ha_failback_state",
          help: "automatic failback with replication: 1 for the state of each set this node " +
            "takes back (waiting: not caught up, or the peer cannot be asked)",
          type: "gauge" as const,
          samples: this.#failback.status().flatMap((f) =>
            FAILBACK_STATES.map((st) => ({
              labels: { set: f.set, state: st },
              value: f.state === st ? 1 : 0,
            }))
          ),
        }]
        : []),
      ...(this.#witness?.metrics() ?? []),
      {
        name: "ha_engine_lines_refused_total",
        help: "notify FIFO lines keepwire could not use",
        type: "counter",
        samples: [{ value: this.#refused }],
      },
    ];
  }
}

statusDoc("ha", haStatusSchema);
apiDoc("GET", "/api/ha", {
  operationId: "getHaPublic",
  summary: "who is active (no login): node, role, peer role, virtual addresses",
  response: haPublicStatusSchema,
});
apiDoc("GET", "/api/ha/status", {
  operationId: "getHaStatus",
  summary: "HA status: role, keepalived, track conditions, peer link, history",
  response: haStatusSchema,
});
apiDoc("POST", "/api/ha/failover", {
  operationId: "haFailover",
  summary: "hand the active role to the peer (or confirm a pending manual takeover)",
  body: haFailoverBodySchema,
  response: haStatusSchema,
  errors: { 409: "not active (and no takeover pending), or HA disabled" },
});
apiDoc("POST", "/api/ha/upgrade", {
  operationId: "haUpgrade",
  summary: "rolling upgrade of the pair: the standby first, handover, then this node",
  body: haUpgradeBodySchema,
  response: haStatusSchema,
  errors: { 409: "not active, HA disabled, a rollout running, or no updater" },
});
apiDoc("POST", "/api/ha/maintenance", {
  operationId: "haMaintenance",
  summary: "maintenance on/off (persisted; a node in maintenance never becomes active)",
  body: haMaintenanceBodySchema,
  response: haStatusSchema,
  errors: { 409: "HA disabled" },
});

/**
 * Routes under /api:
 * - GET  /ha             public fields only (no login): node, role, peer role, virtual addresses
 * - GET  /ha/status      full status
 * - POST /ha/failover    {"by"?}         → full status; 409 when not active or disabled
 * - POST /ha/maintenance {"on","by"?}    → full status; 409 when disabled
 * - POST /ha/upgrade     {"bundle","by"?} → full status (rollout in `upgrade`); 409 when refused
 */
export function haRoutes(api: HaApi): Hono {
  const app = new Hono();
  app.get("/ha", (c) => answer(c, haPublicStatusSchema, api.publicStatus()));
  app.get("/ha/status", (c) => answer(c, haStatusSchema, api.status()));
  app.post("/ha/failover", async (c) => {
    const body = parseOr400(haFailoverBodySchema, await jsonBody(c), "failover request");
    return answer(c, haStatusSchema, await api.handOver(body.by ?? "api", body.set));
  });
  app.post("/ha/upgrade", async (c) => {
    const body = parseOr400(haUpgradeBodySchema, await jsonBody(c), "upgrade request");
    api.upgrade(body.bundle, body.by ?? "api");
    return answer(c, haStatusSchema, api.status());
  });
  app.post("/ha/maintenance", async (c) => {
    const body = parseOr400(haMaintenanceBodySchema, await jsonBody(c), "maintenance request");
    return answer(c, haStatusSchema, api.setMaintenance(body.on, body.by ?? "api"));
  });
  return app;
}
