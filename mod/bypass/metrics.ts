/** Metric families of the bypass: segment mode, active holds, switch failures. */
import { type MetricFamily, stateSet } from "../web/metrics.ts";
import { BYPASS_MODES } from "../../hw/bypass/types.ts";
import type { SegmentStatus } from "./types.ts";

/** Modes of the state-set metric (read-back modes and `unknown`). */
const MODES = [...BYPASS_MODES, "unknown"] as const;

/** `bypass_*` families from the segments' status. */
export function bypassMetrics(segments: SegmentStatus[]): MetricFamily[] {
  return [
    {
      name: "bypass_segment_mode",
      help:
        "1 for the mode each segment reads back (inline, bypass, disconnect; unknown: cannot be trusted)",
      type: "gauge",
      samples: stateSet(
        segments,
        MODES,
        (s) => s.mode,
        (s) => ({ segment: s.name, driver: s.driver }),
        "mode",
      ),
    },
    {
      name: "bypass_holds",
      help: "active holds (distinct reasons) on each segment; traffic stays off inline while > 0",
      type: "gauge",
      samples: segments.map((s) => ({
        labels: { segment: s.name },
        value: s.holds.length,
      })),
    },
    {
      name: "bypass_switch_failures",
      help: "consecutive failed switches of each segment",
      type: "gauge",
      samples: segments.map((s) => ({ labels: { segment: s.name }, value: s.failures })),
    },
  ];
}
