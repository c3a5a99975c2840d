/** @jsxImportSource hono/jsx */
/**
 * The Charts page: the metric history as charts (uPlot, drawn by mod/web/static/charts.js):
 * each governor signal against its thresholds, restarts per subsystem, events by severity,
 * disk temperatures and SMART counters. It reads GET /api/history/series for which charts
 * to show; each chart fetches its own series.
 * @module
 */
import type { Child } from "hono/jsx";
import type { ModulePage, PageDeps } from "../web/ui/contract.ts";
import { Chart, WindowPicker } from "../web/ui/chart.tsx";
import { readApi } from "../web/ui/data.ts";
import { historySeriesResponseSchema } from "./routes.ts";

/** The charts, grouped by part. */
export async function chartsPage(d: PageDeps): Promise<Child> {
  const list = await readApi(d, "/api/history/series", historySeriesResponseSchema);
  const names = (list?.series ?? []).map((s) => s.name);
  const signals = names.filter((n) => n.startsWith("governor.signal."));
  const every = list?.intervalMs ?? null;
  const has = (prefix: string) => names.some((n) => n.startsWith(prefix));
  return (
    <>
      <h1>Charts</h1>
      <div class="chart-head">
        <WindowPicker />
        <p class="muted">
          {list
            ? `sampled every ${
              every !== null ? every / 1000 : "?"
            } s and kept in the store (docs/history.md); the charts follow new samples as they come`
            : "the metric history is not available"}
        </p>
      </div>
      <h2>Load governor</h2>
      {signals.length
        ? (
          <div class="grid charts">
            {signals.map((n) => {
              const name = n.slice("governor.signal.".length);
              return (
                <div class="card">
                  <Chart
                    id={`chart-signal-${name}`}
                    series={n}
                    title={name}
                    empty="no samples of this signal in this window"
                    follow
                  />
                </div>
              );
            })}
          </div>
        )
        : (
          <p class="muted empty">
            The governor's pressure signals would be charted here against their thresholds. The
            governor is off or has not been sampled yet (<code>governor.enabled</code>,
            docs/governor.md).
          </p>
        )}
      <div class="grid charts">
        <div class="card">
          <Chart
            id="chart-restarts"
            series="supervisor.restarts."
            title="Restarts per subsystem"
            per="restarts"
            empty={has("supervisor.restarts.")
              ? "no restarts recorded in this window"
              : "no subsystems: add them under subsystems in the config (docs/supervisor.md)"}
            follow
          />
        </div>
        <div class="card">
          <Chart
            id="chart-events"
            series="events."
            title="Events by severity"
            per="events"
            empty="no events recorded in this window"
            follow
          />
        </div>
        <div class="card">
          <Chart
            id="chart-disk-temperature"
            series="storage.temperature."
            title="Disk temperature"
            empty="no disk temperatures yet: SMART is read every hardware.raid.smartPollMs"
            follow
          />
        </div>
        <div class="card">
          <Chart
            id="chart-smart"
            series="storage.smart."
            title="SMART counters"
            empty="no SMART counters yet: SMART is read every hardware.raid.smartPollMs"
            follow
          />
        </div>
      </div>
    </>
  );
}

/** The page as the history module declares it. */
export const CHARTS_PAGE: ModulePage = {
  path: "/charts",
  label: "Charts",
  order: 350,
  render: chartsPage,
};
