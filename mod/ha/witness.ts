/**
 * The witness in keepwire: corosync and corosync-qdevice as child processes
 * ({@link CorosyncWitness}), what their log lines say about membership and quorum
 * ({@link QuorumTracker}), and THE rule that turns quorum into the track file
 * ({@link witnessVerdict}):
 *
 * - not quorate (or corosync/qdevice not running) → FAULT, whatever the role: a node
 *   that is not quorate never becomes or stays active;
 * - quorate and active → nothing;
 * - quorate, not active, the peer in corosync's membership → held in FAULT (shown as
 *   standby) unless the peer link says the peer is not active or hands over: the VRRP
 *   timer (≈ 0.4 s) is far shorter than corosync's membership time (token +
 *   consensus), so a standby that listened to VRRP alone would take the address beside
 *   a live active on a cut peer link;
 * - quorate, the peer left the membership → released `promoteWaitMs` (qdevice
 *   sync_timeout + demoteBoundMs + margin) after corosync formed that membership: an
 *   active cut off from everything keeps its old quorum at most sync_timeout after the
 *   same membership change and then demotes within demoteBoundMs, so the two never
 *   hold the address together.
 *
 * Why corosync's log and not `corosync-quorumtool -m`: in corosync 3.1.7 the monitor
 * loop waits for a votequorum node-list notification after every quorum notification
 * before it prints (tools/corosync-quorumtool.c, monitor_status), so a quorum change
 * without a node-list change (the qdevice vote lost while alone) is printed one event
 * late, and a monitor started before the first membership printed a block mixing the
 * old and the new state. corosync logs `Members[N]: ...` and the primary/non-primary
 * line in `quorum_api_set_quorum` (exec/vsf_quorum.c) at the moment it notifies its
 * library clients, on the stderr keepwire reads anyway: no extra process, no polling.
 * cmap holds the membership but not the quorate flag.
 * @module
 */
import { stopEngineChild } from "./child.ts";
import { HaEngineError } from "./errors.ts";
import type { HaConfig } from "./config.ts";
import { promoteWaitMs } from "./config.ts";
import {
  corosyncCommand,
  corosyncNodes,
  type CorosyncPaths,
  corosyncPaths,
  deriveAuthkey,
  parseCorosyncLine,
  qdeviceCommand,
  renderCorosyncConf,
} from "./corosync.ts";
import { writeAtomic } from "./engine.ts";

/** What keepwire knows about corosync's membership and quorum. */
export interface QuorumView {
  /** corosync and corosync-qdevice both run. */
  running: boolean;
  /** votequorum's last decision (false before the first one). */
  quorate: boolean;
  /** corosync node ids of the last decision (null before it). */
  members: number[] | null;
  /** The last membership's ring id (`1.d`). */
  ring: string | null;
  /** Whether the peer is in the membership (null before the first membership). */
  peerInMembership: boolean | null;
  /** When corosync formed a membership without the peer (clock ms), null while it is in. */
  peerLeftAt: number | null;
  /** When the token was last lost (a membership change began), clock ms. */
  tokenLostAt: number | null;
  /** When `quorate` last changed (clock ms). */
  quorateSince: number | null;
  /** Decisions seen (Members lines). */
  decisions: number;
}

/** Folds corosync's log lines into a {@link QuorumView}. */
export class QuorumTracker {
  #peer: number;
  #now: () => number;
  #v: QuorumView = QuorumTracker.initial();
  #pendingQuorate: boolean | null = null;

  /** `peerNodeid`: the peer's corosync node id; `now`: the clock. */
  constructor(peerNodeid: number, now: () => number) {
    this.#peer = peerNodeid;
    this.#now = now;
  }

  /** The view before corosync said anything. */
  static initial(): QuorumView {
    return {
      running: false,
      quorate: false,
      members: null,
      ring: null,
      peerInMembership: null,
      peerLeftAt: null,
      tokenLostAt: null,
      quorateSince: null,
      decisions: 0,
    };
  }

