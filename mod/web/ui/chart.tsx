/** @jsxImportSource hono/jsx */
/**
 * A chart of the metric history (GET /api/history), drawn in the browser by
 * mod/web/static/charts.js with uPlot. The server renders only a stable container: its id
 * and `data-keep` make the live refresh (app.js morphing `<main>`) leave it and its canvas
 * alone; charts.js fetches the series, draws them and fetches again every sampling interval.
 * @module
 */
import type { Child } from "hono/jsx";

/** Props of a chart. */
export interface ChartProps {
  /** Element id: stable across refreshes (the morph keeps the chart by it). */
  id: string;
  /** A series name or a prefix ending in `.` (every series under it), as GET /api/history takes. */
  series: string;
  /** Title above the chart. */
  title: string;
  /** What the chart says while there is nothing to draw (and how to get something). */
  empty: string;
  /** Window: a duration ago (`1h`, `6h`, `24h`); default 1h. */
  since?: string;
  /** Plot height in CSS pixels (default 200). */
  height?: number;
  /** Unit words after a counter's title, e.g. `restarts` ("restarts per 10 s"). */
  per?: string;
  /** Follow the page's window picker ({@link WindowPicker}) instead of `since`. */
  follow?: boolean;
}

/** Windows the picker offers (durations GET /api/history takes as `since`). */
export const CHART_WINDOWS = ["15m", "1h", "6h", "24h", "48h"] as const;

/** Buttons that set the window of every following chart on the page (kept for the tab). */
export function WindowPicker(): Child {
  return (
    <div class="chart-windows" id="chart-windows" data-keep="" role="group" aria-label="window">
      <span class="muted">window</span>
      {CHART_WINDOWS.map((w) => (
        <button type="button" data-window={w} class={w === "1h" ? "active" : ""}>
          {w.replace(/(\d+)/, "$1 ").replace("m", "min")}
        </button>
      ))}
    </div>
  );
}

/** The chart container (charts.js fills it). */
export function Chart(p: ChartProps): Child {
  return (
    <figure
      class="chart"
      id={p.id}
      data-chart={p.series}
      data-since={p.since ?? "1h"}
      data-height={String(p.height ?? 200)}
      data-empty={p.empty}
      data-per={p.per ?? ""}
      data-follow-window={p.follow ? "" : undefined}
      data-keep=""
    >
      <figcaption>{p.title}</figcaption>
      <p class="muted chart-note">loading the chart (it needs JavaScript)…</p>
    </figure>
  );
}
