/**
 * The `sync` write row of `deno task bench replication` on the lab link: the primary and
 * the standby are two processes in two network namespaces joined by a veth pair, linked
 * as a paired HA pair is (the peer link's HTTPS with mutual authentication, its HMAC, the
 * replication stream). In the same run, in the primary's process: the same write
 * local-only, and the floor — a bare round trip over mutual TLS (300 bytes echoed on one
 * long-lived stream, and one POST per round trip), no keepwire code in the path.
 *
 * Run as a module by bench/replication.ts ({@link labRows}); run as a script, it is one
 * of the two nodes (`standby DIR CERTS ADDR` or `primary DIR CERTS URL FLOOR_URL N`);
 * REPL_LAB_NICE=1 raises both (see {@link RAISED}).
 */
import type { DatabaseSync } from "node:sqlite";
import { HttpTransport, REPL_PEER_PREFIX, replPeerMount } from "../mod/repl/http.ts";
import {
  createPeerFetch,
  PEER_BODY_HEADER,
  PEER_DUPLEX_HEADER,
  PEER_META_HEADER,
  type PeerMount,
  peerRoutes,
  type PeerTls,
  peerTlsFetch,
  servePeerTls,
} from "../mod/ha/peer.ts";
import { makeNodeCert } from "../mod/ha/pairing.ts";
import { systemClock } from "../mod/module.ts";
import { count, rigNode } from "../tests/repl_rig.ts";
import { type BenchRow, percentile } from "./types.ts";

const SECRET = "bench-lab-secret-0123456789";
/**
 * REPL_LAB_NICE=1: both lab processes run at nice -10 in sessions of their own, so other
 * work on a shared machine delays them less (a stand-in for a quiet box; the rows say so).
 */
const RAISED = Deno.env.get("REPL_LAB_NICE") === "1";
const now = () => performance.now();
/**
 * REPL_LAB_TRACE=FILE: each process writes the wall-clock moments (ms, sub-ms precision;
 * one machine, one clock) its side saw of every body of frames on the stream — the
 * primary `FILE.a` (send, ack), the standby `FILE.b` (message whole and verified, ack
 * out), in the same order — and the primary `FILE.w` each sync write's start and end: which
 * leg a slow write spent its time in (match them with `strace -f -tt -T -e fsync` of each
 * process, as docs/ha.md's benchmark section did).
 */
const TRACE = Deno.env.get("REPL_LAB_TRACE");
const wall = () => performance.timeOrigin + performance.now();
/**
 * REPL_LAB_NO_AUTOCHECKPOINT=1 (both), `a` (the primary) or `b` (the standby): those stores
 * with `wal_autocheckpoint = 0`, so no WAL checkpoint (and its fsyncs) runs inside a commit
 * there. An experiment, not a configuration: the WAL then grows for the whole run.
 */
const NO_CKPT = Deno.env.get("REPL_LAB_NO_AUTOCHECKPOINT") ?? "";
const noCheckpoints = (side: "a" | "b") => NO_CKPT === "1" || NO_CKPT === side;
/**
 * Both stores take their checkpoints as the daemon's does (`Store.startCheckpoints`: rounds
 * whose fsyncs are off the event loop), unless REPL_BENCH_CHECKPOINTS=sqlite: SQLite's
 * auto-checkpoint inside the commit, as before (the same run's comparison).
 */
export const SQLITE_CHECKPOINTS = Deno.env.get("REPL_BENCH_CHECKPOINTS") === "sqlite";
const fmt = (n: number, d = 2) => n.toFixed(d);

interface Certs {
  a: { cert: string; key: string };
  b: { cert: string; key: string };
}

/** p50 / p99 of a sample. */
function pp(xs: number[]): { p50: number; p99: number } {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99) };
}

