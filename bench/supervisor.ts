/**
 * Supervisor benchmark:
 * - crash-to-ready latency of a worker and of a process subsystem (p50/p99 over N kills),
 * - hang-detection latency against the configured heartbeat timeout,
 * - keepwire's CPU while supervising 100 idle subsystems at 10 heartbeats/s.
 * Reference line: systemd's documented default RestartSec=100ms, i.e. a restart
 * takes at least 100 ms plus the exec-to-ready time of the same program
 * (measured here in the same run; there is no systemd PID 1 on this machine).
 *
 * Run: `tools/deno run -A bench/supervisor.ts` (KW_BENCH_KILLS=200 by default).
 * Needs util-linux (setsid), systemd (systemd-notify) and perl.
 * @module
 */
import { join } from "node:path";
import { systemClock } from "../mod/module.ts";
import type { EventInput } from "../mod/events/mod.ts";
import { Supervisor } from "../mod/supervisor/supervisor.ts";
import { defaultRunners, NOTIFY_THREAD_MIN_PROCESSES } from "../mod/supervisor/mod.ts";
import { WorkerPool } from "../mod/supervisor/worker.ts";
import { NotifyHub, NotifyServer } from "../mod/supervisor/notify.ts";
import {
  type SubsystemSpec,
  type SubsystemSpecInput,
  subsystemSpecSchema,
  supervisorConfigSchema,
} from "../mod/supervisor/config.ts";

/** One row of the benchmark table. */
export interface BenchRow {
  /** What is measured. */
  name: string;
  /** keepwire's number. */
  ours: string;
  /** The reference (systemd default) number. */
  baseline: string;
  /** ours / baseline. */
  ratio: string;
  /** The target. */
  target?: string;
}

const SDK = new URL("../mod/sdk/mod.ts", import.meta.url).href;
const KILLS = Number(Deno.env.get("KW_BENCH_KILLS") ?? "200");
const SYSTEMD_RESTART_SEC_MS = 100;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p / 100 * s.length) - 1))];
}
const f = (x: number) => x.toFixed(1);

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("bench: timed out");
    await sleep(1);
  }
}

interface Timed {
  sup: Supervisor;
  transitions: {
    name: string;
    from: string;
    to: string;
    cause: string;
    reason: string;
    t: number;
    /** The subsystem's status text when it went to restarting (its last words). */
    status?: string;
  }[];
  close(): Promise<void>;
}

function spec(input: SubsystemSpecInput): SubsystemSpec {
  return subsystemSpecSchema.parse(input);
}

async function supervise(specs: SubsystemSpec[], spares = 1, notifyThread = false): Promise<Timed> {
  const pool = new WorkerPool(spares);
  // as the supervisor module does: many process subsystems get the notify thread
  const hub = notifyThread ||
      specs.filter((s) => s.kind === "process").length >= NOTIFY_THREAD_MIN_PROCESSES
    ? new NotifyHub()
    : undefined;
  const transitions: Timed["transitions"] = [];
  const sup = new Supervisor({
    specs,
    config: supervisorConfigSchema.parse({ workerSpares: spares }),
    clock: systemClock,
    publish: (e: EventInput) => {
      if (e.kind !== "supervisor.transition") return;
      const p = e.payload as Record<string, string>;
      transitions.push({
        name: p.subsystem,
        from: p.from,
        to: p.to,
        cause: p.cause,
        reason: p.reason,
        t: now(),
        // read here, not by a poller that may lag behind the next run on a busy machine
        status: p.to === "restarting"
          ? sup.get(p.subsystem).info().statusText ?? undefined
          : undefined,
      });
    },
    runners: defaultRunners(pool, undefined, undefined, hub),
    escalation: {
      bypassHold: () => Promise.resolve(),
      bypassRelease: () => Promise.resolve(),
      reboot: () => Promise.resolve(),
    },
  });
  pool.warm();
  await sleep(200);
  await sup.startAll();
  return {
    sup,
    transitions,
    close: async () => {
      await sup.stopAll();
      pool.close();
      hub?.close();
    },
  };
}

const immediate = { initialMs: 0, maxMs: 100, multiplier: 2, jitter: 0, resetAfterMs: 50 };
const lots = { maxRestarts: 100_000, periodSec: 1 };

