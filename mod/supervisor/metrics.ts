/** Metric families of the supervisor: per-subsystem state, restarts, last restart. */
import { type MetricFamily, stateSet } from "../web/metrics.ts";
import { SUBSYSTEM_STATES, type SubsystemInfo } from "./api.ts";

/** `subsystem_*` families from the current list and the last restart time of each (ms). */
export function supervisorMetrics(
  list: SubsystemInfo[],
  lastRestartAt: ReadonlyMap<string, number>,
): MetricFamily[] {
  return [
    {
      name: "subsystem_state",
      help: "1 for the state each subsystem is in, 0 for the others",
      type: "gauge",
      samples: stateSet(
        list,
        SUBSYSTEM_STATES,
        (s) => s.state,
        (s) => ({ subsystem: s.name, kind: s.kind, criticality: s.criticality }),
      ),
    },
    {
      name: "subsystem_restarts_total",
      help: "restarts of each subsystem since keepwire started",
      type: "counter",
      samples: list.map((s) => ({ labels: { subsystem: s.name }, value: s.restarts })),
    },
    {
      name: "subsystem_last_restart_timestamp_seconds",
      help: "time of each subsystem's last restart (Unix seconds; 0: none since start)",
      type: "gauge",
      samples: list.map((s) => ({
        labels: { subsystem: s.name },
        value: (lastRestartAt.get(s.name) ?? 0) / 1000,
      })),
    },
  ];
}
