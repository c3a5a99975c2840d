/** @jsxImportSource hono/jsx */
/** Server-rendered pages (hono/jsx). */
import type { HtmlEscapedString } from "hono/utils/html";
import type { RuntimeView } from "./app.ts";

/** The home page: identity, health and latest events. */
export function homePage(view: RuntimeView): HtmlEscapedString | Promise<HtmlEscapedString> {
  const h = view.health();
  const events = view.store.events({ limit: 20 });
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{view.config.identity.name} — keepwire</title>
      </head>
      <body>
        <h1>{view.config.identity.name}</h1>
        <p>
          {view.config.identity.vendor} {view.config.identity.model} —{" "}
          <strong id="health">{h.ok ? "healthy" : "UNHEALTHY"}</strong>
        </p>
        <h2>Parts</h2>
        <ul>
          {Object.entries(h.parts).map(([name, p]) => (
            <li>
              {p.ok ? "ok" : "FAIL"} {name}
              {p.detail ? `: ${p.detail}` : ""}
            </li>
          ))}
        </ul>
        <h2>Latest events</h2>
        <table>
          <tbody>
            {events.map((e) => (
              <tr>
                <td>{new Date(e.time).toISOString()}</td>
                <td>{e.severity}</td>
                <td>{e.kind}</td>
                <td>{JSON.stringify(e.payload)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </body>
    </html>
  ) as HtmlEscapedString;
}
