/**
 * The witness as the HA module runs it: starts corosync + corosync-qdevice (restarted
 * with a short backoff like keepalived), folds their lines into the quorum view,
 * applies {@link witnessVerdict} to the track file and the role machine, keeps the
 * qdevice heuristic's marker in step with the role, publishes `ha.quorum_lost`,
 * `ha.quorum_regained`, `ha.witness_failed`, `ha.witness_started`, `ha.self_fence`,
 * and answers the watchdog's gate (self-fencing).
 * @module
 */
import type { Clock, ModuleContext, PartHealth, TimerId } from "../module.ts";
import type { MetricFamily } from "../web/metrics.ts";
import type { HaConfig } from "./config.ts";
import { promoteWaitMs } from "./config.ts";
import type { EngineState, HaRole } from "./role.ts";
import {
  CorosyncWitness,
  type CorosyncWitnessOptions,
  type PeerRoleView,
  QuorumTracker,
  type QuorumView,
  type Witness,
  type WitnessFactory,
  type WitnessVerdict,
  witnessVerdict,
} from "./witness.ts";
import "./events.ts";

/** The witness part of `ha status`. */
export interface WitnessStatus {
  /** qnetd host:port. */
  qnetd: string;
  /** corosync + qdevice run. */
  running: boolean;
  /** Pids of corosync and qdevice. */
  pids: number[];
  /** Quorate now. */
  quorate: boolean;
  /** corosync node ids: this node and the peer. */
  nodeids: { self: number; peer: number };
  /** Node ids of the last votequorum decision, or null. */
  members: number[] | null;
  /** Last ring id. */
  ring: string | null;
  /** The peer in the membership (null: not known yet). */
  peerInMembership: boolean | null;
  /** When corosync formed a membership without the peer (ISO), or null. */
  peerLeftAt: string | null;
  /** The verdict applied to the track file. */
  fault: string | null;
  /** The hold applied (FAULT shown as standby). */
  hold: string | null;
  /** ms a standby waits after the peer left the membership. */
  promoteWaitMs: number;
  /** token, qdevice timeout and sync_timeout (ms), as rendered. */
  timing: { tokenMs: number; timeoutMs: number; syncTimeoutMs: number; demoteBoundMs: number };
  /** Why petting the watchdog is withheld (self-fencing), or null. */
  fence: string | null;
  /** Restarts and the last error. */
  restarts: number;
  lastError: string | null;
  /** Recent corosync/qdevice lines. */
  log: string[];
}

/** What the driver is built with. */
export interface WitnessDriverOptions {
  ctx: ModuleContext;
  ha: HaConfig;
  factory?: WitnessFactory;
  witnessOptions?: CorosyncWitnessOptions;
  /** This node's role. */
  role(): HaRole;
  /** keepalived's last reported state. */
  engine(): EngineState | "down" | null;
  /** The peer link's view (null before its first answer). */
  peer(): PeerRoleView | null;
  /** Apply a verdict: the track file and the role machine. */
  apply(v: WitnessVerdict, quorate: boolean, text: string): void;
}

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 5000;
const STABLE_MS = 10_000;
const LOG_LINES = 40;

/** The witness of one HA module. */
export class WitnessDriver {
  #o: WitnessDriverOptions;
  #clock: Clock;
  #w: Witness | null = null;
  #tracker: QuorumTracker | null = null;
  #running = false;
  #stopping = false;
  #lastError: string | null = null;
  #restarts = 0;
  #restartDelay = RESTART_MIN_MS;
  #restartTimer: TimerId | undefined;
  #recheckTimer: TimerId | undefined;
  #recheckAt: number | null = null;
  #startedAt = 0;
  #verdict: WitnessVerdict = { fault: null, hold: null, recheckAt: null };
  #wasQuorate: boolean | null = null;
  #faultSince: number | null = null;
  #fenced = false;
  #log: string[] = [];
  #active = false;

  /** Build (nothing runs until start). */
  constructor(o: WitnessDriverOptions) {
    this.#o = o;
    this.#clock = o.ctx.clock;
  }

