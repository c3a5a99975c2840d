/**
 * Alerts through `keepwire run` as a process: an alert whose send is under way when the
 * daemon is killed with SIGKILL is delivered after the restart (the receiver may get it
 * twice, never more, and the daemon counts it), the CLI (`alert test|list|retry|status`)
 * reaches the daemon over the control socket, the API never answers a secret, and the
 * metrics carry the outbox.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { kw, kwDaemon } from "../helpers/cli.ts";
import { daemonRequest } from "../../mod/cli/client.ts";
import { haveAiosmtpd, startSmtp, waitFor } from "../alert_servers.ts";
import { ignored } from "../helpers/tools.ts";
import type { Delivery } from "../../mod/alert/outbox.ts";

const noSmtp = haveAiosmtpd() ? undefined : ignored("missing aiosmtpd (package python3-aiosmtpd)");

Deno.test({
  name: "kill -9 during an SMTP send: delivered after restart, at most one duplicate, counted",
  ignore: noSmtp !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw_alert_e2e_" });
    const smtp = await startSmtp();
    const data = `${dir}/data`;
    const config = `${dir}/keepwire.json`;
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        identity: { name: "gw-north" },
        web: { listen: "127.0.0.1:0" },
        alert: {
          channels: {
            mail: {
              type: "email",
              host: "127.0.0.1",
              port: smtp.port,
              security: "none",
              from: "kw@gw-north.example.org",
              password: "smtp-secret-1",
              timeoutMs: 20_000,
            },
          },
          recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
          rules: [{ kinds: ["runtime.started"], minSeverity: "info", recipients: ["ops"] }],
          retry: { initialMs: 200, maxMs: 1000 },
        },
      }),
    );
    const list = async () =>
      (await daemonRequest<{ deliveries: Delivery[] }>(data, "GET", "/api/alert/outbox"))
        .deliveries;
    let d1: Awaited<ReturnType<typeof kwDaemon>> | undefined;
    let d2: Awaited<ReturnType<typeof kwDaemon>> | undefined;
    try {
      await smtp.delay(4);
      d1 = await kwDaemon(["--config", config, "--data", data]);
      await waitFor("the send under way", () => smtp.held());
      const first = (await list())[0];
      assertEquals(first.status, "pending");
      assertEquals(first.inflight, true);
      d1.child.kill("SIGKILL");
      await d1.child.status;
      await smtp.delay(null);
      d2 = await kwDaemon(["--config", config, "--data", data]);
      await waitFor(
        "the first alert sent",
        async () => (await list()).find((d) => d.id === first.id)?.status === "sent",
      );
      await waitFor(
        "the second start's alert sent",
        async () => (await list()).filter((d) => d.status === "sent").length === 2,
      );
      // the held DATA of the killed run is accepted too when its hold ends: a duplicate
      await waitFor(
        "the held copy",
        () => smtp.mails().filter((m) => m.alertId === first.id).length === 2,
        8_000,
      )
        .catch(() => {});
      const copies = smtp.mails().filter((m) => m.alertId === first.id).length;
      assert(copies >= 1 && copies <= 2, `copies of ${first.id}: ${copies}`);
      assertStringIncludes(smtp.mails()[0].text!, "gw-north");
      const st = JSON.parse((await kw(["alert", "status", "--json", "-d", data])).stdout);
      assertEquals(st.resent, 1, "the one in flight at the kill is counted as possibly duplicated");
      // CLI
      const test = await kw(["alert", "test", "mail", "--to", "check@example.org", "-d", data]);
      assertEquals(test.code, 0, test.stderr);
      assertStringIncludes(test.stdout, "accepted by mail for check@example.org");
      assertStringIncludes(test.stdout, "250");
      await waitFor(
        "the test mail",
        () => smtp.mails().some((m) => m.envelopeTo[0] === "check@example.org"),
      );
      const bad = await kw(["alert", "test", "nosuch", "-d", data]);
      assertEquals(bad.code, 1);
      assertStringIncludes(bad.stderr, 'no alert channel "nosuch"');
      const ls = await kw(["alert", "list", "-d", data]);
      assertEquals(ls.code, 0, ls.stderr);
      assertStringIncludes(ls.stdout, first.id);
      const retry = await kw(["alert", "retry", first.id, "-d", data]);
      assertEquals(retry.code, 1);
      assertStringIncludes(retry.stderr, "only failed deliveries are retried");
      const usage = await kw(["alert", "list", "--status", "lost", "-d", data]);
      assertEquals(usage.code, 2);
      // secrets never come back
      const cfg = await daemonRequest<{ channels: { mail: Record<string, unknown> } }>(
        data,
        "GET",
        "/api/alert/config",
      );
      assertEquals(cfg.channels.mail.password, "(redacted)");
      assert(!JSON.stringify(cfg).includes("smtp-secret-1"));
      const metrics = await daemonRequest<string>(data, "GET", "/metrics");
      assertStringIncludes(String(metrics), "keepwire_alert_sent_total");
      assertStringIncludes(String(metrics), "keepwire_alert_oldest_pending_seconds");
    } finally {
      for (const d of [d1, d2]) {
        try {
          d?.child.kill("SIGKILL");
          await d?.child.status;
        } catch { /* gone */ }
      }
      await smtp.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
