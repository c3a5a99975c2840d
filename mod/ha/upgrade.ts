/**
 * Rolling upgrade of the HA pair (`keepwire ha upgrade BUNDLE`, POST /api/ha/upgrade), run
 * by the active node:
 *
 * checking → sending → peer_installing → peer_activating → handing_over →
 * local_installing → local_activating → done
 *
 * - checking: the peer answers on the peer link and is healthy, both nodes are healthy, the
 *   bundle's `compatible` matches both nodes, its version is newer than both, both nodes run
 *   the same store schema, and the bundle declares that same store schema
 *   ({@link storeSchemaMismatch}: replication refuses changes across schemas, so a standby
 *   upgraded to another schema could never catch up). Anything else stops here, before
 *   anything is sent or installed.
 * - sending / peer_installing / peer_activating: the standby receives the bundle, installs it
 *   in its other slot and activates it (restart or reboot, its own `update.activation`); its
 *   health gate commits it. Done when the peer answers with the new version, healthy and
 *   committed; a peer that comes back with the old version rolled back (stopped).
 * - handing_over: `ha failover` here; done when the peer is active and this node standby.
 * - local_installing / local_activating: this node (now standby) installs and activates.
 *   Activation ends this process (restart mode) or the machine (reboot), so the state is
 *   saved first and {@link RollingUpgrade.resume} finishes it at the next start: done when
 *   this node runs the new version committed.
 *
 * Any failure stops the rollout (`stopped`, with the step and the reason). No step takes
 * the active role away without handing it over: until handing_over the active never
 * changes, and a failed standby update rolls back in the standby only; after it, the
 * upgraded peer is active while this node installs.
 * @module
 */
import type { Clock } from "../module.ts";
import type { EventBus } from "../events/mod.ts";
import { compareSemver } from "../update/semver.ts";
import { parseStoreSchema } from "../update/bundle.ts";
import { KeepwireError } from "../errors.ts";
import { z } from "zod";
import type {} from "./events.ts";

/** The steps, in order; `done` and `stopped` end a rollout. */
export const UPGRADE_STATES = [
  "idle",
  "checking",
  "sending",
  "peer_installing",
  "peer_activating",
  "handing_over",
  "local_installing",
  "local_activating",
  "done",
  "stopped",
] as const;
/** One step of a rollout. */
export type UpgradeState = typeof UPGRADE_STATES[number];

/** The allowed transitions (every running step can also go to `stopped`). */
export const UPGRADE_TRANSITIONS: Record<UpgradeState, readonly UpgradeState[]> = {
  idle: ["checking"],
  checking: ["sending", "stopped"],
  sending: ["peer_installing", "stopped"],
  peer_installing: ["peer_activating", "stopped"],
  peer_activating: ["handing_over", "stopped"],
  handing_over: ["local_installing", "stopped"],
  local_installing: ["local_activating", "stopped"],
  local_activating: ["done", "stopped"],
  done: ["checking"],
  stopped: ["checking"],
};

/** What a node reports for the rollout (this node, or the peer over the peer link). */
export interface UpgradeNodeView {
  /** Node id. */
  node: string;
  /** HA role: active, standby, fault, maintenance, ... */
  role: string;
  /** Running keepwire version (semver). */
  version: string;
  /** The device's `update.compatible`. */
  compatible: string;
  /** Store schema versions ("module:version,..."): both nodes must match. */
  schema: string;
  /**
   * The store schema this node's code declares (`codeStoreSchema()`, the form a bundle
   * declares), including modules not enabled here; absent from nodes of older versions.
   */
  codeSchema?: string;
  /** All essential parts healthy. */
  healthy: boolean;
  /** The updater's activation: `committed` (or none), `pending` (health gate), `failed`. */
  activation: "committed" | "pending" | "failed";
  /** A short reason when not healthy. */
  detail?: string;
}

/** What the bundle's manifest says (read, verified by the updater at install). */
export interface UpgradeBundleInfo {
  /** Version it installs. */
  version: string;
  /** Device family it is for. */
  compatible: string;
  /** The store schema of its code (`module:version,...`); absent in older bundles. */
  storeSchema?: string;
}

