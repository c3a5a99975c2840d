/**
 * The notify hook (mod/ha/hook.ts): the real spawn with the role, the old role and the
 * cause in the environment, bounded run time (SIGKILL), failures named; the runner runs
 * one at a time keeping only the latest pending transition; the module runs it on role
 * changes and journals failures (ha.hook_failed); the config checks the command and
 * lets a layer-3 pair have no virtual address (keepalived then holds a link-local marker).
 */
import { ConfigError, validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import { HookRunner, type HookSpawn, type HookTransition, spawnHook } from "../mod/ha/hook.ts";
import { keepalivedPaths, renderKeepalivedConf } from "../mod/ha/keepalived.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";

Deno.test("hook spawn: the environment reaches the command; exit codes, a timeout and a missing binary are failures", async () => {
  const ok = await spawnHook(
    ["/bin/sh", "-c", 'echo "$KW_HA_ROLE from $KW_HA_OLD_ROLE by $KW_HA_CAUSE"'],
    { KW_HA_ROLE: "active", KW_HA_OLD_ROLE: "standby", KW_HA_CAUSE: "engine" },
    5000,
  );
  assertEquals(ok.ok, true);
  assertEquals(ok.error, null);
  assertEquals(ok.output.trim(), "active from standby by engine");
  const bad = await spawnHook(["/bin/sh", "-c", "echo nope >&2; exit 3"], {}, 5000);
  assertEquals(bad.ok, false);
  assertEquals(bad.code, 3);
  assertEquals(bad.error, "exited with code 3");
  assertEquals(bad.output.trim(), "nope");
  const slow = await spawnHook(["/bin/sh", "-c", "exec sleep 30"], {}, 200);
  assertEquals(slow.ok, false);
  assertEquals(slow.timedOut, true);
  assert(slow.ms < 10_000, `killed after ${slow.ms} ms`);
  assertEquals(slow.error, "killed after 200 ms (ha.hook.timeoutMs)");
  const missing = await spawnHook(["/nonexistent/hook"], {}, 1000);
  assertEquals(missing.ok, false);
  assert(missing.error!.startsWith("cannot run /nonexistent/hook"), missing.error!);
});

Deno.test("hook runner: one run at a time, only the latest pending transition, init and stopped skipped", async () => {
  const ran: string[] = [];
  let release!: () => void;
  const spawn: HookSpawn = async (_argv, env) => {
    ran.push(`${env.KW_HA_OLD_ROLE}->${env.KW_HA_ROLE}`);
    if (ran.length === 1) await new Promise<void>((r) => release = r);
    return { ok: true, code: 0, timedOut: false, ms: 1, output: "", error: null };
  };
  const results: HookTransition[] = [];
  const h = new HookRunner({
    command: ["/bin/true"],
    timeoutMs: 1000,
    env: {},
    spawn,
    now: () => 0,
    onResult: (t) => results.push(t),
  });
  const t = (from: string, role: string) => ({ from, role, cause: "engine", reason: "x" });
  h.transition(t("stopped", "init"));
  h.transition(t("init", "standby"));
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(h.view.running, "standby");
  h.transition(t("standby", "active"));
  h.transition(t("active", "fault"));
  h.transition(t("fault", "standby"));
  release();
  await h.idle();
  assertEquals(ran, ["init->standby", "fault->standby"]);
  assertEquals(h.view.runs, 2);
  assertEquals(h.view.failures, 0);
  assertEquals(results.length, 2);
});

function config(ha: Record<string, unknown>) {
  const prev = setInterfaceCheck(() => true);
  try {
    return validateConfig({
      dataDir: "/nonexistent",
      ha: {
        enabled: true,
        node: { id: "n1", priority: 150, address: "10.231.1.11/24" },
        interface: "kwtest0",
        unicast: true,
        peers: [{ address: "10.231.2.12", id: "n2", priority: 100 }],
        ...ha,
      },
    });
  } finally {
    setInterfaceCheck(prev);
  }
}

function problems(ha: Record<string, unknown>): string[] {
  try {
    config(ha);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}

Deno.test("hook config: a layer-3 pair needs no virtual address with a hook; the command must be an absolute path that exists", () => {
  assertEquals(problems({ hook: { command: ["/bin/sh", "-c", "true"] } }), []);
  assert(
    problems({}).includes(
      "ha.virtualAddresses: at least one virtual address is needed (or ha.hook, to move the service another way)",
    ),
  );
  assert(
    problems({ hook: { command: ["sh"] } }).includes(
      'ha.hook.command[0]: "sh" is not an absolute path',
    ),
  );
  assert(
    problems({ hook: { command: ["/nonexistent/move-route"] } }).includes(
      "ha.hook.command[0]: /nonexistent/move-route does not exist on this machine",
    ),
  );
  assertEquals(config({ hook: { command: ["/bin/sh"] } }).ha.hook!.timeoutMs, 5000);
  // keepalived 2.2.7 wants an address on every VRRPv3 instance: the link-local marker
  const conf = renderKeepalivedConf(
    config({ hook: { command: ["/bin/sh"] } }).ha,
    keepalivedPaths("/var/lib/keepwire"),
  );
  assert(conf.includes("    169.254.254.51/32 dev kwtest0\n"), conf);
  assert(conf.includes("  unicast_peer {\n    10.231.2.12\n  }\n"), conf);
});

Deno.test("hook in the module: runs on role changes with the role in its environment; a failure is journalled", async () => {
  const cfg = config({ hook: { command: ["/bin/sh", "-c", "true"], timeoutMs: 300 } });
  const { clock } = fakeClock();
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e), { kindPrefix: "ha.hook" });
  const seen: Record<string, string>[] = [];
  let fail = false;
  let ev!: EngineEvents;
  const engine: Engine = {
    config: "fake",
    pid: 1,
    start: () => Promise.resolve({ pid: 1 }),
    stop: () => Promise.resolve(),
    writeTrack: () => {},
  };
  const mod = createHaModule({ config: cfg, store, bus, clock }, {
    engine: (_h, _d, e) => {
      ev = e;
      return engine;
    },
    hookSpawn: (argv, env) => {
      seen.push({ ...env, argv: argv.join(" ") });
      return Promise.resolve(
        fail
          ? {
            ok: false,
            code: 2,
            timedOut: false,
            ms: 3,
            output: "no route",
            error: "exited with code 2",
          }
          : { ok: true, code: 0, timedOut: false, ms: 3, output: "", error: null },
      );
    },
  });
  await mod.start();
  try {
    ev.onLine('INSTANCE "keepwire" MASTER 150');
    await new Promise((r) => setTimeout(r, 10));
    const last = seen.at(-1)!;
    assertEquals(last.KW_HA_ROLE, "active");
    assertEquals(last.KW_HA_OLD_ROLE, "init");
    assertEquals(last.KW_HA_CAUSE, "engine");
    assertEquals(last.KW_HA_NODE, "n1");
    assertEquals(last.KW_HA_PEER, "n2");
    assertEquals(last.KW_HA_VIRTUAL_ADDRESSES, "");
    assertEquals(last.argv, "/bin/sh -c true");
    assertEquals(events.at(-1)!.kind, "ha.hook_ran");
    fail = true;
    ev.onLine('INSTANCE "keepwire" FAULT 0');
    await new Promise((r) => setTimeout(r, 10));
    const f = events.at(-1)!;
    assertEquals(f.kind, "ha.hook_failed");
    assertEquals(f.severity, "error");
    assertEquals(f.payload.role, "fault");
    assertEquals(f.payload.error, "exited with code 2");
    assertEquals(f.payload.output, "no route");
    assertEquals(mod.status().hook!.failures, 1);
    assertEquals(mod.status().hook!.last!.role, "fault");
  } finally {
    await mod.stop();
  }
});
