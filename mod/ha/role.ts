/**
 * THE role state machine of an HA node, in one file:
 *
 *   stopped → init → standby | active | fault        (keepalived reports via the notify FIFO)
 *   standby ⇄ active; standby | active → fault        (engine reports, keepalived down)
 *   fault → init (keepalived restarted) | standby | active
 *   any running role → maintenance (operator); maintenance → the engine's last state
 *   active | init | standby → fault (witness: quorum lost; a MASTER report while not quorate)
 *   any → stopped (the module stops)
 *
 * keepalived decides who is active; this machine follows its reports and adds what
 * keepalived cannot know: maintenance (keepwire holds keepalived in FAULT, and the
 * role stays `maintenance` whatever keepalived says) and a dead engine (keepalived
 * exited: `fault`, never `active`) and, with a witness, quorum (a node that is not quorate
 * is never `active`, whatever keepalived reports). Every transition is checked against
 * {@link ROLE_TRANSITIONS} and reported to the listener with its reason.
 * @module
 */
import type { Clock } from "../module.ts";

/** The roles. `disabled` (ha.enabled false) is not a state of the machine. */
export const ROLES = ["stopped", "init", "standby", "active", "fault", "maintenance"] as const;
/** One role. */
export type HaRole = typeof ROLES[number];

/** The legal transitions: from → allowed targets. */
export const ROLE_TRANSITIONS: Readonly<Record<HaRole, readonly HaRole[]>> = {
  stopped: ["init"],
  init: ["standby", "active", "fault", "maintenance", "stopped"],
  standby: ["active", "fault", "maintenance", "stopped"],
  active: ["standby", "fault", "maintenance", "stopped"],
  fault: ["init", "standby", "active", "maintenance", "stopped"],
  maintenance: ["init", "standby", "active", "fault", "stopped"],
};

/** What keepalived reports for the instance (`INSTANCE "VI_1" MASTER 100`). */
export type EngineState = "MASTER" | "BACKUP" | "FAULT" | "STOP";

/** Why a transition happened. */
export type RoleCause =
  | "start" // the module started
  | "engine" // keepalived reported a state
  | "engine-down" // keepalived exited or could not start
  | "engine-started" // keepalived (re)started: wait for its first report
  | "maintenance" // the operator turned maintenance on or off
  | "quorum" // the witness: quorum lost (or keepalived MASTER while not quorate)
  | "stop"; // the module stopped

/** A transition's reason. */
export interface RoleReason {
  /** Machine-readable cause. */
  cause: RoleCause;
  /** For a person: `keepalived reported MASTER (priority 100)`, `maintenance on by admin`. */
  text: string;
}

/** One transition as reported to the listener. */
export interface RoleTransition {
  /** Previous role. */
  from: HaRole;
  /** New role. */
  to: HaRole;
  /** Why. */
  reason: RoleReason;
  /** When (clock ms). */
  time: number;
  /** ms spent in `from`. */
  afterMs: number;
}

/** A transition the table does not allow (a bug in the module, never input). */
export class IllegalRoleTransition extends Error {
  /** Build for from → to. */
  constructor(from: HaRole, to: HaRole) {
    super(`ha role: illegal transition ${from} -> ${to}`);
    this.name = "IllegalRoleTransition";
  }
}

/** Snapshot of the machine for status and tests. */
export interface RoleSnapshot {
  /** Current role. */
  role: HaRole;
  /** When it was entered (clock ms). */
  since: number;
  /** Reason of the last transition. */
  reason: RoleReason;
  /** The engine's last reported state, `down` when it is not running, null before any report. */
  engine: EngineState | "down" | null;
  /** The engine's last reported priority (effective, after track weights), or null. */
  priority: number | null;
  /** Transitions since start, by target role. */
  counts: Record<HaRole, number>;
  /** The last transitions, newest last (at most {@link HISTORY}). */
  history: RoleTransition[];
  /** When this node last became active (clock ms), or null. */
  lastActiveAt: number | null;
  /** Quorate (always true without a witness). */
  quorate: boolean;
}

/** Transitions kept in the history. */
export const HISTORY = 32;

const ENGINE_ROLE: Record<EngineState, HaRole> = {
  MASTER: "active",
  BACKUP: "standby",
  FAULT: "fault",
  STOP: "fault",
};

/** The role machine of one node. */
export class RoleMachine {
  #clock: Clock;
  #listener: (t: RoleTransition) => void;
  #role: HaRole = "stopped";
  #since: number;
  #reason: RoleReason = { cause: "stop", text: "not started" };
  #engine: EngineState | "down" | null = null;
  #priority: number | null = null;
  #history: RoleTransition[] = [];
  #lastActiveAt: number | null = null;
  #quorate = true;
  #quorumText = "";
  #counts = Object.fromEntries(ROLES.map((r) => [r, 0])) as Record<HaRole, number>;

  /** Build in `stopped`; `listener` is told synchronously after every transition. */
  constructor(clock: Clock, listener: (t: RoleTransition) => void = () => {}) {
    this.#clock = clock;
    this.#listener = listener;
    this.#since = clock.now();
  }

