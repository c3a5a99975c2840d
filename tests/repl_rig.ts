/** A replicated pair in one process for the replication tests and the benchmark. */
import { Store } from "../mod/store/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import {
  type GroupSpec,
  MemoryTransport,
  Replicator,
  type ReplOptions,
  tableDigest,
} from "../mod/repl/mod.ts";
import { HttpTransport, REPL_PEER_PREFIX, replPeerMount } from "../mod/repl/http.ts";
import { createPeerFetch, peerRoutes } from "../mod/ha/peer.ts";
import { systemClock } from "../mod/module.ts";

/** The appliance-like schema the tests replicate. */
export const RIG_MIGRATIONS: string[] = [
  `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL);
   CREATE TABLE messages (id INTEGER PRIMARY KEY, client TEXT NOT NULL, body TEXT NOT NULL,
     status TEXT NOT NULL);
   CREATE TABLE msglog (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, line TEXT NOT NULL);
   CREATE TABLE local_only (k TEXT PRIMARY KEY, v TEXT);
   CREATE TABLE nopk (a TEXT, b TEXT);`,
];

/** Groups of the rig: config/users/messages sync, logs async. */
export const RIG_GROUPS: Record<string, GroupSpec> = {
  config: { durability: "sync" },
  strict: { durability: "sync", onStandbyLost: "refuse" },
  logs: { durability: "async" },
};

/** Tables of the rig. */
export const RIG_TABLES: Record<string, string> = {
  users: "config",
  messages: "strict",
  msglog: "logs",
};

/** One node of the rig. */
export interface RigNode {
  /** Its store. */
  store: Store;
  /** Its bus. */
  bus: EventBus;
  /** Events it published. */
  events: KwEvent[];
  /** Its engine (tests replace it to simulate a restart). */
  repl: Replicator;
  /** Its directory. */
  dir: string;
}

/** Build one node in `dir` (file database, WAL, as in production). */
export function rigNode(
  dir: string,
  name: string,
  extra: Partial<ReplOptions> = {},
): RigNode {
  const store = new Store({ path: `${dir}/${name}/store.db` });
  store.migrate("rig", RIG_MIGRATIONS);
  const bus = new EventBus(); // events kept in memory: the journal is not a replicated table here
  const events: KwEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const repl = new Replicator({
    db: store.db,
    pairId: "pair-test",
    groups: RIG_GROUPS,
    tables: RIG_TABLES,
    tailDir: `${dir}/${name}/tails`,
    bus,
    batchMs: 10,
    ackTimeoutMs: 2000,
    retryMs: 50,
    ...extra,
  });
  return { store, bus, events, repl, dir: `${dir}/${name}` };
}

/** A pair: `a` primary, `b` standby, linked by a memory transport a→b. */
export interface RigPair {
  /** The primary. */
  a: RigNode;
  /** The standby. */
  b: RigNode;
  /** a → b. */
  link: MemoryTransport;
  /** Temp directory. */
  dir: string;
  /** Stop both, close, remove. */
  close(): Promise<void>;
}

/** Build a pair; `a` is promoted, `b` demoted, linked. */
export async function rigPair(extra: Partial<ReplOptions> = {}): Promise<RigPair> {
  const dir = await Deno.makeTempDir({ prefix: "kw-repl-" });
  const a = rigNode(dir, "a", extra);
  const b = rigNode(dir, "b", extra);
  b.repl.demote();
  const link = new MemoryTransport(b.repl);
  a.repl.setTransport(link);
  a.repl.promote();
  return {
    a,
    b,
    link,
    dir,
    async close() {
      a.repl.stop();
      b.repl.stop();
      a.store.close();
      b.store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A pair linked over real HTTP on loopback (no directory of its own). */
export interface HttpRigPair {
  /** The primary. */
  a: RigNode;
  /** The standby. */
  b: RigNode;
  /** The primary's link to the standby. */
  transport: HttpTransport;
  /** Stop both engines, shut the server, close both stores (the caller removes `dir`). */
  close(): Promise<void>;
}

/**
 * Build a pair in `dir` linked as in production: `b` demoted, its replication routes
 * mounted on a peer link (the HA peer link's routes and authentication) with pair secret
 * `serverSecret`; `a` promoted and sending through the link's signing fetch with
 * `clientSecret` (default: the server's) and clock `now`. `fill` runs on `a` before
 * promotion.
 */
export function httpRigPair(dir: string, opts: {
  serverSecret: string;
  clientSecret?: string;
  now?: () => number;
  extra?: Partial<ReplOptions>;
  fill?: (a: RigNode) => void;
  /** Frames over one `/stream` (default) or one POST each (false). */
  stream?: boolean;
  /** The port the primary connects to, given the standby's (a proxy in between). */
  via?: (port: number) => number;
}): HttpRigPair {
  const a = rigNode(dir, "a", opts.extra);
  const b = rigNode(dir, "b", opts.extra);
  opts.fill?.(a);
  b.repl.demote();
  const app = peerRoutes({
    secret: opts.serverSecret,
    pairId: "pair-test",
    clock: systemClock,
    health: () => {
      throw new Error("no health here");
    },
    onRefused: () => {},
    mounts: [replPeerMount(b.repl)],
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const clock = opts.now ? { ...systemClock, now: opts.now } : systemClock;
  const transport = new HttpTransport({
    baseUrl: `http://127.0.0.1:${
      opts.via?.(server.addr.port) ?? server.addr.port
    }${REPL_PEER_PREFIX}`,
    fetch: createPeerFetch({
      secret: opts.clientSecret ?? opts.serverSecret,
      pairId: "pair-test",
      node: "a",
      clock,
    }),
    stream: opts.stream,
  });
  a.repl.setTransport(transport);
  a.repl.promote();
  return {
    a,
    b,
    transport,
    async close() {
      a.repl.stop();
      b.repl.stop();
      transport.close();
      await server.shutdown();
      a.store.close();
      b.store.close();
    },
  };
}

/** Digests of the replicated tables. */
export function digests(n: RigNode): Record<string, string> {
  return Object.fromEntries(Object.keys(RIG_TABLES).map((t) => [t, tableDigest(n.store.db, t)]));
}

/** Row count of a table. */
export function count(n: RigNode, table: string): number {
  return Number(
    (n.store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n,
  );
}

/** Wait until `cond` holds (generous deadline; polls). */
export async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
