/**
 * `deno task bench replication`: the replication engine (mod/repl) over HTTP on loopback,
 * primary and standby in this one process (the standby's apply shares the event loop, so
 * latencies are, if anything, pessimistic), then the sync write on the lab link (two
 * processes in two network namespaces over veth, mutual TLS: bench/replication_lab.ts).
 *
 * - changeset apply rows/s (100,000 rows in one changeset, file database, WAL) next to
 *   inserting the same rows plainly;
 * - async lag p50/p99 at 1,000 messages/s (write → applied on the standby) next to the
 *   batch window;
 * - sync write latency p50/p99 next to the same write local-only, same run, frames on the
 *   link's stream, and the same with one POST per body (how frames travelled before);
 * - resync of a ~100 MB store (snapshot streamed over HTTP, installed) next to copying the
 *   database file.
 */
import { Hono } from "hono";
import type { DatabaseSync } from "node:sqlite";
import {
  count,
  type HttpRigPair,
  httpRigPair,
  type RigNode,
  rigNode,
  until,
} from "../tests/repl_rig.ts";
import { type BenchRow, percentile } from "./types.ts";
import { labRows, SQLITE_CHECKPOINTS } from "./replication_lab.ts";

const SECRET = "bench-secret-0123456789";

function pair(dir: string, fill?: (a: RigNode) => void, stream = true): HttpRigPair {
  const p = httpRigPair(dir, { serverSecret: SECRET, extra: { batchMs: 50 }, fill, stream });
  // checkpoints as the daemon takes them (see SQLITE_CHECKPOINTS)
  if (!SQLITE_CHECKPOINTS) { for (const n of [p.a, p.b]) n.store.startCheckpoints(); }
  return p;
}

/** p50/p99 of N sync writes over `p`, each next to the same write local-only. */
async function syncRun(p: HttpRigPair, N: number, from: number) {
  const sync: number[] = [], local: number[] = [];
  for (let i = from; i < from + N; i++) {
    // local-only: the same write in its own transaction on a table nobody replicates
    let t = now();
    p.a.store.transaction(() =>
      p.a.store.db.prepare("INSERT INTO local_only (k, v) VALUES (?, ?)").run(`k${i}`, `v${i}`)
    );
    local.push(now() - t);
    t = now();
    const r = await p.a.repl.write(
      "config",
      (db) => db.prepare("INSERT INTO users (id, name, role) VALUES (?, ?, 'op')").run(i, `u${i}`),
    );
    sync.push(now() - t);
    if (!r.replicated) throw new Error(`sync write ${i} not confirmed`);
  }
  return { sync, local };
}

const fmt = (n: number, d = 2) => n.toFixed(d);
const now = () => performance.now();

function applyRate(dir: string): BenchRow {
  const a = rigNode(dir, "apply-a");
  const b = rigNode(dir, "apply-b");
  const N = 100_000;
  const body = "m".repeat(160);
  // baseline: plain inserts in one transaction on a third database
  const c = rigNode(dir, "apply-c");
  let t = now();
  c.store.transaction(() => {
    const ins = c.store.db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)");
    for (let i = 0; i < N; i++) ins.run(i, i, body);
  });
  const plain = N / ((now() - t) / 1000);
  const s = a.store.db.createSession({ table: "msglog" });
  a.store.transaction(() => {
    const ins = a.store.db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)");
    for (let i = 0; i < N; i++) ins.run(i, i, body);
  });
  const cs = s.changeset();
  s.close();
  t = now();
  b.store.transaction(() => b.store.db.applyChangeset(cs));
  const rate = N / ((now() - t) / 1000);
  if (count(b, "msglog") !== N) throw new Error("apply lost rows");
  for (const n of [a, b, c]) n.store.close();
  return {
    name: "changeset apply (100k rows, 1 changeset)",
    ours: `${Math.round(rate).toLocaleString("en")} rows/s`,
    baseline: `${Math.round(plain).toLocaleString("en")} rows/s plain insert`,
    ratio: fmt(rate / plain),
  };
}

async function asyncLag(dir: string): Promise<BenchRow> {
  const p = pair(dir);
  try {
    await p.a.repl.write("config", (db) => db.exec("INSERT INTO users VALUES (0, 'x', 'y')"));
    const written = new Map<number, number>();
    const lags: number[] = [];
    let seen = 0;
    const recv = p.b.repl.receiveFrames.bind(p.b.repl);
    p.b.repl.receiveFrames = (body) => {
      const ack = recv(body);
      const t = now();
      const max = Number(
        (p.b.store.db.prepare("SELECT COALESCE(MAX(id), -1) AS m FROM msglog").get() as {
          m: number;
        }).m,
      );
      for (let i = seen; i <= max; i++) {
        const w = written.get(i);
        if (w !== undefined) lags.push(t - w);
      }
      seen = Math.max(seen, max + 1);
      return ack;
    };
    const N = 5000;
    const start = now();
    for (let i = 0; i < N; i++) {
      const due = start + i; // 1,000 msg/s
      const wait = due - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      written.set(i, now());
      await p.a.repl.write(
        "logs",
        (db: DatabaseSync) =>
          db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)").run(
            i,
            i,
            "l".repeat(160),
          ),
      );
    }
    await until(() => lags.length === N, "every async message applied", 60_000);
    const p50 = percentile(lags, 50), p99 = percentile(lags, 99);
    return {
      name: "async lag at 1,000 msg/s (p50 / p99)",
      ours: `${fmt(p50, 1)} / ${fmt(p99, 1)} ms`,
      baseline: "50 ms batch window",
      ratio: fmt(p99 / 50),
      target: "p99 ≤ 100 ms",
    };
  } finally {
    await p.close();
  }
}

