/** @jsxImportSource hono/jsx */
/**
 * The "Handoff" page: each subsystem's replicated table groups and where its new work goes
 * (queue handoff) and why, with the thresholds form (admins, on the active node). It reads
 * GET /api/sdk.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import type { NodeInfo } from "./mod.ts";
import type { HandoffView } from "./host.ts";

interface Overview {
  node: NodeInfo;
  subsystems: {
    subsystem: string;
    groups: { group: string; version: number; tables: string[]; durability: string }[];
    handoff: HandoffView;
  }[];
}

function when(ms: number): string {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "never";
}

async function render(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const s = await d.internal<Overview>("/api/sdk");
  const admin = who?.role === "admin";
  if (!s) return <p class="muted">no answer from /api/sdk</p>;
  const n = s.node;
  return (
    <>
      <h1>Subsystem tables and queue handoff</h1>
      <p data-sdk-role={n.role}>
        This node <strong>{n.node}</strong> is <strong>{n.ha}</strong>
        {n.writable
          ? " and takes writes to the subsystems' replicated tables."
          : ": writes to replicated tables are refused here (the active node writes; this node holds its copy)."}
        {n.peer ? ` Peer: ${n.peer}.` : ""}
      </p>
      {s.subsystems.length === 0
        ? <p class="muted">No subsystem has declared tables yet (SDK `tables()`).</p>
        : null}
      <div class="grid">
        {s.subsystems.map((x) => {
          const h = x.handoff;
          return (
            <div class="card" data-handoff={x.subsystem} data-handoff-target={h.target}>
              <h2>{x.subsystem}</h2>
              <p data-handoff-to={h.to}>
                new work goes to <strong>{h.to || n.node}</strong>
                {h.target === "peer" ? " (handed off)" : ""} · {h.reason}
              </p>
              <p class="muted">
                queue {h.depth} at the last report · since {when(h.since)} · decided by{" "}
                {h.decidedBy} · thresholds: {h.settings.enabled
                  ? `on at ${h.settings.onAt}, off at ${h.settings.offAt}`
                  : "handoff off"}
              </p>
              <ul>
                {x.groups.map((g) => (
                  <li>
                    group <code>{g.group}</code> ({g.durability}, version {g.version}):{" "}
                    {g.tables.join(", ")}
                  </li>
                ))}
              </ul>
              {admin
                ? (
                  <form
                    class="stack"
                    data-api={`/api/sdk/${x.subsystem}/handoff`}
                    data-done="handoff thresholds saved"
                  >
                    <label>
                      <input type="checkbox" name="enabled" checked={h.settings.enabled} />{" "}
                      hand new work to the peer while the queue is deep
                    </label>
                    <label>
                      on at (queue depth){" "}
                      <input
                        name="onAt"
                        data-type="number"
                        inputmode="numeric"
                        value={String(h.settings.onAt)}
                      />
                    </label>
                    <label>
                      off at (below on){" "}
                      <input
                        name="offAt"
                        data-type="number"
                        inputmode="numeric"
                        value={String(h.settings.offAt)}
                      />
                    </label>
                    <button type="submit">Save</button>
                    {n.writable
                      ? null
                      : <span class="muted">change it on the active node (replicated here)</span>}
                  </form>
                )
                : null}
            </div>
          );
        })}
      </div>
    </>
  );
}

/** The page, for the SDK module's `pages()`. */
export const HANDOFF_PAGE: ModulePage = {
  path: "/handoff",
  label: "Handoff",
  title: "Subsystem tables and queue handoff",
  order: 410,
  render,
};
