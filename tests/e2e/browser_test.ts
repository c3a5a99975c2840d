/**
 * Browser tests: Debian chromium driven by playwright-core against a real runtime
 * (mock hardware). Screenshots go to test-results/.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { startTestRuntime } from "../helpers/runtime.ts";
import { generateKeyPem, parsePrivateKey } from "../../mod/update/bundle.ts";
import { makeBundle } from "../update_fixture.ts";
import { missingTools } from "../helpers/tools.ts";
import type { Module } from "../../mod/module.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = new URL("../../test-results/", import.meta.url).pathname;

const ok = missingTools(["chromium"], { path: CHROMIUM.slice(0, CHROMIUM.lastIndexOf("/")) }) ===
  undefined;

Deno.test({
  name:
    "browser: set the admin password, sign in, dashboard, bypass hold/release, live events, bundle upload with progress",
  ignore: !ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("playwright-core");
    await Deno.mkdir(SHOTS, { recursive: true });
    // file slots, a keyring and a signed 24 MiB bundle for the upload
    const work = await Deno.makeTempDir({ prefix: "kw-browser-" });
    const kp = await generateKeyPem();
    await Deno.writeTextFile(`${work}/ring.pem`, kp.publicPem);
    for (const x of ["A", "B"]) await Deno.writeFile(`${work}/${x}.img`, new Uint8Array(0));
    await Deno.writeTextFile(
      `${work}/bootenv.json`,
      JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" }),
    );
    const bundle = await makeBundle(work, {
      version: "2.0.0",
      compatible: "browser-gw",
      size: 24 << 20,
      keys: [await parsePrivateKey(kp.privatePem)],
      name: "firmware",
    });
    const t = await startTestRuntime({
      identity: { name: "gw-browser" },
      // the UI under test, not the governor: a busy machine must not sample out events
      governor: { enabled: false },
      update: {
        compatible: "browser-gw",
        keyring: `${work}/ring.pem`,
        bootedSlot: "A",
        bootloader: { backend: "file", file: `${work}/bootenv.json` },
        slots: {
          rootfs: {
            a: { device: `${work}/A.img`, bootname: "A" },
            b: { device: `${work}/B.img`, bootname: "B" },
          },
        },
      },
    });
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

      // 1. no admin yet: every page leads to the setup page
      await page.goto(`${t.base}/bypass`);
      assertEquals(new URL(page.url()).pathname, "/setup");
      await page.screenshot({ path: `${SHOTS}browser-01-setup.png` });
      await page.fill("input[name=password]", "browser test secret");
      await page.click("button[type=submit]");
      await page.waitForSelector("#health-card");
      await page.screenshot({ path: `${SHOTS}browser-02-dashboard.png`, fullPage: true });

      // 2. sign out, sign in again, through a sign-in link that tries to send the browser
      // to another host afterwards (`/\host` is `//host` to a browser): it stays here
      await page.click("#logout");
      await page.waitForURL(`${t.base}/login`);
      await page.goto(`${t.base}/login?next=${encodeURIComponent("/\\evil.example/")}`);
      await page.fill("input[name=username]", "admin");
      await page.fill("input[name=password]", "wrong password");
      await page.click("button[type=submit]");
      await page.waitForSelector("#flash.error");
      await page.fill("input[name=password]", "browser test secret");
      await page.click("button[type=submit]");
      await page.waitForSelector("#health-card");
      assertEquals(new URL(page.url()).host, new URL(t.base).host, "sent to another host");
      assert(await page.isVisible("text=gw-browser"));

      // 3. hold and release a mock bypass segment (with confirmation dialogs)
      await page.goto(`${t.base}/bypass`);
      const seg = page.locator(".segment").first();
      const name = await seg.getAttribute("data-segment");
      assert(name, "no bypass segment shown");
      // a free-text reason, spaces and all
      await seg.locator("input[name=reason]").fill(" cabling work in rack 3 "); // ends trimmed
      await seg.locator("button[type=submit]").click();
      await page.waitForSelector(`.segment[data-segment="${name}"] .badge.bypass`);
      await page.waitForSelector(
        `.segment[data-segment="${name}"] td:text("cabling work in rack 3")`,
      );
      assert(!(await page.textContent("#flash"))!.includes("error"));
      await page.screenshot({ path: `${SHOTS}browser-03-bypass-held.png`, fullPage: true });
      const api = await (await t.api("/api/bypass")).json();
      const s = api.segments.find((x: { name: string }) => x.name === name);
      assertEquals(s.mode, "bypass");
      assertEquals(s.holds.map((h: { reason: string }) => h.reason), ["cabling work in rack 3"]);
      await page.locator(`.segment[data-segment="${name}"] button[data-api$="/release"]`).first()
        .click();
      await page.waitForSelector(`.segment[data-segment="${name}"] .badge.inline`);
      await page.screenshot({ path: `${SHOTS}browser-04-bypass-released.png`, fullPage: true });

      // 4. a new event arrives live on the events page
      await page.goto(`${t.base}/events`);
      await page.waitForSelector("#live-dot.on");
      const marker = `browser.live_${crypto.randomUUID().slice(0, 8)}`;
      t.rt.bus.publishUntyped({
        module: "browser",
        kind: marker,
        severity: "warning",
        payload: { hi: 1 },
      });
      await page.waitForSelector(`#live-events tr[data-kind="${marker}"] summary`, {
        timeout: 15_000,
      });
      await page.screenshot({ path: `${SHOTS}browser-05-live-event.png`, fullPage: true });

      // 5. upload a bundle and watch its progress; the slot table shows the new version
      await page.goto(`${t.base}/update`);
      await page.setInputFiles("input[type=file]", bundle.path);
      // Record every "uploading N%" the page's own progress handler writes (a string
      // runs in the page: this file is type-checked without the DOM lib). The final
      // "uploaded and installed" does not match, so only real intermediate progress counts.
      await page.evaluate(`(() => {
        window.__kwSeen = [];
        new MutationObserver(() => {
          const l = document.getElementById("upload-label");
          const m = l && /uploading (\\d+)%/.exec(l.textContent || "");
          if (m) window.__kwSeen.push(Number(m[1]));
        }).observe(document.body, { subtree: true, childList: true, characterData: true });
      })()`);
      const uploaded = page.waitForResponse(
        (r) => new URL(r.url()).pathname === "/api/update" && r.request().method() === "POST",
        { timeout: 120_000 },
      );
      // The upload is paced to 8 MiB/s (Chromium's network emulation): on a quiet machine a
      // 24 MiB upload to loopback could end within the 50 ms between two progress events, and
      // the page would show only 0% and 100% although its progress handler works.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: 8 << 20,
      });
      await page.click("form[data-api='/api/update'] button[type=submit]");
      const res = await uploaded;
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: -1,
      });
      assert(res.ok(), `upload answered ${res.status()}`);
      const seen = await page.evaluate("window.__kwSeen") as number[];
      assert(
        seen.some((v) => v > 0 && v < 100),
        `the progress bar never showed an intermediate value: [${seen}]`,
      );
      await page.waitForSelector("#slots td:has-text('2.0.0')", { timeout: 60_000 });
      await page.screenshot({ path: `${SHOTS}browser-06-update-installed.png`, fullPage: true });

      const st = await (await t.api("/api/update")).json();
      const b = st.slots.find((x: { bootname: string }) => x.bootname === "B");
      assertEquals([b.version, b.primary], ["2.0.0", true]);
      const installEvents = t.rt.store.events({ kind: "update.install_progress", limit: 100 });
      assert(installEvents.length >= 2, "no install progress events");

      // 6. phone-sized viewport still shows the navigation and the dashboard
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${t.base}/`);
      await page.waitForSelector("#health-card");
      await page.screenshot({ path: `${SHOTS}browser-07-phone.png`, fullPage: true });

      assertEquals(
        errors.filter((e) => !e.includes("401")),
        [],
        `page errors: ${errors.join("\n")}`,
      );
    } finally {
      await browser.close();
      await t.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "browser: the dashboard goes amber live on a RAID fault; a created token and typed text survive live refreshes",
  ignore: !ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("playwright-core");
    const { RaidMock } = await import("../../hw/raid/mock.ts");
    await Deno.mkdir(SHOTS, { recursive: true });
    const t = await startTestRuntime({
      identity: { name: "gw-live" },
      governor: { enabled: false },
      hardware: { raid: { pollMs: 200 } },
    });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") errors.push(m.text());
      });
      page.on("dialog", (d) => d.accept());
      await page.goto(`${t.base}/setup`);
      await page.fill("input[name=password]", "browser live secret");
      await page.click("button[type=submit]");
      await page.waitForSelector("#health-card");
      await page.waitForSelector("#live-dot.on");
      assertEquals(await page.getAttribute("#storage-card", "data-state"), "ok");
      assertEquals(await page.getAttribute("#health-card", "data-state"), "ok");
      // empty cards say what would be there and where to configure it
      assert((await page.textContent("#subsystems-card"))!.includes("subsystems"));
      await page.screenshot({ path: `${SHOTS}ui-01-dashboard-ok-desktop.png`, fullPage: true });

      // 1. a RAID member fails on the mock: the RAID card and the overall health turn amber
      // in place (no reload: a marker set on this document survives)
      await page.evaluate("window.__kwSameDocument = true");
      const storage = t.rt.module<{ driver: { md: unknown } } & Module>("storage")!;
      const mock = storage.driver.md;
      assert(mock instanceof RaidMock, "the storage driver is not the mock");
      const faultAt = Date.now();
      mock.failMember("md0", "sdb1");
      await page.waitForSelector("#storage-card[data-state=degraded]", { timeout: 20_000 });
      const took = Date.now() - faultAt;
      console.log(`RAID card amber ${took} ms after the fault`);
      assertEquals(await page.evaluate("window.__kwSameDocument"), true, "the page reloaded");
      assertEquals(await page.getAttribute("#health-card", "data-state"), "degraded");
      assertEquals(
        await page.getAttribute("#health-card li[data-part=storage] .badge", "class"),
        "badge degraded",
      );
      const amber = await page.evaluate(
        "getComputedStyle(document.querySelector('#storage-card')).borderTopColor",
      );
      assertEquals(amber, "rgb(179, 107, 0)", "the RAID card's border is not amber");
      await page.screenshot({
        path: `${SHOTS}ui-02-dashboard-raid-amber-desktop.png`,
        fullPage: true,
      });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({
        path: `${SHOTS}ui-03-dashboard-raid-amber-phone.png`,
        fullPage: true,
      });
      await page.setViewportSize({ width: 1280, height: 900 });

      // 2. a created token stays until dismissed, across live refreshes; text typed into a
      // form is not replaced by a refresh
      await page.goto(`${t.base}/users`);
      await page.waitForSelector("#live-dot.on");
      await page.fill("form[data-api='/api/tokens'] input[name=name]", "grafana");
      await page.click("form[data-api='/api/tokens'] button[type=submit]");
      await page.waitForSelector("#secret:not(.hidden)");
      const token = (await page.textContent("#secret-value"))!.trim();
      assert(token.length > 20, `no token shown: ${token}`);
      await page.fill("form[data-api='/api/tokens'] input[name=name]", "half typed");
      // what a lost value would be explained by: a new document, a new form or input element,
      // the form no longer marked dirty, a reset, or a refresh that replaced <main>
      await page.evaluate(`(() => {
        const f = document.querySelector("form[data-api='/api/tokens']");
        window.__kwUsersDoc = true;
        f.__kwSame = true;
        f.querySelector("input[name=name]").__kwSame = true;
        window.__kwResets = 0;
        f.addEventListener("reset", () => window.__kwResets++);
      })()`);
      const why = () =>
        page.evaluate(`(() => {
          const f = document.querySelector("form[data-api='/api/tokens']");
          const i = f && f.querySelector("input[name=name]");
          return JSON.stringify({
            url: location.pathname, sameDocument: !!window.__kwUsersDoc,
            forms: document.querySelectorAll("form[data-api='/api/tokens']").length,
            sameForm: !!(f && f.__kwSame), sameInput: !!(i && i.__kwSame),
            dirty: !!(f && f.dataset.dirty), resets: window.__kwResets,
            active: document.activeElement && document.activeElement.name,
          });
        })()`) as Promise<string>;
      const refreshes = async () => Number(await page.getAttribute("body", "data-refreshed") ?? 0);
      for (let i = 0; i < 3; i++) {
        const before = await refreshes();
        t.rt.bus.publishUntyped({
          module: "browser",
          kind: `browser.nudge_${i}`,
          severity: "info",
          payload: {},
        });
        const deadline = Date.now() + 20_000;
        while (await refreshes() === before) {
          assert(Date.now() < deadline, "no live refresh after an event");
          await page.waitForTimeout(100);
        }
        // the new token is listed by the refresh, and the shown-once value is still there
        assertEquals((await page.textContent("#secret-value"))!.trim(), token);
        assert(await page.isVisible("#secret"));
        assertEquals(
          await page.inputValue("form[data-api='/api/tokens'] input[name=name]"),
          "half typed",
          `typed text lost at live refresh ${i + 1}: ${await why()}`,
        );
      }
      // a field with the cursor in it, nothing typed yet, is left alone by refreshes too
      await page.focus("form[data-api='/api/users'] input[name=username]");
      assertEquals(
        await page.getAttribute("form[data-api='/api/users']", "data-dirty"),
        "1",
        "focusing a field marks its form as being filled in",
      );
      assert(await page.isVisible("td:text('grafana')"));
      assert((await page.textContent("#flash"))!.includes("token created"));
      await page.screenshot({ path: `${SHOTS}ui-04-token-shown-desktop.png`, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${SHOTS}ui-05-token-shown-phone.png`, fullPage: true });
      await page.click("#secret-dismiss");
      await page.waitForSelector("#secret", { state: "hidden" });
      assertEquals((await page.textContent("#secret-value"))!.trim(), "");
      await page.setViewportSize({ width: 1280, height: 900 });

      // 3. words: an event reads as a sentence, its JSON one click away (and an opened
      // <details> stays open across live refreshes)
      await page.goto(`${t.base}/events`);
      const row = page.locator('#live-events tr[data-kind="storage.member_failed"]').first();
      assertEquals(
        (await row.locator(".sentence").textContent())!.trim(),
        "Disk sdb1 failed in RAID array md0 (now degraded).",
      );
      assert(!(await row.locator("details pre").isVisible()), "JSON shown before a click");
      await row.locator("summary").click();
      assert((await row.locator("details pre").textContent())!.includes('"device": "sdb1"'));
      const before = Number(await page.getAttribute("body", "data-refreshed") ?? 0);
      t.rt.bus.publishUntyped({
        module: "browser",
        kind: "browser.nudge",
        severity: "info",
        payload: {},
      });
      const until = Date.now() + 20_000;
      while (Number(await page.getAttribute("body", "data-refreshed") ?? 0) === before) {
        assert(Date.now() < until, "no live refresh on the events page");
        await page.waitForTimeout(100);
      }
      assert(await row.locator("details pre").isVisible(), "the opened JSON closed on refresh");
      await page.screenshot({ path: `${SHOTS}ui-06-events-desktop.png`, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${SHOTS}ui-07-events-phone.png`, fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });

      // storage flags in words
      await page.goto(`${t.base}/storage`);
      await page.waitForSelector(".badge.failed:text('faulty')");
      await page.waitForSelector(".badge.spare:text('spare')");
      await page.waitForSelector(".card.state-degraded[data-array=md0]");
      await page.waitForSelector(".card.state-ok[data-array=md1]");
      await page.screenshot({ path: `${SHOTS}ui-08-storage-desktop.png`, fullPage: true });

      // settings: sections with descriptions; hardware.bypass is shown, not "(redacted)"
      await page.goto(`${t.base}/settings`);
      await page.click("#cfg-hardware summary");
      const values = await page.locator('.setting[data-path^="hardware.bypass"] .value')
        .allTextContents();
      assert(values.length > 0, "no hardware.bypass rows");
      assert(!values.includes("(redacted)"), `hardware.bypass redacted: ${values}`);
      assert(await page.isVisible('#cfg-hardware .setting[data-path="hardware.raid.pollMs"] p'));
      await page.screenshot({ path: `${SHOTS}ui-09-settings-desktop.png`, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${SHOTS}ui-10-settings-phone.png`, fullPage: true });

      assertEquals(
        errors.filter((e) => !e.includes("401")),
        [],
        `page errors: ${errors.join("\n")}`,
      );
    } finally {
      await browser.close();
      await t.close();
    }
  },
});
