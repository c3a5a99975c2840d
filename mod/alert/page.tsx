/** @jsxImportSource hono/jsx */
/**
 * The Alerts page: the outbox at a glance (pending, sent, failed, the oldest waiting), a
 * test-send form per channel that shows the server's own answer, the recipients and rules
 * in force, and the last deliveries with their last error and a retry button for failed
 * ones. Secrets are never on it (the API answers `{set}` for them). It reads the module's
 * typed API answers.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import { Action, Badge, fmtTime } from "../web/ui/layout.tsx";
import type { AlertStatus } from "./types.ts";
import type { Delivery } from "./outbox.ts";
import type { Recipient, Rule } from "./config.ts";

type ConfigView = {
  enabled: boolean;
  channels: Record<string, Record<string, unknown>>;
  recipients: Recipient[];
  defaultRules: boolean;
  rules: Rule[];
};

/** The Alerts page body. */
export async function alertPage(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const [s, cfg, out] = await Promise.all([
    d.internal<AlertStatus>("/api/alert"),
    d.internal<ConfigView>("/api/alert/config"),
    d.internal<{ deliveries: Delivery[] }>("/api/alert/outbox?limit=30"),
  ]);
  const admin = who?.role === "admin";
  if (!s || !cfg) return <p class="muted">alerts are not available</p>;
  return (
    <>
      <h1>Alerts</h1>
      {!s.enabled ? <p class="muted">Alerts are disabled (alert.enabled).</p> : null}
      <div class="grid">
        <div class="card" data-alert-counts>
          <h2>Outbox</h2>
          <p>
            pending {String(s.counts.pending)} · sent {String(s.counts.sent)} · failed{" "}
            {String(s.counts.failed)} · folded {String(s.counts.suppressed)} · digest{" "}
            {String(s.counts.digest)}
          </p>
          <p class="muted">
            oldest pending{" "}
            {s.oldestPendingMs === null ? "none" : `${Math.round(s.oldestPendingMs / 1000)} s`}{" "}
            · since start: sent {String(s.sent)}, failed {String(s.failed)}, resent after a restart
            {" "}
            {String(s.resent)}
          </p>
          <Action
            allowed={admin && s.counts.failed > 0}
            api="/api/alert/retry-failed"
            confirm="Queue every failed alert again?"
            done="failed alerts queued again"
          >
            Retry all failed
          </Action>
        </div>
        <div class="card">
          <h2>Channels</h2>
          {Object.keys(cfg.channels).length === 0
            ? <p class="muted">no channels configured (alert.channels; see docs/alerts.md)</p>
            : null}
          {s.channels.map((c) => (
            <form
              data-api="/api/alert/test"
              data-show="alert-test-answer"
              data-done="test sent: the server's answer is below"
            >
              <input type="hidden" name="channel" value={c.name} />
              <strong>{c.name}</strong> {c.type} → {c.target}
              {s.stopped.includes(c.name) ? <Badge value="stopped" /> : null} {admin
                ? (
                  <>
                    <input name="to" placeholder="address (default: first recipient)" />
                    <button type="submit">Send a test</button>
                  </>
                )
                : null}
            </form>
          ))}
          <pre id="alert-test-answer" class="hidden"></pre>
        </div>
      </div>
      <h2>Recipients</h2>
      <table>
        <thead>
          <tr>
            <th>name</th>
            <th>channel</th>
            <th>address</th>
            <th>digest</th>
          </tr>
        </thead>
        <tbody>
          {cfg.recipients.map((r) => (
            <tr>
              <td>{r.name}</td>
              <td>{r.channel}</td>
              <td>{r.to ?? "—"}</td>
              <td>{r.digest ? `daily` : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">
        {cfg.defaultRules ? "Built-in alerts go to every recipient. " : ""}
        {cfg.rules.map((r) =>
          `${r.kinds.join(", ")} ≥ ${r.minSeverity}${
            r.modules ? ` from ${r.modules.join(", ")}` : ""
          } → ${r.recipients.join(", ")}`
        ).join("; ")} (recipients: PUT /api/alert/recipients; docs/alerts.md)
      </p>
      <h2>Last deliveries</h2>
      <table>
        <thead>
          <tr>
            <th>at</th>
            <th>state</th>
            <th>tries</th>
            <th>to</th>
            <th>subject</th>
            <th>last error / answer</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {(out?.deliveries ?? []).map((x) => (
            <tr data-delivery={x.id}>
              <td>{fmtTime(x.created)}</td>
              <td>
                <Badge value={x.status} />
              </td>
              <td>{String(x.attempts)}</td>
              <td>{x.recipient}</td>
              <td>{x.subject}</td>
              <td class="opt">{x.status === "sent" ? x.answer ?? "" : x.lastError ?? ""}</td>
              <td>
                <Action
                  allowed={admin && x.status === "failed"}
                  api={`/api/alert/outbox/${x.id}/retry`}
                  confirm={`Send ${x.id} to ${x.recipient} again?`}
                  done="queued again"
                >
                  Retry
                </Action>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The page as the alert module declares it. */
export const ALERT_PAGE: ModulePage = {
  path: "/alerts",
  label: "Alerts",
  order: 500,
  render: alertPage,
};
