/**
 * `keepwire ha status [--json]`, `ha failover [--by WHO]`, `ha maintenance on|off [--by WHO]`,
 * `ha upgrade BUNDLE`, `ha journal`: the HA pair as this node sees it, a graceful handover,
 * maintenance (persisted), a rolling upgrade of the pair (mod/ha/upgrade.ts), the pair
 * journal (the active's events, replicated: mod/repl/journal.ts).
 * They talk to the running daemon (exit 3 when none runs).
 * @module
 */
import type { Command } from "commander";
import { resolve } from "node:path";
import { CliError, commandDataDir, type CommonOpts, EXIT, printJson } from "./common.ts";
import { daemonRequest } from "./client.ts";
import type { HaStatus } from "../ha/mod.ts";
import { handoffLines, type HandoffOverviewEntry } from "../sdk/handoff.ts";
import type { ReplModuleStatus } from "../repl/mod.ts";
import type { PairStatus } from "../ha/pair_routes.ts";
import { basename, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { KeepwireError } from "../errors.ts";
import {
  columnsOf,
  listTails,
  readTail,
  ReplTailError,
  type TailChange,
  type TailContents,
  tailDirOf,
  tailPath,
  type TailSummary,
  type TailValue,
} from "../repl/tail.ts";
import type { PairJournalRow } from "../repl/journal.ts";
import { formatEvent } from "./events.ts";

/** Register the `ha` command group. */
export function registerHaCommands(program: Command): void {
  const ha = program.command("ha").description(
    "HA pair: status, handover, maintenance, pairing, certificates, set-aside tails",
  );

  ha.command("status")
    .description("this node's role and why, keepalived, what forces FAULT or lowers the priority")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const s = await daemonRequest<HaStatus>(dataDir, "GET", "/api/ha/status");
      // where subsystems' new work goes (queue handoff, mod/sdk)
      const sdk = await daemonRequest<{ subsystems: HandoffOverviewEntry[] }>(
        dataDir,
        "GET",
        "/api/sdk",
      ).catch(() => null);
      const replication = await daemonRequest<ReplModuleStatus>(dataDir, "GET", "/api/repl/status")
        .catch(() => null);
      const pair = await daemonRequest<PairStatus>(dataDir, "GET", "/api/ha/pair").catch(() =>
        null
      );
      if (opts.json) {
        return printJson({
          ...s,
          ...(sdk ? { handoff: sdk.subsystems } : {}),
          ...(replication ? { replication } : {}),
          ...(pair ? { pairing: pair } : {}),
        });
      }
      if (pair) {
        console.log(`state: ${pair.summary}`);
        if (pair.next) console.log(`next: ${pair.next}`);
      }
      if (!s.enabled) return; // HA off: the state says it all
      printStatus(s);
      for (const l of handoffLines(sdk?.subsystems ?? [])) console.log(l);
      if (replication) printReplication(replication);
      if (pair) printPair(pair);
    });

  ha.command("failover")
    .description(
      "hand the active role to the peer: keepalived goes to FAULT (a priority-0 advert) for " +
        "ha.failoverHoldMs, then back as standby; with ha.failover manual, on the standby " +
        "while a takeover is pending: take over (refused otherwise)",
    )
    .option("--by <who>", "who asks (journalled)", "cli")
    .option("--set <a|b>", "active-active: hand only this client set to the peer")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { by: string; set?: string; json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const s = await daemonRequest<HaStatus>(dataDir, "POST", "/api/ha/failover", {
        by: opts.by,
        ...(opts.set === undefined ? {} : { set: opts.set }),
      });
      if (opts.json) return printJson(s);
      if (opts.set) return console.log(`set ${opts.set} handed over: the peer takes it over`);
      if (s.manual && s.role !== "active" && s.manual.releasedUntil) {
        console.log(`takeover confirmed: ${s.node} is ${s.role} and takes over`);
      } else console.log(`handover started: ${s.node} is ${s.role}; the peer takes over`);
    });

  ha.command("pair")
    .description(
      "pair the two nodes: --code on one shows a one-time code (10 minutes); --peer HOST " +
        "--code CODE on the other creates the pair's credentials on both (certificates made " +
        "now, each node pinning the other's; the peer link becomes HTTPS with mutual " +
        "authentication). Without options: this node's pairing",
    )
    .option("--peer <host>", "the node showing the code (its address)")
    .option("--code [code]", "show a code (alone), or the code the other node shows")
    .option("--port <port>", "the other node's peer link port (default: ours)")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(
      async (
        opts: CommonOpts & {
          peer?: string;
          code?: string | boolean;
          port?: string;
          json?: boolean;
        },
      ) => {
        const dataDir = await commandDataDir(opts);
        if (opts.peer !== undefined) {
          if (typeof opts.code !== "string") {
            throw new CliError(EXIT.USAGE, "pair --peer HOST needs --code CODE (shown on HOST)");
          }
          const port = opts.port === undefined ? undefined : Number(opts.port);
          if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
            throw new CliError(EXIT.USAGE, `--port: not a port: ${opts.port}`);
          }
          const s = await daemonRequest<PairStatus>(dataDir, "POST", "/api/ha/pair", {
            peer: opts.peer,
            code: opts.code,
            ...(port ? { port } : {}),
          });
          if (opts.json) return printJson(s);
          console.log(`paired: pair ${s.pairId}, ${s.node} <-> ${s.peerNode}`);
          console.log(`this node's certificate ${s.fingerprint}`);
          console.log(`pinned peer certificate  ${s.peerFingerprint}`);
          console.log("the peer link is now HTTPS with mutual authentication");
          return;
        }
        if (opts.code === true) {
          const c = await daemonRequest<{ code: string; expiresAt: string; fingerprint: string }>(
            dataDir,
            "POST",
            "/api/ha/pair/code",
          );
          if (opts.json) return printJson(c);
          console.log(`pairing code: ${c.code}`);
          console.log(`valid until ${c.expiresAt}; on the other node run:`);
          console.log(`  keepwire ha pair --peer <this node's address> --code ${c.code}`);
          console.log(`this node's certificate ${c.fingerprint}`);
          return;
        }
        if (typeof opts.code === "string") {
          throw new CliError(EXIT.USAGE, "pair --code CODE needs --peer HOST");
        }
        const s = await daemonRequest<PairStatus>(dataDir, "GET", "/api/ha/pair");
        if (opts.json) return printJson(s);
        printPair(s);
      },
    );

  ha.command("unpair")
    .description(
      "leave the pair: this node's pair credentials (key, certificates, link secret) are " +
        "removed, replication stops, the peer link serves pairing only; the peer learns it on " +
        "its next contact. Refused while this node is the only copy of changes the peer has " +
        "not acknowledged (it says which) unless --force. Run it on both nodes to pair again",
    )
    .option("--force", "unpair even though unacknowledged changes stay only on this node")
    .option("--by <who>", "who asks (journalled)", "cli")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { force?: boolean; by: string; json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const r = await daemonRequest<{ lost: string | null; pairing: PairStatus }>(
        dataDir,
        "POST",
        "/api/ha/unpair",
        { by: opts.by, force: !!opts.force },
      );
      if (opts.json) return printJson(r);
      console.log("unpaired: this node's pair credentials are removed; replication stopped");
      if (r.lost) console.log(`forced: ${r.lost}`);
      console.log(`state: ${r.pairing.summary}`);
      if (r.pairing.next) console.log(`next: ${r.pairing.next}`);
    });

  ha.command("rotate-cert")
    .description(
      "make a new peer link certificate for this node and switch to it without dropping the " +
        "link: the peer gets it over the authenticated link first and accepts both until this " +
        "node confirms the switch (the peer must be reachable; otherwise nothing changes)",
    )
    .option("--by <who>", "who asks (journalled)", "cli")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { by: string; json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const s = await daemonRequest<PairStatus>(dataDir, "POST", "/api/ha/pair/rotate", {
        by: opts.by,
      });
      if (opts.json) return printJson(s);
      console.log(`certificate rotated: this node now ${s.fingerprint}`);
      console.log(`valid until ${s.certExpiresAt ?? "?"}; the peer ${s.peerNode} accepted it`);
    });

  const tail = ha.command("tail").description(
    "tails a returning ex-primary set aside (<data>/repl/tails/*.kwtail): read them, " +
      "nothing is applied; works without the daemon",
  );
  tail.command("list")
    .description("the saved tails: epoch, seq range, tables and row counts")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const dir = tailDirOf(dataDir);
      const tails = withColumns(dataDir, (cols) => listTails(dir, cols));
      if (opts.json) return printJson({ dir, tails });
      if (!tails.length) return console.log(`no saved tails in ${dir}`);
      for (const t of tails) {
        if (!t.summary) {
          console.log(`${t.name}: UNREADABLE: ${t.error}`);
          continue;
        }
        console.log(`${t.name} (${t.bytes} bytes, saved ${t.savedAt ?? "?"})`);
        console.log(`  ${summaryLine(t.summary)}`);
        for (const l of tableLines(t.summary)) console.log(`  ${l}`);
      }
    });
  tail.command("show")
    .description(
      "what a saved tail holds, row by row (FILE: a name in the tail directory or a path)",
    )
    .argument("<file>", "the .kwtail file")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (file: string, opts: CommonOpts & { json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      let bytes: Uint8Array;
      const name = basename(file);
      try {
        bytes = Deno.readFileSync(
          file.includes("/") ? file : tailPath(tailDirOf(dataDir), file),
        );
      } catch (e) {
        if (e instanceof KeepwireError) throw new CliError(EXIT.USAGE, e.message);
        throw new CliError(EXIT.USAGE, `${file}: cannot read: ${(e as Error).message}`);
      }
      let t: TailContents;
      try {
        t = withColumns(dataDir, (columns) => readTail(bytes, { name, columns }));
      } catch (e) {
        if (e instanceof ReplTailError) throw new CliError(EXIT.FAILURE, e.message);
        throw e;
      }
      if (opts.json) return printJson(t);
      console.log(`${name}: ${summaryLine(t.summary)}`);
      for (const l of tableLines(t.summary)) console.log(`  ${l}`);
      for (const c of t.changes) console.log(changeLine(c));
    });

  ha.command("upgrade")
    .description(
      "on the active node: rolling upgrade of the pair with BUNDLE (a .kwb on this node): " +
        "checks both nodes, installs and commits on the standby, hands over, then upgrades " +
        "this node; any failure stops it with both nodes serving (see ha status)",
    )
    .argument("<bundle>", "path of the bundle on this node")
    .option("--by <who>", "who asks (journalled)", "cli")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (bundle: string, opts: CommonOpts & { by: string; json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const s = await daemonRequest<HaStatus>(dataDir, "POST", "/api/ha/upgrade", {
        bundle: resolve(bundle),
        by: opts.by,
      });
      if (opts.json) return printJson(s);
      console.log(
        `rolling upgrade started on ${s.node}; follow it with keepwire ha status` +
          (s.upgrade ? `\n${upgradeLine(s.upgrade)}` : ""),
      );
    });

  ha.command("maintenance")
    .description("maintenance on|off (persisted): a node in maintenance never becomes active")
    .argument("<state>", "on or off")
    .option("--by <who>", "who asks (journalled)", "cli")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (state: string, opts: CommonOpts & { by: string; json?: boolean }) => {
      if (state !== "on" && state !== "off") {
        throw new CliError(EXIT.USAGE, `maintenance: expected "on" or "off", got "${state}"`);
      }
      const dataDir = await commandDataDir(opts);
      const s = await daemonRequest<HaStatus>(dataDir, "POST", "/api/ha/maintenance", {
        on: state === "on",
        by: opts.by,
      });
      if (opts.json) return printJson(s);
      console.log(`maintenance ${state}: ${s.node} is ${s.role}`);
    });

  ha.command("journal")
    .description(
      "the pair journal: the events the active journalled, replicated to the standby " +
        "(on either node, across failovers; newest last)",
    )
    .option("--kind <prefix>", "only kinds starting with this, e.g. update.")
    .option("-n, --limit <n>", "rows at most (1..1000)", "50")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { kind?: string; limit: string; json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const q = new URLSearchParams({ limit: opts.limit });
      if (opts.kind) q.set("kind", opts.kind);
      const r = await daemonRequest<
        { replicating: boolean; role?: string; count: number; rows: PairJournalRow[] }
      >(dataDir, "GET", `/api/repl/journal?${q}`);
      if (opts.json) return printJson(r);
      const where = r.role === "standby"
        ? "the active's copy on this standby"
        : r.role === "primary"
        ? "written by this node (active)"
        : "replication is not running";
      console.log(`pair journal: ${r.count} rows (${where})`);
      for (const row of [...r.rows].reverse()) {
        console.log(
          `${row.node.padEnd(8)} ${
            formatEvent({
              id: row.id,
              time: row.time,
              module: row.module,
              kind: row.kind,
              severity: row.severity,
              payload: row.payload,
            })
          }`,
        );
      }
    });
}

