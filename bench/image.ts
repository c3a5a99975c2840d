/**
 * Image bench: start-up of the one-executable form (image/bundle.ts: the pinned deno on the
 * bundled keepwire.js and its chunks) against `deno run main.ts` (the module graph loaded from
 * source), both measured from process start to /api/health 200 on a fresh data directory, same
 * machine, same run.
 * @module
 */
import { join } from "node:path";
import { buildBundle } from "../image/bundle.ts";
import { waitHttp } from "./http.ts";
import { type BenchRow, freePort, KEEPWIRE_MAIN, percentile, printTable } from "./types.ts";

/** Milliseconds from spawn to /api/health 200 for one `keepwire run`. */
export async function startupMs(cmd: string, args: string[]): Promise<number> {
  const port = freePort();
  const data = await Deno.makeTempDir({ prefix: "kw-bench-image-" });
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args: [...args, "run", "--data", data, "--listen", `127.0.0.1:${port}`],
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1", KEEPWIRE_GOVERNOR: "off", KEEPWIRE_DENO: Deno.execPath() },
  }).spawn();
  try {
    await waitHttp(`http://127.0.0.1:${port}/api/health`, {
      ok: (s) => s === 200,
      intervalMs: 2,
    });
    return performance.now() - t0;
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(data, { recursive: true }).catch(() => {});
  }
}

/** Run the bench: `runs` alternating start-ups of each form. */
export async function bench(runs = 5): Promise<BenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "kw-bench-bundle-" });
  try {
    const b = await buildBundle(dir, { deno: null });
    const launcher = join(dir, "keepwire");
    const bundled: number[] = [];
    const source: number[] = [];
    for (let i = 0; i < runs; i++) {
      bundled.push(await startupMs(launcher, []));
      source.push(await startupMs(Deno.execPath(), ["run", "-A", KEEPWIRE_MAIN]));
    }
    const pb = percentile(bundled, 50);
    const ps = percentile(source, 50);
    return [
      {
        name: `start to /api/health 200, median of ${runs} (bundle vs deno run main.ts)`,
        ours: `${pb.toFixed(0)} ms`,
        baseline: `${ps.toFixed(0)} ms`,
        ratio: (pb / ps).toFixed(2),
        target: "< 1 (no module graph to load)",
      },
      {
        name: "bundle build (deno bundle, 2 entries, main.ts split)",
        ours: `${(b.ms / 1000).toFixed(1)} s, keepwire.js and ${b.jsFiles - 1} chunks ${
          (b.jsBytes / 1e6).toFixed(1)
        } MB`,
        baseline: "-",
        ratio: "-",
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) printTable("image", await bench());
