/**
 * Parts of the supervisor: sd_notify parsing and sockets, probes (thresholds on
 * fake time; real HTTP, TCP and exec checks), self-monitoring (gated petting,
 * systemd notifications), the spec schema and its error messages, output limits.
 */
import { ConfigError, DEFAULT_CONFIG, validateConfig } from "../mod/config/mod.ts";
import { NotifyClient, NotifyServer, parseNotify, socketPath } from "../mod/supervisor/notify.ts";
import { type CheckFn, ProbeRunner, runCheck } from "../mod/supervisor/probe.ts";
import { HARDWARE_WATCHDOG_PETTER, SelfMonitor } from "../mod/supervisor/selfmon.ts";
import { LineLimiter, lookupUser } from "../mod/supervisor/process.ts";
import { subsystemSpecSchema } from "../mod/supervisor/config.ts";
import type { RunnerEvents } from "../mod/supervisor/runner.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  fakeClock,
  type RecordedEvent,
  spec,
  supConfig,
} from "./supervisor_fakes.ts";

// ---- sd_notify --------------------------------------------------------------------

Deno.test("parseNotify understands the keys keepwire acts on and ignores the rest", () => {
  const m = parseNotify(
    "READY=1\nSTATUS=serving 3\nWATCHDOG=1\nMAINPID=42\nERRNO=5\nEXTEND_TIMEOUT_USEC=2000000\n" +
      "WATCHDOG_USEC=900000\nSTOPPING=1\nBARRIER=1\nX_FOO=bar\nX_QUEUE_DEPTH=7\nX_QUEUE_OLDEST_MS=120\n",
  );
  assertEquals(m, {
    ready: true,
    status: "serving 3",
    watchdog: true,
    mainPid: 42,
    errno: 5,
    extendTimeoutUsec: 2_000_000,
    watchdogUsec: 900_000,
    stopping: true,
    queueDepth: 7,
    queueOldestMs: 120,
    problems: [],
  });
  assertEquals(parseNotify("WATCHDOG=trigger").trigger, true);
  const bad = parseNotify("garbage\nMAINPID=abc\nWATCHDOG=2");
  assertEquals(bad.problems.length, 3);
  assertEquals(bad.mainPid, undefined);
  assertEquals(parseNotify("READY=0").ready, undefined);
});

Deno.test("socketPath maps @abstract and /path; rejects vsock", () => {
  assertEquals(socketPath("@foo"), "\0foo");
  assertEquals(socketPath("/run/x.sock"), "/run/x.sock");
  let threw = false;
  try {
    socketPath("vsock:2:1234");
  } catch {
    threw = true;
  }
  assert(threw);
});

Deno.test("NotifyServer receives what NotifyClient sends over an abstract socket", async () => {
  const server = NotifyServer.open("t");
  const got: string[] = [];
  const served = server.serve((m, raw) => got.push(`${raw}|${m.ready ?? false}`));
  const client = new NotifyClient(server.address);
  assert(await client.send("READY=1\nSTATUS=hi"));
  for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  client.close();
  server.close();
  await served;
  assertEquals(got, ["READY=1\nSTATUS=hi|true"]);
});

// ---- probes -------------------------------------------------------------------------

function recorder(): { ev: RunnerEvents; log: string[] } {
  const log: string[] = [];
  const ev: RunnerEvents = {
    ready: () => log.push("ready"),
    heartbeat: () => {},
    status: () => {},
    queue: () => {},
    exited: (i) => log.push(`exited:${i.text}`),
    unhealthy: (t) => log.push(`unhealthy:${t}`),
    recovered: () => log.push("recovered"),
    trigger: () => {},
    extendTimeout: () => {},
    heartbeatTimeout: () => {},
    stopping: () => {},
    pid: () => {},
    errno: () => {},
  };
  return { ev, log };
}

