/** Metric families of the updater: slot states, the booted slot and its version. */
import { type MetricFamily, stateSet } from "../web/metrics.ts";
import type { UpdateStatusView } from "./service.ts";

/** Boot states of the state-set metric. */
const SLOT_STATES = ["good", "trying", "bad", "unknown"] as const;

/**
 * `update_*` families from the last status read (null before the first read, or
 * without slots) and whether an install runs. `running` is the version of the
 * keepwire that runs, shown for the booted slot when no install recorded its version.
 */
export function updateMetrics(
  view: UpdateStatusView | null,
  installing: boolean,
  running: string,
): MetricFamily[] {
  const slots = view?.slots ?? [];
  const booted = slots.find((s) => s.booted);
  return [
    {
      name: "update_slot_state",
      help: "1 for each A/B slot's boot state (good, trying, bad; unknown: boot env unreadable)",
      type: "gauge",
      samples: stateSet(
        slots,
        SLOT_STATES,
        (s) => s.state,
        (s) => ({ slot: s.bootname, class: s.slotClass }),
      ),
    },
    {
      name: "update_slot_primary",
      help: "1 for the slot the boot loader starts next",
      type: "gauge",
      samples: slots.map((s) => ({
        labels: { slot: s.bootname, class: s.slotClass },
        value: s.primary ? 1 : 0,
      })),
    },
    {
      name: "update_booted_info",
      help: "the booted slot and its version (value is always 1)",
      type: "gauge",
      samples: booted
        ? [{ labels: { slot: booted.bootname, version: booted.version ?? running }, value: 1 }]
        : [],
    },
    {
      name: "update_installing",
      help: "1 while an update bundle is being installed",
      type: "gauge",
      samples: [{ value: installing ? 1 : 0 }],
    },
  ];
}
