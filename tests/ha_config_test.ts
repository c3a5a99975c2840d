/**
 * The `ha` config section: disabled by default (the embedded default starts without
 * keepalived), and an enabled section with bad fields is refused naming each one —
 * through validateConfig, as `keepwire config check` and `run` see it.
 */
import { ConfigError, DEFAULT_CONFIG, validateConfig } from "../mod/config/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { inPrefix, isNetworkOrBroadcast, parseCidr } from "../mod/ha/net.ts";

const GOOD = {
  enabled: true,
  node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
  interface: "kwtest0",
  virtualAddresses: ["10.231.0.50/24"],
  peers: [{ address: "10.231.0.12", id: "n2", priority: 100 }],
};

/** Problems of a config with `ha` replaced, interfaces named kwtest* existing. */
function problems(ha: Record<string, unknown>): string[] {
  const prev = setInterfaceCheck((n) => n.startsWith("kwtest"));
  try {
    validateConfig({ ha });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  } finally {
    setInterfaceCheck(prev);
  }
}

Deno.test("ha config: disabled by default; the embedded default validates without keepalived", () => {
  const c = validateConfig(DEFAULT_CONFIG);
  assertEquals(c.ha.enabled, false);
  assertEquals(c.ha.preempt, false);
  assertEquals(c.ha.failover, "auto");
  assertEquals(c.ha.advertMs, 1000);
  // a disabled section is not cross-checked (no interface, no peer needed)
  assertEquals(problems({ enabled: false, interface: "nosuch" }), []);
});

Deno.test("ha config: a complete enabled section validates", () => {
  assertEquals(problems(GOOD), []);
  assertEquals(problems({ ...GOOD, unicast: true, peers: [{ address: "10.9.0.12" }] }), []);
  assertEquals(problems({ ...GOOD, preempt: true, preemptDelayMs: 2000 }), []);
});

Deno.test("ha config: each bad field is named", () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      { ...GOOD, virtualAddresses: ["10.9.0.50/24"] },
      "ha.virtualAddresses[0]: 10.9.0.50 is outside 10.231.0.0/24 (the prefix of ha.node.address)",
    ],
    [
      { ...GOOD, virtualAddresses: ["10.231.0.255/24"] },
      "ha.virtualAddresses[0]: 10.231.0.255 is the network or broadcast address of 10.231.0.255/24",
    ],
    [
      { ...GOOD, virtualAddresses: ["10.231.0.50/16"] },
      "ha.virtualAddresses[0]: prefix /16 differs from ha.node.address's /24",
    ],
    [
      { ...GOOD, virtualAddresses: ["10.231.0.50/24", "10.231.0.50/24"] },
      "ha.virtualAddresses[1]: 10.231.0.50 is listed twice",
    ],
    [
      { ...GOOD, virtualAddresses: ["10.231.0.12/24"] },
      "ha.virtualAddresses[0]: 10.231.0.12 is a peer's own address",
    ],
    [
      { ...GOOD, virtualAddresses: ["10.231.0.500/24"] },
      "ha.virtualAddresses[0]: expected an IPv4 address with its prefix, e.g. 10.231.0.50/24",
    ],
    [
      { ...GOOD, virtualAddresses: [] },
      "ha.virtualAddresses: at least one virtual address is needed (or ha.hook, to move the service another way)",
    ],
    [
      { ...GOOD, peers: [{ address: "10.231.0.12", priority: 150 }] },
      "ha.peers[0].priority: equal to ha.node.priority (150): the nodes need different priorities",
    ],
    [{ ...GOOD, peers: [] }, "ha.peers: at least one peer is needed"],
    [
      { ...GOOD, peers: [{ address: "10.9.0.12" }] },
      "ha.peers[0].address: 10.9.0.12 is outside 10.231.0.0/24 (the prefix of ha.node.address); multicast VRRP needs one link: set ha.unicast for a peer on another subnet",
    ],
    [
      { ...GOOD, peers: [{ address: "10.231.0.11" }] },
      "ha.peers[0].address: 10.231.0.11 is this node's own address (ha.node.address)",
    ],
    [
      { ...GOOD, interface: "eth9" },
      'ha.interface: no network interface "eth9" on this machine (/sys/class/net)',
    ],
    [{ ...GOOD, interface: undefined }, "ha.interface: required when ha.enabled"],
    [{ ...GOOD, node: { id: "n1", priority: 150 } }, "ha.node.address: required when ha.enabled"],
    [
      { ...GOOD, node: { ...GOOD.node, priority: 255 } },
      "ha.node.priority: Too big: expected number to be <=254",
    ],
    [{ ...GOOD, advertMs: 105 }, "ha.advertMs: Invalid number: must be a multiple of 10"],
    [{ ...GOOD, preemptDelayMs: 2000 }, "ha.preemptDelayMs: only applies with ha.preempt: true"],
    [
      { ...GOOD, holdDownMs: 200_000 },
      "ha.holdDownMs: at most 100 adverts (100000 ms at advertMs 1000)",
    ],
    [
      { ...GOOD, failover: "manual" },
      'ha.failover: "manual" needs ha.peerLink (the standby learns from the peer link that the active is gone)',
    ],
    [
      { ...GOOD, failover: "manual", preempt: true, peerLink: { secret: "0123456789abcdef" } },
      'ha.preempt: never acts with ha.failover "manual" (a node that sees its peer active is held ' +
      "in FAULT): switch back with `ha failover` on the active, or add ha.replication (the owner " +
      "then takes the address back once caught up)",
    ],
    [
      {
        ...GOOD,
        witness: { host: "qnetd.invalid" },
        peerLink: { secret: "0123456789abcdef" },
      },
      'ha.witness.host: cannot resolve "qnetd.invalid" on this machine (getent ahostsv4)',
    ],
    [
      { ...GOOD, witness: { host: "10.231.0.3" } },
      "ha.witness: needs ha.peerLink (a standby learns from the peer link whether the peer is " +
      "active or hands over)",
    ],
    [
      {
        ...GOOD,
        witness: { host: "10.231.0.12" },
        peerLink: { secret: "0123456789abcdef" },
      },
      "ha.witness.host: 10.231.0.12 is the peer's address: the witness is a third host",
    ],
    [
      {
        ...GOOD,
        witness: { host: "10.231.0.3", tokenMs: 3000 },
        peerLink: { secret: "0123456789abcdef" },
      },
      "ha.witness.timeoutMs: below witness.tokenMs (3000)",
    ],
    [
      {
        ...GOOD,
        witness: { host: "10.231.0.3", syncTimeoutMs: 500 },
        peerLink: { secret: "0123456789abcdef" },
      },
      "ha.witness.syncTimeoutMs: Too small: expected number to be >=1000",
    ],
    [
      {
        ...GOOD,
        preempt: true,
        peers: [{ address: "10.231.0.12" }],
        peerLink: { secret: "0123456789abcdef" },
        replication: {},
      },
      "ha.peers[0].priority: required with ha.preempt and ha.replication (the node with the " +
      "higher priority takes the address back once its replication caught up)",
    ],
    [{ ...GOOD, bogus: 1 }, "ha.bogus: unknown field"],
  ];
  for (const [ha, line] of cases) {
    const got = problems(ha);
    assert(got.includes(line), `expected ${JSON.stringify(line)} in ${JSON.stringify(got)}`);
  }
});