function printStatus(s: HaStatus): void {
  if (!s.enabled) {
    console.log(`ha: disabled on ${s.node} (ha.enabled)`);
    return;
  }
  console.log(`node ${s.node}: ${s.role.toUpperCase()} since ${s.since} (${s.reason})`);
  const peer = s.peers[0];
  if (peer) {
    console.log(`peer ${peer.id ?? "-"} ${peer.address}: role ${s.peer?.role ?? "unknown"}`);
  }
  const m = s.manual;
  if (m) {
    console.log(
      `failover manual: ${m.held ? "held (does not take over by itself)" : "not held"}` +
        (m.pending ? `, TAKEOVER PENDING (${m.reason}): run ha failover here to take over` : ""),
    );
  }
  for (const f of s.failback ?? []) console.log(failbackLine(f));
  if (s.catchUp) console.log(catchUpLine(s.catchUp));
  const l = s.peerLink;
  if (l) {
    console.log(
      `peer link: ${l.reachable ? "reachable" : "NOT reachable"}` +
        (l.version ? `, version ${l.version}` : "") +
        (l.degraded.length ? `, degraded: ${l.degraded.join("; ")}` : "") +
        (l.lastError ? `, last error: ${l.lastError}` : "") +
        `, refused ${l.refused} answers / ${l.refusedInbound} requests`,
    );
  }
  const w = s.witness;
  if (w) {
    console.log(
      `witness ${w.qnetd}: ${w.running ? "corosync running" : "corosync NOT running"}, ` +
        `${w.quorate ? "quorate" : "NOT quorate"}, members ${w.members?.join(",") ?? "-"}` +
        (w.hold ?? w.fault ? `, ${w.fault ?? w.hold}` : "") +
        (w.fence ? `, SELF-FENCING: ${w.fence}` : ""),
    );
  }
  console.log(`virtual addresses: ${s.virtualAddresses.join(", ")}`);
  const u = s.upgrade;
  if (u && u.state !== "idle") console.log(upgradeLine(u));
  const e = s.engine;
  console.log(
    `keepalived: ${e.running ? `running (pid ${e.pid})` : "NOT running"}, state ${
      e.state ?? "-"
    }, priority ${e.effectivePriority ?? "-"} (configured ${s.priority}), restarts ${e.restarts}` +
      (e.lastError ? `, last error: ${e.lastError}` : ""),
  );
  const t = s.track;
  if (t) {
    console.log(`forced FAULT: ${t.fault ? t.faultReasons.join("; ") : "no"}`);
    for (const p of t.penalties) console.log(`priority ${p.weight}: ${p.name} (${p.detail})`);
  }
  console.log(
    `policy: failover ${s.policy.failover}, preempt ${
      s.policy.preempt ? "on" : "off"
    }, advert ${s.policy.advertMs} ms`,
  );
  const aa = s.activeActive;
  if (aa) {
    console.log(
      `active-active set b ${aa.virtualAddresses.join(", ")} (vrid ${aa.virtualRouterId}, ` +
        `priority ${aa.priority}): ${aa.state ?? "unknown"}; failback ${aa.failback}`,
    );
  }
  for (const h of s.history.slice(-5)) {
    console.log(`  ${h.at} ${h.from} -> ${h.to}: ${h.reason}`);
  }
}

