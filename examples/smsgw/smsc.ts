/**
 * A stand-in SMSC for the example gateway and its tests: `POST /submit` with
 * `{id, to, text, from?, node?}` answers `{smscId}`; it counts every message id it got,
 * so a second submit of the same id is a duplicate. `GET /stats` tells the counts.
 *
 * Run alone: `deno run -A examples/smsgw/smsc.ts [port]` (default 9100).
 * @module
 */

/** What the stand-in received. */
export interface SmscStats {
  /** Submits accepted (duplicates included). */
  received: number;
  /** Distinct message ids. */
  distinct: number;
  /** Submits of an id received before. */
  duplicates: number;
  /** Submits by the node that sent them. */
  byNode: Record<string, number>;
}

/** A running stand-in. */
export interface Smsc {
  /** `http://127.0.0.1:PORT/submit`. */
  url: string;
  /** Port. */
  port: number;
  /** Counts by message id. */
  seen: Map<string, number>;
  /** Node that first sent each id. */
  sender: Map<string, string>;
  /** Every receipt of an id received more than once: who sent it, when (epoch ms). */
  repeats(): { id: string; sends: { node: string; at: number }[] }[];
  /** The counts. */
  stats(): SmscStats;
  /** Answer this many ms later (a slow SMSC builds a queue). */
  delayMs: number;
  /** Answer 503 to everything while true. */
  failing: boolean;
  /** Stop. */
  close(): Promise<void>;
}

/** Start a stand-in on `hostname:port` (port 0: any). */
export function startSmsc(port = 0, hostname = "127.0.0.1"): Smsc {
  const seen = new Map<string, number>();
  const sender = new Map<string, string>();
  const receipts = new Map<string, { node: string; at: number }[]>();
  let received = 0;
  const byNode: Record<string, number> = {};
  const smsc: Smsc = {
    url: "",
    port: 0,
    seen,
    sender,
    repeats: () =>
      [...receipts].filter(([, r]) => r.length > 1).map(([id, r]) => ({ id, sends: [...r] })),
    delayMs: 0,
    failing: false,
    stats: () => ({
      received,
      distinct: seen.size,
      duplicates: [...seen.values()].reduce((a, n) => a + n - 1, 0),
      byNode: { ...byNode },
    }),
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname, port, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/stats") return Response.json(smsc.stats());
    if (url.pathname !== "/submit" || req.method !== "POST") {
      return new Response(null, { status: 404 });
    }
    const b = await req.json().catch(() => null) as { id?: string; node?: string } | null;
    if (!b?.id) return Response.json({ error: "id required" }, { status: 400 });
    if (smsc.delayMs) await new Promise((r) => setTimeout(r, smsc.delayMs));
    if (smsc.failing) return Response.json({ error: "busy" }, { status: 503 });
    received++;
    seen.set(b.id, (seen.get(b.id) ?? 0) + 1);
    if (!sender.has(b.id)) sender.set(b.id, b.node ?? "?");
    const r = receipts.get(b.id) ?? [];
    r.push({ node: b.node ?? "?", at: Date.now() });
    receipts.set(b.id, r);
    byNode[b.node ?? "?"] = (byNode[b.node ?? "?"] ?? 0) + 1;
    return Response.json({ smscId: `smsc-${received}` });
  });
  smsc.port = server.addr.port;
  smsc.url = `http://${hostname}:${smsc.port}/submit`;
  return smsc;
}

if (import.meta.main) {
  const s = startSmsc(Number(Deno.args[0] ?? 9100), Deno.args[1] ?? "127.0.0.1");
  console.log(`stand-in SMSC on ${s.url} (GET /stats for the counts)`);
}
