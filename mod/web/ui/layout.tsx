/** @jsxImportSource hono/jsx */
/** Page layout of the web UI: header, navigation, flash area, live indicator. */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { Principal } from "../users.ts";

/** One navigation entry. */
export interface NavEntry {
  /** Path. */
  href: string;
  /** Label. */
  label: string;
}

/** Props of the layout. */
export interface LayoutProps {
  /** Page title. */
  title: string;
  /** Appliance name. */
  appliance: string;
  /** Current path (for the active nav entry). */
  path: string;
  /** Signed-in user, or null on login/setup pages. */
  principal: Principal | null;
  /** Live refresh on (SSE). */
  live?: boolean;
  /** Live refresh interval (ms), slowed by the governor under load. */
  refreshMs?: number;
  /** Query appended to the SSE stream URL. */
  stream?: string;
  /** Navigation entries in order (the web's own pages and the modules'). */
  nav?: readonly NavEntry[];
  /** Page body. */
  children?: Child;
}

/** The page frame. */
export function Layout(p: LayoutProps): Child {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{p.title} — {p.appliance}</title>
          <link rel="stylesheet" href="/static/app.css" />
          <script src="/static/idiomorph.js" defer></script>
          <script src="/static/app.js" defer></script>
          <script src="/static/charts.js" defer></script>
        </head>
        <body
          data-live={p.live ? "on" : "off"}
          data-refresh-ms={String(p.refreshMs ?? 1500)}
          data-stream={p.stream ?? ""}
        >
          <header class="top">
            <span class="brand">keepwire</span>
            <span>{p.appliance}</span>
            {p.principal
              ? (
                <span class="who">
                  <span id="live-dot" class="live-dot" title="live updates"></span>
                  {p.principal.name} ({p.principal.role}){" "}
                  <button id="logout" type="button">Sign out</button>
                </span>
              )
              : null}
          </header>
          {p.principal
            ? (
              <nav class="main">
                {(p.nav ?? []).map(({ href, label }) => (
                  <a
                    href={href}
                    class={(href === "/" ? p.path === "/" : p.path.startsWith(href))
                      ? "active"
                      : ""}
                  >
                    {label}
                  </a>
                ))}
              </nav>
            )
            : null}
          {
            /* outside <main>: live refreshes morph <main> only, so a flash message and a
              shown-once secret stay until the user dismisses them */
          }
          <div id="notices">
            <div id="flash" class="hidden" role="status"></div>
            <div id="secret" class="secret hidden" role="alert">
              <p id="secret-label"></p>
              <pre id="secret-value"></pre>
              <button type="button" id="secret-dismiss">Dismiss (I copied it)</button>
            </div>
          </div>
          <main>
            {p.children}
          </main>
        </body>
      </html>
    </>
  );
}

/**
 * A button that calls the JSON API after a confirmation (app.js handles `data-api`);
 * renders nothing unless `allowed` (viewers do not get buttons they may not use).
 */
export function Action(p: {
  /** API path. */
  api: string;
  /** Confirmation question. */
  confirm: string;
  /** Show the button at all (admin). */
  allowed: boolean;
  /** HTTP method (default POST). */
  method?: string;
  /** JSON body. */
  body?: unknown;
  /** Flash text on success. */
  done?: string;
  /** CSS class (danger, primary). */
  cls?: string;
  /** Label. */
  children?: Child;
}): Child {
  if (!p.allowed) return null;
  return (
    <button
      type="button"
      class={p.cls}
      data-api={p.api}
      data-method={p.method}
      data-body={p.body === undefined ? undefined : JSON.stringify(p.body)}
      data-confirm={p.confirm}
      data-done={p.done}
    >
      {p.children}
    </button>
  );
}

/** A coloured state badge. */
export function Badge(p: { value: string | null | undefined }): Child {
  const v = p.value ?? "unknown";
  return <span class={`badge ${v}`}>{v}</span>;
}

/** A progress bar for a fraction 0..1 (a native <progress>: no inline styles under the CSP). */
export function Progress(p: { value: number | null | undefined; id?: string }): Child {
  const v = Math.max(0, Math.min(1, p.value ?? 0));
  return <progress id={p.id} max="1" value={v.toFixed(3)}>{Math.round(v * 100)}%</progress>;
}

/** Format a time (ms) as `YYYY-MM-DD HH:MM:SS` UTC. */
export function fmtTime(ms: number | null | undefined): string {
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** Format a duration (ms) briefly. */
export function fmtAge(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/**
 * The page a browser gets for a path with no page (404): the frame, what was asked for and
 * a way back. API clients (and any request that does not accept HTML) get the JSON error.
 */
export function notFoundPage(appliance: string, path: string): string {
  return String(
    <Layout title="Not found" appliance={appliance} path={path} principal={null}>
      <h1>Page not found</h1>
      <p>
        There is no page at <code>{path}</code> on this appliance.
      </p>
      <p>
        <a href="/">Go to the dashboard</a> (or sign in first).
      </p>
    </Layout>,
  );
}
