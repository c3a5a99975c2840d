/**
 * THE update state, in one file: the lifecycle of an update with its transition
 * table (persisted, shared by both slots' runtimes), and the smaller states the
 * updater reports beside it (install progress phase, per-slot status in the
 * store, this runtime's health gate).
 *
 *   idle → installing → installed → activating (bypass held) → trying → committed
 *              ↘ install-failed           ↘ rolled-back          ↘ gate-failed → rolled-back
 *                                                               ↘ rolled-back
 *   installed → trying (the box rebooted into the new slot without an activation)
 *   installed | install-failed | committed | rolled-back → installing (the next install)
 *
 * - `installing`: a bundle is being written into the other slot (marked bad first).
 *   A runtime that starts and finds `installing` was killed mid-install:
 *   `install-failed` (the booted slot and the boot order are untouched).
 * - `activating`: the bypass hold is placed and the switch (reboot / restart)
 *   is under way; starting in the new slot makes it `trying`, starting in the old
 *   one means the new slot never came up (crash, tries used up): `rolled-back`.
 * - `trying`: the new slot runs on trial; its health gate commits it
 *   (`committed`) or fails it (`gate-failed`, then the box falls back and the old
 *   slot's start records `rolled-back`). A slot on trial may itself be replaced
 *   only after that: no install while `activating`, `trying` or `gate-failed`
 *   (the other slot is the fallback).
 *
 * Every change goes through {@link UpdateStateMachine.to}, which checks the
 * table and reports the transition.
 * @module
 */

/** States of the update lifecycle. */
export const UPDATE_STATES = [
  "idle",
  "installing",
  "installed",
  "install-failed",
  "activating",
  "trying",
  "committed",
  "gate-failed",
  "rolled-back",
] as const;
/** A state of the update lifecycle. */
export type UpdateState = typeof UPDATE_STATES[number];

/** The legal transitions of the update lifecycle: from → allowed targets. */
export const TRANSITIONS: Readonly<Record<UpdateState, readonly UpdateState[]>> = {
  "idle": ["installing"],
  "installing": ["installed", "install-failed"],
  "installed": ["installing", "activating", "trying"],
  "install-failed": ["installing"],
  "activating": ["trying", "rolled-back"],
  "trying": ["committed", "gate-failed", "rolled-back"],
  "committed": ["installing"],
  "gate-failed": ["rolled-back"],
  "rolled-back": ["installing"],
};

/** The persisted update state (one row in the store). */
export interface UpdateStateRecord {
  /** State. */
  state: UpdateState;
  /** Slot being installed / activated (null when idle). */
  target: string | null;
  /** Slot booted when the install or activation began (null when idle). */
  from: string | null;
  /** Bundle version (null when unknown). */
  version: string | null;
  /** When the state was entered (ms). */
  since: number;
  /** Why, for a person. */
  detail: string | null;
}

/** One transition as reported. */
export interface UpdateTransition {
  /** Previous state. */
  from: UpdateState;
  /** New state. */
  to: UpdateState;
  /** The record after the transition. */
  record: UpdateStateRecord;
}

/** A transition the table does not allow (a bug, never user input). */
export class IllegalUpdateTransition extends Error {
  /** Build for from → to. */
  constructor(from: UpdateState, to: UpdateState) {
    super(`update: illegal transition ${from} -> ${to}`);
    this.name = "IllegalUpdateTransition";
  }
}

/** Where the machine keeps its record (the store's `update_state` row). */
export interface UpdateStateStore {
  /** The record, or null (idle) when there is none. */
  get(): UpdateStateRecord | null;
  /** Write the record. */
  put(r: UpdateStateRecord): void;
}

/** The update lifecycle over its persisted record; every change is checked against {@link TRANSITIONS}. */
export class UpdateStateMachine {
  readonly #store: UpdateStateStore;
  readonly #now: () => number;
  readonly #onTransition: (t: UpdateTransition) => void;

  /** Build over a store; `onTransition` is told after every transition. */
  constructor(
    store: UpdateStateStore,
    now: () => number,
    onTransition: (t: UpdateTransition) => void = () => {},
  ) {
    this.#store = store;
    this.#now = now;
    this.#onTransition = onTransition;
  }

  /** The current record (`idle` with nulls when nothing was ever installed). */
  current(): UpdateStateRecord {
    return this.#store.get() ??
      { state: "idle", target: null, from: null, version: null, since: 0, detail: null };
  }

  /** Whether `to` is allowed from the current state. */
  can(to: UpdateState): boolean {
    return TRANSITIONS[this.current().state].includes(to);
  }

  /**
   * Move to `to`, keeping the current target/from/version unless given;
   * throws {@link IllegalUpdateTransition} when the table does not allow it.
   */
  to(
    to: UpdateState,
    change:
      & { detail: string | null }
      & Partial<
        Pick<UpdateStateRecord, "target" | "from" | "version">
      >,
  ): UpdateStateRecord {
    const cur = this.current();
    if (!TRANSITIONS[cur.state].includes(to)) throw new IllegalUpdateTransition(cur.state, to);
    const record: UpdateStateRecord = {
      state: to,
      target: change.target !== undefined ? change.target : cur.target,
      from: change.from !== undefined ? change.from : cur.from,
      version: change.version !== undefined ? change.version : cur.version,
      since: this.#now(),
      detail: change.detail,
    };
    this.#store.put(record);
    this.#onTransition({ from: cur.state, to, record });
    return record;
  }
}

/** Phase of one install's progress (events, API, CLI). */
export type InstallPhase = "verifying" | "writing" | "finishing" | "done" | "failed";

/** Install status of one slot as the store records it. */
export type SlotStatus =
  | "installing" // being written (marked bad in the boot env first)
  | "installed" // written and verified, not yet primary
  | "pending" // primary, waiting for its first healthy start
  | "good" // passed the health gate / marked good
  | "bad" // failed, rolled back, or marked bad
  | "failed"; // install failed; contents undefined

/** State of the health gate in this runtime (not persisted). */
export type GateState = "stopped" | "waiting" | "passed" | "failed";

/** The legal transitions of the gate: from → allowed targets. */
export const GATE_TRANSITIONS: Readonly<Record<GateState, readonly GateState[]>> = {
  stopped: ["waiting"],
  waiting: ["passed", "failed", "stopped"],
  passed: [],
  failed: [],
};