  /** The current view (a copy). */
  get view(): QuorumView {
    return { ...this.#v, members: this.#v.members ? [...this.#v.members] : null };
  }

  /** corosync and qdevice run (true) or not: a stopped corosync is never quorate. */
  setRunning(on: boolean): void {
    if (!on) {
      this.#v = QuorumTracker.initial();
      this.#pendingQuorate = null;
      return;
    }
    this.#v.running = true;
  }

  /** One corosync log line; true when the view changed. */
  line(text: string): boolean {
    const l = parseCorosyncLine(text);
    const now = this.#now();
    const v = this.#v;
    switch (l.type) {
      case "token_lost":
        v.tokenLostAt = now;
        return true;
      case "membership":
        v.ring = l.ring;
        if (l.left.includes(this.#peer)) {
          v.peerInMembership = false;
          v.peerLeftAt = now;
        } else if (l.joined.includes(this.#peer)) {
          v.peerInMembership = true;
          v.peerLeftAt = null;
        }
        return true;
      case "quorate":
        // applied with the Members line that follows it (one decision, one update)
        this.#pendingQuorate = l.quorate;
        return false;
      case "members": {
        if (this.#pendingQuorate !== null && v.quorate !== this.#pendingQuorate) {
          v.quorateSince = now;
          v.quorate = this.#pendingQuorate;
        }
        this.#pendingQuorate = null;
        v.members = l.ids;
        v.decisions++;
        const inIt = l.ids.includes(this.#peer);
        if (!inIt && v.peerLeftAt === null) v.peerLeftAt = now;
        if (inIt) v.peerLeftAt = null;
        v.peerInMembership = inIt;
        return true;
      }
      default:
        return false;
    }
  }
}

/** What the peer link says about the peer (null without an answer yet). */
export interface PeerRoleView {
  /** The peer answered its last poll. */
  reachable: boolean;
  /** Its role as it reported it. */
  role: string | null;
  /** It is handing over (`ha failover` or maintenance there). */
  handingOver: boolean;
}

/** The witness rule's inputs. */
export interface WitnessInput {
  /** This node's role (keepwire's view). */
  role: string;
  /** corosync's view. */
  quorum: QuorumView;
  /** The peer link's view, or null before its first answer. */
  peer: PeerRoleView | null;
  /** The peer's name (for the reasons). */
  peerName: string;
  /** ms a standby waits after the peer left the membership ({@link promoteWaitMs}). */
  promoteWaitMs: number;
  /** Now (clock ms). */
  now: number;
  /** Why the witness does not run (null while it runs). */
  downReason: string | null;
}

/** The witness rule's verdict. */
export interface WitnessVerdict {
  /** FAULT shown as fault (not quorate, witness down), or null. */
  fault: string | null;
  /** FAULT shown as standby (held: the peer may be active), or null. */
  hold: string | null;
  /** Re-evaluate at this clock time (a promotion wait ends), or null. */
  recheckAt: number | null;
}

/** THE witness rule (see the module doc). Pure: tested on fake time. */
export function witnessVerdict(i: WitnessInput): WitnessVerdict {
  const q = i.quorum;
  if (!q.running) {
    return {
      fault: `witness_down: ${i.downReason ?? "corosync is starting"}`,
      hold: null,
      recheckAt: null,
    };
  }
  if (!q.quorate) {
    const members = q.members === null ? "no membership yet" : `members ${q.members.join(",")}`;
    return { fault: `quorum_lost: not quorate (${members})`, hold: null, recheckAt: null };
  }
  if (i.role === "active") return { fault: null, hold: null, recheckAt: null };
  if (q.peerInMembership === null) {
    return { fault: null, hold: "witness: waiting for corosync's membership", recheckAt: null };
  }
  if (q.peerInMembership) {
    const p = i.peer;
    if (p?.reachable && p.handingOver) return { fault: null, hold: null, recheckAt: null };
    if (p?.reachable && p.role !== "active") return { fault: null, hold: null, recheckAt: null };
    return {
      fault: null,
      hold: p?.reachable
        ? `witness: the peer ${i.peerName} is active and in the membership`
        : `witness: the peer ${i.peerName} is in the membership (peer link: no answer)`,
      recheckAt: null,
    };
  }
  const at = (q.peerLeftAt ?? i.now) + i.promoteWaitMs;
  if (i.now < at) {
    return {
      fault: null,
      hold: `witness: the peer ${i.peerName} left the membership; may take over in ${
        at - i.now
      } ms (the old active demotes first)`,
      recheckAt: at,
    };
  }
  return { fault: null, hold: null, recheckAt: null };
}

/** What the witness processes tell the module. */
export interface WitnessEvents {
  /** A corosync log line. */
  onLine(line: string): void;
  /** A corosync-qdevice log line (status only). */
  onQdeviceLine?(line: string): void;
  /** corosync or corosync-qdevice exited (not after `stop`). */
  onExit(reason: string): void;
}

/** corosync + corosync-qdevice as the module drives them (tests pass a fake). */
export interface Witness {
  /** Render, write the key, spawn corosync, then qdevice once corosync is ready. */
  start(): Promise<{ pids: number[] }>;
  /** Stop both (SIGTERM, then SIGKILL after a deadline). */
  stop(): Promise<void>;
  /** Mark this node active or not (the qdevice heuristic reads it). */
  setActive(on: boolean): void;
  /** The rendered corosync.conf (after start). */
  readonly config: string | null;
  /** Pids while running. */
  readonly pids: number[];
  /** corosync's node id for this node and the peer. */
  readonly nodeids: { self: number; peer: number };
}

/** Builds the witness of a module. */
export type WitnessFactory = (ha: HaConfig, dataDir: string, ev: WitnessEvents) => Witness;

/** Options of the real witness (the lab runs it in a namespace with `wrap`). */
export interface CorosyncWitnessOptions {
  /** Command prefix (tests). */
  wrap?: string[];
  /** Use setpriv's parent-death signal when found (default true). */
  deathSignal?: boolean;
  /** ms to wait for corosync's "ready" line before starting qdevice anyway (default 10000). */
  readyTimeoutMs?: number;
  /** ms to wait after SIGTERM before SIGKILL (default 5000). */
  stopTimeoutMs?: number;
}

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"];

function findFile(paths: string[]): string | null {
  for (const p of paths) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return null;
}

/** The real witness: corosync and corosync-qdevice as child processes. */
export class CorosyncWitness implements Witness {
  #ha: HaConfig;
  #paths: CorosyncPaths;
  #ev: WitnessEvents;
  #opts: CorosyncWitnessOptions;
  #children: Deno.ChildProcess[] = [];
  #stopping = false;
  #config: string | null = null;
  #ready: (() => void) | null = null;
  readonly nodeids: { self: number; peer: number };

  /** Build (nothing runs until start). */
  constructor(ha: HaConfig, dataDir: string, ev: WitnessEvents, opts: CorosyncWitnessOptions = {}) {
    this.#ha = ha;
    this.#paths = corosyncPaths(dataDir);
    this.#ev = ev;
    this.#opts = opts;
    const n = corosyncNodes(ha);
    this.nodeids = { self: n.self.nodeid, peer: n.peer.nodeid };
  }

  /** The paths it uses. */
  get paths(): CorosyncPaths {
    return this.#paths;
  }

  /** The rendered corosync.conf. */
  get config(): string | null {
    return this.#config;
  }

  /** Pids of the running processes. */
  get pids(): number[] {
    return this.#children.map((c) => c.pid);
  }

  setActive(on: boolean): void {
    try {
      if (on) writeAtomic(this.#paths.activeMarker, "active\n");
      else Deno.removeSync(this.#paths.activeMarker);
    } catch { /* absent already, or the directory is gone: the heuristic fails = not active */ }
  }

  async start(): Promise<{ pids: number[] }> {
    const w = this.#ha.witness;
    const secret = this.#ha.peerLink?.secret;
    if (!w || !secret) {
      throw new HaEngineError("ha.witness needs ha.peerLink (its secret keys corosync)");
    }
    this.#stopping = false;
    const p = this.#paths;
    await Deno.mkdir(p.dir, { recursive: true });
    const test = findFile(["/usr/bin/test", "/bin/test"]) ?? "/usr/bin/test";
    this.#config = renderCorosyncConf(this.#ha, p, { test });
    writeAtomic(p.config, this.#config);
    Deno.writeFileSync(p.authkey, deriveAuthkey(secret), { mode: 0o400 });
    Deno.chmodSync(p.authkey, 0o400);
    const wrap = this.#opts.wrap ?? [];
    const setpriv = this.#opts.deathSignal === false ? null : findFile(SETPRIV);
    const check = await runOnce([...wrap, w.corosync, "-t", "-c", p.config]);
    if (!check.ok) {
      throw new HaEngineError(
        `corosync.conf refused by corosync -t: ${check.out.split("\n").slice(-3).join(" | ")}`,
      );
    }
    const readyP = new Promise<void>((res) => this.#ready = res);
    const corosync = this.#spawn([...wrap, ...corosyncCommand(w, p, setpriv)], "corosync", (l) => {
      if (parseCorosyncLine(l).type === "ready") this.#ready?.();
      this.#ev.onLine(l);
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = corosync.status.then(() => "exited" as const);
    const r = await Promise.race([
      readyP.then(() => "ready" as const),
      exited,
      new Promise<"timeout">((res) =>
        timer = setTimeout(() => res("timeout"), this.#opts.readyTimeoutMs ?? 10_000)
      ),
    ]);
    clearTimeout(timer);
    this.#ready = null;
    if (r === "exited" || this.#stopping) {
      await this.stop();
      throw new HaEngineError(`corosync ${r === "exited" ? "exited at start" : "stopped"}`);
    }
    this.#spawn(
      [...wrap, ...qdeviceCommand(w, p, setpriv)],
      "corosync-qdevice",
      (l) => this.#ev.onQdeviceLine?.(l),
    );
    return { pids: this.pids };
  }

  #spawn(cmd: string[], name: string, onLine: (l: string) => void): Deno.ChildProcess {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd[0], {
        args: cmd.slice(1),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      void this.stop();
      throw new HaEngineError(`cannot run ${cmd[0]}: ${(e as Error).message}`, e);
    }
    this.#children.push(child);
    void pump(child.stdout, onLine);
    void pump(child.stderr, onLine);
    void child.status.then((s) => {
      this.#children = this.#children.filter((c) => c !== child);
      if (this.#stopping) return;
      const why = s.signal ? `killed by ${s.signal}` : `exited with code ${s.code}`;
      this.#ev.onExit(`${name} ${why}`);
    });
    return child;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ready?.();
    // qdevice first (it is corosync's client), then corosync
    for (const child of [...this.#children].reverse()) {
      await stopEngineChild(child, this.#opts.stopTimeoutMs ?? 5000);
    }
    this.#children = [];
    this.setActive(false);
  }
}

/** Run a short command: its success and output (a binary that cannot run is not ok). */
async function runOnce(cmd: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { ok: o.success, out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim() };
  } catch (e) {
    return { ok: false, out: `cannot run ${cmd[0]}: ${(e as Error).message}` };
  }
}

async function pump(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
  const dec = new TextDecoder();
  let pending = "";
  try {
    for await (const chunk of stream) {
      pending += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, i).trimEnd();
        pending = pending.slice(i + 1);
        if (line) onLine(line);
      }
    }
  } catch { /* the process went away */ }
}

export { promoteWaitMs };
