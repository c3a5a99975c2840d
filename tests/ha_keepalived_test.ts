/**
 * keepalived.conf rendered from the `ha` section, checked by the real
 * `keepalived -t` inside a throw-away network namespace (root and keepalived
 * needed), and the notify FIFO line parser.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import {
  keepalivedCommand,
  keepalivedPaths,
  parseFifoLine,
  renderKeepalivedConf,
} from "../mod/ha/keepalived.ts";
import { checkKeepalivedConf } from "../mod/ha/engine.ts";
import { HaEngineError } from "../mod/ha/errors.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { missingTools } from "./helpers/tools.ts";

const missing = missingTools(["ip", "keepalived"], { root: true });

function ha(extra: Record<string, unknown> = {}) {
  const prev = setInterfaceCheck(() => true);
  try {
    return validateConfig({
      ha: {
        enabled: true,
        node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
        interface: "kt0",
        virtualAddresses: ["10.231.0.50/24"],
        peers: [{ address: "10.231.0.12" }],
        ...extra,
      },
    }).ha;
  } finally {
    setInterfaceCheck(prev);
  }
}

const paths = keepalivedPaths("/var/lib/keepwire/");

Deno.test("keepalived.conf: VRRPv3, notify FIFO, both track files, the liveness script, nopreempt by default", () => {
  const conf = renderKeepalivedConf(ha({ advertMs: 100 }), paths);
  for (
    const line of [
      "  router_id n1",
      "  vrrp_version 3",
      '  vrrp_notify_fifo "/var/lib/keepwire/ha/notify.fifo"',
      "  vrrp_notify_priority_changes true",
      "track_file kw_fault {",
      '  file "/var/lib/keepwire/ha/fault.track"',
      "  weight 0",
      "  init_file 1",
      "track_file kw_priority {",
      "  weight 1",
      "vrrp_instance keepwire {",
      "  state BACKUP",
      "  interface kt0",
      "  virtual_router_id 51",
      "  priority 150",
      "  advert_int 0.1",
      "  nopreempt",
      "    10.231.0.50/24 dev kt0",
      "    kw_fault",
      "    kw_priority",
      "vrrp_script kw_alive {",
      '  script "/var/lib/keepwire/ha/alive.sh /var/lib/keepwire/ha/alive 3000"',
      "  weight 0",
      "    kw_alive",
      "  script_user root",
      "  enable_script_security",
    ]
  ) assert(conf.split("\n").includes(line), `missing line ${JSON.stringify(line)} in\n${conf}`);
  assert(!conf.includes("unicast_peer"), "multicast unless ha.unicast");
  assert(!conf.includes("down_timer_adverts"), "3 adverts is keepalived's default");
  assert(!conf.includes("overwrite"), "keepalived must not reset what keepwire wrote");
});

Deno.test("keepalived.conf: unicast peers, preempt delay, hold-down, ping tracks", () => {
  const conf = renderKeepalivedConf(
    ha({
      unicast: true,
      preempt: true,
      preemptDelayMs: 2000,
      advertMs: 100,
      holdDownMs: 1000,
      track: { ping: [{ address: "10.231.0.1", weight: -40 }] },
    }),
    paths,
  );
  const lines = conf.split("\n");
  for (
    const l of [
      "  unicast_src_ip 10.231.0.11",
      "  unicast_peer {",
      "    10.231.0.12",
      "  check_unicast_src",
      "  preempt_delay 2",
      "  down_timer_adverts 10",
      "vrrp_script kw_ping_0 {",
      '  script "/bin/ping -n -q -c 1 -W 1 10.231.0.1"',
      "  interval 2",
      "  weight -40",
      "    kw_ping_0",
      "  enable_script_security",
    ]
  ) assert(lines.includes(l), `missing ${JSON.stringify(l)} in\n${conf}`);
  assert(!lines.includes("  nopreempt"));
});

Deno.test("keepalived.conf: preempt with replication renders nopreempt (keepwire fails back once caught up)", () => {
  const conf = renderKeepalivedConf(
    ha({
      preempt: true,
      preemptDelayMs: 2000,
      peers: [{ address: "10.231.0.12", priority: 100 }],
      peerLink: { secret: "0123456789abcdef" },
      replication: {},
    }),
    paths,
  );
  const lines = conf.split("\n");
  assert(lines.includes("  nopreempt") && !conf.includes("preempt_delay"), conf);
});

Deno.test("keepalived.conf: two heartbeat paths are a sync group of the LAN instance and the sync link's", () => {
  const conf = renderKeepalivedConf(
    ha({
      advertMs: 100,
      syncLink: { interface: "sy0", address: "10.232.1.1/30", peerAddress: "10.232.1.2" },
    }),
    paths,
  );
  const text = conf.slice(conf.indexOf("vrrp_sync_group"));
  for (
    const block of [
      "vrrp_sync_group keepwire_paths {\n  group {\n    keepwire\n    keepwire_sync\n  }\n  sync_group_tracking_weight\n}",
      "vrrp_instance keepwire_sync {\n  state BACKUP\n  interface sy0\n  dont_track_primary\n",
      "  unicast_src_ip 10.232.1.1\n  unicast_peer {\n    10.232.1.2\n  }\n  check_unicast_src\n" +
      "  virtual_ipaddress {\n    169.254.254.51/32 dev sy0\n  }\n  track_file {\n    kw_fault\n    kw_priority\n",
    ]
  ) assert(text.includes(block), `missing ${JSON.stringify(block)} in\n${conf}`);
  // the LAN instance keeps the addresses and is multicast as before
  const lan = conf.slice(
    conf.indexOf("vrrp_instance keepwire {"),
    conf.indexOf("vrrp_instance keepwire_sync"),
  );
  assert(lan.includes("10.231.0.50/24 dev kt0") && !lan.includes("unicast_peer"), lan);
  assert(!renderKeepalivedConf(ha(), paths).includes("vrrp_sync_group"));
});

Deno.test("keepalived command line: foreground, VRRP only, no respawn, death signal via setpriv", () => {
  const c = keepalivedCommand("keepalived", paths, "/usr/bin/setpriv");
  assertEquals(c.command, "/usr/bin/setpriv");
  assertEquals(c.args.slice(0, 3), ["--pdeathsig", "TERM", "keepalived"]);
  for (const f of ["-P", "-n", "-R", "-l"]) assert(c.args.includes(f), f);
  assertEquals(c.args[c.args.indexOf("-f") + 1], "/var/lib/keepwire/ha/keepalived.conf");
  assertEquals(keepalivedCommand("keepalived", paths, null).command, "keepalived");
});

Deno.test("notify FIFO lines", () => {
  assertEquals(parseFifoLine('INSTANCE "keepwire" MASTER 100\n'), {
    type: "state",
    instance: "keepwire",
    state: "MASTER",
    priority: 100,
  });
  assertEquals(parseFifoLine('INSTANCE "keepwire" DELETED 100'), {
    type: "state",
    instance: "keepwire",
    state: "STOP",
    priority: 100,
  });
  assertEquals(parseFifoLine('INSTANCE "keepwire" BACKUP_PRIORITY 70'), {
    type: "priority",
    instance: "keepwire",
    state: "BACKUP",
    priority: 70,
  });
  assertEquals(
    parseFifoLine('INSTANCE "keepwire" MASTER_RX_LOWER_PRI 90').type,
    "rx_lower_priority",
  );
  assertEquals(parseFifoLine('GROUP "keepwire_paths" MASTER 0'), {
    type: "group",
    group: "keepwire_paths",
    state: "MASTER",
  });
  for (
    const bad of [
      'GROUP "g" MASTERS 0',
      'INSTANCE "keepwire" MASTER',
      "garbage",
      "INSTANCE keepwire MASTER 1",
    ]
  ) {
    assertEquals(parseFifoLine(bad).type, "other", bad);
  }
});

Deno.test({
  name: "keepalived -t accepts every rendered variant and refuses a broken one (in a netns)",
  ignore: missing !== undefined,
  fn: async () => {
    const ns = `kwhat_${crypto.randomUUID().slice(0, 6)}`;
    const dir = await Deno.makeTempDir({ prefix: "kw-ha-kt-" });
    const sh = async (...args: string[]) => {
      const o = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
      if (!o.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
    };
    try {
      await sh("ip", "netns", "add", ns);
      await sh("ip", "-n", ns, "link", "add", "kt0", "type", "veth", "peer", "name", "kt1");
      await sh("ip", "-n", ns, "link", "add", "sy0", "type", "veth", "peer", "name", "sy1");
      const p = keepalivedPaths(dir);
      await Deno.mkdir(p.dir);
      // keepalived -t disables a track script it cannot find
      const { ALIVE_SCRIPT } = await import("../mod/ha/keepalived.ts");
      await Deno.writeTextFile(p.aliveScript, ALIVE_SCRIPT, { mode: 0o755 });
      const variants = [
        ha(),
        ha({ advertMs: 10, holdDownMs: 500 }),
        ha({ unicast: true, preempt: true, preemptDelayMs: 1000 }),
        ha({
          track: { ping: [{ address: "10.231.0.1" }, { address: "10.231.0.2", weight: -10 }] },
        }),
        ha({
          advertMs: 100,
          track: { ping: [{ address: "10.231.0.1" }] },
          syncLink: { interface: "sy0", address: "10.232.1.1/30", peerAddress: "10.232.1.2" },
        }),
      ];
      for (const v of variants) {
        await Deno.writeTextFile(p.config, renderKeepalivedConf(v, p));
        await checkKeepalivedConf("keepalived", p.config, ["ip", "netns", "exec", ns]);
      }
      // the check can fail: an interface that is not in the namespace
      await Deno.writeTextFile(p.config, renderKeepalivedConf(ha({ interface: "kt9" }), p));
      const e = await assertRejects(
        () => checkKeepalivedConf("keepalived", p.config, ["ip", "netns", "exec", ns]),
        HaEngineError,
      );
      assertStringIncludes(e.message, "configuration refused by keepalived -t");
    } finally {
      await new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("liveness script: passes on a fresh heartbeat, fails on a stale or missing one", async () => {
  const { ALIVE_SCRIPT } = await import("../mod/ha/keepalived.ts");
  const dir = await Deno.makeTempDir({ prefix: "kw-ha-alive-" });
  try {
    await Deno.writeTextFile(`${dir}/alive.sh`, ALIVE_SCRIPT);
    const run = async (content: string | null) => {
      if (content === null) await Deno.remove(`${dir}/alive`).catch(() => {});
      else await Deno.writeTextFile(`${dir}/alive`, content);
      return (await new Deno.Command("/bin/sh", {
        args: [`${dir}/alive.sh`, `${dir}/alive`, "3000"],
        stderr: "null",
      }).output()).code;
    };
    assertEquals(await run(`${Date.now()}\n`), 0);
    assertEquals(await run(`${Date.now() - 2500}\n`), 0);
    assertEquals(await run(`${Date.now() - 3500}\n`), 1, "stale");
    assert((await run(null)) !== 0, "missing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
