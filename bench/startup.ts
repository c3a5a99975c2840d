/**
 * Startup bench: time from process start to /api/health 200, and RSS after 10 s idle,
 * for keepwire (`main.ts run`, embedded defaults) and a bare Deno.serve + Hono; then
 * where the time and the memory above bare go (startup_probe.ts: the same start-up step
 * by step in one process, with and without the example subsystems).
 */
import type { ProbeResult } from "./startup_probe.ts";
import { waitHttp } from "./http.ts";
import {
  BARE_HONO,
  type BenchRow,
  freePort,
  KEEPWIRE_MAIN,
  percentile,
  printTable,
} from "./types.ts";

const MAIN = KEEPWIRE_MAIN;
const BARE = BARE_HONO;

async function rssMb(pid: number): Promise<number> {
  const s = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : NaN;
}

async function measure(
  kind: "keepwire" | "bare",
  idleMs: number,
): Promise<{ startMs: number; rss?: number }> {
  const port = freePort();
  const data = await Deno.makeTempDir({ prefix: "kw-bench-" });
  const args = kind === "keepwire"
    ? ["run", "-A", MAIN, "run", "--data", data, "--listen", `127.0.0.1:${port}`]
    : ["run", "-A", BARE, String(port)];
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  try {
    let startMs = NaN;
    try {
      await waitHttp(`http://127.0.0.1:${port}/api/health`, {
        ok: (status) => status === 200,
        intervalMs: 2,
      });
      startMs = performance.now() - t0;
    } catch { /* did not start: NaN */ }
    let rss: number | undefined;
    if (idleMs > 0) {
      await new Promise((r) => setTimeout(r, idleMs));
      rss = await rssMb(child.pid);
    }
    return { startMs, rss };
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(data, { recursive: true });
  }
}

const PROBE = new URL("./startup_probe.ts", import.meta.url).pathname;

async function probe(noSubsystems: boolean): Promise<ProbeResult> {
  const data = await Deno.makeTempDir({ prefix: "kw-bench-probe-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        PROBE,
        data,
        ...(noSubsystems ? ["--no-subsystems"] : []),
      ],
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    return JSON.parse(line) as ProbeResult;
  } finally {
    await Deno.remove(data, { recursive: true });
  }
}

/** Where the start-up time and the idle memory above bare go, as table rows. */
async function breakdown(bareRss: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const none = await probe(true);
  const full = await probe(false);
  const at = (r: ProbeResult, step: string) => r.steps.find((s) => s.step === step)!;
  const prev = (r: ProbeResult, step: string) => r.steps[r.steps.indexOf(at(r, step)) - 1];
  for (const step of ["config module (zod, schemas)", "module graph", "runtime started"]) {
    const s = at(none, step), p = prev(none, step);
    rows.push({
      name: `  breakdown: ${step}`,
      ours: `+${(s.atMs - p.atMs).toFixed(0)} ms, +${(s.rssMb - p.rssMb).toFixed(1)} MB RSS`,
      baseline: `heap +${(s.heapMb - p.heapMb).toFixed(1)} MB`,
      ratio: "-",
    });
  }
  const slow = Object.entries(full.moduleStartMs).sort((a, b) => b[1] - a[1]).slice(0, 4);
  rows.push({
    name: "  breakdown: slowest module starts (defaults)",
    ours: slow.map(([m, ms]) => `${m} ${ms.toFixed(0)}`).join(", ") + " ms",
    baseline: "-",
    ratio: "-",
  });
  const idleNone = at(none, "10 s idle"), idleFull = at(full, "10 s idle");
  rows.push({
    name: "  breakdown: idle, no subsystems / embedded defaults",
    ours: `${idleNone.rssMb.toFixed(1)} / ${idleFull.rssMb.toFixed(1)} MB RSS`,
    baseline: `heap ${idleNone.heapMb.toFixed(1)} / ${idleFull.heapMb.toFixed(1)} MB; bare ${
      bareRss.toFixed(1)
    } MB`,
    ratio: `threads ${none.threads} / ${full.threads}`,
  });
  return rows;
}

/** Run the startup bench. */
export async function bench(): Promise<BenchRow[]> {
  const runs = 7;
  const ours: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    ours.push((await measure("keepwire", 0)).startMs);
    bare.push((await measure("bare", 0)).startMs);
  }
  const [o, b] = await Promise.all([measure("keepwire", 10_000), measure("bare", 10_000)]);
  const om = percentile(ours, 50), bm = percentile(bare, 50);
  return [
    {
      name: `start to /api/health 200 (median of ${runs})`,
      ours: `${om.toFixed(0)} ms`,
      baseline: `${bm.toFixed(0)} ms (bare Deno.serve+Hono)`,
      ratio: `${(om / bm).toFixed(2)}×`,
      target: "≤ 2×",
    },
    {
      name: "RSS after 10 s idle",
      ours: `${o.rss!.toFixed(1)} MB`,
      baseline: `${b.rss!.toFixed(1)} MB (bare Deno.serve+Hono)`,
      ratio: `${(o.rss! / b.rss!).toFixed(2)}×`,
      target: "≤ 80 MB",
    },
    ...await breakdown(b.rss!),
  ];
}

if (import.meta.main) printTable("startup", await bench());
