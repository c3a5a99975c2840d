import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { daemonRequest } from "../mod/cli/client.ts";

Deno.test("web: /api/health is 200 JSON when essential parts are up, /api/status describes the box", async () => {
  const t = await startTestRuntime({ identity: { name: "gw-test" } });
  try {
    const r = await fetch(`${t.base}/api/health`);
    assertEquals(r.status, 200);
    assertStringIncludes(r.headers.get("content-type") ?? "", "application/json");
    const h = await r.json();
    assertEquals(h.ok, true);
    assertEquals(h.parts.store.ok, true);
    const s = await (await t.api("/api/status")).json();
    assertEquals([s.running, s.name, s.pid], [true, "gw-test", Deno.pid]);
    const html = await (await t.api("/")).text();
    assertStringIncludes(html, "gw-test");
    const nf = await t.api("/api/nope");
    assertEquals(nf.status, 404);
    assertEquals((await nf.json()).error.code, "not_found");
  } finally {
    await t.close();
  }
});

Deno.test("web: /api/health answers 503 when an essential part is down", async () => {
  const t = await startTestRuntime();
  try {
    t.rt.store.db.close(); // the store is essential
    const r = await fetch(`${t.base}/api/health`);
    assertEquals(r.status, 503);
    assertEquals((await r.json()).parts.store.ok, false);
  } finally {
    await t.close();
  }
});

Deno.test("web: /api/events filters and validates its query with field errors", async () => {
  const t = await startTestRuntime();
  try {
    for (let i = 0; i < 5; i++) {
      t.rt.bus.publishUntyped({
        module: "demo",
        kind: i % 2 ? "demo.odd" : "demo.even",
        severity: i === 4 ? "error" : "info",
        payload: { i },
      });
    }
    const get = async (q: string) => {
      const r = await t.api(`/api/events?${q}`);
      return { status: r.status, body: await r.json() };
    };
    let r = await get("kind=demo.odd");
    assertEquals(r.body.events.map((e: { payload: { i: number } }) => e.payload.i), [3, 1]);
    r = await get("module=demo&severity=error");
    assertEquals(r.body.events.length, 1);
    r = await get("kind=demo.*&limit=2");
    assertEquals(r.body.events.length, 2);
    const first = (await get("kind=demo.*&order=asc&limit=1")).body.events[0].id;
    r = await get(`since=${first}&kind=demo.*`);
    assertEquals(r.body.events.length, 4);
    r = await get("limit=0&severity=loud&bogus=1");
    assertEquals(r.status, 400);
    assertEquals(r.body.error.code, "bad_request");
    assert(r.body.error.fields.limit);
    assert(r.body.error.fields.severity);
    assertEquals(r.body.error.fields.bogus, "unknown field");
  } finally {
    await t.close();
  }
});

Deno.test("web: /api/events/stream delivers new events over SSE, resumes after Last-Event-ID", async () => {
  const t = await startTestRuntime();
  const ctrl = new AbortController();
  try {
    const before = t.rt.bus.publishUntyped({ module: "demo", kind: "demo.before" })!;
    const res = await t.api("/api/events/stream?kind=demo.*", {
      signal: ctrl.signal,
      headers: { "last-event-id": String(before.id - 1) },
    });
    assertEquals(res.status, 200);
    assertStringIncludes(res.headers.get("content-type") ?? "", "text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = Date.now() + 10_000;
    let published = false;
    while (!text.includes("demo.live") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      if (!published && text.includes("demo.before")) {
        t.rt.bus.publishUntyped({ module: "demo", kind: "demo.live", payload: { x: 1 } });
        t.rt.bus.publishUntyped({ module: "other", kind: "other.skip" });
        published = true;
      }
    }
    assertStringIncludes(text, "event: event");
    assertStringIncludes(text, "demo.before");
    assertStringIncludes(text, "demo.live");
    assert(!text.includes("other.skip"));
    ctrl.abort();
    await reader.cancel().catch(() => {});
  } finally {
    ctrl.abort();
    await t.close();
  }
});

Deno.test("web: the control socket in the data dir is root-only and serves the API", async () => {
  const t = await startTestRuntime();
  try {
    const st = await Deno.stat(`${t.dataDir}/keepwire.sock`);
    assertEquals(st.mode! & 0o777, 0o600);
    const h = await daemonRequest<{ ok: boolean }>(t.dataDir, "GET", "/api/health");
    assertEquals(h.ok, true);
  } finally {
    await t.close();
  }
  // removed on stop
  let gone = false;
  try {
    await Deno.stat(`${t.dataDir}/keepwire.sock`);
  } catch {
    gone = true;
  }
  assert(gone);
});

Deno.test("runtime: start and stop publish runtime.started and runtime.stopped in the journal", async () => {
  const t = await startTestRuntime();
  const dataDir = t.dataDir;
  await t.rt.stop("test");
  const { Store } = await import("../mod/store/mod.ts");
  const s = new Store({ path: `${dataDir}/keepwire.db` });
  try {
    const kinds = s.events({ kind: "runtime.", order: "asc" }).map((e) => e.kind);
    assertEquals(kinds, ["runtime.started", "runtime.stopped"]);
  } finally {
    s.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("web: TLS on first start generates a self-signed certificate, kept for later starts; cookies get Secure and __Host-", async () => {
  const t = await startTestRuntime({ web: { tls: { enabled: true } } });
  try {
    assertEquals(t.rt.web!.scheme, "https");
    const cert = await Deno.readTextFile(`${t.dataDir}/tls/cert.pem`);
    assertEquals((await Deno.stat(`${t.dataDir}/tls/key.pem`)).mode! & 0o777, 0o600);
    const client = Deno.createHttpClient({ caCerts: [cert] });
    const base = `https://${t.rt.web!.address}`;
    const r = await fetch(`${base}/api/health`, { client });
    assertEquals(r.status, 200);
    assertStringIncludes(r.headers.get("strict-transport-security") ?? "", "max-age");
    await r.body?.cancel();
    const { Users } = await import("../mod/web/users.ts");
    await new Users(t.rt.store).setPassword("admin", "a long enough secret");
    const login = await fetch(`${base}/api/login`, {
      client,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "a long enough secret" }),
    });
    const cookie = login.headers.get("set-cookie") ?? "";
    await login.body?.cancel();
    assertStringIncludes(cookie, "__Host-kw_session=");
    assertStringIncludes(cookie, "Secure");
    client.close();
    assert(t.rt.store.events({ kind: "web.tls_generated" }).length === 1);
  } finally {
    await t.close();
  }
});