/** Worker crash-to-ready: the worker throws 60 ms after ready; time from the throw to ready. */
async function workerCrash(dir: string): Promise<number[]> {
  const mod = join(dir, "crash_worker.ts");
  await Deno.writeTextFile(
    mod,
    `import { ready, status } from "${SDK}";\nready();\n` +
      `setTimeout(() => { status("crash@" + (performance.timeOrigin + performance.now()));` +
      ` throw new Error("bench crash"); }, 60);\n`,
  );
  const s = await supervise([
    spec({ name: "w", kind: "worker", module: mod, backoff: immediate, intensity: lots }),
  ]);
  const lat: number[] = [];
  try {
    const sub = s.sup.get("w");
    await until(() => sub.state === "ready");
    let crashAt = 0;
    for (let i = 0; i < KILLS; i++) {
      const seen = s.transitions.length;
      await until(() => s.transitions.slice(seen).some((t) => t.to === "restarting"));
      // the ready that follows this restart (a lagging poll may have started between a
      // restart and its ready: pair them by position, not by "first after")
      const at = s.transitions.findIndex((t, j) => j >= seen && t.to === "restarting");
      const down = s.transitions[at];
      crashAt = Number((down.status ?? "").replace("crash@", ""));
      await until(() => s.transitions.slice(at).some((t) => t.to === "ready"));
      const ready = s.transitions.slice(at).find((t) => t.to === "ready")!;
      lat.push(ready.t - crashAt);
    }
  } finally {
    await s.close();
  }
  return lat;
}

const PROC_SCRIPT = `systemd-notify --ready\nexec sleep 100000\n`;

/** Process crash-to-ready: kill -9 after 60 ms of ready; time from the kill to ready. */
async function processCrash(dir: string): Promise<number[]> {
  const script = join(dir, "svc.sh");
  await Deno.writeTextFile(script, PROC_SCRIPT);
  const s = await supervise([
    spec({
      name: "p",
      kind: "process",
      command: "/bin/sh",
      args: [script],
      backoff: immediate,
      intensity: lots,
    }),
  ], 0);
  const lat: number[] = [];
  try {
    const sub = s.sup.get("p");
    for (let i = 0; i < KILLS; i++) {
      await until(() => sub.state === "ready");
      await sleep(60);
      const seen = s.transitions.length;
      const t0 = now();
      Deno.kill(sub.info().pid!, "SIGKILL");
      await until(() => s.transitions.slice(seen).some((t) => t.to === "ready"));
      lat.push(s.transitions.slice(seen).find((t) => t.to === "ready")!.t - t0);
    }
  } finally {
    await s.close();
  }
  return lat;
}

/** Exec-to-ready of the same script without a supervisor (the "+ exec" of the reference). */
async function execToReady(dir: string, n: number): Promise<number[]> {
  const script = join(dir, "svc.sh");
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const srv = NotifyServer.open("bench-exec");
    const { promise, resolve } = Promise.withResolvers<number>();
    const served = srv.serve((m) => m.ready && resolve(now()));
    const t0 = now();
    const child = new Deno.Command("/bin/sh", {
      args: [script],
      env: { NOTIFY_SOCKET: srv.address },
      stdout: "null",
      stderr: "null",
    }).spawn();
    out.push(await promise - t0);
    child.kill("SIGKILL");
    await child.status;
    srv.close();
    await served;
  }
  return out;
}

/** Cold Worker start to ready (what a worker restart would cost without the spare). */
async function coldWorker(dir: string, n: number): Promise<number[]> {
  const mod = join(dir, "idle_worker.ts");
  await Deno.writeTextFile(mod, `import { ready } from "${SDK}";\nready();\n`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = await supervise([
      spec({ name: "c", kind: "worker", module: mod, heartbeat: null }),
    ], 0);
    await until(() => s.sup.get("c").state === "ready");
    const st = s.transitions.find((t) => t.to === "starting")!;
    const rd = s.transitions.find((t) => t.to === "ready")!;
    out.push(rd.t - st.t);
    await s.close();
  }
  return out;
}

/**
 * A real systemd as the peer: a user manager (`systemd --user`) in a private mount
 * namespace with a tmpfs on /run/systemd (so the manager believes the box booted with
 * systemd, and nothing outside the namespace sees it), running a Type=notify service
 * (`systemd-notify --ready; exec sleep`) with Restart=always, RestartSec=100ms. Each
 * `kill -9` of its main process is timed until systemd shows it active again under a new
 * pid (polled with `systemctl show` every 2 ms: an upper bound by a few ms).
 * Null when it cannot run here (not root, no unshare or systemd).
 */
