/**
 * Chaos: kill -9 of the replication primary at random moments during `sync` writes.
 *
 * Two processes on loopback: a standby (this file run as `standby`) serving the HTTP
 * replication routes, and a primary (this file run as `primary`) with four writers
 * inserting rows through `Replicator.write("orders", ...)`, a `sync` group; it prints
 * `ACK <id>` for every write the standby confirmed. The scenario SIGKILLs the primary
 * at a random moment, then reads the standby's database: every acknowledged id must be
 * there. The primary restarts — alternately resuming its epoch (its log of unacknowledged
 * frames is replayed) and promoting to a new one (the standby is resynced from a
 * snapshot) — and the next kill follows. An injection survived when no acknowledged write is missing
 * on the standby after it.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { Store } from "../mod/store/mod.ts";
import { Replicator } from "../mod/repl/mod.ts";
import { HttpTransport, REPL_PEER_PREFIX, replPeerMount } from "../mod/repl/http.ts";
import { createPeerFetch, peerRoutes } from "../mod/ha/peer.ts";
import { systemClock } from "../mod/module.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

const SECRET = "chaos-repl-secret-0123456789";
const MIGRATIONS = [
  "CREATE TABLE orders (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, body TEXT NOT NULL)",
];

function engine(dir: string): { store: Store; repl: Replicator } {
  const store = new Store({ path: join(dir, "store.db") });
  store.migrate("chaos", MIGRATIONS);
  const repl = new Replicator({
    db: store.db,
    pairId: "chaos-pair",
    groups: { orders: { durability: "sync" } },
    tables: { orders: "orders" },
    tailDir: join(dir, "tails"),
    batchMs: 20,
    ackTimeoutMs: 3000,
  });
  return { store, repl };
}

async function runStandby(dir: string): Promise<void> {
  const { repl } = engine(dir);
  repl.demote();
  const app = peerRoutes({
    secret: SECRET,
    pairId: "chaos-pair",
    clock: systemClock,
    health: () => {
      throw new Error("no health here");
    },
    onRefused: () => {},
    mounts: [replPeerMount(repl)],
  });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: (a) => console.log(`READY ${a.port}`),
  }, app.fetch);
  Deno.addSignalListener("SIGTERM", () => {
    server.shutdown().then(() => Deno.exit(0));
  });
  await server.finished;
}

async function runPrimary(dir: string, url: string, mode: string): Promise<void> {
  const { store, repl } = engine(dir);
  repl.setTransport(
    new HttpTransport({
      baseUrl: url,
      fetch: createPeerFetch({
        secret: SECRET,
        pairId: "chaos-pair",
        node: "primary",
        clock: systemClock,
      }),
    }),
  );
  if (mode === "resume") repl.resume();
  else repl.promote();
  let next = Number(
    (store.db.prepare("SELECT COALESCE(MAX(id), 0) AS m FROM orders").get() as { m: number }).m,
  ) + 1;
  const enc = new TextEncoder();
  const writer = async (w: number) => {
    while (true) {
      const id = next++;
      const r = await repl.write(
        "orders",
        (db) =>
          db.prepare("INSERT INTO orders (id, writer, body) VALUES (?, ?, ?)").run(
            id,
            w,
            "x".repeat(64),
          ),
      );
      if (r.replicated) Deno.stdout.writeSync(enc.encode(`ACK ${id}\n`));
      else await new Promise((res) => setTimeout(res, 20));
    }
  };
  await Promise.all([1, 2, 3, 4].map(writer));
}

/** Lines of a child's stdout, as they come. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", new URL(import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

function standbyIds(dir: string): Set<number> {
  const db = new DatabaseSync(join(dir, "store.db"), { readOnly: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    return new Set(
      (db.prepare("SELECT id FROM orders").all() as { id: number }[]).map((r) => Number(r.id)),
    );
  } finally {
    db.close();
  }
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "repl_kill",
  description:
    "kill -9 of a replication primary at random moments during sync writes over HTTP on loopback; every acknowledged write must be on the standby",
  async run({ bounded, log }): Promise<ChaosResult> {
    const kills = bounded ? 8 : 25;
    const root = await Deno.makeTempDir({ prefix: "kw-chaos-repl-" });
    const pdir = join(root, "primary"), sdir = join(root, "standby");
    await Deno.mkdir(pdir), await Deno.mkdir(sdir);
    const standby = spawn(["standby", sdir]);
    let primary: Deno.ChildProcess | undefined;
    const acked = new Set<number>();
    let survived = 0, lost = 0, missingTotal = 0;
    try {
      const sl = lines(standby.stdout);
      const ready = await sl.next();
      const m = /^READY (\d+)$/.exec(ready.value ?? "");
      if (!m) throw new Error(`standby did not start: ${ready.value}`);
      const url = `http://127.0.0.1:${m[1]}${REPL_PEER_PREFIX}`;
      for (let k = 0; k < kills; k++) {
        // every other restart resumes its epoch (log replay), the others promote (resync)
        primary = spawn(["primary", pdir, url, k % 2 ? "resume" : "promote"]);
        const child = primary;
        const before = acked.size;
        let first!: () => void;
        const firstAck = new Promise<void>((r) => first = r);
        const reader = (async () => {
          for await (const l of lines(child.stdout)) {
            const a = /^ACK (\d+)$/.exec(l);
            if (a) acked.add(Number(a[1])), first();
          }
        })();
        const deadline = setTimeout(() => first(), 60_000);
        await firstAck; // the primary is up and the standby in sync
        clearTimeout(deadline);
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 700));
        child.kill("SIGKILL");
        await child.status;
        await reader;
        primary = undefined;
        const have = standbyIds(sdir);
        const missing = [...acked].filter((id) => !have.has(id));
        if (missing.length) {
          lost++;
          missingTotal += missing.length;
          log(
            `kill ${k + 1}: ${missing.length} acknowledged writes missing: ${missing.slice(0, 10)}`,
          );
        } else survived++;
        log(
          `kill ${k + 1}/${kills}: ${
            acked.size - before
          } writes acknowledged in this life, standby has ${have.size} rows`,
        );
      }
      return {
        injected: kills,
        survived,
        lost,
        notes:
          `kills; ${acked.size} acknowledged sync writes, ${missingTotal} missing on the standby`,
      };
    } finally {
      try {
        primary?.kill("SIGKILL");
        await primary?.status;
      } catch { /* gone */ }
      try {
        standby.kill("SIGTERM");
      } catch { /* gone */ }
      await standby.status;
      await standby.stdout.cancel().catch(() => {});
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
};

if (import.meta.main) {
  const [role, dir, url, mode] = Deno.args;
  if (role === "standby") await runStandby(dir);
  else if (role === "primary") await runPrimary(dir, url, mode);
  else {
    const r = await scenario.run({ bounded: true, log: console.log });
    console.log(r);
  }
}