/** One line on the catch-up hold (with replication). */
export function catchUpLine(c: NonNullable<HaStatus["catchUp"]>): string {
  return c.held
    ? `catching up: HELD out of active since ${c.since}: ${c.reason}`
    : `catching up: done at ${c.since} (${c.reason})`;
}

/** One line on the automatic failback of a set (with replication). */
export function failbackLine(f: NonNullable<HaStatus["failback"]>[number]): string {
  const what = f.state === "holding"
    ? "this node holds it"
    : f.state === "delay"
    ? `caught up; asks the holder at ${f.askAt}`
    : f.state === "waiting"
    ? `WAITING since ${f.since}: ${f.reason}`
    : f.reason;
  return `failback of set ${f.set}: ${what}` +
    (f.lastRefusal && f.state !== "holding" ? ` (last refusal: ${f.lastRefusal})` : "");
}

/** One line on the rolling upgrade: step, target, where it stopped and why. */
export function upgradeLine(u: NonNullable<HaStatus["upgrade"]>): string {
  const to = u.target ? ` to ${u.target}` : "";
  const from = u.from.local
    ? ` (from ${u.from.local} here, ${u.from.peer ?? "?"} on the peer)`
    : "";
  if (u.state === "stopped") return `rolling upgrade${to}: STOPPED at ${u.stoppedAt}: ${u.reason}`;
  if (u.state === "done") return `rolling upgrade${to}: done${from}`;
  return `rolling upgrade${to}: ${u.state}${from}`;
}