async function systemdRestart(dir: string, n: number): Promise<number[] | null> {
  const script = join(dir, "systemd_peer.sh");
  await Deno.writeTextFile(
    script,
    `set -e
mount -t tmpfs none /run/systemd && mkdir -p /run/systemd/system
export XDG_RUNTIME_DIR=$(mktemp -d); chmod 700 $XDG_RUNTIME_DIR
/lib/systemd/systemd --user >/dev/null 2>&1 &
mgr=$!
trap 'kill $mgr 2>/dev/null' EXIT
for i in $(seq 500); do systemctl --user is-system-running >/dev/null 2>&1 && break; sleep 0.02; done
systemd-run --user --unit kwbench -p Type=notify -p NotifyAccess=all -p Restart=always \\
  -p RestartSec=${SYSTEMD_RESTART_SEC_MS}ms -p StartLimitIntervalSec=0 \\
  /bin/sh -c 'systemd-notify --ready; exec sleep 100000' >/dev/null
st() { systemctl --user show kwbench -p MainPID -p ActiveState --value | tr '\\n' ' '; }
for i in $(seq 500); do case "$(st)" in *" active "*) break;; esac; sleep 0.01; done
for k in $(seq ${n}); do
  old=$(systemctl --user show kwbench -p MainPID --value)
  t0=$(date +%s%N); kill -9 $old
  while :; do
    read -r pid state <<<"$(st)"
    [ "$pid" != "$old" ] && [ "$pid" != 0 ] && [ "$state" = active ] && break
    sleep 0.002
  done
  t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 ))
  sleep 0.2
done
systemctl --user stop kwbench >/dev/null 2>&1 || true
`,
  );
  try {
    const out = await new Deno.Command("unshare", {
      args: ["-m", "bash", script],
      stdout: "piped",
      stderr: "null",
    }).output();
    const us = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean)
      .map(Number);
    return out.code === 0 && us.length === n ? us.map((u) => u / 1000) : null;
  } catch {
    return null;
  }
}

/** Hang detection: overshoot of (detection − last heartbeat) over the timeout. */
async function hang(
  dir: string,
  kind: "worker" | "process",
  n: number,
  timeoutMs: number,
  notifyThread = false,
) {
  const mod = join(dir, "hang_worker.ts");
  await Deno.writeTextFile(
    mod,
    `import { ready } from "${SDK}";\nready();\nsetTimeout(() => { while (true) { /* hang */ } }, 100);\n`,
  );
  const s = await supervise(
    [
      kind === "worker"
        ? spec({
          name: "h",
          kind: "worker",
          module: mod,
          heartbeat: { intervalMs: 20, timeoutMs },
          backoff: immediate,
          intensity: lots,
        })
        : spec({
          name: "h",
          kind: "process",
          command: "perl",
          args: ["-e", PERL_HANG],
          heartbeat: { intervalMs: 20, timeoutMs },
          backoff: immediate,
          intensity: lots,
        }),
    ],
    1,
    notifyThread,
  );
  const over: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const seen = s.transitions.length;
      await until(() => s.transitions.slice(seen).some((t) => t.cause === "heartbeat-timeout"));
      const t = s.transitions.slice(seen).find((t) => t.cause === "heartbeat-timeout")!;
      over.push(Number(/no heartbeat for (\d+) ms/.exec(t.reason)![1]) - timeoutMs);
    }
  } finally {
    await s.close();
  }
  return over;
}

/** Pings WATCHDOG=1 every 20 ms for 100 ms, then stops pinging (hangs). */
const PERL_HANG = `use IO::Socket::UNIX; use Socket; use Time::HiRes qw(sleep);` +
  ` my $p = $ENV{NOTIFY_SOCKET}; $p =~ s/^@/\\0/;` +
  ` my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Peer => $p) or die "socket: $!";` +
  ` $s->send("READY=1"); for (1..5) { sleep(0.02); $s->send("WATCHDOG=1"); } sleep(100000);`;

/** An idle sd_notify daemon: READY=1, then WATCHDOG=1 every 100 ms, no forks. */
const PERL_IDLE = `use IO::Socket::UNIX; use Socket; use Time::HiRes qw(sleep);` +
  ` my $p = $ENV{NOTIFY_SOCKET}; $p =~ s/^@/\\0/;` +
  ` my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Peer => $p) or die "socket: $!";` +
  ` $s->send("READY=1"); while (1) { sleep(0.1); $s->send("WATCHDOG=1"); }`;

function cpuMs(path: string): number {
  const stat = Deno.readTextFileSync(path);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const tck = 100; // USER_HZ
  return (Number(f[11]) + Number(f[12])) * 1000 / tck;
}

