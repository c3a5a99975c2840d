/**
 * Active-active (ha.activeActive) without a lab: the config rules name each bad field,
 * keepalived.conf gets a second instance with the mirrored priority and per-set release
 * files (accepted by the real `keepalived -t` in a namespace when root), and the module
 * follows the second set's FIFO lines and hands one set over (`failover --set`) through
 * its release file on fake time.
 */
import { ConfigError, validateConfig } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule } from "../mod/ha/mod.ts";
import type { Engine, EngineEvents } from "../mod/ha/engine.ts";
import { checkKeepalivedConf } from "../mod/ha/engine.ts";
import { HaNotActiveError } from "../mod/ha/errors.ts";
import { ALIVE_SCRIPT, keepalivedPaths, renderKeepalivedConf } from "../mod/ha/keepalived.ts";
import type { TrackValues } from "../mod/ha/track.ts";
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { fakeClock } from "./supervisor_fakes.ts";
import { missingTools } from "./helpers/tools.ts";

const AA = { virtualRouterId: 52, virtualAddresses: ["10.231.0.51/24"] };

function cfg(ha: Record<string, unknown> = {}) {
  const prev = setInterfaceCheck(() => true);
  try {
    return validateConfig({
      dataDir: "/nonexistent",
      ha: {
        enabled: true,
        node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
        interface: "kt0",
        virtualAddresses: ["10.231.0.50/24"],
        peers: [{ address: "10.231.0.12", id: "n2", priority: 100 }],
        advertMs: 100,
        failoverHoldMs: 2000,
        activeActive: AA,
        ...ha,
      },
    });
  } finally {
    setInterfaceCheck(prev);
  }
}

