import { V8_FLAGS } from "../image/v8_flags.ts";

/** One row of a benchmark table: our figure next to a baseline from the same run. */
export interface BenchRow {
  /** What is measured. */
  name: string;
  /** Our figure, with unit. */
  ours: string;
  /** Baseline or peer figure from the same run, with unit. */
  baseline: string;
  /** ours / baseline (or as the row explains). */
  ratio: string;
  /** Target from the issue, if any. */
  target?: string;
}

/** Print rows as a table. */
export function printTable(title: string, rows: BenchRow[]): void {
  const head = ["measure", "keepwire", "baseline", "ratio", "target"];
  const data = rows.map((r) => [r.name, r.ours, r.baseline, r.ratio, r.target ?? ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...data.map((d) => d[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |";
  console.log(`\n## ${title}\n`);
  console.log(line(head));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const d of data) console.log(line(d));
}

/** Percentile of a sorted-or-not sample. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

/** main.ts of keepwire. */
export const KEEPWIRE_MAIN: string = new URL("../main.ts", import.meta.url).pathname;
/** The bare Deno.serve + Hono baseline server. */
export const BARE_HONO: string = new URL("./bare_hono.ts", import.meta.url).pathname;

/**
 * The `--v8-flags` a bench starts a keepwire server with: the shipped start path's
 * (image/bundle.ts `V8_FLAGS`), or KEEPWIRE_BENCH_V8_FLAGS to compare another set in the same
 * session (empty: V8's defaults).
 */
export function keepwireV8Flags(): string[] {
  const flags = Deno.env.get("KEEPWIRE_BENCH_V8_FLAGS") ?? V8_FLAGS;
  return flags ? [`--v8-flags=${flags}`] : [];
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}
