/**
 * GET /api/history: one series, or every series under a prefix, over a window, in buckets
 * of a step; GET /api/history/series: the series kept. Queries are validated with zod
 * (a bad field answers 400 naming it).
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";
import { parseOr400 } from "../web/errors.ts";
import { HistoryRangeError } from "./errors.ts";
import type { HistoryResult, SeriesInfo } from "./store.ts";

/** `90s`, `15m`, `1h`, `2d` (or plain milliseconds) as ms, or null. */
export function parseDuration(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) return null;
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? "ms"]!;
  const v = Number(m[1]) * mult;
  return Number.isFinite(v) ? Math.round(v) : null;
}

const durationOrTime = (what: string) =>
  z.string().max(40).refine(
    (s) => parseDuration(s) !== null || (/^\d{4}-\d\d-\d\d/.test(s) && !isNaN(Date.parse(s))),
    `expected ${what}: a time in ms since the epoch, an ISO date, or a duration ago like 15m, 6h, 2d`,
  );

/** Query of GET /api/history. */
export const historyQuerySchema = z.lazy(() =>
  z.strictObject({
    series: z.string().regex(
      /^[A-Za-z0-9_.:\/-]{1,200}\*?$/,
      "expected a series name (letters, digits, _ . : / -) or a prefix ending in . or *",
    ).describe(
      "a series name (e.g. governor.signal.eventLoopLagMs), or a prefix ending in . or * for every series under it (e.g. storage.temperature.)",
    ),
    since: durationOrTime("the window's start").optional().describe(
      "start of the window: ms since the epoch, an ISO date, or a duration ago (15m, 6h, 2d); default 1h",
    ),
    until: durationOrTime("the window's end").optional().describe(
      "end of the window (same forms as since); default now",
    ),
    step: z.string().max(20).refine(
      (s) => {
        const ms = parseDuration(s);
        return ms !== null && ms >= 1000 && ms <= 86_400_000;
      },
      "expected a bucket width from 1s to 1d, e.g. 10s, 1m, 5m (or ms)",
    ).optional().describe(
      "bucket width: 10s, 1m, 5m ... (or ms); default: the window in at most 360 buckets, a multiple of the sampling interval",
    ),
  })
);

const seriesSchema = z.lazy(() =>
  z.object({
    name: z.string(),
    label: z.string(),
    unit: z.string(),
    kind: z.enum(["gauge", "counter"]).describe(
      "gauge: a bucket holds its highest sample; counter: the sum of increases in it",
    ),
    thresholds: z.record(z.string(), z.number()).nullable().describe(
      "lines drawn across the series (e.g. a governor signal's level thresholds)",
    ),
  })
);

/** Response of GET /api/history. */
export const historyResponseSchema = z.lazy(() =>
  z.object({
    since: z.number().describe("window start (ms)"),
    until: z.number().describe("window end (ms, exclusive)"),
    step: z.number().describe("bucket width (ms)"),
    intervalMs: z.number().describe("the sampling interval (ms)"),
    times: z.array(z.number()).describe(
      "start of each bucket that holds a sample of any series (ms), oldest first",
    ),
    series: z.array(
      seriesSchema.unwrap().extend({
        values: z.array(z.number().nullable()).describe("one per entry of times; null: no sample"),
      }),
    ),
  })
);

/** Response of GET /api/history/series. */
export const historySeriesResponseSchema = z.lazy(() =>
  z.object({
    intervalMs: z.number(),
    series: z.array(
      seriesSchema.unwrap().extend({ lastT: z.number().describe("newest sample (ms)") }),
    ),
  })
);

/** The history module's part of /api/status. */
export const historyStatusSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean(),
    intervalMs: z.number(),
    series: z.number().describe("series kept"),
    dropped: z.number().describe("samples dropped by the bounds"),
    errors: z.record(z.string(), z.string()).describe("source → last sampling error"),
  })
);
statusDoc("history", historyStatusSchema);

apiDoc("GET", "/api/history", {
  operationId: "getHistory",
  response: historyResponseSchema,
  summary:
    "metric history of one series or every series under a prefix, in buckets (what the charts draw)",
  query: historyQuerySchema,
  tag: "history",
});
apiDoc("GET", "/api/history/series", {
  operationId: "listHistorySeries",
  response: historySeriesResponseSchema,
  summary: "the series the metric history keeps, with unit, kind and threshold lines",
  tag: "history",
});

/** What the routes need from the history module. */
export interface HistoryReader {
  /** Sampling interval (ms). */
  readonly intervalMs: number;
  /** Now (ms). */
  now(): number;
  /** Series names matching a name or prefix. */
  match(series: string): string[];
  /** Query some series. */
  query(names: string[], q: { since: number; until: number; step: number }): HistoryResult;
  /** Every series. */
  list(): SeriesInfo[];
}

/** At most this many buckets in one answer. */
export const MAX_BUCKETS = 10_000;

/** Bucket widths a default step is chosen from (ms). */
const NICE_STEPS = [
  1,
  2,
  5,
  10,
  15,
  30,
  60,
  120,
  300,
  600,
  900,
  1800,
  3600,
  7200,
  21_600,
  43_200,
  86_400,
]
  .map((s) => s * 1000);

/**
 * The default bucket width of a window: the first round width (10 s, 1 min, 5 min ...) that
 * is no shorter than the sampling interval and cuts the window into at most 360 buckets.
 */
export function defaultStep(spanMs: number, intervalMs: number): number {
  const want = Math.max(intervalMs, Math.floor(spanMs / 360));
  return NICE_STEPS.find((s) => s >= want) ?? Math.ceil(want / 86_400_000) * 86_400_000;
}

function timeOf(s: string | undefined, now: number, dflt: number): number {
  if (s === undefined) return dflt;
  if (/^\d{4}-\d\d-\d\d/.test(s)) return Date.parse(s);
  const d = parseDuration(s)!;
  // a number of ms this large is a time, not a duration ago (after 2001-09-09)
  return d >= 1e12 ? d : now - d;
}

/** The routes, mounted under /api. */
export function historyRoutes(h: HistoryReader): Hono {
  const app = new Hono();
  app.get("/history", (c) => {
    const q = parseOr400(historyQuerySchema, c.req.query(), "history query");
    const now = h.now();
    const until = timeOf(q.until, now, now + 1);
    const since = timeOf(q.since, now, now - 3_600_000);
    if (since >= until) throw new HistoryRangeError("since", "since must be before until");
    const span = until - since;
    let step: number;
    if (q.step !== undefined) {
      step = parseDuration(q.step)!;
      if (span / step > MAX_BUCKETS) {
        throw new HistoryRangeError(
          "step",
          `step ${q.step} cuts the window into ${
            Math.ceil(span / step)
          } buckets; at most ${MAX_BUCKETS}: choose a larger step or a shorter window`,
        );
      }
    } else step = defaultStep(span, h.intervalMs);
    // a name with no samples kept (not sampled yet, aged out, a module that is off) answers
    // an empty list, as a prefix does: a chart polls it without errors until it appears
    const names = h.match(q.series);
    return answer(c, historyResponseSchema, {
      ...h.query(names, { since, until, step }),
      intervalMs: h.intervalMs,
    });
  });
  app.get(
    "/history/series",
    (c) => answer(c, historySeriesResponseSchema, { intervalMs: h.intervalMs, series: h.list() }),
  );
  return app;
}
