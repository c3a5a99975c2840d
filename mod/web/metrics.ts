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
