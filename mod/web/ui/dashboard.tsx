/** @jsxImportSource hono/jsx */
/** The dashboard: health, governor level and pressure, subsystems, bypass, RAID, slots, events. */
import type { Child } from "hono/jsx";
import type { KwEvent } from "../../events/mod.ts";
import { EventRows, type PageDeps } from "./page_deps.tsx";
import { Badge, Progress } from "./layout.tsx";
import { Chart } from "./chart.tsx";
import { readApi } from "./data.ts";
import { governorSnapshotSchema } from "../../governor/status.ts";
import { subsystemListSchema } from "../../supervisor/routes.ts";
import { bypassSegmentsSchema } from "../../bypass/routes.ts";
import { storageViewSchema } from "../../storage/types.ts";
import { updateFullStatusSchema } from "../../update/status.ts";
import { haStatusSchema } from "../../ha/status.ts";
import {
  bypassHealth,
  governorHealth,
  haHealth,
  type HealthAnswer,
  overallHealth,
  partState,
  slotsHealth,
  slotState,
  storageHealth,
  subsystemsHealth,
  type UiHealth,
  worst,
} from "./health.ts";

/** A dashboard card coloured by its state, with the state in words under the title. */
function Card(
  p: { id: string; title: string; href?: string; health: UiHealth | null; children?: Child },
): Child {
  const st = p.health?.state;
  return (
    <div class={`card${st ? ` state-${st}` : ""}`} id={p.id} data-state={st ?? "none"}>
      <h2>{p.href ? <a href={p.href}>{p.title}</a> : p.title}</h2>
      {p.health
        ? (
          <p class="state-words">
            <Badge value={p.health.state} /> {p.health.words}
          </p>
        )
        : null}
      {p.children}
    </div>
  );
}

/** Which dashboard card shows a /api/health part (for its colour). */
const PART_CARD: Record<string, string> = {
  storage: "RAID",
  governor: "load governor",
  supervisor: "subsystems",
  bypass: "bypass",
  update: "slots",
  ha: "HA",
};

/** Render the dashboard body. */
export async function dashboardPage(d: PageDeps): Promise<Child> {
  const [health, gov, subs, bypass, storage, update, ha, events] = await Promise.all([
    d.internal<HealthAnswer>("/api/health"),
    readApi(d, "/api/governor", governorSnapshotSchema),
    readApi(d, "/api/subsystems", subsystemListSchema),
    readApi(d, "/api/bypass", bypassSegmentsSchema),
    readApi(d, "/api/storage", storageViewSchema),
    readApi(d, "/api/update", updateFullStatusSchema),
    readApi(d, "/api/ha/status", haStatusSchema),
    d.internal<{ events: KwEvent[] }>("/api/events?limit=10"),
  ]);
  const parts = health?.parts ?? {};
  const cards: Record<string, UiHealth | null> = {
    "RAID": storageHealth(storage),
    "load governor": governorHealth(gov),
    "subsystems": subsystemsHealth(subs),
    "bypass": bypassHealth(bypass),
    "slots": slotsHealth(update),
    "HA": haHealth(ha),
  };
  const overall = overallHealth(health, cards);
  const subList = subs?.subsystems ?? [];
  const segments = bypass?.segments ?? [];
  const arrays = storage?.arrays ?? [];
  const slots = update?.slots ?? [];
  return (
    <>
      <h1>Dashboard</h1>
      <div class="grid">
        <div class={`card state-${overall.state}`} id="health-card" data-state={overall.state}>
          <h2>Health</h2>
          <p class="big">
            <Badge value={overall.state} />
          </p>
          <p class="state-words">{overall.words}</p>
          <ul>
            {Object.entries(parts).map(([name, p]) => {
              const card = cards[PART_CARD[name] ?? ""];
              const st = worst(partState(p), card?.state ?? "ok");
              return (
                <li data-part={name}>
                  {name}: <Badge value={st} /> <span class="muted">{p.detail ?? ""}</span>
                </li>
              );
            })}
          </ul>
        </div>
        <Card id="governor-card" title="Load governor" health={cards["load governor"]}>
          {gov
            ? (
              <>
                <p>
                  level <Badge value={gov.level} />
                </p>
                <Chart
                  id="chart-dash-pressure"
                  series="governor.pressure"
                  title="Pressure, last hour"
                  empty="no pressure samples yet (the history samples every history.intervalMs)"
                  height={130}
                />
                <p class="muted">
                  <a href="/charts">every signal against its thresholds, restarts, events, disks</a>
                </p>
                <p class="muted">
                  suspended: {gov.suspended.map((s) => s.name).join(", ") || "nothing"}
                </p>
              </>
            )
            : <p class="muted">not running</p>}
        </Card>
        <Card
          id="subsystems-card"
          title="Subsystems"
          href="/subsystems"
          health={cards.subsystems}
        >
          {subList.length
            ? (
              <table>
                <tbody>
                  {subList.map((s) => (
                    <tr>
                      <td>{s.name}</td>
                      <td>
                        <Badge value={s.state} />
                      </td>
                      <td class="muted">{s.restarts} restarts</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : (
              <p class="muted empty">
                Processes keepwire starts, watches and restarts would appear here. Add them under
                {" "}
                <code>subsystems</code> in the config (docs/supervisor.md).
              </p>
            )}
        </Card>
        <Card id="bypass-card" title="Bypass" href="/bypass" health={cards.bypass}>
          {segments.length
            ? (
              <table>
                <tbody>
                  {segments.map((s) => (
                    <tr>
                      <td>{s.name}</td>
                      <td>
                        <Badge value={s.mode} />
                      </td>
                      <td class="muted">{s.holds.map((h) => h.reason).join(", ")}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : (
              <p class="muted empty">
                Bypass segments (port pairs that fail open or closed) would appear here. Configure
                them under <code>hardware.bypass</code>.
              </p>
            )}
        </Card>
        <Card id="storage-card" title="RAID" href="/storage" health={cards.RAID}>
          {arrays.length
            ? (
              <table>
                <tbody>
                  {arrays.map((a) => (
                    <tr data-array={a.name}>
                      <td>{a.name}</td>
                      <td>
                        <Badge value={a.health} />
                      </td>
                      <td>{a.sync ? <Progress value={a.sync.progress} /> : null}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : (
              <p class="muted empty">
                md RAID arrays and their sync state would appear here. Storage monitoring is
                configured under <code>hardware.raid</code>.
              </p>
            )}
        </Card>
        <Card id="update-card" title="Slots" href="/update" health={cards.slots}>
          {slots.length
            ? (
              <table id="dash-slots">
                <tbody>
                  {slots.map((s) => (
                    <tr>
                      <td>
                        {s.bootname}
                        {s.booted ? " (booted)" : ""}
                      </td>
                      <td>
                        <Badge value={slotState(s)} />
                      </td>
                      <td>{s.version ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
            : (
              <p class="muted empty">
                The A/B system slots (which one runs, which is good, their versions) would appear
                here. Configure them under <code>update.slots</code> (docs/update.md).
              </p>
            )}
        </Card>
        {cards.HA
          ? (
            <Card id="ha-card" title="HA" href="/ha" health={cards.HA}>
              <p>
                {ha?.node ?? ""} <Badge value={ha?.role ?? ""} />
              </p>
            </Card>
          )
          : (
            <Card id="ha-card" title="HA" href="/ha" health={null}>
              <p class="muted empty">
                This node's high-availability role would appear here. HA is off; turn it on with
                {" "}
                <code>ha.enabled</code> (docs/ha.md).
              </p>
            </Card>
          )}
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