function printReplication(r: ReplModuleStatus): void {
  if (!r.enabled) {
    console.log(`replication: off (${r.reason ?? "not configured"})`);
    return;
  }
  const mode = r.syncMode === "sync" ? "sync (writes wait for the standby)" : "async";
  const sets = (r.channels ?? []).length > 1;
  console.log(
    `replication${sets ? " set a" : ""}: ${r.role}, epoch ${r.epoch}, ${
      r.role === "primary" ? `last seq ${r.seq}, acked ${r.acked}` : `last applied seq ${r.seq}`
    }, mode ${mode}` +
      (r.role === "primary"
        ? `, standby ${r.link === "up" ? "up" : r.link === "down" ? "GONE" : "unknown"}, lag ${
          r.lagMs ?? 0
        } ms, ${r.pending ?? 0} frames pending`
        : "") +
      (r.resync
        ? `, RESYNC ${
          Math.floor((r.resync.bytes / Math.max(1, r.resync.total)) * 100)
        }% of ${r.resync.total} bytes`
        : ""),
  );
  // active-active: set b's channel (its own role, epoch, sequence)
  for (const c of (r.channels ?? []).filter((c) => c.channel !== "a")) {
    console.log(
      `replication set ${c.channel}: ${c.role}, epoch ${c.epoch}, ${
        c.role === "primary" ? `last seq ${c.seq}, acked ${c.acked}` : `last applied seq ${c.seq}`
      }` +
        (c.role === "primary"
          ? `, standby ${
            c.link === "up" ? "up" : c.link === "down" ? "GONE" : "unknown"
          }, lag ${c.lagMs} ms, ${c.pending} frames pending`
          : "") +
        (c.resync
          ? `, RESYNC ${
            Math.floor((c.resync.bytes / Math.max(1, c.resync.total)) * 100)
          }% of ${c.resync.total} bytes`
          : "") +
        ` (${c.tables.length} tables)`,
    );
  }
  if (r.config) {
    console.log(`synced configuration: version ${r.config.version}, hash ${r.config.hash}`);
  }
  if (r.reason) console.log(`replication problem: ${r.reason}`);
}

