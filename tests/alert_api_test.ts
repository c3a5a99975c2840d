/**
 * The alert API through a real runtime: test-send answers with the server's reply,
 * recipients set through the API are validated (each bad field named), stored and kept
 * over a restart, the outbox and history list deliveries, retry answers 409 unless failed,
 * and no secret is answered (the alert API and the web app's config redaction).
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { startSmsGateway, waitFor } from "./alert_servers.ts";
import { redact } from "../mod/web/app.ts";
import { validateConfig } from "../mod/config/mod.ts";
import type { ConfigInput } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import type { AlertModule } from "../mod/alert/mod.ts";

Deno.test("alert API: test-send, recipients validated and stored, outbox, retry, secrets never answered", async () => {
  const gw = startSmsGateway({ user: "kw", password: "gw-pass-77" });
  const alert = {
    channels: {
      sms: {
        type: "sms",
        preset: "ozeki",
        url: `${gw.url}/api`,
        username: "kw",
        password: "gw-pass-77",
      },
      hook: { type: "webhook", url: `${gw.url}/hook`, secret: "whsec_" + btoa("x".repeat(32)) },
    },
    recipients: [{ name: "duty", channel: "sms", to: "+3611111111" }],
    retry: { initialMs: 100, maxMs: 200 },
  };
  gw.setAnswer((r) => r.path === "/hook" ? { status: 404, body: "no such hook" } : null);
  const t = await startTestRuntime({ alert } as unknown as ConfigInput);
  const json = async (path: string, init?: RequestInit) => {
    const r = await t.api(path, {
      ...init,
      headers: { "content-type": "application/json", origin: t.base },
    });
    return { status: r.status, body: await r.json() };
  };
  try {
    // test-send: the gateway's own answer comes back
    const test = await json("/api/alert/test", {
      method: "POST",
      body: JSON.stringify({ channel: "sms" }),
    });
    assertEquals(test.status, 200);
    assertEquals(test.body.ok, true);
    assertStringIncludes(test.body.answer, "<statuscode>0</statuscode>");
    assertEquals(gw.requests.at(-1)!.query.recipient, "+3611111111");
    const nosuch = await json("/api/alert/test", {
      method: "POST",
      body: JSON.stringify({ channel: "fax" }),
    });
    assertEquals(nosuch.status, 404);
    assertEquals(nosuch.body.error.code, "alert_channel_not_found");
    const badBody = await json("/api/alert/test", {
      method: "POST",
      body: JSON.stringify({ chanel: "sms" }),
    });
    assertEquals(badBody.status, 400);
    assert("channel" in badBody.body.error.fields);

    // recipients: each bad field named, nothing changed
    const bad = await json("/api/alert/recipients", {
      method: "PUT",
      body: JSON.stringify({
        recipients: [
          { name: "duty", channel: "sms", to: "call me maybe" },
          { name: "mail", channel: "smtp", to: "a@b.c" },
          { name: "Bad Name", channel: "sms", to: "+361" },
        ],
      }),
    });
    assertEquals(bad.status, 400);
    assertEquals(bad.body.error.code, "alert_bad_request");
    assert("recipients[2].name" in bad.body.error.fields, JSON.stringify(bad.body));
    const bad2 = await json("/api/alert/recipients", {
      method: "PUT",
      body: JSON.stringify({
        recipients: [
          { name: "duty", channel: "sms", to: "call me maybe" },
          { name: "mail", channel: "smtp", to: "a@b.c" },
        ],
      }),
    });
    assertStringIncludes(bad2.body.error.fields["recipients[0].to"], "not a phone number");
    assertStringIncludes(bad2.body.error.fields["recipients[1].channel"], "no channel named smtp");
    assertEquals((await json("/api/alert/recipients")).body.source, "config");
    const put = await json("/api/alert/recipients", {
      method: "PUT",
      body: JSON.stringify({
        recipients: [{ name: "night", channel: "sms", to: "+3622222222" }, {
          name: "siem",
          channel: "hook",
        }],
      }),
    });
    assertEquals(put.status, 200);
    assertEquals(put.body.source, "api");

    // an alert goes to the new recipients
    t.rt.bus.publish({
      module: "auth",
      kind: "auth.locked",
      severity: "warning",
      payload: { user: "admin", forMs: 600_000 },
    });
    await waitFor("sms sent", () => gw.requests.some((r) => r.query.recipient === "+3622222222"));
    await waitFor(
      "the webhook failed for good",
      async () => (await json("/api/alert/outbox?status=failed")).body.deliveries.length === 1,
    );
    const failed = (await json("/api/alert/outbox?status=failed")).body.deliveries[0];
    assertEquals(failed.recipient, "siem");
    assertStringIncludes(failed.lastError, "HTTP 404: no such hook");
    const sent = (await json("/api/alert/outbox?status=sent")).body.deliveries;
    assertEquals(sent.length, 1);
    assertEquals(
      (await json(`/api/alert/outbox/${sent[0].id}/retry`, { method: "POST" })).status,
      409,
    );
    assertEquals((await json("/api/alert/outbox/kwa_nope")).status, 404);
    const hist = await json("/api/alert/history");
    assertEquals(hist.body.deliveries.length, 2);
    const st = await json("/api/alert");
    assertEquals(st.body.counts.sent, 1);

    // secrets never answered
    const cfg = await json("/api/alert/config");
    assertEquals(cfg.body.channels.sms.password, "(redacted)");
    assertEquals(cfg.body.channels.hook.secret, "(redacted)");
    assertEquals(cfg.body.channels.sms.username, "kw");
    assert(!JSON.stringify(cfg.body).includes("gw-pass-77"));
    const outbox = await json("/api/alert/outbox");
    assert(!JSON.stringify(outbox.body).includes("gw-pass-77"));

    // the Alerts page: counts, a test form per channel, the failed one with its retry button
    const page = await t.api("/alerts");
    assertEquals(page.status, 200);
    const html = await page.text();
    assertStringIncludes(html, "<h1>Alerts</h1>");
    assertStringIncludes(html, "pending 0 · sent 1 · failed 1");
    assertStringIncludes(html, 'data-api="/api/alert/test"');
    assertStringIncludes(html, 'value="sms"');
    assertStringIncludes(html, `data-api="/api/alert/outbox/${failed.id}/retry"`);
    assertStringIncludes(html, "HTTP 404: no such hook");
    assertStringIncludes(html, "+3622222222");
    assertStringIncludes(html, 'href="/alerts"');
    assert(!html.includes("gw-pass-77"), "no secret on the page");

    // stored recipients outlive a restart
    await t.rt.stop("restart");
    const rt2 = new Runtime(
      validateConfig({
        alert,
        dataDir: t.dataDir,
        governor: { enabled: false },
        web: { listen: "127.0.0.1:0" },
      } as unknown as ConfigInput),
    );
    await rt2.start();
    try {
      const a = rt2.module<AlertModule>("alert")!;
      assertEquals(a.recipients().source, "api");
      assertEquals(a.recipients().recipients.map((r) => r.name), ["night", "siem"]);
      assertEquals(a.setRecipients(null).source, "config");
    } finally {
      await rt2.stop("done");
    }
  } finally {
    await t.close();
    await gw.stop();
  }
});

Deno.test("the web app's config redaction hides every alert secret", () => {
  const c = validateConfig({
    alert: {
      channels: {
        m: { type: "email", host: "h", from: "a@b.example.org", user: "u", password: "P1" },
        s: { type: "sms", url: "http://g/", password: "P2", apiKey: "P3" },
        w: { type: "webhook", url: "http://w/", secret: "whsec_" + btoa("y".repeat(32)) },
      },
    },
  } as unknown as ConfigInput);
  const text = JSON.stringify(redact(c));
  for (const s of ["P1", "P2", "P3", "whsec_"]) assert(!text.includes(s), `${s} redacted`);
});
