/**
 * No alert secret (SMTP password, SMS password and API key, webhook secret), from the
 * config file or set on the Alerts page, appears in any API answer, page, event or metric,
 * even after failed deliveries and test sends whose errors and answers could carry them.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { freePort, startSmsGateway, waitFor } from "./alert_servers.ts";
import type { ConfigInput } from "../mod/config/mod.ts";
import type { AlertModule } from "../mod/alert/mod.ts";

const SECRETS = {
  smtp: "smtp-Secret-4711",
  smsPass: "sms-Pass-0815",
  apiKey: "apikey-In-Path-9921",
  hook: "whsec_" + btoa("file-hook-secret-abc-123-xyz"),
  edited: "whsec_" + btoa("edited-hook-secret-def-456"),
  echoed: "echo-Key-5566",
};

Deno.test("alert secrets: never in any API answer, page, event or metric", async () => {
  const gw = startSmsGateway();
  // the echo gateway repeats the request back (as a misbehaving one might)
  gw.setAnswer((r) =>
    r.path.startsWith("/echo") ? { status: 500, body: `you sent ${r.path} ${r.body}` } : null
  );
  const dead = freePort();
  const alert = {
    channels: {
      mail: {
        type: "email",
        host: "127.0.0.1",
        port: dead,
        security: "none",
        user: "kw",
        password: SECRETS.smtp,
        from: "kw@example.org",
        timeoutMs: 2000,
      },
      // the API key in the URL's path, where no query redaction reaches, to a closed port
      sms: {
        type: "sms",
        preset: "json",
        url: `http://127.0.0.1:${dead}/{apiKey}/send`,
        password: SECRETS.smsPass,
        apiKey: SECRETS.apiKey,
        timeoutMs: 2000,
      },
      echo: {
        type: "sms",
        preset: "custom",
        method: "POST",
        url: `${gw.url}/echo/{apiKey}`,
        body: "key={apiKey}&to={to}",
        apiKey: SECRETS.echoed,
      },
      hook: { type: "webhook", url: `http://127.0.0.1:${dead}/hook`, secret: SECRETS.hook },
    },
    recipients: [
      { name: "ops", channel: "mail", to: "ops@example.org" },
      { name: "duty", channel: "sms", to: "+3611111111" },
      { name: "echo", channel: "echo", to: "+3622222222" },
      { name: "siem", channel: "hook" },
    ],
    retry: { initialMs: 100, maxMs: 200, maxAttempts: 2 },
  };
  const t = await startTestRuntime({ alert } as unknown as ConfigInput);
  const post = (path: string, body: unknown) =>
    t.api(path, {
      method: "POST",
      headers: { "content-type": "application/json", origin: t.base },
      body: JSON.stringify(body),
    });
  const texts: [string, string][] = [];
  try {
    // a secret set on the Alerts page (API) too
    const edited = await post("/api/alert/channels", {
      name: "hook2",
      type: "webhook",
      url: `http://127.0.0.1:${dead}/hook2`,
      secret: SECRETS.edited,
    });
    texts.push(["POST /api/alert/channels", await edited.text()]);
    assertEquals(edited.status, 200);
    for (const channel of ["mail", "sms", "echo", "hook", "hook2"]) {
      const r = await post("/api/alert/test", { channel });
      texts.push([`POST /api/alert/test ${channel}`, await r.text()]);
    }
    // deliveries that fail (their errors are stored and shown)
    t.rt.bus.publish({
      module: "auth",
      kind: "auth.locked",
      severity: "warning",
      payload: { user: "admin", forMs: 600_000 },
    });
    const a = t.rt.module<AlertModule>("alert")!;
    await waitFor("every delivery failed for good", () => a.status().counts.failed === 4, 60_000);

    // every GET route without a parameter, every route of the alert API with its ids,
    // every page in the navigation, the journal, the metrics
    const paths = new Set<string>();
    for (const r of t.rt.web!.app!.routes) {
      if (r.method === "GET" && !r.path.includes(":") && !r.path.includes("*")) paths.add(r.path);
    }
    for (const d of a.deliveries({ limit: 100 })) paths.add(`/api/alert/outbox/${d.id}`);
    paths.add("/api/events?limit=1000");
    paths.add("/api/alert/history?limit=100");
    const home = await (await t.api("/")).text();
    for (const m of home.matchAll(/<a href="(\/[^"]*)"/g)) paths.add(m[1]);
    paths.delete("/api/events/stream");
    assert(paths.has("/alerts") && paths.has("/settings") && paths.has("/api/alert/config"));
    for (const p of paths) {
      const r = await t.api(p);
      texts.push([`GET ${p} (${r.status})`, await r.text()]);
    }
    // the failures really carry the places a secret could hide (the test can fail)
    const failed = a.deliveries({ status: "failed" }).map((d) => d.lastError ?? "");
    assert(failed.some((e) => e.includes("you sent")), `echo not recorded: ${failed}`);
    assert(failed.some((e) => e.includes("(redacted)")), `nothing was scrubbed: ${failed}`);
    const leaks = texts.flatMap(([where, text]) =>
      Object.entries(SECRETS).filter(([, s]) => text.includes(s)).map(([k]) => `${k} in ${where}`)
    );
    assertEquals(leaks, []);
    console.log(`checked ${texts.length} answers and pages`);
  } finally {
    await t.close();
    await gw.stop();
  }
});