function printPair(p: PairStatus): void {
  if (!p.paired) {
    console.log(
      "pairing: not paired (keepwire ha pair --code on one node, --peer HOST --code CODE on the other)" +
        (p.offering ? `; a code is outstanding until ${p.offering.expiresAt}` : ""),
    );
    return;
  }
  console.log(
    `pairing: pair ${p.pairId}, ${p.node} <-> ${p.peerNode} since ${p.pairedAt}; ` +
      `peer link HTTPS, peer certificate ${p.peerFingerprint?.slice(0, 16)}… pinned`,
  );
  console.log(
    `certificates: this node ${p.fingerprint?.slice(0, 16)}… expires ${p.certExpiresAt ?? "?"}${
      p.rotatedAt ? ` (rotated ${p.rotatedAt})` : ""
    }; peer expires ${p.peerCertExpiresAt ?? "?"}` +
      (p.peerNextFingerprint
        ? `; the peer is rotating: ${p.peerNextFingerprint.slice(0, 16)}… accepted too`
        : ""),
  );
}

/** Run `fn` with the local database's column names (read-only), or without them. */
function withColumns<T>(
  dataDir: string,
  fn: (columns: ((table: string) => string[] | null) | undefined) => T,
): T {
  let db: DatabaseSync | null = null;
  try {
    db = new DatabaseSync(join(dataDir, "keepwire.db"), { readOnly: true });
  } catch {
    db = null; // no database here: columns are shown as c0, c1, …
  }
  try {
    return fn(db ? columnsOf(db) : undefined);
  } finally {
    db?.close();
  }
}