/** What the primary's process reports (ms). */
interface LabResult {
  sync: { p50: number; p99: number };
  /** Sync writes over 10 ms, and the longest (ms). */
  syncSlow: { over10: number; max: number };
  local: { p50: number; p99: number };
  /** Inside write(): capture, frame, log, commit (the primary's own part). */
  primaryLocal: { p50: number; p99: number };
  /** sendFrames → ack (wire both ways + the standby's work). */
  sendAck: { p50: number; p99: number };
  floorStream: { p50: number; p99: number };
  floorPost: { p50: number; p99: number };
  /** A 300-byte message echoed on a duplex request of the peer link (HMAC both ways). */
  linkEcho: { p50: number; p99: number };
  /** The same echo, one before each sync write (the processes busy with replication). */
  echoBetween: { p50: number; p99: number };
  /** The standby's receiveFrames (verify + apply + commit), reported by its process. */
  apply?: { p50: number; p99: number };
  /** On the standby: a message whole and verified → its ack handed to the server. */
  residence?: { p50: number; p99: number };
}

/** REPL_LAB_TRACE: the standby's moments per message, one list per stream. */
const traces: number[][][] = [];

/**
 * The mount with each message's time on the standby recorded: from the moment it is
 * whole and verified to the moment its ack is sealed and handed to the server.
 */
function timed(m: PeerMount, out: number[]): PeerMount {
  return {
    ...m,
    fetch: async (req) => {
      if (!req.url.endsWith("/stream") || !req.body) return await m.fetch(req);
      const arrived: number[] = [];
      const trace: number[][] = [];
      let acked = 0;
      traces.push(trace);
      const body = req.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(c, ctl) {
            arrived.push(now());
            if (TRACE) trace.push([wall()]);
            ctl.enqueue(c);
          },
        }),
      );
      const res = await m.fetch(
        // @ts-ignore: a streamed request body needs duplex "half" (not in the DOM types)
        new Request(req.url, { method: req.method, headers: req.headers, body, duplex: "half" }),
      );
      const acks = res.body!.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(c, ctl) {
            out.push(now() - (arrived.shift() ?? now()));
            if (TRACE) trace[acked++]?.push(wall());
            ctl.enqueue(c);
          },
        }),
      );
      return new Response(acks, { status: res.status, headers: res.headers });
    },
  };
}

async function standby(dir: string, certs: Certs, host: string): Promise<void> {
  const b = rigNode(dir, "b", { batchMs: 50 });
  if (noCheckpoints("b")) b.store.db.exec("PRAGMA wal_autocheckpoint = 0");
  else if (!SQLITE_CHECKPOINTS) b.store.startCheckpoints();
  b.repl.demote();
  const applies: number[] = [], residence: number[] = [];
  const recv = b.repl.receiveFrames.bind(b.repl);
  b.repl.receiveFrames = (body) => {
    const t = now();
    const ack = recv(body);
    applies.push(now() - t);
    return ack;
  };
  const tls: PeerTls = { ...certs.b, peerCert: certs.a.cert };
  const app = peerRoutes({
    secret: SECRET,
    pairId: "pair-test",
    clock: systemClock,
    health: () => {
      throw new Error("no health here");
    },
    onRefused: (r, d) => console.error(`refused ${r}: ${d}`),
    mounts: [timed(replPeerMount(b.repl), residence), {
      // the link's own cost: a duplex request whose messages are echoed
      prefix: "/peer/v1/echo",
      duplex: ["/peer/v1/echo/x"],
      fetch: (req) => new Response(req.body),
    }],
  });
  const srv = await servePeerTls({ hostname: host, port: 0 }, tls, app.fetch);
  // the floor: the same TLS server code, no keepwire handler in the path
  const floor = await servePeerTls({ hostname: host, port: 0 }, tls, (req) => {
    if (new URL(req.url).pathname === "/post") {
      return req.arrayBuffer().then((x) => new Response(x));
    }
    const rd = req.body!.getReader();
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(ctl) {
          const r = await rd.read().catch(() => ({ done: true as const, value: undefined }));
          if (r.done) ctl.close();
          else ctl.enqueue(r.value);
        },
      }, { highWaterMark: 0 }),
    );
  });
  console.log(JSON.stringify({ port: srv.addr.port, floor: floor.addr.port }));
  // until the bench closes stdin
  for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
  console.log(
    JSON.stringify({ apply: pp(applies), residence: pp(residence), users: count(b, "users") }),
  );
  if (TRACE) await Deno.writeTextFile(`${TRACE}.b`, JSON.stringify(traces.flat()));
  await floor.shutdown();
  await srv.shutdown();
  b.repl.stop();
  b.store.close();
}

