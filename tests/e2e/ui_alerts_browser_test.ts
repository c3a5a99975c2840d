/**
 * Browser test of the Alerts page and the live settings page: Debian chromium driven by
 * playwright-core against a real runtime. A webhook channel and a recipient are added with
 * the page's forms (a bad one refused with the field named), the secret is never shown back,
 * and a test send reaches a stand-in receiver that verifies the signature with the
 * `standardwebhooks` package, its answer shown under the channel. The settings page follows
 * changes made elsewhere live, and never replaces a form being filled in.
 */
import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";
import { startTestRuntime } from "../helpers/runtime.ts";
import { missingTools } from "../helpers/tools.ts";
import { startWebhookReceiver } from "../alert_servers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = new URL("../../test-results/", import.meta.url).pathname;
const ok = missingTools(["chromium"], { path: CHROMIUM.slice(0, CHROMIUM.lastIndexOf("/")) }) ===
  undefined;
const SECRET = "whsec_" + btoa("browser-webhook-secret-0123456789");

Deno.test({
  name:
    "browser: Alerts page adds a webhook and a recipient (secret never shown), test send answered by the receiver; settings page live without replacing a form being filled in",
  ignore: !ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("playwright-core");
    await Deno.mkdir(SHOTS, { recursive: true });
    const hook = startWebhookReceiver(SECRET);
    const t = await startTestRuntime({ identity: { name: "gw-alerts" } });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("dialog", (d) => d.accept());
      await page.goto(`${t.base}/setup`);
      await page.fill("input[name=password]", "browser alerts secret");
      await page.click("button[type=submit]");
      await page.waitForSelector("#health-card");

      // 1. a webhook channel through its form
      await page.goto(`${t.base}/alerts`);
      await page.waitForSelector("#live-dot.on");
      await page.click("summary:text('Add or change a webhook')");
      await page.fill("#add-webhook input[name=name]", "siem");
      await page.fill("#add-webhook input[name=url]", hook.url);
      await page.fill("#add-webhook input[name=secret]", SECRET);
      await page.click("#add-webhook button[type=submit]");
      await page.waitForSelector(".alert-channel[data-channel=siem]");
      assertStringIncludes((await page.textContent("#flash"))!, "webhook saved");

      // 2. a recipient: a bad one refused with the field named, then a good one listed
      await page.fill("#add-recipient input[name=name]", "siem");
      await page.selectOption("#add-recipient select[name=channel]", "siem");
      await page.fill("#add-recipient input[name=to]", "+3612345678");
      await page.click("#add-recipient button[type=submit]");
      await page.waitForSelector("#flash.error");
      const refusal = (await page.textContent("#flash"))!;
      assertStringIncludes(refusal, "to");
      assertStringIncludes(refusal, "webhook");
      assertEquals(await page.locator("#alert-recipients tr[data-recipient]").count(), 0);
      await page.fill("#add-recipient input[name=to]", "");
      await page.click("#add-recipient button[type=submit]");
      await page.waitForSelector("#alert-recipients tr[data-recipient=siem]");
      assertStringIncludes(
        (await page.textContent("#alert-recipients tr[data-recipient=siem]"))!,
        "siem",
      );

      // 3. the secret is never shown back: not in the page, not in the form's field
      await page.reload();
      await page.waitForSelector(".alert-channel[data-channel=siem]");
      assert(!(await page.content()).includes(SECRET), "the webhook secret is on the page");
      assertEquals(await page.inputValue("#add-webhook input[name=secret]"), "");
      assertStringIncludes(
        (await page.textContent(".alert-channel[data-channel=siem]"))!,
        "secret set",
      );
      await page.screenshot({ path: `${SHOTS}alerts-01-channel-recipient.png`, fullPage: true });

      // 4. a test send: the receiver verifies the signature, its answer shows under the
      // channel and stays there across live refreshes
      await page.click(".alert-channel[data-channel=siem] button[type=submit]");
      await page.waitForSelector("#alert-test-siem:not(.hidden)", { timeout: 30_000 });
      const answer = (await page.textContent("#alert-test-siem"))!;
      assertStringIncludes(answer, "accepted");
      assertStringIncludes(answer, "HTTP 200");
      assertEquals(hook.rejected, []);
      assertEquals(hook.received.length, 1);
      assertEquals(
        (hook.received[0].payload as { type: string }).type,
        "keepwire.alert.test",
      );
      const refreshed = async () => Number(await page.getAttribute("body", "data-refreshed") ?? 0);
      const nudge = async (i: number) => {
        const before = await refreshed();
        t.rt.bus.publishUntyped({
          module: "browser",
          kind: `browser.nudge_${i}`,
          severity: "info",
          payload: {},
        });
        const deadline = Date.now() + 20_000;
        while (await refreshed() === before) {
          assert(Date.now() < deadline, "no live refresh after an event");
          await page.waitForTimeout(100);
        }
      };
      await nudge(0);
      assertEquals((await page.textContent("#alert-test-siem"))!, answer);
      await page.screenshot({ path: `${SHOTS}alerts-02-test-send.png`, fullPage: true });

      // 5. the settings page is live: a change made elsewhere shows up without a reload, and
      // a form being filled in is left alone
      await page.goto(`${t.base}/settings`);
      await page.waitForSelector("#live-dot.on");
      await page.evaluate("window.__kwSameDocument = true");
      const put = (banner: string) =>
        t.api("/api/settings", {
          method: "PUT",
          headers: { "content-type": "application/json", origin: t.base },
          body: JSON.stringify({ banner }),
        }).then((r) => r.body?.cancel());
      await put("changed elsewhere");
      const banner = "form[data-api='/api/settings'] input[name=banner]";
      const deadline = Date.now() + 20_000;
      while (await page.inputValue(banner) !== "changed elsewhere") {
        assert(Date.now() < deadline, "the settings page did not follow a change live");
        await page.waitForTimeout(100);
      }
      await page.fill(banner, "half typed");
      await put("changed again");
      await nudge(1);
      assertEquals(await page.inputValue(banner), "half typed");
      assertEquals(await page.evaluate("window.__kwSameDocument"), true, "the page reloaded");
      await page.screenshot({ path: `${SHOTS}alerts-03-settings-live.png`, fullPage: true });

      assertEquals(
        errors.filter((e) => !e.includes("401") && !e.includes("400")),
        [],
        `page errors: ${errors.join("\n")}`,
      );
    } finally {
      await browser.close();
      await t.close();
      await hook.stop();
    }
  },
});
