/**
 * The `history` section of the configuration: how often the metric history samples and how
 * much of it the store keeps (docs/history.md).
 * @module
 */
import { z } from "zod";

/** Defaults of the history section. */
export const HISTORY_DEFAULTS = {
  enabled: true,
  intervalMs: 10_000,
  maxAgeHours: 48,
  maxSamplesPerSeries: 17_280,
  maxSeries: 256,
} as const;

/** Schema of the `history` section. */
export const historyConfigSchema = z.strictObject({
  enabled: z.boolean().default(HISTORY_DEFAULTS.enabled).describe(
    "keep a metric history for the charts (governor signals, restarts, event rate, disks)",
  ),
  intervalMs: z.number().int().min(250).max(3_600_000).default(HISTORY_DEFAULTS.intervalMs)
    .describe("take one sample of every series this often (ms)"),
  maxAgeHours: z.number().min(1).max(24 * 366).default(HISTORY_DEFAULTS.maxAgeHours).describe(
    "drop samples older than this (hours)",
  ),
  maxSamplesPerSeries: z.number().int().min(10).max(1_000_000).default(
    HISTORY_DEFAULTS.maxSamplesPerSeries,
  ).describe(
    "keep at most this many samples of each series, the newest (17,280 = 48 h at 10 s)",
  ),
  maxSeries: z.number().int().min(1).max(10_000).default(HISTORY_DEFAULTS.maxSeries).describe(
    "keep at most this many series; samples of further new series are dropped and counted",
  ),
}).describe(
  "the metric history behind the charts: sampled on a clock, kept bounded in the store (docs/history.md)",
);

/** The validated `history` section. */
export type HistoryConfig = z.infer<typeof historyConfigSchema>;