Deno.test("probe: failure and recovery thresholds on fake time", async () => {
  const { fc, clock } = fakeClock();
  const results: (string | null)[] = [null, "refused", null, null, "refused", "refused", "refused"];
  const check: CheckFn = () => Promise.resolve(results.shift() ?? null);
  const s = spec({
    name: "p",
    kind: "probe",
    module: undefined,
    probe: {
      check: { type: "tcp", host: "127.0.0.1", port: 9 },
      intervalMs: 1000,
      failureThreshold: 3,
      recoveryThreshold: 2,
    },
  });
  const { ev, log } = recorder();
  const r = new ProbeRunner(s, ev, {
    clock,
    publish: () => {},
    config: supConfig(),
    restart: false,
  }, check);
  await r.start();
  await fc.tickAsync(0);
  assertEquals(log, ["ready"]);
  await fc.tickAsync(1000);
  assertEquals(log.at(-1), "unhealthy:probe failed (1/3): refused");
  await fc.tickAsync(1000);
  assertEquals(log.length, 2, "one success is not a recovery");
  await fc.tickAsync(1000);
  assertEquals(log.at(-1), "recovered");
  await fc.tickAsync(3000);
  assertEquals(log.at(-1), "exited:3 consecutive probe failures: refused");
  await fc.tickAsync(5000);
  assertEquals(log.length, 5, "no checks after the run ended");
});