  #node(): string {
    return this.#o.ha.node.id;
  }

  /** Start corosync and qdevice (failures are restarted; never throws). */
  async start(): Promise<void> {
    this.#stopping = false;
    const factory: WitnessFactory = this.#o.factory ??
      ((ha, dataDir, ev) => new CorosyncWitness(ha, dataDir, ev, this.#o.witnessOptions));
    this.#w = factory(this.#o.ha, this.#o.ctx.config.dataDir, {
      onLine: (l) => {
        this.#keep(l);
        if (this.#tracker?.line(l)) this.update();
      },
      onQdeviceLine: (l) => this.#keep(`qdevice: ${l}`),
      onExit: (reason) => this.#failed(reason, this.#clock.now() - this.#startedAt),
    });
    this.#tracker = new QuorumTracker(this.#w.nodeids.peer, () => this.#clock.now());
    this.update();
    await this.#startWitness();
  }

  #keep(l: string): void {
    this.#log.push(l.slice(0, 300));
    if (this.#log.length > LOG_LINES) this.#log.shift();
  }

  async #startWitness(): Promise<void> {
    const w = this.#w;
    if (!w || this.#stopping) return;
    try {
      const { pids } = await w.start();
      if (this.#stopping) {
        await w.stop();
        return;
      }
      this.#running = true;
      this.#startedAt = this.#clock.now();
      this.#lastError = null;
      this.#tracker?.setRunning(true);
      w.setActive(this.#active);
      this.#o.ctx.bus.publish({
        module: "ha",
        kind: "ha.witness_started",
        payload: { node: this.#node(), pids },
      });
      this.update();
    } catch (e) {
      if (!this.#stopping) this.#failed((e as Error).message, null);
    }
  }

  #failed(reason: string, ranMs: number | null): void {
    if (this.#stopping) return;
    const wasRunning = this.#running;
    this.#running = false;
    this.#lastError = reason;
    this.#tracker?.setRunning(false);
    this.update();
    if (ranMs !== null && ranMs > STABLE_MS) this.#restartDelay = RESTART_MIN_MS;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(RESTART_MAX_MS, delay * 2);
    this.#o.ctx.bus.publish({
      module: "ha",
      kind: "ha.witness_failed",
      severity: "error",
      payload: { node: this.#node(), reason, restartInMs: delay },
    });
    if (this.#restartTimer !== undefined) this.#clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = this.#clock.setTimeout(async () => {
      this.#restartTimer = undefined;
      this.#restarts++;
      // one of the two died: stop the other before both start again
      if (wasRunning || ranMs === null) await this.#w?.stop();
      void this.#startWitness();
    }, delay);
  }

  /** Stop both processes and the timers. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer !== undefined) this.#clock.clearTimeout(this.#restartTimer);
    if (this.#recheckTimer !== undefined) this.#clock.clearTimeout(this.#recheckTimer);
    this.#restartTimer = this.#recheckTimer = undefined;
    this.#running = false;
    await this.#w?.stop();
  }

  /** The quorum view (initial before start). */
  get quorum(): QuorumView {
    return this.#tracker?.view ?? QuorumTracker.initial();
  }

  /**
   * Recompute the verdict and apply it (on every corosync line that changed the view,
   * role transition, peer-link answer and module poll).
   */
  update(): void {
    if (this.#stopping) return;
    const role = this.#o.role();
    const active = role === "active";
    if (active !== this.#active) {
      this.#active = active;
      this.#w?.setActive(active);
    }
    const q = this.quorum;
    const now = this.#clock.now();
    const v = witnessVerdict({
      role,
      quorum: q,
      peer: this.#o.peer(),
      peerName: this.#o.ha.peers[0]?.id ?? this.#o.ha.peers[0]?.address ?? "peer",
      promoteWaitMs: promoteWaitMs(this.#o.ha.witness!),
      now,
      downReason: this.#running ? null : this.#lastError,
    });
    this.#verdict = v;
    const quorate = q.running && q.quorate;
    if (v.fault === null) {
      this.#faultSince = null;
      this.#fenced = false;
    } else if (this.#faultSince === null) this.#faultSince = now;
    this.#o.apply(v, quorate, v.fault ?? `quorate (members ${q.members?.join(",") ?? "?"})`);
    // events only once it has been quorate (a starting witness is not a loss)
    if (this.#wasQuorate !== null && this.#wasQuorate !== quorate) {
      if (quorate) {
        this.#o.ctx.bus.publish({
          module: "ha",
          kind: "ha.quorum_regained",
          severity: "notice",
          payload: { node: this.#node(), members: q.members ?? [] },
        });
      } else {
        this.#o.ctx.bus.publish({
          module: "ha",
          kind: "ha.quorum_lost",
          severity: "warning",
          payload: { node: this.#node(), reason: v.fault ?? "not quorate" },
        });
      }
    }
    if (this.#wasQuorate !== null || quorate) this.#wasQuorate = quorate;
    if (v.recheckAt !== this.#recheckAt) {
      if (this.#recheckTimer !== undefined) this.#clock.clearTimeout(this.#recheckTimer);
      this.#recheckTimer = undefined;
      this.#recheckAt = v.recheckAt;
      if (v.recheckAt !== null) {
        this.#recheckTimer = this.#clock.setTimeout(() => {
          this.#recheckTimer = undefined;
          this.#recheckAt = null;
          this.update();
        }, Math.max(0, v.recheckAt - now));
      }
    }
  }

  /**
   * The watchdog gate: a reason while quorum is lost (or the witness is down) and
   * keepalived still reports MASTER more than demoteBoundMs later — keepwire told it
   * FAULT and it did not comply, so only a reset keeps the pair from two actives.
   * A stuck event loop needs no gate: it stops petting by itself.
   */
  fenceReason(): string | null {
    if (this.#faultSince === null || this.#verdict.fault === null) return null;
    if (this.#o.engine() !== "MASTER") return null;
    const late = this.#clock.now() - this.#faultSince;
    const bound = this.#o.ha.witness!.demoteBoundMs;
    if (late <= bound) return null;
    const reason = `${this.#verdict.fault}; keepalived still MASTER ${late} ms later ` +
      `(bound ${bound} ms)`;
    if (!this.#fenced) {
      this.#fenced = true;
      this.#o.ctx.bus.publish({
        module: "ha",
        kind: "ha.self_fence",
        severity: "critical",
        payload: { node: this.#node(), reason },
      });
    }
    return reason;
  }

  /** The witness part of the status. */
  status(): WitnessStatus {
    const w = this.#o.ha.witness!;
    const q = this.quorum;
    return {
      qnetd: `${w.host}:${w.port}`,
      running: this.#running,
      pids: this.#w?.pids ?? [],
      quorate: q.running && q.quorate,
      nodeids: this.#w?.nodeids ?? { self: 0, peer: 0 },
      members: q.members,
      ring: q.ring,
      peerInMembership: q.peerInMembership,
      peerLeftAt: q.peerLeftAt === null ? null : new Date(q.peerLeftAt).toISOString(),
      fault: this.#verdict.fault,
      hold: this.#verdict.hold,
      promoteWaitMs: promoteWaitMs(w),
      timing: {
        tokenMs: w.tokenMs,
        timeoutMs: w.timeoutMs,
        syncTimeoutMs: w.syncTimeoutMs,
        demoteBoundMs: w.demoteBoundMs,
      },
      fence: this.#faultSince !== null && this.#fenced ? this.fenceReason() : null,
      restarts: this.#restarts,
      lastError: this.#lastError,
      log: [...this.#log],
    };
  }

  /** Health of the witness part (not ok while corosync/qdevice do not run). */
  health(): PartHealth | null {
    if (this.#running) return null;
    return {
      ok: false,
      essential: false,
      detail: `witness (corosync) not running: ${this.#lastError ?? "starting"}`,
    };
  }

  /** Metrics: quorate, witness up, restarts. */
  metrics(): MetricFamily[] {
    const q = this.quorum;
    return [
      {
        name: "ha_quorate",
        help: "1 while this node is quorate (witness: corosync votequorum with qdevice)",
        type: "gauge",
        samples: [{ value: q.running && q.quorate ? 1 : 0 }],
      },
      {
        name: "ha_witness_up",
        help: "1 while corosync and corosync-qdevice run",
        type: "gauge",
        samples: [{ value: this.#running ? 1 : 0 }],
      },
      {
        name: "ha_witness_restarts_total",
        help: "restarts of corosync + corosync-qdevice by keepwire since start",
        type: "counter",
        samples: [{ value: this.#restarts }],
      },
    ];
  }
}
