/** @jsxImportSource hono/jsx */
/**
 * What every page needs (the types of contract.ts, re-exported) and the components pages
 * share beyond layout.tsx. Pages (pages.tsx, dashboard.tsx, parts.tsx, a module's page.tsx)
 * import from here, never from pages.tsx, so the page files form no import circle.
 * @module
 */
import type { Child } from "hono/jsx";
import type { KwEvent } from "../../events/mod.ts";
import { describe } from "../../events/words.ts";
import { Badge, fmtTime } from "./layout.tsx";

export type { Internal, ModulePage, PageDeps, PageViewer } from "./contract.ts";

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

/** What a page shows when its module's API does not answer (not on this appliance). */
export function missing(what: string): Child {
  return <p class="muted">{what} is not available on this appliance.</p>;
}