function summaryLine(s: TailSummary): string {
  return `pair ${s.pairId}, epoch ${s.epochs.join(",")}${
    s.channel ? `, channel ${s.channel}` : ""
  }, seq ${s.fromSeq}–${s.toSeq} (${s.frames} frames, ${s.changes} changes), schema ${s.schemaVersion}`;
}

function tableLines(s: TailSummary): string[] {
  return Object.entries(s.tables).map(([t, c]) =>
    `${t}: ${c.rows} row(s): ${c.insert} inserted, ${c.update} updated, ${c.delete} deleted`
  );
}

function fmtValue(v: TailValue): string {
  if (v === null) return "NULL";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  return "int" in v ? v.int : `x'${v.blob}'`;
}

function fmtRow(r: Record<string, TailValue> | undefined, skip: Record<string, TailValue>): string {
  return Object.entries(r ?? {}).filter(([k]) => !(k in skip)).map(([k, v]) =>
    `${k}=${fmtValue(v)}`
  ).join(" ");
}

/** One change as a line: seq, table, operation, key, the values. */
function changeLine(c: TailChange): string {
  const key = Object.entries(c.key).map(([k, v]) => `${k}=${fmtValue(v)}`).join(" ");
  const head = `seq ${c.seq} ${c.table} ${c.op.toUpperCase()} ${key}:`;
  if (c.op === "insert") return `${head} ${fmtRow(c.new, c.key)}`;
  if (c.op === "delete") return `${head} was ${fmtRow(c.old, c.key)}`;
  const cols = Object.keys(c.new ?? {}).filter((k) => !(k in c.key));
  return `${head} ${
    cols.map((k) => `${k} ${fmtValue(c.old?.[k] ?? null)} -> ${fmtValue(c.new![k])}`).join(", ")
  }`;
}