  /** Current role. */
  get role(): HaRole {
    return this.#role;
  }

  /** Snapshot for status, metrics and tests. */
  snapshot(): RoleSnapshot {
    return {
      role: this.#role,
      since: this.#since,
      reason: this.#reason,
      engine: this.#engine,
      priority: this.#priority,
      counts: { ...this.#counts },
      history: [...this.#history],
      lastActiveAt: this.#lastActiveAt,
      quorate: this.#quorate,
    };
  }

  /** The module started: stopped → init (waiting for keepalived's first report). */
  start(): void {
    this.#engine = null;
    this.#priority = null;
    this.#go("init", { cause: "start", text: "started; waiting for keepalived" });
  }

  /** The module stopped: any → stopped. */
  stop(text = "stopped"): void {
    if (this.#role !== "stopped") this.#go("stopped", { cause: "stop", text });
  }

  /**
   * keepalived reported a state. In maintenance it is recorded only; otherwise the
   * role follows it (MASTER → active, BACKUP → standby, FAULT/STOP → fault).
   */
  engineReport(state: EngineState, priority: number, heldStandby?: string): void {
    if (this.#role === "stopped") return;
    this.#engine = state;
    this.#priority = priority;
    if (this.#role === "maintenance") return;
    if (state === "MASTER" && !this.#quorate) {
      // keepwire has already told keepalived FAULT; until it complies the node is no active
      const text = `keepalived reported MASTER while not quorate (${this.#quorumText})`;
      if (this.#role !== "fault") this.#go("fault", { cause: "quorum", text });
      else this.#reason = { cause: "quorum", text };
      return;
    }
    // manual failover: keepalived held in FAULT only to keep it from taking over is a
    // standby (`heldStandby` says why)
    const to = state === "FAULT" && heldStandby !== undefined ? "standby" : ENGINE_ROLE[state];
    if (to !== this.#role) {
      this.#go(to, {
        cause: "engine",
        text: to === "standby" && state === "FAULT"
          ? `keepalived held in FAULT: ${heldStandby}`
          : `keepalived reported ${state} (priority ${priority})`,
      });
    } else if (to === "standby" && state === "FAULT") {
      // a standby now held (or held for another reason): no transition, the why changes
      this.#reason = { cause: "engine", text: `keepalived held in FAULT: ${heldStandby}` };
    }
  }

  /**
   * The witness's verdict on quorum (never called without a witness). Losing it makes an
   * active node `fault` at once: keepwire writes FAULT to keepalived at the same time,
   * and the node must not claim active while keepalived catches up. Regaining it
   * changes no role by itself (keepalived's next report does).
   */
  setQuorum(quorate: boolean, text: string): void {
    this.#quorate = quorate;
    this.#quorumText = text;
    if (this.#role === "stopped" || quorate) return;
    if (this.#role === "active") {
      this.#go("fault", { cause: "quorum", text: `quorum lost: ${text}` });
    }
  }

  /** keepalived's effective priority changed (no state change). */
  enginePriority(priority: number): void {
    if (this.#role !== "stopped") this.#priority = priority;
  }

  /** keepalived exited or could not start: the node must not claim active. */
  engineDown(text: string): void {
    if (this.#role === "stopped") return;
    this.#engine = "down";
    if (this.#role === "maintenance" || this.#role === "fault") return;
    this.#go("fault", { cause: "engine-down", text });
  }

  /** keepalived (re)started: a fault caused by its absence waits for its first report. */
  engineStarted(): void {
    if (this.#role === "stopped") return;
    this.#engine = null;
    this.#priority = null;
    if (this.#role === "fault") {
      this.#go("init", { cause: "engine-started", text: "keepalived started" });
    }
  }

  /**
   * Maintenance on: any running role → maintenance (keepalived is held in FAULT by
   * the module). Off: back to what keepalived last reported (init when unknown).
   */
  setMaintenance(on: boolean, by: string): void {
    if (this.#role === "stopped") return;
    if (on) {
      if (this.#role !== "maintenance") {
        this.#go("maintenance", { cause: "maintenance", text: `maintenance on by ${by}` });
      }
      return;
    }
    if (this.#role !== "maintenance") return;
    const to: HaRole = this.#engine === null
      ? "init"
      : this.#engine === "down" || (this.#engine === "MASTER" && !this.#quorate)
      ? "fault"
      : ENGINE_ROLE[this.#engine];
    this.#go(to, { cause: "maintenance", text: `maintenance off by ${by}` });
  }

  #go(to: HaRole, reason: RoleReason): void {
    const from = this.#role;
    if (!ROLE_TRANSITIONS[from].includes(to)) throw new IllegalRoleTransition(from, to);
    const now = this.#clock.now();
    const t: RoleTransition = { from, to, reason, time: now, afterMs: now - this.#since };
    this.#role = to;
    this.#since = now;
    this.#reason = reason;
    this.#counts[to]++;
    if (to === "active") this.#lastActiveAt = now;
    this.#history.push(t);
    if (this.#history.length > HISTORY) this.#history.shift();
    this.#listener(t);
  }
}
