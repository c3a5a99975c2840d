/** @jsxImportSource hono/jsx */
/**
 * Server-rendered pages (hono/jsx). Each page reads the same JSON API the CLI and
 * scripts use (through an in-process call), so pages and API never disagree.
 *
 * The web module's own pages (set-up, sign-in, dashboard, events, users, settings) are
 * here; every other page is declared by its module (`Module.pages()`, the contract in
 * contract.ts) and mounted and listed in the navigation from that declaration.
 * @module
 */
import { REDACTED, settingSections } from "./config_view.ts";
import { safeNext } from "../redirect.ts";
import { Hono } from "hono";
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { KwEvent } from "../../events/mod.ts";
import { SEVERITIES } from "../../events/mod.ts";
import type { AuthEnv as WebEnv } from "../auth.ts";
import { Action, Badge, fmtAge, fmtTime, Layout, type NavEntry, Progress } from "./layout.tsx";
import { dashboardPage } from "./dashboard.tsx";
import { EventRows } from "./page_deps.tsx";
import type { ModulePage, PageDeps } from "./contract.ts";
import type { TokenInfo, UserInfo } from "../users.ts";

export type { Internal, PageDeps } from "./contract.ts";
export { EventRows } from "./page_deps.tsx";

/** The web module's own pages in the navigation, with their places among the modules'. */
export const CORE_NAV: readonly (NavEntry & { order: number })[] = [
  { href: "/", label: "Dashboard", order: 0 },
  { href: "/events", label: "Events", order: 800 },
  { href: "/users", label: "Users & tokens", order: 900 },
  { href: "/settings", label: "Settings", order: 1000 },
];

/** Paths the web module serves itself (a module page may not take one). */
const CORE_PATHS = new Set(["/setup", "/login", ...CORE_NAV.map((n) => n.href)]);

/**
 * The navigation: the web's own entries and one per module page, by `order` (a tie keeps
 * the web's entry first, then the modules' in start order). Throws when a module page
 * takes a path already taken (a page would be unreachable).
 */
export function navigation(pages: readonly ModulePage[]): NavEntry[] {
  const taken = new Set(CORE_PATHS);
  for (const p of pages) {
    if (!/^\/[a-z0-9][a-z0-9/_-]*$/.test(p.path)) {
      throw new Error(`module page path ${JSON.stringify(p.path)}: expected /lower-case-words`);
    }
    if (taken.has(p.path)) throw new Error(`module page path ${p.path} is taken twice`);
    taken.add(p.path);
  }
  return [
    ...CORE_NAV,
    ...pages.map((p) => ({ href: p.path, label: p.label, order: p.order })),
  ].map((n, i) => ({ ...n, i }))
    .sort((a, b) => a.order - b.order || a.i - b.i)
    .map(({ href, label }) => ({ href, label }));
}