/** A duplex request of the peer link to the standby's echo mount. */
async function openEcho(peerFetch: typeof fetch, url: string) {
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const res = await peerFetch(url + "/peer/v1/echo/x", {
    method: "POST",
    headers: { [PEER_BODY_HEADER]: "stream", [PEER_DUPLEX_HEADER]: "1", [PEER_META_HEADER]: "e" },
    body: pipe.readable,
  });
  const w = pipe.writable.getWriter();
  const rd = res.body!.getReader();
  return {
    async roundTrip(): Promise<number> {
      const s = now();
      await w.write(new Uint8Array(300));
      await rd.read();
      return now() - s;
    },
    async close() {
      await w.close();
      await rd.cancel().catch(() => {});
    },
  };
}

async function primary(dir: string, certs: Certs, url: string, floorUrl: string, n: number) {
  const a = rigNode(dir, "a", { batchMs: 50 });
  if (noCheckpoints("a")) a.store.db.exec("PRAGMA wal_autocheckpoint = 0");
  else if (!SQLITE_CHECKPOINTS) a.store.startCheckpoints();
  const client = peerTlsFetch({ ...certs.a, peerCert: certs.b.cert });
  const t = new HttpTransport({
    baseUrl: url + REPL_PEER_PREFIX,
    fetch: createPeerFetch({
      secret: SECRET,
      pairId: "pair-test",
      node: "a",
      clock: systemClock,
      fetch: client.fetch,
    }),
  });
  const sendAck: number[] = [];
  const trace: number[][] = [];
  const send = t.sendFrames.bind(t);
  t.sendFrames = async (body, signal) => {
    const s = now(), w = wall();
    const ack = await send(body, signal);
    sendAck.push(now() - s);
    if (TRACE) trace.push([w, wall()]);
    return ack;
  };
  const peerFetch = createPeerFetch({
    secret: SECRET,
    pairId: "pair-test",
    node: "a",
    clock: systemClock,
    fetch: client.fetch,
  });
  a.repl.setTransport(t);
  a.repl.promote();
  await a.repl.write("config", (db) => db.exec("INSERT INTO users VALUES (0, 'x', 'y')"));
  const sync: number[] = [], local: number[] = [], primaryLocal: number[] = [];
  // the link's duplex echo between the writes: the same round trip, made by these busy
  // processes at the same moments (apart, below, it is made by idle ones)
  const echo = await openEcho(peerFetch, url);
  const echoBetween: number[] = [];
  const writes: number[][] = [];
  sendAck.length = 0;
  for (let i = 1; i <= n; i++) {
    echoBetween.push(await echo.roundTrip());
    let s = now();
    a.store.transaction(() =>
      a.store.db.prepare("INSERT INTO local_only (k, v) VALUES (?, ?)").run(`k${i}`, `v${i}`)
    );
    local.push(now() - s);
    s = now();
    const ws = wall();
    const w = a.repl.write(
      "config",
      (db: DatabaseSync) =>
        db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'op')").run(i, `u${i}`),
    );
    primaryLocal.push(now() - s);
    const r = await w;
    sync.push(now() - s);
    if (TRACE) writes.push([ws, wall()]);
    if (!r.replicated) throw new Error(`sync write ${i} not confirmed`);
  }
  // the floor, in the same process over the same link
  const floorStream: number[] = [], floorPost: number[] = [], linkEcho: number[] = [];
  for (let i = 0; i < n; i++) linkEcho.push(await echo.roundTrip());
  await echo.close();
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const res = await client.fetch(floorUrl + "/stream", {
    method: "POST",
    body: pipe.readable,
    // @ts-ignore: a streamed request body needs duplex "half" (not in the DOM types)
    duplex: "half",
  });
  const w = pipe.writable.getWriter();
  const rd = res.body!.getReader();
  for (let i = 0; i < n; i++) {
    const s = now();
    await w.write(new Uint8Array(300));
    let got = 0;
    while (got < 300) got += (await rd.read()).value!.length;
    floorStream.push(now() - s);
  }
  await w.close();
  await rd.cancel().catch(() => {});
  for (let i = 0; i < Math.min(n, 1000); i++) {
    const s = now();
    const r = await client.fetch(floorUrl + "/post", { method: "POST", body: new Uint8Array(300) });
    await r.arrayBuffer();
    floorPost.push(now() - s);
  }
  const out: LabResult = {
    sync: pp(sync),
    syncSlow: { over10: sync.filter((x) => x > 10).length, max: Math.max(...sync) },
    local: pp(local),
    primaryLocal: pp(primaryLocal),
    sendAck: pp(sendAck),
    floorStream: pp(floorStream),
    floorPost: pp(floorPost),
    linkEcho: pp(linkEcho),
    echoBetween: pp(echoBetween),
  };
  console.log(JSON.stringify(out));
  if (TRACE) {
    await Deno.writeTextFile(`${TRACE}.a`, JSON.stringify(trace));
    await Deno.writeTextFile(`${TRACE}.w`, JSON.stringify(writes));
  }
  a.repl.stop();
  t.close();
  client.close();
  a.store.close();
}

