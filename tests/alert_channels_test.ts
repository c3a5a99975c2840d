/**
 * The channels against real servers started here: aiosmtpd (Debian's python3-aiosmtpd;
 * the mail that arrives is parsed by Python's email package and checked), an SMS gateway
 * stand-in speaking the Ozeki NG HTTP API shape, and a webhook receiver that verifies every
 * request with the npm `standardwebhooks` package. Faults: the SMTP server down for a while,
 * 4xx and 5xx answers, garbage answers, a webhook endpoint answering 410.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { type ConfigInput, validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { systemClock } from "../mod/module.ts";
import { AlertModule } from "../mod/alert/mod.ts";
import {
  freePort,
  haveAiosmtpd,
  startSmsGateway,
  startSmtp,
  startWebhookReceiver,
  waitFor,
} from "./alert_servers.ts";
import { ignored } from "./helpers/tools.ts";

const noSmtp = haveAiosmtpd() ? undefined : ignored("missing aiosmtpd (package python3-aiosmtpd)");

function setup(alert: Record<string, unknown>) {
  const config = validateConfig({
    identity: { name: "gw-west" },
    alert: { retry: { initialMs: 100, maxMs: 400, jitter: 0.1 }, ...alert },
  } as unknown as ConfigInput);
  const store = new Store({ path: ":memory:" });
  const bus = new EventBus({ journal: store });
  const mod = new AlertModule({ config, store, bus, clock: systemClock });
  const publish = (kind: string, payload: Record<string, unknown>, severity = "warning") =>
    bus.publishUntyped({
      module: kind.split(".")[0],
      kind,
      severity: severity as KwEvent["severity"],
      payload,
    });
  return {
    mod,
    store,
    publish,
    async close() {
      await mod.stop();
      store.close();
    },
  };
}

const degraded = (array: string) => ({
  array,
  health: "degraded",
  level: "raid1",
  degradedDisks: 1,
  mdadm: "DegradedArray",
});

const mailChannel = (port: number, extra: Record<string, unknown> = {}) => ({
  type: "email",
  host: "127.0.0.1",
  port,
  security: "none",
  from: "keepwire@gw-west.example.org",
  timeoutMs: 5000,
  ...extra,
});

Deno.test({
  name: "e-mail: a RAID alert arrives at aiosmtpd with subject, text, HTML and the dedupe id",
  ignore: noSmtp !== undefined,
  async fn() {
    const smtp = await startSmtp();
    const t = setup({
      channels: { mail: mailChannel(smtp.port) },
      recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
    });
    try {
      await t.mod.start();
      t.publish("storage.array_degraded", degraded("md0"));
      await waitFor("the mail", () => smtp.mails().length === 1);
      const m = smtp.mails()[0];
      const d = t.mod.deliveries()[0];
      await waitFor("sent", () => t.mod.delivery(d.id).status === "sent");
      assertEquals(m.envelopeTo, ["ops@example.org"]);
      assertStringIncludes(m.subject, "[gw-west] WARNING: RAID array md0 is DEGRADED");
      assertStringIncludes(m.text!, "RAID array md0 is DEGRADED: 1 disk(s) missing.");
      assertStringIncludes(m.text!, "What to do: Replace the failed disk soon");
      assertStringIncludes(m.html!, "<strong>RAID array md0 is DEGRADED");
      assertEquals(m.alertId, d.id);
      assertStringIncludes(m.messageId, d.id);
      assertStringIncludes(t.mod.delivery(d.id).answer!, "250");
    } finally {
      await t.close();
      await smtp.stop();
    }
  },
});

Deno.test({
  name: "e-mail: STARTTLS and AUTH; a wrong password is refused (535) and recorded as failed",
  ignore: noSmtp !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw_alert_tls_" });
    const gen = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    assert(gen.success, "openssl made a certificate");
    const smtp = await startSmtp({
      auth: "alerts:s3cret",
      starttls: [`${dir}/cert.pem`, `${dir}/key.pem`],
    });
    const t = setup({
      channels: {
        good: mailChannel(smtp.port, {
          security: "starttls",
          user: "alerts",
          password: "s3cret",
          rejectUnauthorized: false,
        }),
        bad: mailChannel(smtp.port, {
          security: "starttls",
          user: "alerts",
          password: "wrong",
          rejectUnauthorized: false,
        }),
      },
      recipients: [
        { name: "ops", channel: "good", to: "ops@example.org" },
        { name: "ops2", channel: "bad", to: "ops2@example.org" },
      ],
    });
    try {
      await t.mod.start();
      t.publish("auth.locked", { user: "admin", forMs: 900_000 });
      await waitFor("the mail", () => smtp.mails().length === 1);
      const m = smtp.mails()[0];
      assert(m.tls, "the session was upgraded with STARTTLS");
      assert(m.auth, "the session was authenticated");
      assertStringIncludes(m.text!, "Account admin is LOCKED OUT for 15 minutes");
      await waitFor(
        "the bad one failed",
        () => t.mod.deliveries({ status: "failed" }).length === 1,
      );
      const f = t.mod.deliveries({ status: "failed" })[0];
      assertEquals(f.recipient, "ops2");
      assertStringIncludes(f.lastError!, "535");
      const test = await t.mod.testSend("good", "someone@example.org");
      assert(test.ok, test.answer);
      assertStringIncludes(test.answer, "250");
      const bad = await t.mod.testSend("bad");
      assertEquals(bad.ok, false);
      assertStringIncludes(bad.answer, "535");
    } finally {
      await t.close();
      await smtp.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "e-mail: the server down for a while: queued, retried, delivered in order when it returns",
  ignore: noSmtp !== undefined,
  async fn() {
    const port = freePort();
    const t = setup({
      channels: { mail: mailChannel(port) },
      recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
    });
    let smtp;
    try {
      await t.mod.start();
      for (const a of ["md0", "md1", "md2", "md3"]) {
        t.publish("storage.array_degraded", degraded(a));
      }
      await waitFor("three failed attempts", () => t.mod.status().failedAttempts >= 3);
      assertEquals(t.mod.status().counts.pending, 4);
      assertStringIncludes(
        t.mod.deliveries({ status: "pending" }).at(-1)!.lastError!,
        "ECONNREFUSED",
      );
      smtp = await startSmtp({ port });
      await waitFor("four mails", () => smtp!.mails().length === 4);
      assertEquals(smtp.mails().map((m) => m.subject.match(/array (md\d)/)![1]), [
        "md0",
        "md1",
        "md2",
        "md3",
      ]);
      await waitFor("all sent", () => t.mod.status().counts.sent === 4);
    } finally {
      await t.close();
      await smtp?.stop();
    }
  },
});

Deno.test({
  name: "e-mail: 451 is retried until accepted; 550 fails at once under the default policy",
  ignore: noSmtp !== undefined,
  async fn() {
    const smtp = await startSmtp();
    const t = setup({
      channels: { mail: mailChannel(smtp.port) },
      recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
    });
    try {
      await smtp.reply("451 4.3.0 mailbox busy, try later");
      await t.mod.start();
      t.publish("storage.array_degraded", degraded("md0"));
      await waitFor("two 451s", () => t.mod.status().failedAttempts >= 2);
      const d = t.mod.deliveries()[0];
      assertEquals(d.status, "pending");
      assertStringIncludes(d.lastError!, "SMTP 451");
      await smtp.reply(null);
      await waitFor("sent", () => t.mod.delivery(d.id).status === "sent");
      assertEquals(smtp.mails().length, 1);
      await smtp.reply("550 5.1.1 no such user");
      t.publish("storage.array_degraded", degraded("md1"));
      await waitFor("failed", () => t.mod.deliveries({ status: "failed" }).length === 1);
      const f = t.mod.deliveries({ status: "failed" })[0];
      assertEquals(f.attempts, 1);
      assertStringIncludes(f.lastError!, "SMTP 550");
      assertEquals(t.store.events({ kind: "alert.failed" })[0].payload.final, true);
    } finally {
      await t.close();
      await smtp.stop();
    }
  },
});

Deno.test("SMS: the Ozeki NG preset sends the documented query; a refusal in the XML is a failure with its reason, retried", async () => {
  const gw = startSmsGateway({ user: "kw", password: "pw1" });
  const t = setup({
    channels: {
      sms: { type: "sms", preset: "ozeki", url: `${gw.url}/api`, username: "kw", password: "pw1" },
      sms2: {
        type: "sms",
        preset: "ozeki",
        url: `${gw.url}/api`,
        username: "kw",
        password: "nope",
      },
    },
    recipients: [
      { name: "duty", channel: "sms", to: "+36 20 310 5366" },
      { name: "duty2", channel: "sms2", to: "+3620" },
    ],
  });
  try {
    await t.mod.start();
    t.publish("ha.dual_active", {
      node: "gw-west",
      peer: "gw-east",
      via: "vrrp",
      seen: "the peer's advert while this node is MASTER",
      resolvedBy: "priority",
      yields: false,
    });
    await waitFor("sent", () => t.mod.status().counts.sent === 1);
    const r = gw.requests[0];
    assertEquals(r.method, "GET");
    assertEquals(r.path, "/api");
    assertEquals(r.query.action, "sendmessage");
    assertEquals(r.query.messagetype, "SMS:TEXT");
    assertEquals(r.query.recipient, "+36203105366");
    assertEquals(r.query.username, "kw");
    assertStringIncludes(
      r.query.messagedata,
      "gw-west: Both nodes (gw-west and gw-east) were ACTIVE",
    );
    const sent = t.mod.deliveries({ status: "sent" })[0];
    assertStringIncludes(sent.answer!, "<statuscode>0</statuscode>");
    await waitFor(
      "a retried refusal",
      () => t.mod.deliveries({ recipient: "duty2" })[0].attempts >= 2,
    );
    const refused = t.mod.deliveries({ recipient: "duty2" })[0];
    assertEquals(refused.status, "pending");
    assertStringIncludes(refused.lastError!, "Invalid username or password");
    assert(!refused.lastError!.includes("nope"), "the password is not in the error");
  } finally {
    await t.close();
    await gw.stop();
  }
});

Deno.test("SMS: the JSON preset; garbage answers are failures with their reason, retried, then delivered", async () => {
  const gw = startSmsGateway();
  let garbage = 2;
  gw.setAnswer(() => garbage-- > 0 ? { status: 200, body: "<html>proxy error</html>" } : null);
  const t = setup({
    channels: {
      sms: {
        type: "sms",
        preset: "json",
        url: `${gw.url}/send`,
        headers: { authorization: "Bearer {apiKey}" },
        apiKey: "k-123",
        successMatch: '"accepted":true',
      },
    },
    recipients: [{ name: "duty", channel: "sms", to: "+3612345678" }],
  });
  try {
    await t.mod.start();
    t.publish("update.rolled_back", {
      failed: "b",
      version: "2.1.0",
      running: "a",
      reason: "gate timed out",
      bypassHeld: false,
    }, "critical");
    await waitFor("sent", () => t.mod.status().counts.sent === 1, 30_000);
    assertEquals(gw.requests.length, 3);
    const body = JSON.parse(gw.requests[2].body);
    assertEquals(body.to, "+3612345678");
    assertStringIncludes(body.text, "The update to 2.1.0 was ROLLED BACK");
    assertEquals(gw.requests[2].headers.authorization, "Bearer k-123");
    const fails = t.store.events({ kind: "alert.failed", order: "asc" });
    assertEquals(fails.length, 2);
    assertStringIncludes(String(fails[0].payload.error), "does not match");
    assertStringIncludes(String(fails[0].payload.error), "proxy error");
    const d = t.mod.deliveries()[0];
    assertEquals(body.id, d.id);
    assertEquals(d.attempts, 3);
  } finally {
    await t.close();
    await gw.stop();
  }
});

Deno.test("webhook: Standard Webhooks signatures verify with the standardwebhooks package; 410 stops the endpoint", async () => {
  const secret = "whsec_" +
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const rx = startWebhookReceiver(secret);
  const t = setup({
    channels: { hook: { type: "webhook", url: rx.url, secret } },
    recipients: [{ name: "siem", channel: "hook" }],
  });
  try {
    await t.mod.start();
    t.publish("supervisor.escalation", {
      subsystem: "ids",
      action: "bypass-hold",
      reason: "gave up after 5 restarts",
      segments: ["lan0"],
    }, "critical");
    await waitFor("received", () => rx.received.length === 1);
    assertEquals(rx.rejected, []);
    const d = t.mod.deliveries()[0];
    assertEquals(rx.received[0].id, d.id);
    const data = rx.received[0].payload.data as Record<string, string>;
    assertEquals(data.appliance, "gw-west");
    assertStringIncludes(data.text, "Subsystem ids gave up and was escalated: bypass-hold");
    assertEquals(rx.received[0].payload.type, "keepwire.supervisor.escalation");
    // the endpoint is gone: 410 stops it, queued ones fail with the reason, nothing more is sent
    rx.status = 410;
    t.publish("watchdog.last_reset_by_watchdog", { device: "/dev/watchdog0" }, "warning");
    await waitFor("stopped", () => t.mod.status().stopped.length === 1);
    const f = t.mod.deliveries({ status: "failed" });
    assertEquals(f.length, 1);
    assertStringIncludes(f[0].lastError!, "410");
    t.publish("storage.array_degraded", degraded("md5"));
    await waitFor(
      "failed without a call",
      () => t.mod.deliveries({ status: "failed" }).length === 2,
    );
    assertEquals(t.store.events({ kind: "alert.endpoint_stopped" }).length, 1);
    // the operator retries after the receiver is back: it goes out
    rx.status = 200;
    assertEquals(t.mod.retryAllFailed(), 2);
    await waitFor("both delivered", () => rx.received.length === 3);
    assertEquals(t.mod.status().stopped, []);
  } finally {
    await t.close();
    await rx.stop();
  }
});
