/**
 * Network-namespace lab for the tc software bypass (used by the e2e test and the
 * bench): client — appliance — server, each in its own namespace with a unique name.
 *
 * ```
 * <p>c: c0 10.77.0.1/24 ──veth── pa [<p>a] pb ──veth── s0 10.77.0.2/24 :<p>s
 *                                 │          │
 *                                 ia         ib   (switch point: pa/pb ingress → ia/ib or pb/pa)
 *                                 │ veth     │ veth
 *                                 ea ─ br0 ─ eb   (the "inspection engine": a bridge)
 * ```
 * Needs root, iproute2 (ip, tc). close() deletes the namespaces.
 */

/** Result of a command. */
export interface LabRun {
  /** Exit code. */
  code: number;
  /** Stdout. */
  out: string;
  /** Stderr. */
  err: string;
}

/** A built lab. */
export interface TcLab {
  /** Namespace names. */
  ns: { cli: string; app: string; srv: string };
  /** Client and server addresses. */
  cliIp: string;
  /** Server address. */
  srvIp: string;
  /** Run a command inside a namespace. */
  exec(ns: string, cmd: string, args: string[]): Promise<LabRun>;
  /** Packet counter of an interface in the appliance namespace. */
  rxPackets(dev: string): Promise<number>;
  /** Delete everything. */
  close(): Promise<void>;
}

