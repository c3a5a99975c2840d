/**
 * The HA surface of the real runtime (what `keepwire run` starts): GET /api/ha is
 * public (who is active), the rest needs a login; disabled by default; keepalived
 * missing → the HA part unhealthy with the reason and the node never active; the
 * CLI `ha status|maintenance|failover` against the daemon; `config check` names
 * bad `ha` fields with exit 2.
 */
import { ignored } from "./helpers/tools.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { kw } from "./helpers/cli.ts";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { encodeFrame } from "../mod/repl/frame.ts";

/** A network interface of this namespace other than lo (config validation looks). */
function someInterface(): string | undefined {
  return [...Deno.readDirSync("/sys/class/net")].map((e) => e.name).find((n) => n !== "lo");
}

Deno.test("ha api: disabled by default; GET /api/ha public, the POSTs need a login", async () => {
  const t = await startTestRuntime();
  try {
    const pub = await fetch(`${t.base}/api/ha`);
    assertEquals(pub.status, 200);
    assertEquals(await pub.json(), {
      node: "node1",
      role: "disabled",
      peer: null,
      virtualAddresses: [],
    });
    const status = await fetch(`${t.base}/api/ha/status`);
    assertEquals(status.status, 401);
    await status.body?.cancel();
    const anon = await fetch(`${t.base}/api/ha/maintenance`, {
      method: "POST",
      body: JSON.stringify({ on: true }),
      headers: { "content-type": "application/json" },
    });
    assertEquals(anon.status, 401);
    await anon.body?.cancel();
    const r = await t.api("/api/ha/maintenance", {
      method: "POST",
      body: JSON.stringify({ on: true }),
      headers: { "content-type": "application/json" },
    });
    assertEquals(r.status, 409);
    assertEquals((await r.json()).error.code, "ha_disabled");
    const health = await (await fetch(`${t.base}/api/health`)).json();
    assertEquals(health.parts.ha.detail, "disabled");
  } finally {
    await t.close();
  }
});

const iface = someInterface();

Deno.test({
  name:
    "ha api: keepalived missing → unhealthy with the reason, never active; CLI status, maintenance, failover",
  ignore: iface === undefined && !!ignored("no network interface to configure keepalived on"),
  fn: async () => {
    const t = await startTestRuntime({
      ha: {
        enabled: true,
        node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
        interface: iface,
        virtualAddresses: ["10.231.0.50/24"],
        peers: [{ address: "10.231.0.12", id: "n2" }],
        keepalived: { command: "/nonexistent/keepalived" },
      },
    });
    try {
      const pub = await (await fetch(`${t.base}/api/ha`)).json();
      assertEquals(pub.role, "fault");
      assertEquals(pub.peer, { id: "n2", role: "unknown" });
      const health = await (await fetch(`${t.base}/api/health`)).json();
      assertEquals(health.parts.ha.ok, false);
      assertStringIncludes(health.parts.ha.detail, "keepalived not running");
      assertStringIncludes(health.parts.ha.detail, "cannot run /nonexistent/keepalived");

      const st = await kw(["ha", "status", "-d", t.dataDir]);
      assertEquals(st.code, 0, st.stderr);
      assertStringIncludes(st.stdout, "node n1: FAULT since");
      // no peer link configured: the state says so and what to do
      assertStringIncludes(st.stdout, "state: HA is on, but there is no peer link");
      assertStringIncludes(st.stdout, "next: add ha.peerLink");
      // nothing to unpair or rotate: refused, named
      for (const cmd of [["ha", "unpair"], ["ha", "rotate-cert"]]) {
        const r = await kw([...cmd, "-d", t.dataDir]);
        assertEquals(r.code, 1, cmd.join(" "));
        assertStringIncludes(r.stderr, "this node is not paired");
      }
      assertStringIncludes(st.stdout, "keepalived: NOT running");
      const js = JSON.parse((await kw(["ha", "status", "--json", "-d", t.dataDir])).stdout);
      assertEquals(js.engine.running, false);
      assertEquals(js.track.fault, false);

      const fo = await kw(["ha", "failover", "-d", t.dataDir]);
      assertEquals(fo.code, 1);
      assertStringIncludes(fo.stderr, "this node is fault, not active");

      const on = await kw(["ha", "maintenance", "on", "--by", "alice", "-d", t.dataDir]);
      assertEquals(on.code, 0, on.stderr);
      assertStringIncludes(on.stdout, "maintenance on: n1 is maintenance");
      assertEquals(t.rt.store.getSetting<{ on: boolean }>("ha.maintenance")!.on, true);
      const bad = await kw(["ha", "maintenance", "maybe", "-d", t.dataDir]);
      assertEquals(bad.code, 2);

      const ev = t.rt.store.events({ module: "ha" }).map((e) => e.kind);
      assert(ev.includes("ha.engine_failed"), ev.join(","));
      assert(ev.includes("ha.maintenance_changed"), ev.join(","));
      const metrics = await (await t.api("/metrics")).text();
      assertStringIncludes(metrics, 'keepwire_ha_role{role="maintenance"} 1');
      assertStringIncludes(metrics, "keepwire_ha_engine_up 0");
    } finally {
      await t.close();
    }
  },
});

