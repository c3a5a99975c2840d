/**
 * /metrics in the Prometheus text format, rendered with prom-client (loaded on
 * the first scrape). Modules contribute families through `Module.metrics()`.
 * @module
 */

/** One metric family a module contributes. */
export interface MetricFamily {
  /** Name without the `keepwire_` prefix, e.g. `subsystem_restarts_total`. */
  name: string;
  /** HELP text. */
  help: string;
  /** TYPE. */
  type: "gauge" | "counter";
  /** Samples; labels may be empty. */
  samples: { labels?: Record<string, string>; value: number }[];
}

/** Render families as Prometheus text (HELP and TYPE for each, `keepwire_` prefix). */
export async function renderMetrics(families: MetricFamily[]): Promise<string> {
  const { Registry, Gauge, Counter } = await import("prom-client");
  const reg = new Registry();
  const seen = new Set<string>();
  for (const f of families) {
    const name = `keepwire_${f.name}`;
    if (seen.has(name)) throw new Error(`metric family ${name} contributed twice`);
    seen.add(name);
    const labelNames = [...new Set(f.samples.flatMap((s) => Object.keys(s.labels ?? {})))];
    if (f.type === "counter") {
      const c = new Counter({ name, help: f.help, labelNames, registers: [reg] });
      for (const s of f.samples) c.inc(s.labels ?? {}, Math.max(0, s.value));
    } else {
      const g = new Gauge({ name, help: f.help, labelNames, registers: [reg] });
      for (const s of f.samples) g.set(s.labels ?? {}, s.value);
    }
  }
  return await reg.metrics();
}

/**
 * Samples of a one-hot "state set" gauge: for each item, one sample per possible state,
 * 1 for the state the item is in and 0 for the others (so a state change is a value change
 * of an existing series, not a series that appears and vanishes).
 *
 * @example
 * ```ts
 * stateSet(segments, BYPASS_MODES, (s) => s.mode, (s) => ({ segment: s.name }), "mode");
 * // → [{labels:{segment:"s0",mode:"inline"},value:1}, {labels:{segment:"s0",mode:"bypass"},value:0}, …]
 * ```
 */
export function stateSet<T, S extends string>(
  items: readonly T[],
  states: readonly S[],
  stateOf: (item: T) => string,
  labelsOf: (item: T) => Record<string, string>,
  stateLabel = "state",
): MetricFamily["samples"] {
  return items.flatMap((item) => {
    const current = stateOf(item);
    const labels = labelsOf(item);
    return states.map((state) => ({
      labels: { ...labels, [stateLabel]: state },
      value: current === state ? 1 : 0,
    }));
  });
}
