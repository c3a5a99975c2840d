/**
 * Startup bench: time from process start to /api/health 200, and RSS after 10 s idle, for
 * keepwire (embedded defaults) started both ways — `deno run -A main.ts run` (the module
 * graph from source, no flags) and the shipped launcher on the bundled file (image/bundle.ts:
 * keepwire.js with the launcher's V8 flags) — and a bare Deno.serve + Hono; then where the
 * time and the memory above bare go: the idle processes' resident pages by mapping (the deno
 * binary's own pages, anonymous memory, the malloc heap) and startup_probe.ts (the same
 * start-up step by step in one process, with and without the example subsystems).
 */
import { join } from "node:path";
import { buildBundle } from "../image/bundle.ts";
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

/** How a server is started: the program and the arguments before `run --data ...`. */
interface Form {
  cmd: string;
  args: string[];
  bare?: boolean;
}

/** Resident memory of a process by kind of mapping (MB). */
interface Rss {
  total: number;
  /** Pages of the deno executable itself (code and read-only data it touched). */
  binary: number;
  /** Anonymous mappings: V8 heaps (main and Worker isolates), thread stacks and arenas. */
  anon: number;
  /** The main malloc heap ([heap]). */
  heap: number;
}

async function rssOf(pid: number): Promise<Rss> {
  const smaps = await Deno.readTextFile(`/proc/${pid}/smaps`);
  const exe = await Deno.readLink(`/proc/${pid}/exe`);
  const r: Rss = { total: 0, binary: 0, anon: 0, heap: 0 };
  let name = "";
  for (const line of smaps.split("\n")) {
    const h = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) {
      name = h[1];
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const mb = Number(m[1]) / 1024;
    r.total += mb;
    if (name === exe) r.binary += mb;
    else if (name === "[heap]") r.heap += mb;
    else if (name === "") r.anon += mb;
  }
  return r;
}

async function measure(form: Form, idleMs: number): Promise<{ startMs: number; rss?: Rss }> {
  const port = freePort();
  const data = await Deno.makeTempDir({ prefix: "kw-bench-" });
  const args = form.bare
    ? [...form.args, String(port)]
    : [...form.args, "run", "--data", data, "--listen", `127.0.0.1:${port}`];
  const t0 = performance.now();
  const child = new Deno.Command(form.cmd, {
    args,
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1", KEEPWIRE_DENO: Deno.execPath() },
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
    let rss: Rss | undefined;
    if (idleMs > 0) {
      await new Promise((r) => setTimeout(r, idleMs));
      // the launcher execs deno: same pid
      rss = await rssOf(child.pid);
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
      baseline: `heap +${(s.heapMb - p.heapMb).toFixed(1)} MB, ${
        s.zodSchemas - p.zodSchemas
      } zod schemas built`,
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

function loadAvg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

const mb = (r: Rss) =>
  `${r.total.toFixed(1)} MB (deno binary ${r.binary.toFixed(1)}, anon ${r.anon.toFixed(1)}, ` +
  `malloc heap ${r.heap.toFixed(1)})`;

/** Run the startup bench. */
export async function bench(): Promise<BenchRow[]> {
  const runs = 7;
  const dir = await Deno.makeTempDir({ prefix: "kw-bench-startup-bundle-" });
  try {
    await buildBundle(dir, { deno: null });
    const forms: Record<"main" | "bundle" | "bare", Form> = {
      main: { cmd: Deno.execPath(), args: ["run", "-A", MAIN] },
      bundle: { cmd: join(dir, "keepwire"), args: [] },
      bare: { cmd: Deno.execPath(), args: ["run", "-A", BARE], bare: true },
    };
    const loadBefore = loadAvg();
    const t: Record<keyof typeof forms, number[]> = { main: [], bundle: [], bare: [] };
    for (let i = 0; i < runs; i++) {
      for (const k of ["main", "bundle", "bare"] as const) {
        t[k].push((await measure(forms[k], 0)).startMs);
      }
    }
    const [m, u, b] = await Promise.all([
      measure(forms.main, 10_000),
      measure(forms.bundle, 10_000),
      measure(forms.bare, 10_000),
    ]);
    const med = (k: keyof typeof forms) => percentile(t[k], 50);
    const bm = med("bare");
    const startRow = (name: string, k: "main" | "bundle"): BenchRow => ({
      name: `start to /api/health 200, ${name} (median of ${runs})`,
      ours: `${med(k).toFixed(0)} ms`,
      baseline: `${bm.toFixed(0)} ms (bare Deno.serve+Hono)`,
      ratio: `${(med(k) / bm).toFixed(2)}×`,
      target: "≤ 2×",
    });
    const rssRow = (name: string, r: Rss): BenchRow => ({
      name: `RSS after 10 s idle, ${name}`,
      ours: mb(r),
      baseline: `${mb(b.rss!)} (bare)`,
      ratio: `${(r.total / b.rss!.total).toFixed(2)}×`,
      target: "≤ 80 MB",
    });
    return [
      startRow("deno run main.ts", "main"),
      startRow("bundled keepwire.js via the launcher", "bundle"),
      rssRow("deno run main.ts", m.rss!),
      rssRow("bundled keepwire.js via the launcher", u.rss!),
      ...await breakdown(b.rss!.total),
      {
        name: "  load average (1/5/15 min) before / after",
        ours: loadBefore,
        baseline: loadAvg(),
        ratio: "-",
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) printTable("startup", await bench());
