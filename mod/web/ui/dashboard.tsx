/** @jsxImportSource hono/jsx */
/** The dashboard: health, governor level and pressure, subsystems, bypass, RAID, slots, events. */
import type { Child } from "hono/jsx";
import type { KwEvent } from "../../events/mod.ts";
import { EventRows, type PageDeps } from "./page_deps.tsx";
import { Badge, Progress } from "./layout.tsx";
import { arr, num, obj, str } from "./data.ts";

/** An SVG sparkline of values 0..max (no inline styles, no scripts). */
export function Sparkline(p: { values: number[]; max?: number; label: string }): Child {
  const vs = p.values.length ? p.values : [0];
  const max = p.max ?? Math.max(1, ...vs);
  const w = 200, h = 40;
  const pts = vs.map((v, i) =>
    `${(vs.length === 1 ? w : (i / (vs.length - 1)) * w).toFixed(1)},${
      (h - (Math.min(v, max) / max) * (h - 2) - 1).toFixed(1)
    }`
  ).join(" ");
  return (
    <svg
      class="spark"
      viewBox={`0 0 ${w} ${h}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={p.label}
    >
      <polyline points={pts} />
    </svg>
  );
}

/** Render the dashboard body. */
export async function dashboardPage(d: PageDeps): Promise<Child> {
  const [health, gov, subs, bypass, storage, update, events] = await Promise.all([
    d.internal("/api/health"),
    d.internal("/api/governor"),
    d.internal("/api/subsystems"),
    d.internal("/api/bypass"),
    d.internal("/api/storage"),
    d.internal("/api/update"),
    d.internal<{ events: KwEvent[] }>("/api/events?limit=10"),
  ]);
  const parts = obj(health?.parts);
  const history = arr(gov?.history).map((h) => num(h.pressure ?? h.value) ?? 0);
  return (
    <>
      <h1>Dashboard</h1>
      <div class="grid">
        <div class="card" id="health-card">
          <h2>Health</h2>
          <p class="big">
            <Badge value={health?.ok ? "ok" : "failed"} />
          </p>
          <ul>
            {Object.entries(parts).map(([name, p]) => (
              <li>
                {name}: <Badge value={obj(p).ok ? "ok" : "failed"} />{" "}
                <span class="muted">{str(obj(p).detail)}</span>
              </li>
            ))}
          </ul>
        </div>
        <div class="card" id="governor-card">
          <h2>Load governor</h2>
          {gov
            ? (
              <>
                <p class="big">
                  <Badge value={str(gov.level)} />
                </p>
                <Sparkline values={history} max={1} label="pressure over time" />
                <p class="muted">
                  suspended: {arr(gov.suspended).map((s) => str(s.name)).join(", ") || "nothing"}
                </p>
              </>
            )
            : <p class="muted">not running</p>}
        </div>
        <div class="card" id="subsystems-card">
          <h2>
            <a href="/subsystems">Subsystems</a>
          </h2>
          {subs
            ? (
              <table>
                <tbody>
                  {arr(subs.subsystems).map((s) => (
                    <tr>
                      <td>{str(s.name)}</td>
                      <td>
                        <Badge value={str(s.state)} />
                      </td>
                      <td class="muted">{str(s.restarts)} restarts</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : <p class="muted">not running</p>}
        </div>
        <div class="card" id="bypass-card">
          <h2>
            <a href="/bypass">Bypass</a>
          </h2>
          {bypass
            ? (
              <table>
                <tbody>
                  {arr(bypass.segments).map((s) => (
                    <tr>
                      <td>{str(s.name)}</td>
                      <td>
                        <Badge value={str(s.mode)} />
                      </td>
                      <td class="muted">
                        {arr(s.holds).map((h) => str(h.reason)).join(", ")}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : <p class="muted">not configured</p>}
        </div>
        <div class="card" id="storage-card">
          <h2>
            <a href="/storage">RAID</a>
          </h2>
          {storage
            ? (
              <table>
                <tbody>
                  {arr(storage.arrays).map((a) => (
                    <tr>
                      <td>{str(a.name)}</td>
                      <td>
                        <Badge value={str(a.health)} />
                      </td>
                      <td>{a.sync ? <Progress value={num(obj(a.sync).progress)} /> : null}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : <p class="muted">not monitored</p>}
        </div>
        <div class="card" id="update-card">
          <h2>
            <a href="/update">Slots</a>
          </h2>
          {update
            ? (
              <table>
                <tbody>
                  {arr(update.slots).map((s) => (
                    <tr>
                      <td>
                        {str(s.bootname)}
                        {s.booted ? " (booted)" : ""}
                      </td>
                      <td>
                        <Badge value={str(s.state)} />
                      </td>
                      <td>{str(s.version)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : <p class="muted">no updater</p>}
        </div>
      </div>
      <div class="card">
        <h2>
          <a href="/events">Latest events</a>
        </h2>
        <table id="live-events">
          <tbody data-max="10">
            <EventRows events={events?.events ?? []} />
          </tbody>
        </table>
      </div>
    </>
  );
}
