/**
 * Web bench: GET /api/status with an API token, 64 connections with wrk, next to
 * a bare Hono hello world measured in the same run. Target: ≥ 50% of bare.
 * The same app is also served without the front (web_direct.ts), to tell the front's
 * cost from the middleware chain's; each server's CPU per request is measured too
 * (steadier than requests/s on a shared machine).
 */
import { runWrk, waitHttp } from "./http.ts";
import {
  BARE_HONO,
  type BenchRow,
  freePort,
  KEEPWIRE_MAIN,
  keepwireV8Flags,
  printTable,
} from "./types.ts";

const MAIN = KEEPWIRE_MAIN;
const BARE = BARE_HONO;

const DIRECT = new URL("./web_direct.ts", import.meta.url).pathname;

/** CPU ms a process has used (utime + stime). */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** wrk -t2 -c64 for 8 s; fails on error responses. CPU of `pid` per request, in µs. */
async function wrk(
  url: string,
  headers: Record<string, string>,
  pid: number,
): Promise<{ rps: number; p99: number; cpuUs: number }> {
  const c0 = cpuMs(pid);
  const r = await runWrk(url, { threads: 2, connections: 64, seconds: 8, headers });
  const cpuUs = (cpuMs(pid) - c0) * 1000 / r.requests;
  if (r.non2xx) throw new Error(`wrk got ${r.non2xx} error responses from ${url}`);
  return { rps: r.rps, p99: r.p99Ms, cpuUs };
}

/** Run the web bench. */
export async function bench(): Promise<BenchRow[]> {
  const data = await Deno.makeTempDir({ prefix: "kw-bench-web-" });
  const [p1, p2, p3] = [freePort(), freePort(), freePort()];
  const env = { NO_COLOR: "1" };
  // keepwire as `main.ts run` starts it (embedded defaults), its app also on p3 directly
  const kw = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...keepwireV8Flags(), DIRECT, data, String(p1), String(p3)],
    stdout: "null",
    stderr: "null",
    env,
  }).spawn();
  const bare = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BARE, String(p2)],
    stdout: "null",
    stderr: "null",
    env,
  }).spawn();
  try {
    await waitHttp(`http://127.0.0.1:${p1}/api/health`);
    await waitHttp(`http://127.0.0.1:${p3}/api/health`);
    await waitHttp(`http://127.0.0.1:${p2}/`);
    const tok = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "token",
        "create",
        "--name",
        "bench",
        "--role",
        "viewer",
        "--data",
        data,
      ],
      stdout: "piped",
      env,
    }).output();
    const token = new TextDecoder().decode(tok.stdout).trim();
    const headers = { authorization: `Bearer ${token}` };
    // alternate two rounds and keep each side's best, so a burst of other work on
    // this shared machine does not decide the ratio
    const none = { rps: 0, p99: Infinity, cpuUs: Infinity };
    let ours = none, direct = none, base = none;
    for (let round = 0; round < 2; round++) {
      const o = await wrk(`http://127.0.0.1:${p1}/api/status`, headers, kw.pid);
      const d = await wrk(`http://127.0.0.1:${p3}/api/status`, headers, kw.pid);
      const b = await wrk(`http://127.0.0.1:${p2}/`, {}, bare.pid);
      if (o.rps > ours.rps) ours = o;
      if (d.rps > direct.rps) direct = d;
      if (b.rps > base.rps) base = b;
    }
    return [
      {
        name: "GET /api/status with token, wrk -c64: requests/s",
        ours: `${ours.rps.toFixed(0)} req/s`,
        baseline: `${base.rps.toFixed(0)} req/s (bare Hono hello world)`,
        ratio: `${((ours.rps / base.rps) * 100).toFixed(0)}% of bare`,
        target: "≥ 50% of bare",
      },
      {
        name: "GET /api/status with token, wrk -c64: p99",
        ours: `${ours.p99.toFixed(2)} ms`,
        baseline: `${base.p99.toFixed(2)} ms`,
        ratio: `${(ours.p99 / base.p99).toFixed(2)}×`,
      },
      {
        name: "  the same app without the front (bench only): requests/s",
        ours: `${direct.rps.toFixed(0)} req/s`,
        baseline: `${base.rps.toFixed(0)} req/s (bare)`,
        ratio: `${((direct.rps / base.rps) * 100).toFixed(0)}% of bare`,
      },
      {
        name: "  server CPU per request: with the front / without / bare",
        ours: `${ours.cpuUs.toFixed(0)} / ${direct.cpuUs.toFixed(0)} µs`,
        baseline: `${base.cpuUs.toFixed(0)} µs`,
        ratio: `front ${(((ours.cpuUs - direct.cpuUs) / ours.cpuUs) * 100).toFixed(0)}% of ours`,
      },
      {
        name: "  keepwire's V8 flags (the shipped start path's unless KEEPWIRE_BENCH_V8_FLAGS)",
        ours: keepwireV8Flags().join(" ") || "(none)",
        baseline: "(none)",
        ratio: "-",
      },
    ];
  } finally {
    kw.kill("SIGTERM");
    bare.kill("SIGKILL");
    await Promise.all([kw.status, bare.status]);
    await Deno.remove(data, { recursive: true });
  }
}

if (import.meta.main) printTable("web", await bench());