/** CPU of keepwire while supervising 100 idle subsystems at 10 heartbeats/s each. */
async function idleCpu(dir: string, kind: "worker" | "process", n = 100, windowMs = 10_000) {
  const mod = join(dir, "idle_worker_hb.ts");
  await Deno.writeTextFile(mod, `import { ready } from "${SDK}";\nready();\n`);
  const specs = Array.from({ length: n }, (_, i) =>
    kind === "worker"
      ? spec({
        name: `w${i}`,
        kind: "worker",
        module: mod,
        heartbeat: { intervalMs: 100, timeoutMs: 1000 },
      })
      : spec({
        name: `p${i}`,
        kind: "process",
        command: "perl",
        args: ["-e", PERL_IDLE],
        heartbeat: { intervalMs: 100, timeoutMs: 1000 },
      }));
  const s = await supervise(specs, 0);
  try {
    await until(() => s.sup.list().every((i) => i.state === "ready"), 120_000).catch((e) => {
      const states: Record<string, number> = {};
      for (const i of s.sup.list()) states[i.state] = (states[i.state] ?? 0) + 1;
      throw new Error(`${e.message}: ${JSON.stringify(states)} ${s.sup.list()[0].lastFailure}`);
    });
    await sleep(2000);
    const main0 = cpuMs(`/proc/self/task/${Deno.pid}/stat`);
    const all0 = cpuMs("/proc/self/stat");
    const t0 = performance.now();
    await sleep(windowMs);
    const wall = performance.now() - t0;
    const main = (cpuMs(`/proc/self/task/${Deno.pid}/stat`) - main0) / wall * 100;
    const all = (cpuMs("/proc/self/stat") - all0) / wall * 100;
    const restarts = s.sup.list().reduce((a, i) => a + i.restarts, 0);
    return { main, all, restarts };
  } finally {
    await s.close();
  }
}

