/**
 * The example SMS gateway (examples/smsgw) run by a real keepwire as a supervised worker
 * subsystem, against a stand-in SMSC: submit → delivered to the SMSC → status delivered;
 * an idempotent resubmit; bad input answered with an error naming the field.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { waitFor } from "./helpers/procs.ts";
import { startSmsc } from "../examples/smsgw/smsc.ts";
import { MAX_TEXT } from "../examples/smsgw/app.ts";

const MODULE = new URL("../examples/smsgw/mod.ts", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

Deno.test("smsgw example: submit → delivered to the SMSC → status delivered; errors name the field", async () => {
  const smsc = startSmsc();
  const port = freePort();
  const rt = await startTestRuntime({
    subsystems: [{
      name: "smsgw",
      kind: "worker",
      module: MODULE,
      env: {
        SMSGW_LISTEN: `127.0.0.1:${port}`,
        SMSGW_SMSC_URL: smsc.url,
        SMSGW_ACCOUNTS: "acme:k-acme,globex:k-globex",
      },
    }],
  });
  const gw = `http://127.0.0.1:${port}`;
  const submit = (body: unknown, key = "k-acme") =>
    fetch(`${gw}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": key },
      body: JSON.stringify(body),
    });
  try {
    await waitFor(
      () =>
        rt.rt.module<
          { list(): { name: string; state: string }[] } & import("../mod/module.ts").Module
        >("supervisor")!
          .list().find((s) => s.name === "smsgw")?.state === "ready",
      60_000,
      "smsgw ready",
    );
    const r = await submit({ to: "+4915123456789", text: "hello", clientRef: "c-1" });
    assertEquals(r.status, 201);
    const m = await r.json();
    assertEquals([m.status, m.duplicate, m.durable], ["queued", false, "local"]);
    let st: { status: string; smscId: string | null } = { status: "", smscId: null };
    await waitFor(() => smsc.seen.has(m.id), 30_000, "the SMSC got it");
    const t0 = Date.now();
    while (st.status !== "delivered" && Date.now() - t0 < 30_000) {
      st = await (await fetch(`${gw}/v1/messages/${m.id}`, { headers: { "x-api-key": "k-acme" } }))
        .json();
      if (st.status !== "delivered") await new Promise((res) => setTimeout(res, 50));
    }
    assertEquals(st.status, "delivered");
    assert(st.smscId?.startsWith("smsc-"), JSON.stringify(st));
    // a retry with the same clientRef (after a timeout, a failover) is the same message
    const again = await submit({ to: "+4915123456789", text: "hello", clientRef: "c-1" });
    assertEquals(again.status, 200);
    const a = await again.json();
    assertEquals([a.id, a.duplicate], [m.id, true]);
    // another account's message is not visible
    const other = await fetch(`${gw}/v1/messages/${m.id}`, {
      headers: { "x-api-key": "k-globex" },
    });
    assertEquals(other.status, 404);
    await other.body?.cancel();
    assertEquals(smsc.stats().duplicates, 0);
    assertEquals(smsc.seen.get(m.id), 1);

    // bad input: each error names the field
    const cases: [unknown, string | undefined, number, string, string][] = [
      [{ to: "+4915123456789", text: "x" }, "no-such-key", 401, "unknown_account", "x-api-key"],
      [{ to: "+4915123456789", text: "x" }, "", 401, "missing_api_key", "x-api-key"],
      [{ text: "x" }, undefined, 422, "invalid_message", "to"],
      [{ to: "+4915123456789" }, undefined, 422, "invalid_message", "text"],
      [
        { to: "+4915123456789", text: "x".repeat(MAX_TEXT + 1) },
        undefined,
        422,
        "invalid_message",
        "text",
      ],
      [{ to: "12", text: "x" }, undefined, 422, "invalid_message", "to"],
    ];
    for (const [body, key, status, code, field] of cases) {
      const res = key === ""
        ? await fetch(`${gw}/v1/messages`, { method: "POST", body: JSON.stringify(body) })
        : await submit(body, key);
      const b = await res.json();
      assertEquals([res.status, b.error.code], [status, code], JSON.stringify(b));
      assert(field in b.error.fields, `${JSON.stringify(b)} names ${field}`);
    }
    const long = await (await submit({ to: "+4915123456789", text: "x".repeat(MAX_TEXT + 1) }))
      .json();
    assertEquals(long.error.fields.text, `at most ${MAX_TEXT} characters`);
    const missing = await (await submit({ to: "+4915123456789" })).json();
    assertEquals(missing.error.fields.text, "required");
    // nothing of the bad requests was stored
    const count = rt.rt.module<import("../mod/sdk/module.ts").SdkModule>("sdk")!.host.query(
      "smsgw",
      "SELECT count(*) AS n FROM smsgw_messages",
    );
    assertEquals(count, [{ n: 1 }]);
  } finally {
    await rt.close();
    await smsc.close();
  }
});