function problems(ha: Record<string, unknown>): string[] {
  try {
    cfg(ha);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}

Deno.test("active-active config: each bad field is named", () => {
  assertEquals(problems({}), []);
  const cases: [Record<string, unknown>, string][] = [
    [
      { activeActive: { ...AA, virtualRouterId: 51 } },
      "ha.activeActive.virtualRouterId: equal to ha.virtualRouterId (51)",
    ],
    [
      { activeActive: { ...AA, virtualAddresses: ["10.231.0.50/24"] } },
      "ha.activeActive.virtualAddresses[0]: 10.231.0.50 is in ha.virtualAddresses too",
    ],
    [
      { activeActive: { ...AA, virtualAddresses: ["10.9.0.51/24"] } },
      "ha.activeActive.virtualAddresses[0]: 10.9.0.51 is outside 10.231.0.0/24 (the prefix of ha.node.address)",
    ],
    [
      { peers: [{ address: "10.231.0.12" }] },
      "ha.peers[0].priority: required with ha.activeActive (the mirrored priority)",
    ],
    [{ preempt: true }, "ha.preempt: use ha.activeActive.failback with active-active"],
    [
      { activeActive: { ...AA, failbackDelayMs: 2000 } },
      'ha.activeActive.failbackDelayMs: only applies with failback "auto"',
    ],
  ];
  for (const [ha, line] of cases) {
    const got = problems(ha);
    assert(got.includes(line), `expected ${JSON.stringify(line)} in ${JSON.stringify(got)}`);
  }
});

Deno.test("active-active keepalived.conf: a second instance with the mirrored priority, per-set release files", () => {
  const paths = keepalivedPaths("/var/lib/keepwire");
  const conf = renderKeepalivedConf(cfg().ha, paths);
  const b = conf.slice(conf.indexOf("vrrp_instance keepwire_b {"));
  for (
    const l of [
      "  virtual_router_id 52",
      "  priority 100", // the peer's priority: mirrored
      "  nopreempt", // failback manual
      "    10.231.0.51/24 dev kt0",
      "    kw_release_b",
    ]
  ) assert(b.split("\n").includes(l), `missing ${JSON.stringify(l)} in\n${b}`);
  const a = conf.slice(
    conf.indexOf("vrrp_instance keepwire {"),
    conf.indexOf("vrrp_instance keepwire_b"),
  );
  assert(
    a.includes("  priority 150\n") && a.includes("    kw_release_a\n") &&
      !a.includes("kw_release_b"),
    a,
  );
  assert(
    conf.includes('track_file kw_release_b {\n  file "/var/lib/keepwire/ha/release_b.track"'),
    conf,
  );
  const auto = renderKeepalivedConf(
    cfg({ activeActive: { ...AA, failback: "auto", failbackDelayMs: 3000 } }).ha,
    paths,
  );
  assert(!auto.includes("nopreempt") && auto.split("preempt_delay 3").length === 3, auto);
  // with replication keepwire fails back once the set's channel caught up: keepalived
  // never preempts (the config accepts the combination: it is built)
  const repl = cfg({
    activeActive: { ...AA, failback: "auto", failbackDelayMs: 3000 },
    peerLink: { secret: "0123456789abcdef" },
    replication: {},
  }).ha;
  const gated = renderKeepalivedConf(repl, paths);
  assert(gated.split("  nopreempt\n").length === 3 && !gated.includes("preempt_delay"), gated);
});

Deno.test({
  name: "active-active keepalived.conf passes keepalived -t (in a netns)",
  ignore: missingTools(["ip", "keepalived"], { root: true }) !== undefined,
  fn: async () => {
    const ns = `kwhaa_${crypto.randomUUID().slice(0, 6)}`;
    const dir = await Deno.makeTempDir({ prefix: "kw-ha-aa-" });
    const sh = async (...args: string[]) => {
      const o = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
      if (!o.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
    };
    try {
      await sh("ip", "netns", "add", ns);
      await sh("ip", "-n", ns, "link", "add", "kt0", "type", "veth", "peer", "name", "kt1");
      const p = keepalivedPaths(dir);
      await Deno.mkdir(p.dir);
      await Deno.writeTextFile(p.aliveScript, ALIVE_SCRIPT, { mode: 0o755 });
      for (const failback of ["manual", "auto"]) {
        await Deno.writeTextFile(
          p.config,
          renderKeepalivedConf(cfg({ activeActive: { ...AA, failback } }).ha, p),
        );
        await checkKeepalivedConf("keepalived", p.config, ["ip", "netns", "exec", ns]);
      }
    } finally {
      await new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("active-active module: the second set's state in the status; failover --set releases only that set, for failoverHoldMs", async () => {
  const { fc, clock } = fakeClock();
  const store = new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  let ev!: EngineEvents;
  const writes: TrackValues[] = [];
  const engine: Engine = {
    config: "fake",
    pid: 1,
    start: () => Promise.resolve({ pid: 1 }),
    stop: () => Promise.resolve(),
    writeTrack: (v) => writes.push(v),
  };
  const mod = createHaModule({ config: cfg(), store, bus, clock }, {
    engine: (_h, _d, e) => {
      ev = e;
      return engine;
    },
  });
  await mod.start();
  try {
    ev.onLine('INSTANCE "keepwire" MASTER 150');
    ev.onLine('INSTANCE "keepwire_b" MASTER 100');
    assertEquals(mod.status().activeActive?.state, "MASTER");
    assertEquals(mod.status().activeActive?.priority, 100);
    assertEquals(mod.status().role, "active", "the role follows set a");
    assertEquals(mod.status().engine.refusedLines, 0);
    mod.failover("test", "b");
    assertEquals(writes.at(-1)!.release, { a: 0, b: 1 });
    assertEquals(writes.at(-1)!.fault, 0, "set a stays");
    assertEquals(mod.status().track!.released, ["b"]);
    ev.onLine('INSTANCE "keepwire_b" FAULT 0');
    assertThrows(() => mod.failover("test", "b"), HaNotActiveError);
    await fc.tickAsync(2000);
    assertEquals(writes.at(-1)!.release, { a: 0, b: 0 });
    assertEquals(mod.status().track!.released, []);
  } finally {
    await mod.stop();
  }
});