/** The floor: a bare Deno receive loop on 100 sockets fed the same way (no supervisor). */
async function bareReceiveCpu(n = 100, windowMs = 10_000): Promise<number> {
  const conns: Deno.DatagramConn[] = [];
  const kids: Deno.ChildProcess[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = `kw-bench-floor-${Deno.pid}-${i}`;
      const c = Deno.listenDatagram({ transport: "unixpacket", path: "\0" + srv });
      conns.push(c);
      const buf = new Uint8Array(65536);
      (async () => {
        try {
          for (;;) await c.receive(buf);
        } catch { /* closed */ }
      })();
      kids.push(
        new Deno.Command("perl", {
          args: ["-e", PERL_IDLE],
          env: { NOTIFY_SOCKET: "@" + srv },
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
    }
    await sleep(2000);
    const main0 = cpuMs(`/proc/self/task/${Deno.pid}/stat`);
    const t0 = performance.now();
    await sleep(windowMs);
    return (cpuMs(`/proc/self/task/${Deno.pid}/stat`) - main0) / (performance.now() - t0) * 100;
  } finally {
    for (const k of kids) {
      try {
        k.kill("SIGKILL");
      } catch { /* gone */ }
      await k.status;
    }
    for (const c of conns) c.close();
  }
}

/** Run every measurement and return the table. */
export async function bench(): Promise<BenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "kw-bench-sup-" });
  const rows: BenchRow[] = [];
  const only = Deno.env.get("KW_BENCH_ONLY");
  if (only === "worker-crash") {
    const w = await workerCrash(dir);
    console.log(`p50 ${f(pct(w, 50))} p99 ${f(pct(w, 99))} min ${f(Math.min(...w))}`);
    return rows;
  }
  if (only === "systemd") {
    console.log(await systemdRestart(dir, 10));
    return rows;
  }
  if (only === "hang-process" || only === "hang-hub") {
    console.log(await hang(dir, "process", 15, 200, only === "hang-hub"));
    return rows;
  }
  if (only === "idle-worker" || only === "idle-process") {
    console.log(await idleCpu(dir, only === "idle-worker" ? "worker" : "process"));
    return rows;
  }
  try {
    await Deno.writeTextFile(join(dir, "svc.sh"), PROC_SCRIPT);
    const execLat = await execToReady(dir, 30);
    const execP50 = pct(execLat, 50);
    const cold = await coldWorker(dir, 10);
    const coldP50 = pct(cold, 50);

    const w = await workerCrash(dir);
    const wRef = SYSTEMD_RESTART_SEC_MS + coldP50;
    rows.push({
      name: `worker crash-to-ready p50 (${w.length} crashes)`,
      ours: `${f(pct(w, 50))} ms`,
      baseline: `${f(wRef)} ms (computed: 100 ms + cold Worker start ${f(coldP50)} ms)`,
      ratio: (pct(w, 50) / wRef).toFixed(3),
    });
    rows.push({
      name: `worker crash-to-ready p99`,
      ours: `${f(pct(w, 99))} ms`,
      baseline: `≥ ${f(wRef)} ms`,
      ratio: (pct(w, 99) / wRef).toFixed(3),
      target: "≤ 25 ms",
    });

    const p = await processCrash(dir);
    const pRef = SYSTEMD_RESTART_SEC_MS + execP50;
    rows.push({
      name: `process crash-to-ready p50 (${p.length} kill -9)`,
      ours: `${f(pct(p, 50))} ms`,
      baseline: `${f(pRef)} ms (computed: RestartSec=100ms + exec-to-READY ${f(execP50)} ms)`,
      ratio: (pct(p, 50) / pRef).toFixed(3),
    });
    rows.push({
      name: `process crash-to-ready p99`,
      ours: `${f(pct(p, 99))} ms`,
      baseline: `≥ ${f(SYSTEMD_RESTART_SEC_MS + pct(execLat, 99))} ms`,
      ratio: (pct(p, 99) / (SYSTEMD_RESTART_SEC_MS + pct(execLat, 99))).toFixed(3),
      target: "≤ 100 ms (process start included)",
    });
    const sd = await systemdRestart(dir, 20);
    rows.push({
      name: "process crash-to-ready p50 / p99, real systemd (user manager, 20 kill -9)",
      ours: `${f(pct(p, 50))} / ${f(pct(p, 99))} ms`,
      baseline: sd
        ? `${f(pct(sd, 50))} / ${f(pct(sd, 99))} ms (Type=notify, RestartSec=100ms, measured)`
        : "systemd cannot run here: the computed floor above stands",
      ratio: sd ? (pct(p, 50) / pct(sd, 50)).toFixed(3) : "-",
    });

    const cp = await idleCpu(dir, "process");
    const floor = await bareReceiveCpu();
    rows.push({
      name: "CPU supervising 100 idle process subsystems, 10 WATCHDOG=1/s each (main thread)",
      ours: `${cp.main.toFixed(2)}% of a core (${cp.restarts} restarts)`,
      baseline: `${floor.toFixed(2)}% (bare Deno receive loop, same senders; systemd n/a)`,
      ratio: (cp.main / Math.max(0.01, floor)).toFixed(2),
      target: "≤ 2% of one core",
    });
    const cw = await idleCpu(dir, "worker");
    rows.push({
      name: "CPU supervising 100 idle worker subsystems, 10 heartbeats/s each (main thread)",
      ours: `${cw.main.toFixed(2)}% of a core (whole process incl. the 100 Workers: ${
        cw.all.toFixed(2)
      }%)`,
      baseline: "-",
      ratio: "-",
      target: "≤ 2% of one core",
    });
    const hw = await hang(dir, "worker", 30, 200);
    rows.push({
      name: `worker hang detected after timeout + (p50/p99, ${hw.length} hangs, timeout 200 ms)`,
      ours: `+${f(pct(hw, 50))} / +${f(pct(hw, 99))} ms`,
      baseline: "WatchdogSec: timeout + timer slack",
      ratio: "-",
      target: "≤ timeout + 20 ms",
    });
    const hp = await hang(dir, "process", 15, 200);
    rows.push({
      name: `process hang (WATCHDOG=1 stops) detected after timeout + (p50/p99, ${hp.length})`,
      ours: `+${f(pct(hp, 50))} / +${f(pct(hp, 99))} ms`,
      baseline: "WatchdogSec: timeout + timer slack",
      ratio: "-",
      target: "≤ timeout + 20 ms",
    });
    const ht = await hang(dir, "process", 15, 200, true);
    rows.push({
      name:
        `the same, received on the notify thread (as with ≥ ${NOTIFY_THREAD_MIN_PROCESSES} processes)`,
      ours: `+${f(pct(ht, 50))} / +${f(pct(ht, 99))} ms`,
      baseline: "WatchdogSec: timeout + timer slack",
      ratio: "-",
      target: "≤ timeout + 20 ms",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return rows;
}

if (import.meta.main) {
  const rows = await bench();
  const cols = ["name", "ours", "baseline", "ratio", "target"] as const;
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join(" | ");
  console.log(line([...cols]));
  console.log(w.map((n) => "-".repeat(n)).join("-|-"));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c] ?? ""))));
  // Deno 2.9: the hung Workers of the hang measurement keep spinning after terminate()
  // (denoland/deno#35657), so end the process explicitly.
  Deno.exit(0);
}