/**
 * Why a bundle's declared store schema does not fit the pair, or null when it does. For
 * each module the bundle declares, each node's version must equal it: the version in the
 * node's running `schema` (its store's `schema_versions`), or for a module not migrated on
 * the node (not enabled there) the version its code declares (`codeSchema`; a node that
 * does not report one is not compared on such modules). A module the bundle adds counts
 * as version 0 on a node whose code lacks it. Modules the bundle does not name (the
 * subsystems' SDK table groups, a module the new code dropped) are left alone: the new
 * code does not migrate them. A bundle that declares no schema is refused: a schema
 * change would only show after the standby activated it.
 */
export function storeSchemaMismatch(
  bundleSchema: string | undefined,
  nodes: readonly UpgradeNodeView[],
): string | null {
  if (bundleSchema === undefined) {
    return "the bundle does not declare its store schema (made by an older keepwire or " +
      "with --store-schema none): a store migration in it would only show after the " +
      "standby activated it; rebuild it with `keepwire bundle create` of the version it " +
      "ships, or install it one node at a time (docs/ha.md, rolling upgrade)";
  }
  const want = parseStoreSchema(bundleSchema);
  for (const n of nodes) {
    const code = n.codeSchema === undefined ? null : parseStoreSchema(n.codeSchema);
    const running = parseStoreSchema(n.schema);
    const diffs: string[] = [];
    for (const [mod, v] of want) {
      const have = running.get(mod) ?? (code ? code.get(mod) ?? 0 : undefined);
      if (have !== undefined && have !== v) diffs.push(`${mod} ${have} → ${v}`);
    }
    if (diffs.length) {
      return `the bundle changes the store schema (${diffs.join(", ")}): it declares ` +
        `${bundleSchema}, node ${n.node} runs ${n.schema}; replication refuses changes ` +
        `across store schemas, so the upgraded standby could never catch up: a store ` +
        `migration is rolled out one node at a time (docs/ha.md, rolling upgrade)`;
    }
  }
  return null;
}

/**
 * The world the rollout drives. The HA module wires it to the updater and the peer link;
 * tests pass a fake pair.
 */
export interface UpgradeDriver {
  /** Read the bundle's manifest; throws when it is missing or not a bundle. */
  bundle(path: string): Promise<UpgradeBundleInfo>;
  /** This node. */
  local(): Promise<UpgradeNodeView>;
  /** The peer over the peer link; throws when it does not answer. */
  peer(): Promise<UpgradeNodeView>;
  /** Send the bundle to the peer (it stores it for its updater). */
  send(path: string): Promise<void>;
  /** Ask the peer to install what it received and activate it (returns once it accepted). */
  peerInstall(): Promise<void>;
  /**
   * Null when the pair can hand over without losing anything, else why not (checked after
   * the peer is back committed, before the handover): the peer caught up with this node's
   * replication, every part of both nodes healthy (its subsystems ready). Absent: ready.
   */
  ready?(): Promise<string | null>;
  /** `ha failover` on this node (hand the active role to the peer). */
  handover(): Promise<void>;
  /** Install the bundle here and activate it: this process or machine goes away. */
  localInstall(path: string): Promise<void>;
}

/** The persisted state of the last rollout (status, resume after this node's restart). */
export const upgradeStatusSchema = z.lazy(() =>
  z.strictObject({
    state: z.enum(UPGRADE_STATES),
    bundle: z.string().nullable().describe("bundle path on the active node"),
    target: z.string().nullable().describe("version the bundle installs"),
    from: z.strictObject({ local: z.string().nullable(), peer: z.string().nullable() })
      .describe("versions of this node and the peer when the rollout started"),
    by: z.string().nullable(),
    startedAt: z.number().nullable(),
    updatedAt: z.number().nullable(),
    stoppedAt: z.enum(UPGRADE_STATES).nullable().describe("the step that failed (state stopped)"),
    reason: z.string().nullable().describe("why it stopped"),
    steps: z.array(z.strictObject({ state: z.enum(UPGRADE_STATES), at: z.number() })),
  })
);
/** The rollout's status (in `ha status` and GET /api/ha/status as `upgrade`). */
export type UpgradeStatus = z.infer<typeof upgradeStatusSchema>;

