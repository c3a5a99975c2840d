/** @jsxImportSource hono/jsx */
/**
 * What every page needs (in-process API calls, settings) and the components pages share
 * beyond layout.tsx. Pages (pages.tsx, dashboard.tsx, parts.tsx, a module's page.tsx)
 * import from here, never from pages.tsx, so the page files form no import circle.
 * @module
 */
import type { Child } from "hono/jsx";
import type { KwEvent } from "../../events/mod.ts";
import { describe } from "../../events/words.ts";
import { Badge, fmtTime } from "./layout.tsx";

/** Calls the app's own JSON API in-process (as the trusted local caller). */
export type Internal = <T = Record<string, unknown>>(path: string) => Promise<T | null>;

/** What pages need. */
export interface PageDeps {
  /** Appliance name. */
  appliance: string;
  /** In-process API calls. */
  internal: Internal;
  /** UI refresh interval now (the governor slows it under load). */
  refreshMs: () => number;
  /** Is an admin set up yet? */
  hasAdmin: () => boolean;
  /** Effective config (for the settings page; secrets never included). */
  config: () => unknown;
  /** keepwire version. */
  version: string;
}

/**
 * Renders the events table rows: each event as a sentence from THE words table
 * (mod/events/words.ts, shared with alerts), its kind and JSON payload one click away.
 */
export function EventRows(p: { events: KwEvent[] }): Child {
  return (
    <>
      {p.events.map((e) => (
        <tr id={`ev-${e.id}`} data-id={String(e.id)} data-kind={e.kind}>
          <td class="when">{fmtTime(e.time)}</td>
          <td>
            <Badge value={e.severity} />
          </td>
          <td class="what">
            <span class="sentence">{describe(e).what}</span>
            <details>
              <summary>{e.kind}</summary>
              <pre>{JSON.stringify(e.payload, null, 2)}</pre>
            </details>
          </td>
        </tr>
      ))}
    </>
  );
}