/** The UI routes: the web's own pages and the pages the started modules declare. */
export function uiRoutes(d: PageDeps, modulePages: readonly ModulePage[] = []): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const nav = navigation(modulePages);
  const page = (
    c: Context<WebEnv>,
    _d: PageDeps,
    title: string,
    body: Child,
    live = true,
    stream?: string,
  ) =>
    c.html(
      <Layout
        title={title}
        appliance={d.appliance}
        path={c.req.path}
        principal={c.get("principal")}
        live={live}
        refreshMs={d.refreshMs()}
        stream={stream}
        nav={nav}
      >
        {body}
      </Layout>,
    );

  app.get("/setup", (c) => {
    if (d.hasAdmin()) return c.redirect("/login", 303);
    return page(
      c,
      d,
      "Set up",
      <div class="center card">
        <h1>Set the administrator password</h1>
        <p class="muted">
          This appliance has no administrator yet. Choose a name and a password (10 characters or
          more). This page works only from the box itself; from its console you can instead run{" "}
          <code>keepwire user passwd admin</code>.
        </p>
        <form class="stack" data-api="/api/setup" data-then="/" data-done="administrator created">
          <label>
            User name <input name="username" value="admin" autocomplete="username" required />
          </label>
          <label>
            Password{" "}
            <input
              name="password"
              type="password"
              autocomplete="new-password"
              minlength={10}
              required
            />
          </label>
          <button class="primary" type="submit">Set password</button>
        </form>
      </div>,
      false,
    );
  });

  app.get("/login", (c) => {
    if (!d.hasAdmin()) return c.redirect("/setup", 303);
    return page(
      c,
      d,
      "Sign in",
      <div class="center card">
        <h1>Sign in</h1>
        <form
          class="stack"
          data-api="/api/login"
          data-then={safeNext(c.req.query("next"))}
          data-done="signed in"
        >
          <label>
            User name <input name="username" autocomplete="username" required />
          </label>
          <label>
            Password{" "}
            <input name="password" type="password" autocomplete="current-password" required />
          </label>
          <button class="primary" type="submit">Sign in</button>
        </form>
      </div>,
      false,
    );
  });

  app.get("/", async (c) => page(c, d, "Dashboard", await dashboardPage(d)));
  for (const p of modulePages) {
    app.get(
      p.path,
      async (c) =>
        page(c, d, p.title ?? p.label, await p.render(d, c.get("principal")), p.live ?? true),
    );
  }

  app.get("/events", async (c) => {
    const q = new URLSearchParams();
    const url = new URL(c.req.url);
    for (const k of ["module", "severity", "kind", "from", "to", "before"]) {
      const v = url.searchParams.get(k);
      if (v) q.set(k, k === "from" || k === "to" ? String(Date.parse(v) || v) : v);
    }
    q.set("limit", "50");
    const r = await d.internal<{ events: KwEvent[] }>(`/api/events?${q}`);
    const events = r?.events ?? [];
    const older = events.length === 50 ? events[events.length - 1].id : null;
    const keep = (extra: Record<string, string>) => {
      const p = new URLSearchParams(url.searchParams);
      for (const [k, v] of Object.entries(extra)) p.set(k, v);
      return `/events?${p}`;
    };
    const live = !url.searchParams.get("before");
    const stream = new URLSearchParams();
    for (const k of ["module", "severity", "kind"]) {
      const v = url.searchParams.get(k);
      if (v) stream.set(k, v);
    }
    return page(
      c,
      d,
      "Events",
      <>
        <h1>Events</h1>
        <div class="card">
          <form class="inline" method="get" action="/events">
            <input
              name="module"
              placeholder="module"
              value={url.searchParams.get("module") ?? ""}
            />
            <select name="severity">
              <option value="">any severity</option>
              {SEVERITIES.map((s) => (
                <option value={s} selected={url.searchParams.get("severity") === s}>≥ {s}</option>
              ))}
            </select>
            <input
              name="kind"
              placeholder="kind, e.g. storage.*"
              value={url.searchParams.get("kind") ?? ""}
            />
            <label>
              from{" "}
              <input type="datetime-local" name="from" value={url.searchParams.get("from") ?? ""} />
            </label>
            <label>
              to <input type="datetime-local" name="to" value={url.searchParams.get("to") ?? ""} />
            </label>
            <button type="submit">Filter</button>
            <a href="/events">clear</a>
            {live
              ? (
                <label class="muted">
                  <input type="checkbox" id="pause-live" /> pause live tail
                </label>
              )
              : null}
          </form>
        </div>
        <div class="card">
          <table id={live ? "live-events" : "events"}>
            <thead>
              <tr>
                <th>time (UTC)</th>
                <th>severity</th>
                <th>what happened</th>
              </tr>
            </thead>
            <tbody data-max="200">
              <EventRows events={events} />
            </tbody>
          </table>
          <p>
            {url.searchParams.get("before")
              ? <a href={keep({ before: "" }).replace(/before=&?/, "")}>newest</a>
              : null}{" "}
            {older
              ? <a href={keep({ before: String(older) })}>older →</a>
              : <span class="muted">no older events</span>}
          </p>
        </div>
      </>,
      live,
      stream.size ? `?${stream}` : "",
    );
  });

  app.get("/users", async (c) => {
    const users = (await d.internal<{ users: UserInfo[] }>("/api/users"))?.users ?? [];
    const tokens = (await d.internal<{ tokens: TokenInfo[] }>("/api/tokens"))?.tokens ?? [];
    const admin = c.get("principal")?.role === "admin";
    return page(
      c,
      d,
      "Users & tokens",
      <>
        <h1>Users and API tokens</h1>
        <div class="grid">
          <div class="card">
            <h2>Users</h2>
            <table>
              <thead>
                <tr>
                  <th>name</th>
                  <th>role</th>
                  <th>password set</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {users.map((u) => (
                  <tr>
                    <td>{u.name}</td>
                    <td>{u.role}</td>
                    <td>{fmtTime(u.updated)}</td>
                    <td>
                      <Action
                        allowed={admin}
                        cls="danger"
                        api={`/api/users/${u.name}`}
                        method="DELETE"
                        confirm={`Delete user ${u.name}?`}
                      >
                        delete
                      </Action>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {admin
              ? (
                <form class="stack" data-api="/api/users" data-done="user created">
                  <h2>Add a user</h2>
                  <input name="username" placeholder="name" required />
                  <input name="password" type="password" placeholder="password (10+)" required />
                  <select name="role">
                    <option value="viewer">viewer (read only)</option>
                    <option value="admin">admin</option>
                  </select>
                  <button type="submit">Add user</button>
                </form>
              )
              : null}
          </div>
          <div class="card">
            <h2>API tokens</h2>
            <table>
              <thead>
                <tr>
                  <th>name</th>
                  <th>role</th>
                  <th>created</th>
                  <th>last used</th>
                  <th>expires</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {tokens.map((t) => (
                  <tr>
                    <td>{t.name}</td>
                    <td>{t.role}</td>
                    <td>{fmtTime(t.created)}</td>
                    <td>{fmtTime(t.lastUsed)}</td>
                    <td
                      class={t.expires !== null && t.expires <= Date.now() ? "expired" : undefined}
                    >
                      {t.expires === null ? "never" : fmtTime(t.expires)}
                    </td>
                    <td>
                      <Action
                        allowed={admin}
                        cls="danger"
                        api={`/api/tokens/${t.id}`}
                        method="DELETE"
                        confirm={`Revoke token ${t.name}?`}
                      >
                        revoke
                      </Action>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {admin
              ? (
                <form
                  class="stack"
                  data-api="/api/tokens"
                  data-show="secret"
                  data-done="token created"
                >
                  <h2>New token</h2>
                  <input name="name" placeholder="name, e.g. grafana" required />
                  <select name="role">
                    <option value="viewer">viewer</option>
                    <option value="admin">admin</option>
                  </select>
                  <select name="expires">
                    <option value="">never expires</option>
                    <option value="1d">expires in a day</option>
                    <option value="30d">expires in 30 days</option>
                    <option value="90d">expires in 90 days</option>
                    <option value="365d">expires in a year</option>
                  </select>
                  <button type="submit">Create token</button>
                </form>
              )
              : null}
          </div>
        </div>
      </>,
    );
  });

  app.get("/settings", async (c) => {
    const s = await d.internal<{ ui: { refreshMs: number; banner: string } }>("/api/settings");
    const admin = c.get("principal")?.role === "admin";
    return page(
      c,
      d,
      "Settings",
      <>
        <h1>Settings</h1>
        <div class="grid">
          <div class="card">
            <h2>Web UI</h2>
            <form class="stack" data-api="/api/settings" data-method="PUT" data-done="saved">
              <label>
                Live refresh interval (ms){" "}
                <input
                  name="refreshMs"
                  data-type="number"
                  type="number"
                  min="250"
                  max="60000"
                  value={String(s?.ui.refreshMs ?? 1500)}
                  disabled={!admin}
                />
              </label>
              <label>
                Login banner <input name="banner" value={s?.ui.banner ?? ""} disabled={!admin} />
              </label>
              {admin ? <button type="submit">Save</button> : null}
            </form>
          </div>
          <div class="card">
            <h2>This appliance</h2>
            <p>keepwire {d.version}</p>
            <p class="muted">
              The configuration below is read from the config file at start; change it there and
              restart (check it first with{" "}
              <code>keepwire config check FILE</code>). Alert channels, recipients and rules can
              also be changed on the <a href="/alerts">Alerts</a>{" "}
              page (stored on the appliance); they are shown here as in force. Every field is
              described in docs/config.md; secrets are never shown.
            </p>
          </div>
        </div>
        <h2>Configuration</h2>
        {settingSections(d.config()).map((sec) => (
          <details class="card config-section" id={`cfg-${sec.name}`}>
            <summary>
              <strong>{sec.name}</strong> <span class="muted">{sec.description}</span>
            </summary>
            {sec.rows.map((r) => (
              <div class="setting" data-path={`${sec.name}.${r.path}`}>
                <code class="path">{r.path}</code>{" "}
                <span class={r.value === REDACTED ? "value redacted" : "value"}>{r.value}</span>
                {r.description ? <p class="muted">{r.description}</p> : null}
              </div>
            ))}
          </details>
        ))}
      </>,
    );
  });

  return app;
}

/** Re-exported helpers for part pages. */
export { Badge, fmtAge, fmtTime, Progress };