Deno.test("ha config check: bad ha fields are named, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-ha-cc-" });
  try {
    await Deno.writeTextFile(
      `${dir}/c.json`,
      JSON.stringify({
        ha: {
          enabled: true,
          node: { id: "n1", priority: 100, address: "10.231.0.11/24" },
          interface: "kwnosuch0",
          virtualAddresses: ["10.9.0.50/24"],
          peers: [{ address: "10.231.0.12", priority: 100 }],
        },
      }),
    );
    const r = await kw(["config", "check", `${dir}/c.json`]);
    assertEquals(r.code, 2);
    for (
      const want of [
        'ha.interface: no network interface "kwnosuch0"',
        "ha.virtualAddresses[0]: 10.9.0.50 is outside 10.231.0.0/24",
        "ha.peers[0].priority: equal to ha.node.priority (100)",
      ]
    ) assertStringIncludes(r.stderr, want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ha page: disabled says so; enabled shows the role, keepalived's state and the buttons to an admin", async () => {
  const off = await startTestRuntime();
  try {
    const r = await off.api("/ha");
    assertEquals(r.status, 200);
    const html = await r.text();
    assertStringIncludes(html, "High availability");
    assertStringIncludes(html, "HA is not enabled on this node");
    assertStringIncludes(html, "keepwire ha pair --peer HOST --code CODE");
    // ha status on a node without HA: the state in plain words and what to run next
    const st = await kw(["ha", "status", "-d", off.dataDir]);
    assertEquals(st.code, 0, st.stderr);
    assertStringIncludes(st.stdout, "state: HA is off on this node (ha.enabled is false)");
    assertStringIncludes(st.stdout, "next: to make a pair: set ha.enabled");
    assert(!st.stdout.includes("not configured"), st.stdout);
  } finally {
    await off.close();
  }
  if (iface === undefined) return;
  const t = await startTestRuntime({
    ha: {
      enabled: true,
      node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
      interface: iface,
      virtualAddresses: ["10.231.0.50/24"],
      peers: [{ address: "10.231.0.12", id: "n2" }],
      keepalived: { command: "/nonexistent/keepalived" },
    },
  });
  try {
    // a set-aside tail is listed with its epoch and seq range and a download link
    await Deno.mkdir(`${t.dataDir}/repl/tails`, { recursive: true });
    await Deno.writeFile(
      `${t.dataDir}/repl/tails/tail-p-e4-s9-9-x.kwtail`,
      encodeFrame({ pairId: "p", schemaVersion: "1", epoch: 4, seq: 9, changesets: [] }),
    );
    const html = await (await t.api("/ha")).text();
    assertStringIncludes(html, 'data-repl-tail="tail-p-e4-s9-9-x.kwtail"');
    assertStringIncludes(html, "/api/repl/tails/tail-p-e4-s9-9-x.kwtail/file");
    assertStringIncludes(html, "<td>9–9</td>");
    const dl = await t.api("/api/repl/tails/tail-p-e4-s9-9-x.kwtail/file");
    assertEquals(dl.status, 200);
    assertEquals((await dl.arrayBuffer()).byteLength > 40, true);
    assertStringIncludes(html, 'data-ha-role="fault"');
    assertStringIncludes(html, "NOT running");
    assertStringIncludes(html, "/nonexistent/keepalived");
    assertStringIncludes(html, 'data-api="/api/ha/maintenance"');
    assert(!html.includes('data-api="/api/ha/failover"'), "no handover button unless active");
    assertStringIncludes(html, 'href="/ha"');
    assertStringIncludes(html, 'data-repl="off"'); // replication card: ha.replication not set
    assertStringIncludes(html, 'data-pair="unpaired"'); // pairing card
  } finally {
    await t.close();
  }
});
