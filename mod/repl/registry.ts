/**
 * The registry of replicated tables: which store tables the active ships to the standby,
 * grouped by durability. Modules (and the SDK, for a vendor's tables) declare their
 * tables here; the runtime's replication module reads it and keeps the engine in step
 * (a table registered after start is picked up at once).
 *
 * ```ts
 * import { registerTables } from "../repl/registry.ts";
 * registerTables("data", ["sms_messages", "sms_accounts"]); // after their migration ran
 * ```
 *
 * Built-in groups: `config` (sync: settings, users, tokens), `data` (sync: an
 * appliance's records, e.g. its messages) and `logs` (async). `ha.replication.groups`
 * in the config may change a group's durability or what it does while the standby is
 * gone; a vendor may {@link ReplRegistry.defineGroup} its own.
 * @module
 */
import { ReplConfigError } from "./errors.ts";

/** Durability of a table group. */
export interface GroupSpec {
  /**
   * `sync`: `Replicator.write` resolves only after the standby applied the write.
   * `async`: shipped within `batchMs`, acknowledged later (lag target ≤ 1 s).
   */
  durability: "sync" | "async";
  /**
   * For `sync` groups, what happens while the standby is gone: `continue` (default)
   * commits locally and reports `replicated: false` (plus `repl.standby_lost` once);
   * `refuse` refuses writes with {@link ReplStandbyLostError}.
   */
  onStandbyLost?: "continue" | "refuse";
  /**
   * The client set (replication channel) whose active node writes this group: `a`
   * (default) or `b` in an active-active pair. The node active for set `b` writes the
   * group's tables and replicates them to its peer on channel `b`; the built-in groups
   * (the pair's configuration, users, logs) are on `a`: the configuration has one writer.
   */
  set?: "a" | "b";
}

/** The built-in groups and their default durability. */
export const BUILTIN_GROUPS: Readonly<Record<string, GroupSpec>> = {
  config: { durability: "sync" },
  data: { durability: "sync" },
  logs: { durability: "async" },
};

/**
 * The core tables that replicate (group `config`): the shared settings, the user
 * records, API tokens and the revocation generation. Node-local on purpose: the event
 * journal (each node journals its own life), `settings_local`, sessions and login
 * throttling (a sign-in is on one node), update records (each node's own slots and
 * firmware history), bypass holds, the alert outbox. The active's journal reaches the
 * standby as {@link CORE_LOG_TABLES}.
 */
export const CORE_REPLICATED_TABLES: readonly string[] = [
  "settings",
  "users",
  "tokens",
  "auth_generation",
];

/**
 * The core tables of group `logs` (async): the pair journal, the active's events as it
 * journalled them (mod/repl/journal.ts; the store's core migrations make it).
 */
export const CORE_LOG_TABLES: readonly string[] = ["pair_journal"];

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Replicated tables by group, and the groups. */
export class ReplRegistry {
  #groups = new Map<string, GroupSpec>();
  #tables = new Map<string, string>();
  #listeners = new Set<(group: string, tables: string[]) => void>();

  /** A registry with the built-in groups (and, unless `core: false`, the core tables). */
  constructor(opts: { core?: boolean } = {}) {
    for (const [n, g] of Object.entries(BUILTIN_GROUPS)) this.#groups.set(n, { ...g });
    if (opts.core !== false) {
      this.registerTables("config", CORE_REPLICATED_TABLES);
      this.registerTables("logs", CORE_LOG_TABLES);
    }
  }

  /** Declare a group (or change a declared one's durability). */
  defineGroup(name: string, spec: GroupSpec): void {
    if (!NAME.test(name)) throw new ReplConfigError(`groups.${name}`, "not a valid group name");
    if (spec.durability !== "sync" && spec.durability !== "async") {
      throw new ReplConfigError(`groups.${name}.durability`, "must be sync or async");
    }
    if (spec.set !== undefined && spec.set !== "a" && spec.set !== "b") {
      throw new ReplConfigError(`groups.${name}.set`, "must be a or b");
    }
    const had = this.#groups.get(name);
    if (had && (had.set ?? "a") !== (spec.set ?? "a") && this.tablesOf(name).length) {
      throw new ReplConfigError(
        `groups.${name}.set`,
        `the group has tables on set ${had.set ?? "a"}: a group keeps its set`,
      );
    }
    this.#groups.set(name, { ...spec });
  }

  /**
   * Declare tables of `group` (their migrations must have run). Registering a table
   * again in the same group is a no-op; in another group it is refused
   * ({@link ReplConfigError}): a table has one durability.
   */
  registerTables(group: string, tables: readonly string[]): void {
    if (!this.#groups.has(group)) {
      throw new ReplConfigError("group", `unknown group "${group}" (defineGroup it first)`);
    }
    const added: string[] = [];
    for (const t of tables) {
      if (!NAME.test(t)) throw new ReplConfigError(`tables.${t}`, "not a valid table name");
      const had = this.#tables.get(t);
      if (had === group) continue;
      if (had !== undefined) {
        throw new ReplConfigError(`tables.${t}`, `already registered in group "${had}"`);
      }
      added.push(t);
    }
    for (const t of added) this.#tables.set(t, group);
    if (added.length) { for (const l of this.#listeners) l(group, added); }
  }

  /** The groups (copies). */
  groups(): Record<string, GroupSpec> {
    return Object.fromEntries([...this.#groups].map(([n, g]) => [n, { ...g }]));
  }

  /** The tables of a group. */
  tablesOf(group: string): string[] {
    return [...this.#tables].filter(([, g]) => g === group).map(([t]) => t);
  }

  /** Table → group. */
  tables(): Record<string, string> {
    return Object.fromEntries(this.#tables);
  }

  /** Called with every later registration; returns the unsubscribe. */
  onRegister(fn: (group: string, tables: string[]) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}

/** The process's registry: what the runtime's replication module replicates. */
export const replRegistry: ReplRegistry = new ReplRegistry();

/** Declare replicated tables in the process's registry (see the module doc). */
export function registerTables(group: string, tables: readonly string[]): void {
  replRegistry.registerTables(group, tables);
}

/** Declare (or redefine) a group in the process's registry. */
export function defineGroup(name: string, spec: GroupSpec): void {
  replRegistry.defineGroup(name, spec);
}
