/**
 * Alert channels, recipients and rules edited at run time (the Alerts page's API): each
 * bad field named, nothing stored on a refusal; stored edits outlive a restart and are
 * what `keepwire config show` prints (secrets redacted); a secret left empty keeps the
 * stored one (proved by a receiver that verifies signatures with `standardwebhooks`).
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { kw } from "./helpers/cli.ts";
import { startWebhookReceiver, waitFor } from "./alert_servers.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import type { AlertModule } from "../mod/alert/mod.ts";

const SECRET = "whsec_" + btoa("edit-test-secret-".repeat(2));

Deno.test("alert edits: validated with named fields, stored, kept over a restart, shown by config show redacted; an empty secret keeps the stored one", async () => {
  const hook = startWebhookReceiver(SECRET);
  const t = await startTestRuntime({ identity: { name: "gw-edit" } });
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await t.api(path, {
      method,
      headers: { "content-type": "application/json", origin: t.base },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  let restarted: Runtime | undefined;
  try {
    // a bad channel: each bad field named, nothing stored
    const bad = await call("POST", "/api/alert/channels", {
      name: "siem",
      type: "webhook",
      url: "ftp://nowhere",
      secret: "not-a-whsec",
    });
    assertEquals(bad.status, 400, JSON.stringify(bad.body));
    assertStringIncludes(bad.body.error.fields.url, "http");
    assertStringIncludes(bad.body.error.fields.secret, "whsec_");
    const badName = await call("POST", "/api/alert/channels", {
      name: "Bad Name",
      type: "webhook",
      url: hook.url,
      secret: SECRET,
    });
    assertEquals(badName.status, 400);
    assert("name" in badName.body.error.fields, JSON.stringify(badName.body));
    assertEquals((await call("GET", "/api/alert/config")).body.channels, {});

    // a good one; the answer never carries the secret
    const ok = await call("POST", "/api/alert/channels", {
      name: "siem",
      type: "webhook",
      url: hook.url,
      secret: SECRET,
    });
    assertEquals(ok.status, 200, JSON.stringify(ok.body));
    const cfg = await call("GET", "/api/alert/config");
    assertEquals(cfg.body.channels.siem.secret, "(redacted)");
    assertEquals(cfg.body.edited, ["channels"]);
    assert(!JSON.stringify(cfg.body).includes(SECRET));

    // recipients: a webhook has no address; an unknown channel is named
    const badRec = await call("POST", "/api/alert/recipients", {
      name: "siem",
      channel: "siem",
      to: "+3611111111",
    });
    assertEquals(badRec.status, 400);
    assertStringIncludes(badRec.body.error.fields.to, "webhook");
    const noChan = await call("POST", "/api/alert/recipients", { name: "x", channel: "fax" });
    assertEquals(noChan.status, 400);
    assertStringIncludes(noChan.body.error.fields.channel, "fax");
    assertEquals(
      (await call("POST", "/api/alert/recipients", { name: "siem", channel: "siem" })).status,
      200,
    );

    // the channel saved again with its secret left empty: the stored secret is kept (the
    // receiver verifies the signature of the test send with it)
    assertEquals(
      (await call("POST", "/api/alert/channels", {
        name: "siem",
        type: "webhook",
        url: `${hook.url}?edited=1`,
        secret: "",
      })).status,
      200,
    );
    const test = await call("POST", "/api/alert/test", { channel: "siem" });
    assertEquals(test.body.ok, true, JSON.stringify(test.body));
    assertStringIncludes(test.body.answer, "HTTP 200");
    assertEquals(hook.rejected, []);
    assertEquals(hook.received.length, 1);

    // rules: recipients must exist; lists may be text (what a form sends)
    const badRule = await call("POST", "/api/alert/rules", {
      kinds: "test.*",
      recipients: "nobody",
    });
    assertEquals(badRule.status, 400);
    assertStringIncludes(badRule.body.error.fields.recipients, "nobody");
    const badSev = await call("POST", "/api/alert/rules", {
      kinds: "test.*",
      minSeverity: "loud",
      recipients: "siem",
    });
    assertEquals(badSev.status, 400);
    assert("minSeverity" in badSev.body.error.fields, JSON.stringify(badSev.body));
    const rule = await call("POST", "/api/alert/rules", {
      kinds: "test.*, other.thing",
      minSeverity: "notice",
      recipients: "siem",
    });
    assertEquals(rule.status, 200, JSON.stringify(rule.body));
    assertEquals((await call("GET", "/api/alert/config")).body.rules[0].kinds, [
      "test.*",
      "other.thing",
    ]);
    t.rt.bus.publishUntyped({
      module: "test",
      kind: "test.ping",
      severity: "warning",
      payload: {},
    });
    await waitFor("the rule's alert at the webhook", () => hook.received.length === 2);

    // removals that would leave a dangling reference are refused, naming what holds on
    const delRec = await call("DELETE", "/api/alert/recipients/siem");
    assertEquals(delRec.status, 400);
    assertStringIncludes(delRec.body.error.message, "rule");
    const delChan = await call("DELETE", "/api/alert/channels/siem");
    assertEquals(delChan.status, 400);
    assertStringIncludes(delChan.body.error.message, "siem");
    assertEquals((await call("DELETE", "/api/alert/rules/7")).status, 404);

    // a viewer sees the page without forms and may not edit; a cross-site form post is refused
    const { Users } = await import("../mod/web/users.ts");
    const viewer = new Users(t.rt.store).createToken("edit-viewer", "viewer").token;
    const asViewer = { authorization: `Bearer ${viewer}` };
    const viewerPage = await (await fetch(`${t.base}/alerts`, { headers: asViewer })).text();
    assertStringIncludes(viewerPage, 'data-channel="siem"');
    for (const id of ["add-webhook", "add-recipient", "add-rule"]) {
      assert(!viewerPage.includes(`id="${id}"`), `a viewer gets the ${id} form`);
    }
    const viewerPost = await fetch(`${t.base}/api/alert/recipients`, {
      method: "POST",
      headers: { ...asViewer, "content-type": "application/json" },
      body: JSON.stringify({ name: "v", channel: "siem" }),
    });
    assertEquals(viewerPost.status, 403);
    await viewerPost.body?.cancel();
    const crossSite = await fetch(`${t.base}/api/alert/channels`, {
      method: "POST",
      headers: { "content-type": "text/plain", origin: "http://evil.example" },
      body: JSON.stringify({
        name: "evil",
        type: "webhook",
        url: "http://evil.example/",
        secret: SECRET,
      }),
    });
    assertEquals(crossSite.status, 403);
    await crossSite.body?.cancel();

    // the settings page shows the section as in force, the secret redacted
    const settings = await (await t.api("/settings")).text();
    assertStringIncludes(settings, 'data-path="alert.channels.siem.secret"');
    assertStringIncludes(settings, `${hook.url}?edited=1`);
    assert(!settings.includes(SECRET), "the settings page shows the webhook secret");

    // config show (from the data directory, daemon running): the edits, secrets redacted
    const shown = await kw(["config", "show", "-d", t.dataDir]);
    assertEquals(shown.code, 0, shown.stderr);
    assert(!shown.stdout.includes(SECRET), "config show printed the webhook secret");
    const alert = JSON.parse(shown.stdout).alert;
    assertEquals(alert.channels.siem.secret, "(redacted)");
    assertEquals(alert.channels.siem.url, `${hook.url}?edited=1`);
    assertEquals(alert.recipients.map((r: { name: string }) => r.name), ["siem"]);
    assertEquals(alert.rules[0].recipients, ["siem"]);

    // a restart keeps the edits; the secret still signs
    await t.rt.stop("restart");
    restarted = new Runtime(
      validateConfig({
        identity: { name: "gw-edit" },
        dataDir: t.dataDir,
        governor: { enabled: false },
        web: { listen: "127.0.0.1:0" },
      }),
    );
    await restarted.start();
    const a = restarted.module<AlertModule>("alert")!;
    assertEquals([...a.edited].sort(), ["channels", "recipients", "rules"]);
    assertEquals(a.recipients().recipients.map((r) => r.name), ["siem"]);
    const again = await a.testSend("siem");
    assertEquals(again.ok, true, again.answer);
    assertEquals(hook.rejected, []);
    // edits arriving by replication (written into the store by the peer) are read when this
    // node becomes active
    restarted.store.setSetting("alert.rules", [{
      kinds: ["peer.*"],
      minSeverity: "warning",
      recipients: ["siem"],
    }]);
    assertEquals(a.config.rules[0].kinds, ["test.*", "other.thing"]);
    restarted.bus.publish({
      module: "ha",
      kind: "ha.role_changed",
      severity: "warning",
      payload: {
        node: "n1",
        from: "standby",
        to: "active",
        cause: "test",
        reason: "peer gone",
        afterMs: 1,
        priority: 100,
      },
    });
    assertEquals(a.config.rules[0].kinds, ["peer.*"]);

    // removing in order works: rule, recipient, channel
    a.deleteRule(0);
    a.deleteRecipient("siem");
    a.deleteChannel("siem");
    assertEquals(Object.keys(a.config.channels), []);
  } finally {
    await restarted?.stop("done");
    await t.close();
    await hook.stop();
  }
});
