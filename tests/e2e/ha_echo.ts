/**
 * The lab's "application": a UDP echo service that answers each datagram with
 * `<node> <datagram>`, so the client can tell which node served it.
 * Usage: deno run -A tests/e2e/ha_echo.ts NODE PORT
 * @module
 */
const [node, port] = Deno.args;
const sock = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: Number(port) });
const prefix = new TextEncoder().encode(`${node} `);
console.log(`echo ${node} on ${port}`);
for await (const [data, addr] of sock) {
  const out = new Uint8Array(prefix.length + data.length);
  out.set(prefix);
  out.set(data, prefix.length);
  try {
    await sock.send(out, addr);
  } catch { /* the address moved away mid-reply: the client counts it lost */ }
}