/** Body of POST /api/ha/upgrade. */
export const haUpgradeBodySchema = z.lazy(() =>
  z.strictObject({
    bundle: z.string().min(1).max(4096).describe("path of the .kwb bundle on the active node"),
    by: z.string().min(1).max(64).optional(),
  })
);

/** Timeouts and poll period of the rollout. */
export interface UpgradeTimings {
  /** Poll period while waiting for a node (default 1000 ms). */
  pollMs: number;
  /** Peer back with the new version, healthy, committed (default 10 min: a reboot). */
  peerActivateMs: number;
  /** Handover done (default 60 s). */
  handoverMs: number;
  /** This node back with the new version, committed, after its restart (default 10 min). */
  localActivateMs: number;
}

const DEFAULT_TIMINGS: UpgradeTimings = {
  pollMs: 1000,
  peerActivateMs: 600_000,
  handoverMs: 60_000,
  localActivateMs: 600_000,
};

/** A rollout refused before it started (409): another one runs, or this node is not active. */
export class HaUpgradeRefusedError extends KeepwireError {
  /** Build one with the reason. */
  constructor(reason: string) {
    super(409, "ha_upgrade_refused", `rolling upgrade refused: ${reason}`);
  }
}

class StepFailed extends Error {}

/** Where the status is kept (the store's settings; tests: memory). */
export interface UpgradeStore {
  /** The saved status, or null. */
  load(): UpgradeStatus | null;
  /** Save it (before each step runs). */
  save(s: UpgradeStatus): void;
}

/** Options of {@link RollingUpgrade}. */
export interface RollingUpgradeOptions {
  /** This node's id (events). */
  node: string;
  driver: UpgradeDriver;
  clock: Clock;
  bus: EventBus;
  store: UpgradeStore;
  timings?: Partial<UpgradeTimings>;
}