/** Run a command (no throw). */
export async function labRun(cmd: string, args: string[], stdin?: string): Promise<LabRun> {
  try {
    const c = new Deno.Command(cmd, {
      args,
      stdin: stdin !== undefined ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = c.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    const o = await c.output();
    const d = new TextDecoder();
    return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
  } catch (e) {
    return { code: 127, out: "", err: String(e) };
  }
}

/** Why the lab cannot run here, or null when it can. */
export function tcLabUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "needs root";
  for (const [cmd, args] of [["ip", ["netns", "list"]], ["tc", ["-V"]]] as const) {
    try {
      const r = new Deno.Command(cmd, { args: [...args], stdout: "null", stderr: "null" })
        .outputSync();
      if (!r.success) return `"${cmd} ${args.join(" ")}" fails`;
    } catch {
      return `${cmd} not found (apt-get install iproute2)`;
    }
  }
  return null;
}

/** Build the lab. Throws (after cleaning up) when a step fails. */
export async function createTcLab(prefix = "kwbp"): Promise<TcLab> {
  const id = `${prefix}${Deno.pid % 100000}${Math.floor(Math.random() * 1e4)}`;
  const ns = { cli: `${id}c`, app: `${id}a`, srv: `${id}s` };
  const created: string[] = [];
  const close = async () => {
    for (const n of created.reverse()) await labRun("ip", ["netns", "del", n]);
    created.length = 0;
  };
  const must = async (cmd: string, args: string[]) => {
    const r = await labRun(cmd, args);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.err.trim()}`);
  };
  try {
    for (const n of [ns.cli, ns.app, ns.srv]) {
      await must("ip", ["netns", "add", n]);
      created.push(n);
      // no IPv6 chatter (router solicitations, DAD) on the lab links
      await must("ip", ["netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      await must("ip", [
        "netns",
        "exec",
        n,
        "sysctl",
        "-qw",
        "net.ipv6.conf.default.disable_ipv6=1",
      ]);
    }
    await must("ip", [
      "link",
      "add",
      "c0",
      "netns",
      ns.cli,
      "type",
      "veth",
      "peer",
      "name",
      "pa",
      "netns",
      ns.app,
    ]);
    await must("ip", [
      "link",
      "add",
      "s0",
      "netns",
      ns.srv,
      "type",
      "veth",
      "peer",
      "name",
      "pb",
      "netns",
      ns.app,
    ]);
    await must("ip", ["-n", ns.app, "link", "add", "ia", "type", "veth", "peer", "name", "ea"]);
    await must("ip", ["-n", ns.app, "link", "add", "ib", "type", "veth", "peer", "name", "eb"]);
    await must("ip", [
      "-n",
      ns.app,
      "link",
      "add",
      "br0",
      "type",
      "bridge",
      "stp_state",
      "0",
      "forward_delay",
      "0",
    ]);
    await must("ip", ["-n", ns.app, "link", "set", "ea", "master", "br0"]);
    await must("ip", ["-n", ns.app, "link", "set", "eb", "master", "br0"]);
    for (const l of ["pa", "pb", "ia", "ib", "ea", "eb", "br0", "lo"]) {
      await must("ip", ["-n", ns.app, "link", "set", l, "up"]);
    }
    await must("ip", ["-n", ns.cli, "addr", "add", "10.77.0.1/24", "dev", "c0"]);
    await must("ip", ["-n", ns.srv, "addr", "add", "10.77.0.2/24", "dev", "s0"]);
    for (const [n, l] of [[ns.cli, "c0"], [ns.srv, "s0"], [ns.cli, "lo"], [ns.srv, "lo"]]) {
      await must("ip", ["-n", n, "link", "set", l, "up"]);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    ns,
    cliIp: "10.77.0.1",
    srvIp: "10.77.0.2",
    exec: (n, cmd, args) => labRun("ip", ["netns", "exec", n, cmd, ...args]),
    async rxPackets(dev: string) {
      const r = await labRun("ip", ["-n", ns.app, "-s", "-j", "link", "show", "dev", dev]);
      const j = JSON.parse(r.out) as { stats64?: { rx?: { packets?: number } } }[];
      return Number(j[0]?.stats64?.rx?.packets ?? 0);
    },
    close,
  };
}

/** Spawn a command inside a namespace (stdout and stderr piped, no stdin). */
export function spawnInNetns(
  ns: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * A TCP server for `deno eval` in the server namespace: accepts one connection on
 * `port`, checks every byte against the client's pattern ((offset) mod 251) and
 * prints `{"bytes","firstBad","maxGapMs"}` (firstBad -1 = all intact; maxGapMs the
 * longest time between two reads) when the client closes.
 */
export function tcpServerScript(port: number): string {
  return `
const l = Deno.listen({ hostname: "0.0.0.0", port: ${port} });
const conn = await l.accept();
let n = 0, bad = -1, last = Date.now(), maxGap = 0;
const buf = new Uint8Array(65536);
for (;;) {
  const r = await conn.read(buf);
  if (r === null) break;
  const now = Date.now();
  maxGap = Math.max(maxGap, now - last);
  last = now;
  for (let i = 0; i < r; i++) if (bad < 0 && buf[i] !== (n + i) % 251) bad = n + i;
  n += r;
}
console.log(JSON.stringify({ bytes: n, firstBad: bad, maxGapMs: maxGap }));
`;
}

/** How the TCP client sends. */
export interface TcpClientOptions {
  /** Server address. */
  host: string;
  /** Server port. */
  port: number;
  /** Bytes per write. */
  chunkBytes: number;
  /** Pause after each chunk (ms). */
  pauseMs: number;
  /** Connect attempts, 25 ms apart (the server may still be starting). */
  tries: number;
}

/**
 * A TCP client for `deno eval` in the client namespace: sends the pattern
 * ((offset) mod 251) for `KW_DUR_MS` ms (from the environment), then prints
 * `{"bytes"}`.
 */
export function tcpClientScript(o: TcpClientOptions): string {
  return `
const dur = Number(Deno.env.get("KW_DUR_MS"));
let conn;
for (let i = 0; i < ${o.tries} && !conn; i++) {
  try { conn = await Deno.connect({ hostname: ${JSON.stringify(o.host)}, port: ${o.port} }); }
  catch { await new Promise((r) => setTimeout(r, 25)); }
}
if (!conn) throw new Error("cannot connect");
const chunk = new Uint8Array(${o.chunkBytes});
let n = 0;
const t0 = Date.now();
while (Date.now() - t0 < dur) {
  for (let i = 0; i < chunk.length; i++) chunk[i] = (n + i) % 251;
  let off = 0;
  while (off < chunk.length) off += await conn.write(chunk.subarray(off));
  n += chunk.length;
  await new Promise((r) => setTimeout(r, ${o.pauseMs}));
}
conn.close();
console.log(JSON.stringify({ bytes: n }));
`;
}
