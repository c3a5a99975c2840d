/**
 * The gateway in an active-active pair: one table set per client set. Set a's clients'
 * messages live in the `sms` group (SMSGW_TABLES, set a); set b's in a copy of the same
 * tables named `smsgwb_*`, group `sms_b`, declared on set b — so the node active for set b
 * stores them and keepwire replicates them to its peer on channel b while the other node
 * does the same for set a. A second {@link Smsgw} ("lane") runs the same logic on set b's
 * tables: its SDK view ({@link laneSdk}) renames the tables in its SQL and says the node is
 * writable when it is active for set b. A request is served by the lane of the address it
 * was sent to (its Host). README.md beside this file ("Active-active") is the reference.
 * @module
 */
import type { NodeInfo, Statement, TablesSpec } from "../../mod/sdk/mod.ts";
import { SMSGW_TABLES, type SmsgwSdk } from "./app.ts";

const NAMES = /\bsmsgw_(accounts|messages|refs|deliveries)\b/g;

/** Set b's table names: `smsgw_messages` → `smsgwb_messages`. */
export function setBName(sql: string): string {
  return sql.replaceAll(NAMES, "smsgwb_$1");
}

/** Set b's declaration: the same tables and indexes renamed, group `sms_b` on set b. */
export const SMSGW_TABLES_B: TablesSpec = {
  ...SMSGW_TABLES,
  group: "sms_b",
  set: "b",
  tables: SMSGW_TABLES.tables.map((t) => ({
    ...t,
    name: setBName(t.name),
    ...(t.indexes
      ? {
        indexes: Object.fromEntries(
          Object.entries(t.indexes).map(([n, c]) => [n.replace(/^smsgw_/, "smsgwb_"), c]),
        ),
      }
      : {}),
  })),
};

/**
 * Set b's view of the SDK: its tables' SQL renamed, `node().writable` true while this
 * node writes set b (`writableSets` has `b`; a node without active-active writes both
 * sets when it writes at all), and no queue handoff (set b's clients are served where set
 * b is active).
 */
export function laneSdk(sdk: SmsgwSdk, tablesB: SmsgwSdk["tables"]): SmsgwSdk {
  const rename = (s: Statement): Statement => ({ ...s, sql: setBName(s.sql) });
  return {
    tables: {
      query: (sql, params) => tablesB.query(setBName(sql), params),
      write: (st) => tablesB.write(Array.isArray(st) ? st.map(rename) : rename(st)),
    },
    node: (): NodeInfo | null => {
      const n = sdk.node();
      if (!n) return null;
      const w = n.writableSets ? n.writableSets.includes("b") : n.writable;
      return { ...n, role: n.role === "single" ? "single" : w ? "active" : "standby", writable: w };
    },
    handoff: () => null,
    reportQueue: () => {},
    status: (text) => sdk.status(`set b: ${text}`),
  };
}

/**
 * Which lane serves a request: `b` when its Host (the address the client sent it to) is
 * one of set b's addresses (`SMSGW_SET_B_HOSTS`), else `a`.
 */
export function laneOf(req: Request, setBHosts: ReadonlySet<string>): "a" | "b" {
  if (!setBHosts.size) return "a";
  const host = new URL(req.url).hostname.replace(/^\[|\]$/g, "");
  return setBHosts.has(host) ? "b" : "a";
}
