/** @jsxImportSource hono/jsx */
/**
 * The HA page: this node's role and why, keepalived's view, what forces FAULT or
 * lowers the priority, the last role changes, and the operator's buttons (handover,
 * maintenance) with confirmation. It reads GET /api/ha/status as the typed
 * {@link HaStatus} this module answers with.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import { Action, Badge, fmtTime } from "../web/ui/layout.tsx";
import type { HaStatus } from "./types.ts";
import type { ReplModuleStatus } from "../repl/module.ts";
import type { PairStatus } from "./pair_routes.ts";
import type { z } from "zod";
import type { tailListSchema } from "../repl/tail_routes.ts";
import { pairJournalAnswerSchema } from "../repl/journal.ts";
import { readApi } from "../web/ui/data.ts";

type TailList = z.output<typeof tailListSchema>;

/** The HA page body. */
export async function haPage(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const s = await d.internal<HaStatus>("/api/ha/status");
  const admin = who?.role === "admin";
  if (!s || !s.enabled) {
    return (
      <>
        <h1>High availability</h1>
        <p class="muted">
          HA is not enabled on this node (<code>ha.enabled</code>; see docs/ha.md).
        </p>
        <div class="card">
          <h2>Make a pair</h2>
          <ol>
            <li>
              On both nodes, in the configuration file: <code>ha.enabled: true</code>,{" "}
              <code>ha.node</code> (id, priority, address), <code>ha.interface</code>,{" "}
              <code>ha.virtualAddresses</code>, <code>ha.peers</code> and <code>ha.peerLink</code>
              {" "}
              (README, "HA pair: a walkthrough").
            </li>
            <li>Restart keepwire on both nodes.</li>
            <li>
              On one node run <code>keepwire ha pair --code</code>; on the other{" "}
              <code>keepwire ha pair --peer HOST --code CODE</code> with the code shown.
            </li>
          </ol>
        </div>
      </>
    );
  }
  const t = s.track;
  const r = await d.internal<ReplModuleStatus>("/api/repl/status");
  const pair = s.peerLink || s.peers.length ? await d.internal<PairStatus>("/api/ha/pair") : null;
  const tails = await d.internal<TailList>("/api/repl/tails");
  const journal = r?.enabled
    ? await readApi(d, "/api/repl/journal?limit=15", pairJournalAnswerSchema)
    : null;
  return (
    <>
      <h1>High availability</h1>
      <div class="grid">
        <div class="card" data-ha-role={s.role}>
          <h2>
            {s.node} <Badge value={s.role} />
          </h2>
          <p class="muted">
            since {fmtTime(s.since ? Date.parse(s.since) : null)} · {s.reason}
          </p>
          <p>virtual addresses: {s.virtualAddresses.join(", ") || "none"}</p>
          <p>
            peer {s.peers.map((p) => `${p.id ?? "?"} (${p.address})`).join(", ")}: role{" "}
            {s.peer?.role ?? "unknown"}
          </p>
          {s.peerLink
            ? (
              <p data-ha-peer-link={s.peerLink.reachable ? "reachable" : "lost"}>
                peer link: {s.peerLink.reachable ? "reachable" : "NOT reachable"}
                {s.peerLink.version ? ` · version ${s.peerLink.version}` : ""}
                {s.peerLink.degraded.length ? ` · degraded: ${s.peerLink.degraded.join("; ")}` : ""}
                {s.peerLink.lastError ? ` · ${s.peerLink.lastError}` : ""}
                {s.peerLink.refused + s.peerLink.refusedInbound
                  ? ` · refused messages: ${s.peerLink.refused} in answers, ${s.peerLink.refusedInbound} requests`
                  : ""}
              </p>
            )
            : <p class="muted">peer link: not configured (ha.peerLink)</p>}
          {s.witness
            ? (
              <p data-ha-witness={s.witness.quorate ? "quorate" : "not-quorate"}>
                witness {s.witness.qnetd}: {s.witness.quorate ? "quorate" : "NOT quorate"}
                {` · members ${s.witness.members?.join(", ") ?? "-"}`}
                {s.witness.running ? "" : ` · corosync not running: ${s.witness.lastError ?? ""}`}
                {s.witness.fault ?? s.witness.hold ? ` · ${s.witness.fault ?? s.witness.hold}` : ""}
                {s.witness.fence ? ` · SELF-FENCING: ${s.witness.fence}` : ""}
              </p>
            )
            : <p class="muted">witness: not configured (ha.witness)</p>}
          {s.upgrade && s.upgrade.state !== "idle"
            ? (
              <p data-ha-upgrade={s.upgrade.state}>
                rolling upgrade{s.upgrade.target ? ` to ${s.upgrade.target}` : ""}:{" "}
                {s.upgrade.state === "stopped"
                  ? `STOPPED at ${s.upgrade.stoppedAt}: ${s.upgrade.reason}`
                  : s.upgrade.state}
              </p>
            )
            : null}
          {(s.failback ?? []).filter((f) => f.state !== "holding").map((f) => (
            <p data-ha-failback={f.state}>
              failback of set {f.set}: {f.state === "delay"
                ? `caught up; asking the holder at ${f.askAt}`
                : f.state === "waiting"
                ? `WAITING: ${f.reason}`
                : f.reason}
            </p>
          ))}
          {s.catchUp?.held
            ? <p data-ha-catch-up="held">catching up: HELD out of active: {s.catchUp.reason}</p>
            : null}
          {s.manual
            ? (
              <p data-ha-manual={s.manual.pending ? "pending" : s.manual.held ? "held" : "free"}>
                failover manual:{" "}
                {s.manual.held ? "held (this node does not take over by itself)" : "not held"}
                {s.manual.pending ? ` · TAKEOVER PENDING: ${s.manual.reason}` : ""}
              </p>
            )
            : null}
          <p>
            <Action
              allowed={admin && s.role === "active"}
              api="/api/ha/failover"
              body={{ by: who?.name ?? "ui" }}
              confirm={`Hand the active role to the peer? ${s.node} goes to FAULT for a moment and comes back as standby.`}
              done="handover started"
              cls="danger"
            >
              Hand over to the peer
            </Action>{" "}
            {s.manual?.pending
              ? (
                <>
                  <Action
                    allowed={admin}
                    api="/api/ha/failover"
                    body={{ by: who?.name ?? "ui" }}
                    confirm={`Take over on ${s.node}? ${s.manual.reason}. Make sure the peer is really down.`}
                    done="takeover confirmed"
                    cls="danger"
                  >
                    Take over here
                  </Action>
                  {" "}
                </>
              )
              : null}
            <Action
              allowed={admin}
              api="/api/ha/maintenance"
              body={{ on: s.role !== "maintenance", by: who?.name ?? "ui" }}
              confirm={s.role === "maintenance"
                ? `End maintenance on ${s.node}? It returns as standby (or takes over if the peer is gone).`
                : `Put ${s.node} in maintenance? It never becomes active until you end it.`}
              done={s.role === "maintenance" ? "maintenance off" : "maintenance on"}
            >
              {s.role === "maintenance" ? "End maintenance" : "Maintenance"}
            </Action>
          </p>
        </div>
        <div class="card">
          <h2>keepalived</h2>
          <p>
            {s.engine.running ? `running (pid ${s.engine.pid})` : "NOT running"} · state{" "}
            {s.engine.state ?? "—"} · priority {s.engine.effectivePriority ?? "—"} (configured{" "}
            {s.priority})
          </p>
          {s.engine.lastError ? <p class="muted">last error: {s.engine.lastError}</p> : null}
          <p>
            forced FAULT: {t?.fault ? t.faultReasons.join("; ") : "no"}
          </p>
          {t?.penalties.length
            ? (
              <ul>
                {t.penalties.map((p) => (
                  <li key={p.name}>priority {String(p.weight)}: {p.name} ({p.detail})</li>
                ))}
              </ul>
            )
            : <p class="muted">nothing lowers the priority</p>}
          <p class="muted">
            failover {s.policy.failover} · preempt {s.policy.preempt ? "on" : "off"} · advert{" "}
            {String(s.policy.advertMs)} ms · dual actives seen {String(s.dualActive.count)}
          </p>
        </div>
        {replicationCard(r)}
        {pairCard(pair, admin, who?.name ?? "ui")}
      </div>
      {tailsSection(tails, admin)}
      {journalSection(journal)}
      <h2>Last role changes</h2>
      <table>
        <thead>
          <tr>
            <th>at</th>
            <th>from</th>
            <th>to</th>
            <th>after</th>
            <th>why</th>
          </tr>
        </thead>
        <tbody>
          {[...s.history].reverse().slice(0, 15).map((h) => (
            <tr>
              <td>{fmtTime(Date.parse(h.at))}</td>
              <td>{h.from}</td>
              <td>
                <Badge value={h.to} />
              </td>
              <td>{`${h.afterMs} ms`}</td>
              <td>{h.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The page as the HA module declares it. */
export const HA_PAGE: ModulePage = {
  path: "/ha",
  label: "HA",
  title: "High availability",
  order: 400,
  render: haPage,
};

/** Replication as this node sees it (GET /api/repl/status). */
function replicationCard(r: ReplModuleStatus | null): Child {
  if (!r || !r.enabled) {
    return (
      <div class="card" data-repl="off">
        <h2>Replication</h2>
        <p class="muted">off{r?.reason ? `: ${r.reason}` : ""} (ha.replication)</p>
      </div>
    );
  }
  const primary = r.role === "primary";
  return (
    <div class="card" data-repl={r.role} data-repl-link={r.link}>
      <h2>
        Replication <Badge value={r.role ?? "idle"} />
      </h2>
      <p>
        epoch {String(r.epoch)} · {primary ? "last seq" : "last applied seq"} {String(r.seq)}
        {primary ? ` · acked ${r.acked}` : ""} · mode {r.syncMode}
      </p>
      {primary
        ? (
          <p>
            standby {r.link === "up" ? "up" : r.link === "down" ? "GONE" : "unknown"} · lag{" "}
            {String(r.lagMs ?? 0)} ms · {String(r.pending ?? 0)} frames pending
          </p>
        )
        : null}
      {r.resync
        ? (
          <p data-repl-resync>
            resync: {String(r.resync.bytes)} / {String(r.resync.total)} bytes
          </p>
        )
        : null}
      {(r.channels ?? []).filter((c) => c.channel !== "a").map((c) => (
        <p data-repl-channel={c.channel} data-repl-channel-role={c.role}>
          set {c.channel}: <Badge value={c.role} /> epoch {String(c.epoch)} ·{" "}
          {c.role === "primary" ? "last seq" : "last applied seq"} {String(c.seq)}
          {c.role === "primary"
            ? ` · acked ${c.acked} · standby ${
              c.link === "up" ? "up" : c.link === "down" ? "GONE" : "unknown"
            } · lag ${c.lagMs} ms · ${c.pending} frames pending`
            : ""}
          {c.resync ? ` · resync ${c.resync.bytes} / ${c.resync.total} bytes` : ""}
          {` · ${c.tables.length} tables`}
        </p>
      ))}
      {r.config
        ? (
          <p class="muted">
            synced configuration: version {String(r.config.version)} · hash{" "}
            <code>{r.config.hash}</code>
          </p>
        )
        : null}
    </div>
  );
}

/** The pairing (GET /api/ha/pair): the code itself is shown by `keepwire ha pair --code`. */
function pairCard(p: PairStatus | null, admin: boolean, who: string): Child {
  if (!p) return null;
  return (
    <div class="card" data-pair={p.paired ? "paired" : "unpaired"}>
      <h2>
        Pairing <Badge value={p.paired ? "paired" : "not paired"} />
      </h2>
      <p data-pair-state={p.state}>
        {p.summary}
        {p.next ? <span class="muted">{` · next: ${p.next}`}</span> : null}
      </p>
      {p.paired
        ? (
          <>
            <p>
              pair {p.pairId} · {p.node} ↔ {p.peerNode} · since{" "}
              {fmtTime(p.pairedAt ? Date.parse(p.pairedAt) : null)}
            </p>
            <p class="muted">
              peer link HTTPS, mutual authentication · this node <code>{p.fingerprint}</code>{" "}
              · pinned peer <code>{p.peerFingerprint}</code>
            </p>
            <p data-pair-expiry>
              certificates expire: this node {p.certExpiresAt ?? "?"} · peer{" "}
              {p.peerCertExpiresAt ?? "?"}
              {p.peerNextFingerprint ? " · the peer is rotating its certificate" : ""}
            </p>
            <p>
              <Action
                allowed={admin}
                api="/api/ha/pair/rotate"
                body={{ by: who }}
                confirm="Make a new certificate for this node? The peer gets it over the link first; replication keeps running."
                done="certificate rotated"
              >
                Rotate certificate
              </Action>{" "}
              <Action
                allowed={admin}
                api="/api/ha/unpair"
                body={{ by: who }}
                confirm={`Unpair ${p.node} from ${p.peerNode}? This node's pair credentials are removed and replication stops; refused if this node holds changes the peer never acknowledged. To pair again, unpair the peer too.`}
                done="unpaired"
                cls="danger"
              >
                Unpair
              </Action>
            </p>
          </>
        )
        : (
          <p class="muted">
            {p.offering
              ? `a pairing code is outstanding until ${p.offering.expiresAt}`
              : "run keepwire ha pair --code on one node, then keepwire ha pair --peer HOST --code CODE on the other"}
          </p>
        )}
    </div>
  );
}

/** Tails this node set aside as a returning ex-primary (GET /api/repl/tails). */
function tailsSection(l: TailList | null, admin: boolean): Child {
  if (!l || !l.tails.length) return null;
  return (
    <>
      <h2>Set-aside tails</h2>
      <p class="muted">
        Changes this node made as active that the peer never received; nothing in them was applied.
        Read one with <code>keepwire ha tail show NAME</code>.
      </p>
      <table data-repl-tails>
        <thead>
          <tr>
            <th>file</th>
            <th>saved</th>
            <th>epoch</th>
            <th>seq</th>
            <th>tables (rows)</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {l.tails.map((t) => (
            <tr data-repl-tail={t.name}>
              <td>
                <code>{t.name}</code>
              </td>
              <td>{fmtTime(t.savedAt ? Date.parse(t.savedAt) : null)}</td>
              {t.summary
                ? (
                  <>
                    <td>{t.summary.epochs.join(", ")}</td>
                    <td>{`${t.summary.fromSeq}–${t.summary.toSeq}`}</td>
                    <td>
                      {Object.entries(t.summary.tables).map(([n, c]) =>
                        `${n} (${c.rows}: +${c.insert} ~${c.update} -${c.delete})`
                      ).join(", ")}
                    </td>
                  </>
                )
                : <td colspan={3}>UNREADABLE: {t.error}</td>}
              <td>
                {admin && (
                  // the raw file holds password and token hashes: admins only (tail_routes.ts)
                  <a href={`/api/repl/tails/${encodeURIComponent(t.name)}/file`} download>
                    download
                  </a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The pair journal's last rows: what the active journalled (GET /api/repl/journal). */
function journalSection(j: z.output<typeof pairJournalAnswerSchema> | null): Child {
  if (!j || !j.rows.length) return null;
  return (
    <>
      <h2>Pair journal</h2>
      <p class="muted">
        {j.role === "standby"
          ? "The active's events, replicated to this node"
          : "Events this node journalled as active, replicated to the peer"} ({String(j.count)}{" "}
        rows; all of them: <code>keepwire ha journal</code>).
      </p>
      <table data-pair-journal>
        <thead>
          <tr>
            <th>at</th>
            <th>node</th>
            <th>severity</th>
            <th>kind</th>
          </tr>
        </thead>
        <tbody>
          {j.rows.map((e) => (
            <tr>
              <td>{fmtTime(e.time)}</td>
              <td>{e.node}</td>
              <td>
                <Badge value={e.severity} />
              </td>
              <td>
                <code>{e.kind}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