Deno.test("ha config: several bad fields are all named at once", () => {
  const got = problems({
    ...GOOD,
    interface: "eth9",
    virtualAddresses: ["10.9.0.50/24"],
    peers: [{ address: "10.231.0.12", priority: 150 }],
  });
  assertEquals(got.length, 3, got.join("\n"));
});

Deno.test("ha config: the real interface check looks in /sys/class/net", () => {
  const present = [...Deno.readDirSync("/sys/class/net")].map((e) => e.name).find((n) =>
    n !== "lo"
  );
  if (present) {
    const c = validateConfig({ ha: { ...GOOD, interface: present } });
    assertEquals(c.ha.interface, present);
  }
  let msg = "";
  try {
    validateConfig({ ha: { ...GOOD, interface: "kwnosuch0" } });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes('ha.interface: no network interface "kwnosuch0"'), msg);
});

Deno.test("ha net: prefixes", () => {
  const net = parseCidr("10.231.0.11/24")!;
  assert(inPrefix("10.231.0.254", net));
  assert(!inPrefix("10.231.1.1", net));
  assert(isNetworkOrBroadcast(parseCidr("10.231.0.0/24")!));
  assert(!isNetworkOrBroadcast(parseCidr("10.231.0.1/31")!));
  assertEquals(parseCidr("10.231.0.1/33"), null);
  assertEquals(parseCidr("010.1.1.1/8"), null);
  assert(inPrefix("192.168.77.1", parseCidr("0.0.0.0/0")!));
});

Deno.test("ha config: the sync link (a second heartbeat path) is checked field by field", () => {
  const sync = { interface: "kwtest1", address: "10.232.1.1/30", peerAddress: "10.232.1.2" };
  assertEquals(problems({ ...GOOD, syncLink: sync }), []);
  const cases: [Record<string, unknown>, string][] = [
    [
      { ...sync, interface: "eth9" },
      'ha.syncLink.interface: no network interface "eth9" on this machine (/sys/class/net)',
    ],
    [
      { ...sync, interface: "kwtest0" },
      "ha.syncLink.interface: the same as ha.interface: the sync link must be a second link",
    ],
    [
      { ...sync, peerAddress: "10.232.1.9" },
      "ha.syncLink.peerAddress: 10.232.1.9 is outside 10.232.1.0/30 (the prefix of ha.syncLink.address)",
    ],
    [
      { ...sync, peerAddress: "10.232.1.1" },
      "ha.syncLink.peerAddress: 10.232.1.1 is this node's own sync address",
    ],
    [
      { ...sync, address: "10.232.1.3/30" },
      "ha.syncLink.address: 10.232.1.3 is the network or broadcast address of its prefix",
    ],
    [
      { ...sync, address: "10.231.0.200/24", peerAddress: "10.231.0.201" },
      "ha.syncLink.address: 10.231.0.200/24 overlaps 10.231.0.0/24 (ha.node.address): the sync link needs its own subnet",
    ],
    [
      { ...sync, address: "10.232.1.1" },
      "ha.syncLink.address: expected an IPv4 address with its prefix, e.g. 10.231.0.50/24",
    ],
  ];
  for (const [s, line] of cases) {
    const got = problems({ ...GOOD, syncLink: s });
    assert(got.includes(line), `expected ${JSON.stringify(line)} in ${JSON.stringify(got)}`);
  }
});

Deno.test("ha config: `keepwire config check` names the sync link's bad fields, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-ha-sync-" });
  try {
    const file = `${dir}/ha.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ha: {
          ...GOOD,
          interface: "lo", // present in every network namespace
          syncLink: { interface: "kwnosuch1", address: "10.232.1.1/30", peerAddress: "10.9.9.9" },
        },
      }),
    );
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "config", "check", file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(o.stderr);
    assertEquals(o.code, 2, err);
    assert(err.includes('ha.syncLink.interface: no network interface "kwnosuch1"'), err);
    assert(
      err.includes("ha.syncLink.peerAddress: 10.9.9.9 is outside 10.232.1.0/30"),
      err,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
