/** @jsxImportSource hono/jsx */
/**
 * The Alerts page: the outbox at a glance (pending, sent, failed, the oldest waiting), the
 * channels with a test-send form each that shows the server's own answer, forms to add or
 * change channels (mail server, SMS gateway, webhook), recipients and routing rules, and
 * the last deliveries with their last error and a retry button for failed ones. Secrets
 * are never on it: the API answers them redacted and secret fields are write-only (empty
 * keeps the stored value). It reads the module's typed API answers.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps, PageViewer } from "../web/ui/contract.ts";
import { Action, Badge, fmtTime } from "../web/ui/layout.tsx";
import type { AlertStatus } from "./types.ts";
import type { Delivery } from "./outbox.ts";
import type { AlertEditPart, ChannelConfig, Recipient, Rule } from "./config.ts";
import { SEVERITIES } from "../events/mod.ts";
import { REDACTED } from "../web/ui/config_view.ts";

type ConfigView = {
  enabled: boolean;
  channels: Record<string, ChannelConfig & { stopped: boolean }>;
  recipients: Recipient[];
  defaultRules: boolean;
  rules: Rule[];
  edited: AlertEditPart[];
};

/** A secret field of a channel form: never filled in; empty keeps the stored value. */
function SecretInput(p: { name: string; label: string; placeholder?: string }): Child {
  return (
    <label>
      {p.label}{" "}
      <input
        name={p.name}
        type="password"
        autocomplete="new-password"
        placeholder={p.placeholder ?? "write-only; empty keeps the stored one"}
      />
    </label>
  );
}

/** Where a part of the section comes from, in words. */
function source(cfg: ConfigView, part: AlertEditPart): string {
  return cfg.edited.includes(part)
    ? "set on this page (stored on the appliance; replaces the config file's)"
    : "from the config file";
}