function idle(): UpgradeStatus {
  return {
    state: "idle",
    bundle: null,
    target: null,
    from: { local: null, peer: null },
    by: null,
    startedAt: null,
    updatedAt: null,
    stoppedAt: null,
    reason: null,
    steps: [],
  };
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The rolling-upgrade state machine (one per node; one rollout at a time). */
export class RollingUpgrade {
  #o: RollingUpgradeOptions;
  #t: UpgradeTimings;
  #s: UpgradeStatus;
  #run: Promise<void> | null = null;

  /** Build it; the saved status (if any) is loaded. */
  constructor(o: RollingUpgradeOptions) {
    this.#o = o;
    this.#t = { ...DEFAULT_TIMINGS, ...o.timings };
    this.#s = o.store.load() ?? idle();
  }

  /** The status (a copy). */
  status(): UpgradeStatus {
    return structuredClone(this.#s);
  }

  /** True while a rollout runs here. */
  get running(): boolean {
    return this.#run !== null;
  }

  /** The promise of the running rollout (tests; resolves when it ends). */
  get done(): Promise<void> {
    return this.#run ?? Promise.resolve();
  }

  /**
   * Start a rollout of `bundle`; returns once it started (`checking`). Refused while one
   * runs, or while one waits for this node's restart.
   */
  start(bundle: string, by: string): UpgradeStatus {
    if (this.#run || this.#s.state === "local_activating" || this.#s.state === "local_installing") {
      throw new HaUpgradeRefusedError(`a rollout is running (${this.#s.state})`);
    }
    const now = this.#o.clock.now();
    this.#s = { ...idle(), bundle, by, startedAt: now };
    this.#o.bus.publish({
      module: "ha",
      kind: "ha.upgrade_started",
      severity: "notice",
      payload: { node: this.#o.node, bundle, by },
    });
    this.#go("checking");
    this.#run = this.#rollout(bundle).catch((e) => this.#abort(e)).finally(() => this.#run = null);
    return this.status();
  }

  /**
   * At start: a rollout saved in local_installing or local_activating (this node went away
   * to activate) is finished: done when this node runs the target committed, stopped when
   * it came back with another version (rolled back) or not in time.
   */
  resume(): void {
    const st = this.#s.state;
    if (this.#run || (st !== "local_activating" && st !== "local_installing")) return;
    if (st === "local_installing") this.#go("local_activating");
    this.#run = this.#step(() => this.#localBack()).then((ok) => {
      if (ok) this.#finish();
    }).catch((e) => this.#abort(e)).finally(() => this.#run = null);
  }

  /**
   * A failure outside a step (the status could not be saved): stopped, in memory at least.
   * Never rethrown: a rejected rollout must not end the process.
   */
  #abort(e: unknown): void {
    const reason = `the rollout failed: ${msg(e)}`;
    try {
      this.#stop(reason);
    } catch {
      const now = this.#o.clock.now();
      this.#s = {
        ...this.#s,
        stoppedAt: this.#s.state === "stopped" ? this.#s.stoppedAt : this.#s.state,
        state: "stopped",
        reason,
        updatedAt: now,
        steps: [...this.#s.steps, { state: "stopped", at: now }],
      };
      this.#o.bus.publish({
        module: "ha",
        kind: "ha.upgrade_stopped",
        severity: "error",
        payload: {
          node: this.#o.node,
          step: this.#s.stoppedAt ?? "idle",
          reason,
          target: this.#s.target ?? "",
        },
      });
    }
  }

  #go(state: UpgradeState): void {
    const now = this.#o.clock.now();
    if (!UPGRADE_TRANSITIONS[this.#s.state].includes(state)) {
      throw new Error(`rolling upgrade: no transition ${this.#s.state} → ${state}`);
    }
    this.#s = {
      ...this.#s,
      state,
      updatedAt: now,
      steps: [...this.#s.steps, { state, at: now }],
    };
    this.#o.store.save(this.#s);
    if (state !== "checking" && state !== "done" && state !== "stopped") {
      this.#o.bus.publish({
        module: "ha",
        kind: "ha.upgrade_step",
        severity: "info",
        payload: { node: this.#o.node, step: state, target: this.#s.target ?? "" },
      });
    }
  }

  #stop(reason: string): void {
    const at = this.#s.state;
    this.#s = { ...this.#s, stoppedAt: at, reason };
    this.#go("stopped");
    this.#o.bus.publish({
      module: "ha",
      kind: "ha.upgrade_stopped",
      severity: "error",
      payload: { node: this.#o.node, step: at, reason, target: this.#s.target ?? "" },
    });
  }

  #finish(): void {
    this.#go("done");
    this.#o.bus.publish({
      module: "ha",
      kind: "ha.upgrade_done",
      severity: "notice",
      payload: {
        node: this.#o.node,
        target: this.#s.target ?? "",
        ms: this.#o.clock.now() - (this.#s.startedAt ?? this.#o.clock.now()),
      },
    });
  }

  /** Run one step; a throw stops the rollout with its message. */
  async #step(fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      this.#stop(msg(e));
      return false;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#o.clock.setTimeout(r, ms));
  }

  /**
   * Poll `probe` every pollMs until it returns true; it throws StepFailed to stop at once.
   * Other throws (a node restarting) are retried. Stops with `what` after `ms`.
   */
  async #until(
    ms: number,
    what: string,
    probe: () => Promise<boolean>,
  ): Promise<void> {
    const end = this.#o.clock.now() + ms;
    let last = "";
    for (;;) {
      try {
        if (await probe()) return;
      } catch (e) {
        if (e instanceof StepFailed) throw e;
        last = msg(e);
      }
      if (this.#o.clock.now() >= end) {
        throw new StepFailed(`${what} within ${ms / 1000} s${last ? ` (last: ${last})` : ""}`);
      }
      await this.#sleep(this.#t.pollMs);
    }
  }

  async #rollout(bundle: string): Promise<void> {
    const d = this.#o.driver;
    const ok = await this.#step(async () => {
      let info: UpgradeBundleInfo;
      try {
        info = await d.bundle(bundle);
      } catch (e) {
        throw new Error(`bundle ${bundle}: ${msg(e)}`);
      }
      this.#s = { ...this.#s, target: info.version };
      const local = await d.local();
      let peer: UpgradeNodeView;
      try {
        peer = await d.peer();
      } catch (e) {
        throw new Error(`peer not reachable on the peer link: ${msg(e)}`);
      }
      this.#s = { ...this.#s, from: { local: local.version, peer: peer.version } };
      this.#o.store.save(this.#s);
      if (local.role !== "active") throw new Error(`this node is ${local.role}, not active`);
      if (peer.role !== "standby") {
        throw new Error(`peer ${peer.node} is ${peer.role}, not standby`);
      }
      for (const n of [local, peer]) {
        if (!n.healthy) {
          throw new Error(`node ${n.node} is not healthy: ${n.detail ?? "unhealthy"}`);
        }
        if (n.activation !== "committed") {
          throw new Error(
            `node ${n.node} has an update ${n.activation}: commit or roll it back first`,
          );
        }
        if (n.compatible !== info.compatible) {
          throw new Error(
            `incompatible bundle: it is for "${info.compatible}", node ${n.node} is "${n.compatible}"`,
          );
        }
        if (compareSemver(info.version, n.version) <= 0) {
          throw new Error(
            `bundle version ${info.version} is not newer than ${n.version} on node ${n.node}`,
          );
        }
      }
      if (local.schema !== peer.schema) {
        throw new Error(
          `store schema differs: ${local.node} ${local.schema}, ${peer.node} ${peer.schema}`,
        );
      }
      const why = storeSchemaMismatch(info.storeSchema, [local, peer]);
      if (why) throw new Error(why);
    });
    if (!ok) return;
    const target = this.#s.target!;
    const oldPeer = this.#s.from.peer!;

    this.#go("sending");
    if (!await this.#step(() => d.send(bundle))) return;
    this.#go("peer_installing");
    if (!await this.#step(() => d.peerInstall())) return;
    this.#go("peer_activating");
    if (
      !await this.#step(() =>
        this.#until(this.#t.peerActivateMs, "the peer did not come back committed", async () => {
          const p = await d.peer();
          if (p.activation === "failed" || (p.version === oldPeer && p.activation !== "pending")) {
            throw new StepFailed(
              `the peer ${p.node} rolled back to ${p.version}${p.detail ? `: ${p.detail}` : ""}`,
            );
          }
          if (
            !(p.version === target && p.activation === "committed" && p.healthy &&
              p.role === "standby")
          ) return false;
          const l = await d.local();
          if (p.schema !== l.schema) {
            // replication refuses frames across store schemas: the upgraded standby can
            // never catch up with this node, and a handover would lose what it missed
            throw new StepFailed(
              `the new version changes the store schema (${l.schema} here, ${p.schema} on ` +
                `${p.node}): the upgraded standby cannot replicate from this node; ` +
                `this node stays active`,
            );
          }
          // back on the new version: hand over only to a standby that caught up
          const why = await d.ready?.();
          if (why) throw new Error(why);
          return true;
        })
      )
    ) return;

    this.#go("handing_over");
    if (
      !await this.#step(async () => {
        await d.handover();
        await this.#until(this.#t.handoverMs, "the peer did not become active", async () => {
          const [l, p] = [await d.local(), await d.peer()];
          return p.role === "active" && l.role !== "active";
        });
      })
    ) return;

    this.#go("local_installing");
    if (!await this.#step(() => d.localInstall(bundle))) return;
    this.#go("local_activating");
    // restart/reboot mode: this process ends here and resume() finishes after the restart
    if (!await this.#step(() => this.#localBack())) return;
    this.#finish();
  }

  async #localBack(): Promise<void> {
    const target = this.#s.target;
    const old = this.#s.from.local;
    await this.#until(
      this.#t.localActivateMs,
      "this node did not come back committed",
      async () => {
        const l = await this.#o.driver.local();
        if (l.activation === "failed" || (l.version === old && l.activation !== "pending")) {
          throw new StepFailed(`this node rolled back to ${l.version}`);
        }
        return l.version === target && l.activation === "committed" && l.healthy;
      },
    );
  }
}