async function syncLatency(dir: string): Promise<BenchRow[]> {
  const p = pair(dir);
  const q = pair(`${dir}-post`, undefined, false);
  try {
    for (const x of [p, q]) {
      await x.a.repl.write("config", (db) => db.exec("INSERT INTO users VALUES (0, 'x', 'y')"));
    }
    const N = 2000;
    // the two modes alternate in blocks, so a busy moment of the machine hits both
    const s: number[] = [], l: number[] = [], ps: number[] = [];
    for (let k = 0; k < 4; k++) {
      const r = await syncRun(p, N / 4, 1 + k * (N / 4));
      s.push(...r.sync), l.push(...r.local);
      ps.push(...(await syncRun(q, N / 4, 1 + k * (N / 4))).sync);
    }
    if (count(p.b, "users") !== N + 1) throw new Error("standby is missing confirmed writes");
    // the floor on this machine: a bare POST round trip on the same loopback, same process
    const app = new Hono();
    app.post("/x", async (c) => (await c.req.arrayBuffer(), c.json({ ok: true })));
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    const bare: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = now();
      const r = await fetch(`http://127.0.0.1:${server.addr.port}/x`, {
        method: "POST",
        body: new Uint8Array(300),
      });
      await r.text();
      bare.push(now() - t);
    }
    await server.shutdown();
    const b50 = percentile(bare, 50), b99 = percentile(bare, 99);
    const s50 = percentile(s, 50), s99 = percentile(s, 99);
    const l50 = percentile(l, 50), l99 = percentile(l, 99);
    return [{
      name: "sync write latency p50 (HTTP loopback, one stream)",
      ours: `${fmt(s50, 3)} ms`,
      baseline: `${fmt(l50, 3)} ms local-only`,
      ratio: fmt(s50 / l50, 1),
    }, {
      name: "sync write latency p99",
      ours: `${fmt(s99, 3)} ms`,
      baseline: `${fmt(l99, 3)} ms local-only`,
      ratio: `${fmt(s99 / l99, 1)} (+${fmt(s99 - l99, 2)} ms)`,
      target: "≤ local + 2 ms",
    }, {
      name: "sync write p50 / p99, one POST per body (before)",
      ours: `${fmt(percentile(ps, 50), 3)} / ${fmt(percentile(ps, 99), 3)} ms`,
      baseline: `stream ${fmt(s50, 3)} / ${fmt(s99, 3)} ms`,
      ratio: fmt(percentile(ps, 50) / s50, 1),
    }, {
      name: "bare HTTP POST round trip p50 / p99 (floor)",
      ours: `${fmt(b50, 3)} / ${fmt(b99, 3)} ms`,
      baseline: "—",
      ratio: "—",
    }];
  } finally {
    await p.close();
    await q.close();
  }
}

async function resync(dir: string): Promise<BenchRow> {
  const TARGET = 100 * 1024 * 1024;
  const line = "r".repeat(200);
  const p = pair(dir, (a) => {
    const ins = a.store.db.prepare("INSERT INTO msglog (id, ts, line) VALUES (?, ?, ?)");
    let id = 0;
    while (true) {
      a.store.transaction(() => {
        for (let i = 0; i < 50_000; i++, id++) ins.run(id, id, line);
      });
      a.store.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      if (Deno.statSync(`${a.dir}/store.db`).size >= TARGET) break;
    }
  });
  try {
    const size = Deno.statSync(`${p.a.dir}/store.db`).size;
    let t = now();
    await Deno.copyFile(`${p.a.dir}/store.db`, `${dir}/copy.db`);
    const copyMs = now() - t;
    await Deno.remove(`${dir}/copy.db`);
    t = now();
    // the first write of the new epoch finds the fresh standby and resyncs it
    const r = await p.a.repl.write(
      "config",
      (db) => db.exec("INSERT INTO users VALUES (0, 'x', 'y')"),
    );
    const ms = now() - t;
    if (!r.replicated) throw new Error("resync did not complete");
    if (count(p.b, "msglog") !== count(p.a, "msglog")) throw new Error("resync lost rows");
    return {
      name: `resync of a ${fmt(size / 1024 / 1024, 0)} MB store`,
      ours: `${fmt(ms / 1000, 2)} s`,
      baseline: `${fmt(copyMs / 1000, 2)} s file copy`,
      ratio: fmt(ms / copyMs, 1),
      target: "≤ 10 s",
    };
  } finally {
    await p.close();
  }
}

/** Run the replication benchmark. */
export async function bench(): Promise<BenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "kw-bench-repl-" });
  try {
    const rows: BenchRow[] = [];
    rows.push(applyRate(`${dir}/1`));
    rows.push(await asyncLag(`${dir}/2`));
    rows.push(...await syncLatency(`${dir}/3`));
    rows.push(await resync(`${dir}/4`));
    rows.push(...await labRows(`${dir}/5`));
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