/** The Alerts page body. */
export async function alertPage(d: PageDeps, who: PageViewer | null): Promise<Child> {
  const [s, cfg, out] = await Promise.all([
    d.internal<AlertStatus>("/api/alert"),
    d.internal<ConfigView>("/api/alert/config"),
    d.internal<{ deliveries: Delivery[] }>("/api/alert/outbox?limit=30"),
  ]);
  const admin = who?.role === "admin";
  if (!s || !cfg) return <p class="muted">alerts are not available</p>;
  const channelNames = Object.keys(cfg.channels);
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
        <div class="card" id="alert-channels">
          <h2>Channels</h2>
          <p class="muted">{source(cfg, "channels")}</p>
          {channelNames.length === 0
            ? <p class="muted">no channels yet: add a mail server, an SMS gateway or a webhook</p>
            : null}
          {s.channels.map((c) => {
            const ch = cfg.channels[c.name];
            const secrets = ch
              ? Object.entries(ch).filter(([, v]) => v === REDACTED).map(([k]) => k)
              : [];
            return (
              <div class="alert-channel" data-channel={c.name}>
                <form
                  data-api="/api/alert/test"
                  data-show={`alert-test-${c.name}`}
                  data-done="test sent: the server's answer is below"
                  data-failed="the test failed: the server's answer is below"
                >
                  <input type="hidden" name="channel" value={c.name} />
                  <strong>{c.name}</strong> {c.type} → {c.target}{" "}
                  {secrets.length ? <span class="muted">({secrets.join(", ")} set)</span> : null}
                  {s.stopped.includes(c.name) ? <Badge value="stopped" /> : null} {admin
                    ? (
                      <>
                        <input name="to" placeholder="address (default: first recipient)" />
                        <button type="submit">Send a test</button>{" "}
                        <Action
                          allowed={admin}
                          cls="danger"
                          method="DELETE"
                          api={`/api/alert/channels/${c.name}`}
                          confirm={`Remove channel ${c.name}?`}
                          done="channel removed"
                        >
                          remove
                        </Action>
                      </>
                    )
                    : null}
                </form>
                <pre id={`alert-test-${c.name}`} class="test-answer hidden" data-keep></pre>
              </div>
            );
          })}
        </div>
      </div>
      {admin
        ? (
          <div class="grid">
            <details class="card">
              <summary>Add or change a mail server (SMTP)</summary>
              <form
                class="stack"
                data-api="/api/alert/channels"
                data-done="mail server saved"
                id="add-email"
              >
                <input type="hidden" name="type" value="email" />
                <label>
                  Name <input name="name" placeholder="e.g. mail" required />
                </label>
                <label>
                  Host <input name="host" placeholder="smtp.example.org" required />
                </label>
                <label>
                  Port <input name="port" type="number" data-type="number" placeholder="25" />
                </label>
                <label>
                  Security{" "}
                  <select name="security">
                    <option value="starttls">STARTTLS</option>
                    <option value="tls">TLS (port 465)</option>
                    <option value="none">none</option>
                  </select>
                </label>
                <label>
                  Sender (From) <input name="from" placeholder="keepwire@example.org" required />
                </label>
                <label>
                  User <input name="user" autocomplete="off" />
                </label>
                <SecretInput name="password" label="Password" />
                <button type="submit">Save mail server</button>
              </form>
            </details>
            <details class="card">
              <summary>Add or change an SMS gateway</summary>
              <form
                class="stack"
                data-api="/api/alert/channels"
                data-done="SMS gateway saved"
                id="add-sms"
              >
                <input type="hidden" name="type" value="sms" />
                <label>
                  Name <input name="name" placeholder="e.g. sms" required />
                </label>
                <label>
                  Kind{" "}
                  <select name="preset">
                    <option value="ozeki">Ozeki NG HTTP API</option>
                    <option value="json">JSON POST {"{to, text}"}</option>
                  </select>
                </label>
                <label>
                  URL <input name="url" placeholder="http://gateway:9501/api" required />
                </label>
                <label>
                  User <input name="username" autocomplete="off" />
                </label>
                <SecretInput name="password" label="Password" />
                <SecretInput name="apiKey" label="API key" />
                <button type="submit">Save SMS gateway</button>
              </form>
            </details>
            <details class="card">
              <summary>Add or change a webhook</summary>
              <form
                class="stack"
                data-api="/api/alert/channels"
                data-done="webhook saved"
                id="add-webhook"
              >
                <input type="hidden" name="type" value="webhook" />
                <label>
                  Name <input name="name" placeholder="e.g. siem" required />
                </label>
                <label>
                  URL <input name="url" placeholder="https://hooks.example.org/keepwire" required />
                </label>
                <SecretInput
                  name="secret"
                  label="Signing secret"
                  placeholder="whsec_… (write-only; empty keeps the stored one)"
                />
                <button type="submit">Save webhook</button>
              </form>
            </details>
          </div>
        )
        : null}
      <h2>Recipients</h2>
      <p class="muted">{source(cfg, "recipients")}</p>
      <table id="alert-recipients">
        <thead>
          <tr>
            <th>name</th>
            <th>channel</th>
            <th>address</th>
            <th>digest</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {cfg.recipients.map((r) => (
            <tr data-recipient={r.name}>
              <td>{r.name}</td>
              <td>{r.channel}</td>
              <td>{r.to ?? "—"}</td>
              <td>{r.digest ? `daily` : "no"}</td>
              <td>
                <Action
                  allowed={admin}
                  cls="danger"
                  method="DELETE"
                  api={`/api/alert/recipients/${r.name}`}
                  confirm={`Remove recipient ${r.name}?`}
                  done="recipient removed"
                >
                  remove
                </Action>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin
        ? (
          <form
            class="inline"
            data-api="/api/alert/recipients"
            data-done="recipient saved"
            id="add-recipient"
          >
            <input name="name" placeholder="name, e.g. duty" required />
            <select name="channel" required>
              {channelNames.map((n) => (
                <option key={n} value={n}>{n} ({cfg.channels[n].type})</option>
              ))}
            </select>
            <input name="to" placeholder="e-mail or phone (+36...); empty for a webhook" />
            <label>
              <input type="checkbox" name="digest" /> daily digest
            </label>
            <button type="submit">Save recipient</button>
          </form>
        )
        : null}
      <h2>Rules</h2>
      <p class="muted">
        {cfg.defaultRules
          ? "Built-in alerts (failover, peer lost, RAID, SMART, failed subsystems, updates, ...; docs/alerts.md) go to every recipient. "
          : "Built-in alerts are off (alert.defaultRules). "}
        Rules below send more events to chosen recipients; {source(cfg, "rules")}.
      </p>
      <table id="alert-rules">
        <thead>
          <tr>
            <th>#</th>
            <th>event kinds</th>
            <th>modules</th>
            <th>at least</th>
            <th>recipients</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {cfg.rules.map((r, i) => (
            <tr data-rule={String(i)}>
              <td>{String(i + 1)}</td>
              <td>{r.kinds.join(", ")}</td>
              <td>{r.modules ? r.modules.join(", ") : "any"}</td>
              <td>{r.minSeverity}</td>
              <td>{r.recipients.join(", ")}</td>
              <td>
                <Action
                  allowed={admin}
                  cls="danger"
                  method="DELETE"
                  api={`/api/alert/rules/${i}`}
                  confirm={`Remove rule ${i + 1}?`}
                  done="rule removed"
                >
                  remove
                </Action>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin
        ? (
          <form class="inline" data-api="/api/alert/rules" data-done="rule added" id="add-rule">
            <input name="kinds" placeholder="kinds, e.g. ha.*, storage.array_degraded" />
            <input name="modules" placeholder="modules (empty: any)" />
            <select name="minSeverity">
              {SEVERITIES.map((v) => (
                <option key={v} value={v} selected={v === "warning"}>≥ {v}</option>
              ))}
            </select>
            <input name="recipients" placeholder="recipients, e.g. duty, siem" required />
            <button type="submit">Add rule</button>
          </form>
        )
        : null}
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
