/** Test helper: raw HTTP/1.1 over a plain TCP socket, for requests fetch() will not send. */

/**
 * Send `head` (a whole raw request, any Host header) to `addr` ("host:port") and return the
 * status code of the answer's first line; 0 when none came. No answer within `timeoutMs`
 * counts as none (the socket is closed), e.g. a server waiting for a body that never comes.
 */
export async function rawStatus(addr: string, head: string, timeoutMs: number): Promise<number> {
  const i = addr.lastIndexOf(":");
  const conn = await Deno.connect({ hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
  const deadline = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, timeoutMs);
  try {
    await conn.write(new TextEncoder().encode(head));
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  } finally {
    clearTimeout(deadline);
    try {
      conn.close();
    } catch { /* closed by the deadline */ }
  }
}
