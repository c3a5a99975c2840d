/**
 * The lab's client: one UDP probe every 10 ms to the virtual address (an exact
 * schedule: a late timer sends what is due with its own sequence number), for
 * DURATION ms (0: until its stdin closes), then prints one JSON object: the start time
 * (epoch ms), the number sent, and every reply as [seq, node, epoch ms received].
 * Usage: deno run -A tests/e2e/ha_prober.ts ADDRESS PORT DURATION_MS [INTERVAL_MS]
 * @module
 */
const [address, port, durationArg, intervalArg] = Deno.args;
const duration = Number(durationArg);
const interval = Number(intervalArg ?? 10);
const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
const target = { transport: "udp" as const, hostname: address, port: Number(port) };
const replies: [number, string, number][] = [];
const t0 = Date.now();
console.error("probing");
let total = duration > 0 ? Math.floor(duration / interval) : Infinity;
if (duration <= 0) {
  // run until stdin closes
  void (async () => {
    for await (const _ of Deno.stdin.readable) { /* ignore input */ }
    total = Math.floor((Date.now() - t0) / interval);
  })();
}
let sent = 0;
const enc = new TextEncoder();
const dec = new TextDecoder();

const receiver = (async () => {
  try {
    for await (const [data] of sock) {
      const [node, seq] = dec.decode(data).split(" ");
      replies.push([Number(seq), node, Date.now()]);
    }
  } catch { /* closed */ }
})();

while (sent < total) {
  const due = Math.min(total, Math.floor((Date.now() - t0) / interval) + 1);
  while (sent < due) {
    try {
      await sock.send(enc.encode(String(sent)), target);
    } catch { /* no route for a moment: counted lost */ }
    sent++;
  }
  await new Promise((r) => setTimeout(r, Math.max(1, t0 + sent * interval - Date.now())));
}
await new Promise((r) => setTimeout(r, 300)); // late replies
sock.close();
await receiver;
console.log(JSON.stringify({ t0, interval, sent, replies }));