/** Why the lab cannot run here, or null. */
function labMissing(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (network namespaces need it)";
  try {
    const r = new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync();
    if (!r.success) return "`ip -V` failed";
  } catch {
    return "no `ip` command (iproute2)";
  }
  return null;
}

function ip(...args: string[]): void {
  const r = new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).outputSync();
  if (!r.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
}

/** Lines of a child's stdout, one JSON value each. */
async function* jsonLines(s: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  let buf = "";
  for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith("{")) yield JSON.parse(line);
    }
  }
}

/**
 * The lab rows: sync write p50/p99 between two namespaces over veth, next to the same
 * write local-only, the floor, and (always printed) where the time went. A row saying
 * why, when the lab cannot run here.
 */
export async function labRows(dir: string, n = 2000): Promise<BenchRow[]> {
  const missing = labMissing();
  if (missing) {
    return [{
      name: "sync write on the lab link (two namespaces, veth)",
      ours: `not run: ${missing}`,
      baseline: "—",
      ratio: "—",
    }];
  }
  await Deno.mkdir(dir, { recursive: true });
  const tag = `kwst${Deno.pid % 100000}`;
  const nsA = `${tag}-a`, nsB = `${tag}-b`;
  const [addrA, addrB] = ["10.213.77.1", "10.213.77.2"];
  const certs: Certs = {
    a: await makeNodeCert("a", [addrA]),
    b: await makeNodeCert("b", [addrB]),
  };
  const certFile = `${dir}/certs.json`;
  await Deno.writeTextFile(certFile, JSON.stringify(certs), { mode: 0o600 });
  const self = new URL(import.meta.url).pathname;
  const root = new URL("..", import.meta.url).pathname;
  const children: Deno.ChildProcess[] = [];
  try {
    ip("netns", "add", nsA);
    ip("netns", "add", nsB);
    ip(
      "link",
      "add",
      `${tag}a`,
      "netns",
      nsA,
      "type",
      "veth",
      "peer",
      "name",
      `${tag}b`,
      "netns",
      nsB,
    );
    ip("-n", nsA, "addr", "add", `${addrA}/30`, "dev", `${tag}a`);
    ip("-n", nsB, "addr", "add", `${addrB}/30`, "dev", `${tag}b`);
    for (const [ns, dev] of [[nsA, `${tag}a`], [nsB, `${tag}b`]]) {
      ip("-n", ns, "link", "set", dev, "up");
      ip("-n", ns, "link", "set", "lo", "up");
    }
    const spawn = (ns: string, args: string[]) => {
      const c = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          ...(RAISED ? ["setsid", "nice", "-n", "-10"] : []),
          Deno.execPath(),
          "run",
          "-A",
          self,
          ...args,
        ],
        cwd: root,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      children.push(c);
      return c;
    };
    const b = spawn(nsB, ["standby", `${dir}/b`, certFile, addrB]);
    const bOut = jsonLines(b.stdout);
    const ports = (await bOut.next()).value as { port: number; floor: number };
    const a = spawn(nsA, [
      "primary",
      `${dir}/a`,
      certFile,
      `https://${addrB}:${ports.port}`,
      `https://${addrB}:${ports.floor}`,
      String(n),
    ]);
    await a.stdin.close();
    const r = (await jsonLines(a.stdout).next()).value as LabResult;
    if (!(await a.status).success) throw new Error("the lab's primary failed");
    await b.stdin.close();
    const tail = (await bOut.next()).value as {
      apply: LabResult["apply"];
      residence: LabResult["residence"];
      users: number;
    };
    await b.status;
    if (tail.users !== n + 1) throw new Error(`standby has ${tail.users} users, wanted ${n + 1}`);
    r.apply = tail.apply;
    r.residence = tail.residence;
    const over = r.sync.p99 - r.local.p99;
    const f = (x: { p50: number; p99: number }) => `${fmt(x.p50, 3)} / ${fmt(x.p99, 3)} ms`;
    return [{
      name: `sync write p50 / p99 (lab: 2 netns, veth, mTLS${RAISED ? ", nice -10" : ""}${
        SQLITE_CHECKPOINTS ? ", SQLite's auto-checkpoint" : ""
      })`,
      ours: f(r.sync),
      baseline: `local-only ${f(r.local)}`,
      ratio: `p99 +${fmt(over, 2)} ms`,
      target: "p99 ≤ local + 2 ms",
    }, {
      name: "  sync writes over 10 ms, longest",
      ours: `${r.syncSlow.over10} of ${n}, ${fmt(r.syncSlow.max, 1)} ms`,
      baseline: "—",
      ratio: "—",
    }, {
      name: "  floor: bare mTLS round trip, one stream / one POST",
      ours: `${f(r.floorStream)}`,
      baseline: `POST ${f(r.floorPost)}`,
      ratio: "—",
    }, {
      name: "  breakdown: peer link duplex echo (sealed, verified)",
      ours: f(r.linkEcho),
      baseline: `floor ${f(r.floorStream)}`,
      ratio: fmt(r.linkEcho.p50 / r.floorStream.p50, 1),
    }, {
      name: "  breakdown: the same echo, between the sync writes",
      ours: f(r.echoBetween),
      baseline: `apart ${f(r.linkEcho)}`,
      ratio: fmt(r.echoBetween.p50 / r.linkEcho.p50, 1),
    }, {
      name: "  breakdown: primary's part (capture, frame, log, commit)",
      ours: f(r.primaryLocal),
      baseline: "—",
      ratio: "—",
    }, {
      name: "  breakdown: send → ack (wire, verify, standby)",
      ours: f(r.sendAck),
      baseline: `floor ${f(r.floorStream)}`,
      ratio: fmt(r.sendAck.p50 / r.floorStream.p50, 1),
    }, {
      name: "  breakdown: on the standby, message in → ack out",
      ours: f(r.residence!),
      baseline: `of which apply ${f(r.apply!)}`,
      ratio: "—",
    }];
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* exited */ }
      await c.status.catch(() => {});
    }
    for (const ns of [nsA, nsB]) {
      try {
        ip("netns", "del", ns);
      } catch { /* not made */ }
    }
  }
}

if (import.meta.main) {
  if (RAISED) {
    // a session of its own (setsid): its autogroup gets the nice too, else nice ranks it
    // only within the session
    try {
      Deno.writeTextFileSync("/proc/self/autogroup", "-10");
    } catch { /* no autogroup scheduling here */ }
  }
  const [role, dir, certFile, ...rest] = Deno.args;
  const certs = JSON.parse(await Deno.readTextFile(certFile)) as Certs;
  await Deno.mkdir(dir, { recursive: true });
  if (role === "standby") await standby(dir, certs, rest[0]);
  else if (role === "primary") await primary(dir, certs, rest[0], rest[1], Number(rest[2]));
  else throw new Error(`unknown role ${role}`);
}