Deno.test("probe: real HTTP (status, body), TCP connect and exec checks", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/ok"
        ? new Response("all good v2")
        : new Response("nope", { status: 503 }),
  );
  const port = server.addr.port;
  try {
    const base = `http://127.0.0.1:${port}`;
    assertEquals(await runCheck({ type: "http", url: `${base}/ok`, method: "GET" }, 2000), null);
    assertEquals(
      await runCheck({ type: "http", url: `${base}/ok`, method: "GET", bodyRegex: "v\\d" }, 2000),
      null,
    );
    assertMatch(
      (await runCheck(
        { type: "http", url: `${base}/ok`, method: "GET", bodyContains: "v3" },
        2000,
      ))!,
      /does not contain "v3"/,
    );
    assertMatch(
      (await runCheck({ type: "http", url: `${base}/down`, method: "GET" }, 2000))!,
      /HTTP 503/,
    );
    assertEquals(
      await runCheck(
        { type: "http", url: `${base}/down`, method: "GET", expectStatus: [503] },
        2000,
      ),
      null,
    );
    assertEquals(await runCheck({ type: "tcp", host: "127.0.0.1", port }, 2000), null);
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (l.addr as Deno.NetAddr).port;
    l.close();
    assert((await runCheck({ type: "tcp", host: "127.0.0.1", port: closedPort }, 2000)) !== null);
    assertEquals(
      await runCheck({ type: "exec", command: "true", args: [], expectExit: 0 }, 2000),
      null,
    );
    assertMatch(
      (await runCheck({ type: "exec", command: "false", args: [], expectExit: 0 }, 2000))!,
      /exited 1, expected 0/,
    );
    assertMatch(
      (await runCheck({ type: "exec", command: "sleep", args: ["5"], expectExit: 0 }, 200))!,
      /timed out|abort/i,
    );
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("probe: a restart runs the configured restart command first", async () => {
  const { clock } = fakeClock();
  const events: string[] = [];
  const s = spec({
    name: "p",
    kind: "probe",
    module: undefined,
    probe: {
      check: { type: "tcp", host: "127.0.0.1", port: 9 },
      restartCommand: { command: "sh", args: ["-c", "exit 4"] },
    },
  });
  const { ev } = recorder();
  const r = new ProbeRunner(s, ev, {
    clock,
    publish: (e) => events.push(`${e.kind}:${(e.payload as { exitCode: number }).exitCode}`),
    config: supConfig(),
    restart: true,
  }, () => Promise.resolve(null));
  let err = "";
  await r.start().catch((e) => err = e.message);
  assertMatch(err, /restart command sh exited 4/);
  assertEquals(events, ["supervisor.probe_restart_command:4"]);
});

// ---- self-monitoring --------------------------------------------------------------

function selfmon(cfg: Record<string, unknown>, failed: string[] = [], env = {}) {
  const { fc, clock } = fakeClock();
  const pets: string[] = [];
  const sent: string[] = [];
  const events: RecordedEvent[] = [];
  const mk = (name: string) => ({ name, pet: () => void pets.push(name) });
  const sm = new SelfMonitor({
    config: supConfig(cfg),
    clock,
    monotonic: () => fc.now,
    petters: [mk(HARDWARE_WATCHDOG_PETTER), mk("bypass-watchdogs")],
    publish: (e) =>
      void events.push({
        kind: e.kind,
        severity: e.severity ?? "info",
        payload: (e.payload ?? {}) as Record<string, unknown>,
      }),
    essentialFailed: () => failed,
    env,
    notifier: Object.keys(env).length
      ? { send: (t) => (sent.push(t), Promise.resolve(true)), close: () => {} }
      : undefined,
  });
  return { fc, sm, pets, sent, events, failed };
}

Deno.test("selfmon: pets every interval while healthy; hardware only when keepwire owns it", async () => {
  const a = selfmon({ petIntervalMs: 500, watchdogOwner: "keepwire" });
  a.sm.start();
  await a.fc.tickAsync(1000);
  assertEquals(a.pets.filter((p) => p === HARDWARE_WATCHDOG_PETTER).length, 3);
  assertEquals(a.pets.filter((p) => p === "bypass-watchdogs").length, 3);
  await a.sm.stop();
  const b = selfmon({ petIntervalMs: 500, watchdogOwner: "systemd" });
  b.sm.start();
  await b.fc.tickAsync(1000);
  assertEquals(b.pets, ["bypass-watchdogs", "bypass-watchdogs", "bypass-watchdogs"]);
  await b.sm.stop();
});

Deno.test("selfmon: stops petting while an essential subsystem is failed, resumes after", async () => {
  const a = selfmon({ petIntervalMs: 500 });
  a.sm.start();
  await a.fc.tickAsync(500);
  const before = a.pets.length;
  a.failed.push("fw");
  await a.fc.tickAsync(2000);
  assertEquals(a.pets.length, before);
  const stopped = a.events.find((e) => e.kind === "supervisor.petting_stopped")!;
  assertEquals(stopped.severity, "critical");
  assertEquals(stopped.payload.reasons, ["essential subsystem failed: fw"]);
  a.failed.length = 0;
  await a.fc.tickAsync(500);
  assert(a.pets.length > before);
  assert(a.events.some((e) => e.kind === "supervisor.petting_resumed"));
  await a.sm.stop();
});

Deno.test("selfmon: a late pet tick (event loop blocked) does not pet", async () => {
  const a = selfmon({ petIntervalMs: 500, maxLoopLagMs: 100, lagProbeIntervalMs: 100 });
  a.sm.start();
  await a.fc.tickAsync(500);
  const before = a.pets.length;
  // simulate a blocked loop: time jumps 2 s with no timer running in between
  a.fc.setSystemTime(a.fc.now + 2000);
  a.fc.tick(0);
  await a.fc.tickAsync(0);
  // the timers after the block see it as drift: the next pet tick does not pet
  await a.fc.tickAsync(500);
  assertEquals(a.pets.length, before, "no pet right after the block");
  assert(a.events.some((e) => e.kind === "supervisor.petting_stopped"));
  await a.fc.tickAsync(1000);
  assert(a.pets.length > before, "pets again once the loop is responsive");
  await a.sm.stop();
});

Deno.test("selfmon: evaluate() names each reason", () => {
  const a = selfmon({ maxLoopLagMs: 50 }, ["fw"]);
  const h = a.sm.evaluate(80);
  assertEquals(h.ok, false);
  assertEquals(h.reasons, ["event-loop lag 80 ms > 50 ms", "essential subsystem failed: fw"]);
  assertEquals(selfmon({ stopPettingOnEssentialFailure: false }, ["fw"]).sm.evaluate(0).ok, true);
});

Deno.test("selfmon under systemd: READY=1 once, WATCHDOG=1 at WATCHDOG_USEC/3 while healthy, STOPPING=1", async () => {
  const a = selfmon({}, [], {
    NOTIFY_SOCKET: "@x",
    WATCHDOG_USEC: "3000000",
    WATCHDOG_PID: String(Deno.pid),
  });
  assert(a.sm.underSystemd);
  a.sm.start();
  await a.sm.ready();
  await a.sm.ready();
  await a.fc.tickAsync(3000);
  assertEquals(a.sent.filter((s) => s.startsWith("READY=1")).length, 1);
  assertEquals(a.sent.filter((s) => s === "WATCHDOG=1").length, 3);
  a.failed.push("fw");
  await a.fc.tickAsync(3000);
  assertEquals(a.sent.filter((s) => s === "WATCHDOG=1").length, 3, "gated like the petting");
  await a.sm.stop();
  assertMatch(a.sent.at(-1)!, /^STOPPING=1/);
  // WATCHDOG_PID of another process: no watchdog pings
  const b = selfmon({}, [], { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "3000000", WATCHDOG_PID: "1" });
  b.sm.start();
  await b.fc.tickAsync(5000);
  assertEquals(b.sent.filter((s) => s === "WATCHDOG=1").length, 0);
  await b.sm.stop();
});

Deno.test("selfmon under systemd: a slow loop stops the pets but not WATCHDOG=1; a stall withholds it", async () => {
  // WatchdogSec=3 s: WATCHDOG=1 every 1 s, withheld above 1.5 s of lag (half of WatchdogSec)
  const env = { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "3000000", WATCHDOG_PID: String(Deno.pid) };
  const a = selfmon({ petIntervalMs: 500, maxLoopLagMs: 200, lagProbeIntervalMs: 100 }, [], env);
  a.sm.start();
  await a.fc.tickAsync(1000);
  const wd = () => a.sent.filter((s) => s === "WATCHDOG=1").length;
  const block = async (ms: number) => {
    a.fc.setSystemTime(a.fc.now + ms);
    a.fc.tick(0);
    await a.fc.tickAsync(0);
  };
  // the loop lags 600 ms in every pet interval: slow, not stalled
  const pets0 = a.pets.length, wd0 = wd();
  for (let i = 0; i < 10; i++) {
    await block(600);
    await a.fc.tickAsync(500);
  }
  assertEquals(a.pets.length, pets0, "no bypass or hardware pet while the loop lags > 200 ms");
  assert(wd() >= wd0 + 3, `systemd still gets WATCHDOG=1 (${wd() - wd0} sent)`);
  assertEquals(a.sm.status().systemd?.maxLagMs, 1500);
  // stalls of 2 s: WATCHDOG=1 withheld
  const wd1 = wd();
  for (let i = 0; i < 3; i++) {
    await block(2000);
    await a.fc.tickAsync(1000);
  }
  assertEquals(wd(), wd1, "no WATCHDOG=1 after a 2 s stall");
  await a.sm.stop();
  // an explicit bound, never below maxLoopLagMs
  const b = selfmon({ maxLoopLagMs: 1000, serviceWatchdogLagMs: 300 }, [], env);
  assertEquals(b.sm.status().systemd?.maxLagMs, 1000);
  const c = selfmon({ serviceWatchdogLagMs: 2500 }, [], env);
  assertEquals(c.sm.status().systemd?.maxLagMs, 2500);
});

Deno.test("selfmon: too many leaked worker threads withhold systemd's WATCHDOG=1 only", async () => {
  const { fc, clock } = fakeClock();
  const sent: string[] = [];
  const pets: string[] = [];
  const events: string[] = [];
  let leaked = 0;
  const sm = new SelfMonitor({
    config: supConfig({ maxLeakedWorkerThreads: 1, petIntervalMs: 500 }),
    clock,
    monotonic: () => fc.now,
    petters: [{ name: "bypass-watchdogs", pet: () => void pets.push("p") }],
    publish: (e) => void events.push(e.kind),
    essentialFailed: () => [],
    leakedThreads: () => leaked,
    env: { NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "3000000" },
    notifier: { send: (t) => (sent.push(t), Promise.resolve(true)), close: () => {} },
  });
  sm.start();
  leaked = 2;
  await fc.tickAsync(3000);
  assertEquals(sent.filter((s) => s === "WATCHDOG=1").length, 0);
  assert(pets.length >= 6, "bypass and hardware watchdogs are still petted");
  assertEquals(events.filter((k) => k === "supervisor.systemd_watchdog_withheld").length, 1);
  leaked = 1;
  await fc.tickAsync(1000);
  assertEquals(sent.filter((s) => s === "WATCHDOG=1").length, 1);
  await sm.stop();
});

Deno.test("selfmon: a real NOTIFY_SOCKET gets READY=1 from keepwire", async () => {
  const server = NotifyServer.open("systemd-standin");
  const got: string[] = [];
  const served = server.serve((_m, raw) => got.push(raw));
  const { clock } = fakeClock();
  const sm = new SelfMonitor({
    config: supConfig(),
    clock,
    petters: [],
    publish: () => {},
    essentialFailed: () => [],
    env: { NOTIFY_SOCKET: server.address },
  });
  await sm.ready();
  for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  await sm.stop();
  for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  server.close();
  await served;
  assertMatch(got[0], new RegExp(`^READY=1\nSTATUS=keepwire running\nMAINPID=${Deno.pid}$`));
  assertMatch(got[1], /^STOPPING=1/);
});

// ---- spec schema and config errors ----------------------------------------------

Deno.test("spec defaults depend on the kind; escalation defaults by criticality", () => {
  const w = subsystemSpecSchema.parse({ name: "w", kind: "worker", module: "w.ts" });
  assertEquals(w.heartbeat, { intervalMs: 1000, timeoutMs: 3000 });
  assertEquals(w.escalation, { action: "mark-failed", segments: "all" });
  const p = subsystemSpecSchema.parse({
    name: "p",
    kind: "process",
    command: "x",
    criticality: "essential",
  });
  assertEquals(p.heartbeat, null);
  assertEquals(p.readyOn, "notify");
  assertEquals(p.escalation, { action: "bypass-hold", segments: "all" });
  assertEquals(p.restart, "always");
  assertEquals(p.intensity, { maxRestarts: 5, periodSec: 60 });
});

function configError(subsystems: unknown[]): string[] {
  try {
    validateConfig({ subsystems });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

Deno.test("a spec error names the subsystem and the field", () => {
  assertEquals(
    configError([
      { name: "a", kind: "worker", module: "a.ts" },
      {
        name: "foo",
        kind: "worker",
        module: "f.ts",
        heartbeat: { intervalMs: 1000, timeoutMs: 500 },
      },
    ]),
    ['subsystems[1] (name "foo").heartbeat.timeoutMs: must be greater than heartbeat.intervalMs'],
  );
  assertEquals(configError([{ name: "p", kind: "process" }]), [
    'subsystems[0] (name "p").command: required for kind process',
  ]);
  assertEquals(configError([{ name: "w", kind: "worker", module: "w.ts", command: "x" }]), [
    'subsystems[0] (name "w").command: only for kind process, not worker',
  ]);
  assertEquals(configError([{ name: "w", kind: "worker", module: "w.ts", restart: "sometimes" }]), [
    'subsystems[0] (name "w").restart: Invalid option: expected one of "always"|"on-failure"|"never"',
  ]);
  assertEquals(
    configError([
      { name: "a", kind: "worker", module: "a.ts", requires: ["ghost"] },
      { name: "a", kind: "worker", module: "b.ts" },
    ]),
    [
      'subsystems[1] (name "a").name: duplicate of subsystems[0]',
      'subsystems[0] (name "a").requires[0]: unknown subsystem "ghost"',
    ],
  );
  const cyc = configError([
    { name: "a", kind: "worker", module: "a.ts", requires: ["b"] },
    { name: "b", kind: "worker", module: "b.ts", after: ["a"] },
  ]);
  assertEquals(cyc, ['subsystems[1] (name "b").after: dependency cycle a -> b -> a']);
  assertEquals(
    configError([{
      name: "pr",
      kind: "probe",
      probe: { check: { type: "http", url: "http://x/", bodyRegex: "(" } },
    }]),
    ['subsystems[0] (name "pr").probe.check.bodyRegex: not a valid regular expression'],
  );
});

Deno.test("the embedded default config runs the two examples", () => {
  const c = validateConfig(structuredClone(DEFAULT_CONFIG));
  assertEquals(c.subsystems.map((s) => `${s.name}:${s.kind}:${s.criticality}`), [
    "example-worker:worker:optional",
    "example-notify:process:optional",
  ]);
});

// ---- output limiting and users --------------------------------------------------

Deno.test("LineLimiter: burst, then the sustained rate; dropped lines are counted", () => {
  let now = 0;
  const l = new LineLimiter(10, 3, () => now);
  assertEquals([l.take(), l.take(), l.take(), l.take(), l.take()], [0, 0, 0, -1, -1]);
  now += 100; // one token back
  assertEquals(l.take(), 2, "reports the two dropped lines");
  assertEquals(l.take(), -1);
});

Deno.test("lookupUser reads passwd; unknown users are an error", () => {
  const passwd = "root:x:0:0:root:/root:/bin/sh\nkw:x:1001:1002::/home/kw:/bin/sh\n";
  assertEquals(lookupUser("kw", passwd), { uid: 1001, gid: 1002 });
  assertEquals(lookupUser("1001", passwd), { uid: 1001, gid: 1002 });
  assertEquals(lookupUser("4242", passwd), { uid: 4242, gid: 4242 });
  let msg = "";
  try {
    lookupUser("ghost", passwd);
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(msg, 'unknown user "ghost"');
});
