/**
 * `deno task chaos [--bounded] [--json] [NAME...]`: runs every chaos scenario (or the named ones)
 * and prints one table — scenario | injected | survived | lost | time | notes — and a total line.
 * Exits 1 when any scenario lost anything or threw (or none exists), 2 on an unknown name.
 *
 * Scenarios are found by reading this folder: every `chaos/*.ts` file (except this runner and
 * `types.ts`) that exports `scenario: ChaosScenario`. Adding a fault class is adding a file.
 */
import type { ChaosResult, ChaosScenario } from "./types.ts";

const HERE = new URL("./", import.meta.url);
const NOT_SCENARIOS = new Set(["mod.ts", "types.ts"]);

/** One table row: a scenario's result, or the error it threw. */
export interface ChaosRow {
  /** Scenario name. */
  name: string;
  /** The result; absent when the scenario threw. */
  result?: ChaosResult;
  /** Message of the error the scenario threw (then it counts as failed). */
  error?: string;
  /** Wall time in milliseconds. */
  ms: number;
}

/**
 * Every scenario in `chaos/`, sorted by name. A `.ts` file without a `scenario` export, or whose
 * `scenario.name` differs from its file name, is an error (a scenario silently not run is a
 * hidden skip).
 */
export async function discoverScenarios(dir: URL = HERE): Promise<ChaosScenario[]> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".ts") && !NOT_SCENARIOS.has(e.name)) files.push(e.name);
  }
  files.sort();
  const out: ChaosScenario[] = [];
  for (const f of files) {
    const mod = await import(new URL(f, dir).href) as { scenario?: ChaosScenario };
    const s = mod.scenario;
    if (!s || typeof s.run !== "function" || typeof s.name !== "string") {
      throw new Error(`chaos/${f} does not export "scenario: ChaosScenario"`);
    }
    if (s.name !== f.slice(0, -3)) {
      throw new Error(`chaos/${f} exports scenario "${s.name}"; name it after its file`);
    }
    out.push(s);
  }
  return out;
}

/** Run one scenario, timing it and turning a throw into a failed row. */
export async function runScenario(
  s: ChaosScenario,
  opts: { bounded: boolean; log: (s: string) => void },
): Promise<ChaosRow> {
  const t0 = performance.now();
  try {
    const result = await s.run(opts);
    return { name: s.name, result, ms: performance.now() - t0 };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    return { name: s.name, error, ms: performance.now() - t0 };
  }
}

/** True when a row failed: it threw, lost something, or its counts do not add up. */
export function rowFailed(r: ChaosRow): boolean {
  if (!r.result) return true;
  const { injected, survived, lost } = r.result;
  return lost > 0 || survived + lost !== injected;
}

function fmtTime(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** The table as text (what `deno task chaos` prints). */
export function formatTable(rows: ChaosRow[]): string {
  const head = ["scenario", "injected", "survived", "lost", "time", "notes"];
  const body = rows.map((r) => {
    const res = r.result;
    let notes = r.error ? `THREW: ${r.error}` : res?.notes ?? "";
    if (res && res.survived + res.lost !== res.injected) {
      notes = `COUNTS DO NOT ADD UP; ${notes}`;
    }
    return [
      r.name,
      res ? String(res.injected) : "-",
      res ? String(res.survived) : "-",
      res ? String(res.lost) : "-",
      fmtTime(r.ms),
      notes.replaceAll("\n", " "),
    ];
  });
  const tot = rows.reduce(
    (a, r) => ({
      injected: a.injected + (r.result?.injected ?? 0),
      survived: a.survived + (r.result?.survived ?? 0),
      lost: a.lost + (r.result?.lost ?? 0),
      ms: a.ms + r.ms,
    }),
    { injected: 0, survived: 0, lost: 0, ms: 0 },
  );
  const failed = rows.filter(rowFailed).length;
  const total = [
    "total",
    String(tot.injected),
    String(tot.survived),
    String(tot.lost),
    fmtTime(tot.ms),
    failed ? `${failed} of ${rows.length} scenarios FAILED` : `${rows.length} scenarios, 0 lost`,
  ];
  const all = [head, ...body, total];
  const width = head.map((_, i) => Math.max(...all.map((r) => i === 5 ? 0 : r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => i === 5 ? c : i >= 1 && i <= 4 ? c.padStart(width[i]) : c.padEnd(width[i]))
      .join(" | ").trimEnd();
  const sep = width.map((w, i) => "-".repeat(i === 5 ? 5 : w)).join("-|-");
  return [line(head), sep, ...body.map(line), sep, line(total)].join("\n");
}

async function main(args: string[]): Promise<number> {
  const bounded = args.includes("--bounded");
  const json = args.includes("--json");
  const unknownFlag = args.find((a) => a.startsWith("-") && a !== "--bounded" && a !== "--json");
  if (unknownFlag) {
    console.error(`chaos: unknown option ${unknownFlag} (have: --bounded, --json)`);
    return 2;
  }
  const names = args.filter((a) => !a.startsWith("-"));
  const all = await discoverScenarios();
  const byName = new Map(all.map((s) => [s.name, s]));
  const bad = names.filter((n) => !byName.has(n));
  if (bad.length) {
    console.error(
      `chaos: unknown scenario ${bad.join(", ")} (have: ${[...byName.keys()].join(", ")})`,
    );
    return 2;
  }
  const pick = names.length ? names.map((n) => byName.get(n)!) : all;
  if (pick.length === 0) {
    console.error("chaos: no scenario files in chaos/ (nothing was injected)");
    return 1;
  }
  const rows: ChaosRow[] = [];
  for (const s of pick) {
    // Progress goes to stderr so `--json` stdout stays parseable.
    const log = (line: string) => console.error(`[${s.name}] ${line}`);
    log(`start (${bounded ? "bounded" : "long"}): ${s.description}`);
    const row = await runScenario(s, { bounded, log });
    log(row.error ? `THREW: ${row.error}` : `done in ${fmtTime(row.ms)}`);
    rows.push(row);
  }
  if (json) {
    console.log(JSON.stringify({ bounded, rows, failed: rows.filter(rowFailed).length }, null, 2));
  } else {
    console.log(`\nchaos (${bounded ? "bounded" : "long"} form)\n${formatTable(rows)}`);
  }
  return rows.some(rowFailed) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
