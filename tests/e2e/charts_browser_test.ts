/**
 * Browser test of the charts: Debian chromium driven by playwright-core against a real
 * runtime (mock hardware, the governor on, a subsystem that keeps restarting, disk
 * temperatures changing on the mock). At 1280 px and at 390 px: every chart on the Charts
 * page has drawn data points, a governor signal's threshold line is on its canvas, new
 * points arrive without a reload and the charts survive the live refresh of <main>.
 * Screenshots go to test-results/charts-*.png.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { missingTools } from "../helpers/tools.ts";
import { validateConfig } from "../../mod/config/mod.ts";
import { Runtime } from "../../mod/runtime.ts";
import type { Module } from "../../mod/module.ts";
import { RaidMock } from "../../hw/raid/mock.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = new URL("../../test-results/", import.meta.url).pathname;

const ok = missingTools(["chromium"], { path: CHROMIUM.slice(0, CHROMIUM.lastIndexOf("/")) }) ===
  undefined;

/** What the page reports about one chart (evaluated in the page). */
interface ChartState {
  id: string;
  points: number;
  drawn: boolean;
  /** Non-null values in the series the chart holds. */
  values: number;
  /** Pixels of the canvas that are not background. */
  inked: number;
  /** For a chart with thresholds: the name of each line found on the canvas at its height. */
  thresholdsSeen: string[];
  note: string;
}

// Runs in the page (a string: this file is type-checked without the DOM lib).
const PROBE = `(() => {
  const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
  const COL = { elevated: "#b36b00", overload: "#e8590c", severe: "#c0262d" };
  return [...window.kwCharts.charts.entries()].map(([el, st]) => {
    const out = { id: el.id, points: Number(el.dataset.points || 0), drawn: !!st.u, values: 0,
      inked: 0, thresholdsSeen: [], note: (el.querySelector(".chart-note") || {}).textContent || "" };
    if (!st.u) return out;
    const u = st.u;
    for (const s of u.data.slice(1)) out.values += s.filter((v) => v !== null).length;
    const cv = u.ctx.canvas;
    const lines = (st.key && JSON.parse(st.key)[0] && JSON.parse(st.key)[0][3]) || null;
    const lineYs = Object.values(lines || {}).map((v) => Math.round(u.valToPos(v, "y", true)));
    const b = u.bbox;
    // one read of the whole canvas (a read per pixel makes Chromium warn)
    const all = u.ctx.getImageData(0, 0, cv.width, cv.height).data;
    // coloured pixels in the plot area away from threshold lines: the series drawn
    // (axes and grid are grey)
    for (let y = Math.ceil(b.top); y < b.top + b.height; y++) {
      if (lineYs.some((ly) => Math.abs(ly - y) <= 8)) continue;
      for (let x = Math.ceil(b.left); x < b.left + b.width; x++) {
        const i = (y * cv.width + x) * 4;
        const hi = Math.max(all[i], all[i + 1], all[i + 2]);
        const lo = Math.min(all[i], all[i + 1], all[i + 2]);
        if (all[i + 3] > 100 && hi - lo > 40) out.inked++;
      }
    }
    if (lines) {
      for (const [name, v] of Object.entries(lines)) {
        const y = Math.round(u.valToPos(v, "y", true));
        const want = hex(COL[name] || "#c0262d");
        let hit = false;
        for (let dy = -2; dy <= 2 && !hit; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= cv.height) continue;
          for (let x = 0; x < cv.width && !hit; x++) {
            const i = (yy * cv.width + x) * 4;
            if (Math.abs(all[i] - want[0]) < 40 && Math.abs(all[i + 1] - want[1]) < 40 &&
              Math.abs(all[i + 2] - want[2]) < 40 && all[i + 3] > 200) hit = true;
          }
        }
        if (hit) out.thresholdsSeen.push(name);
      }
    }
    return out;
  });
})()`;

/** Evaluate `expr` in the page until it is truthy (the page's CSP forbids waitForFunction's eval). */
async function pageUntil(
  page: { evaluate(expr: string): Promise<unknown>; waitForTimeout(ms: number): Promise<void> },
  expr: string,
  ms: number,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await page.evaluate(expr))) {
    if (Date.now() > end) throw new Error(`not true within ${ms} ms: ${expr}`);
    await page.waitForTimeout(200);
  }
}

Deno.test({
  name:
    "browser: charts draw the metric history at 1280 and 390 px, with a governor threshold line, live, surviving the live refresh",
  ignore: !ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { chromium } = await import("playwright-core");
    await Deno.mkdir(SHOTS, { recursive: true });
    const dataDir = await Deno.makeTempDir({ prefix: "kw-charts-" });
    const rt = new Runtime(validateConfig({
      identity: { name: "gw-charts" },
      dataDir,
      web: { listen: "127.0.0.1:0" },
      history: { intervalMs: 500 },
      hardware: { raid: { smartPollMs: 1000 } },
      // the governor samples the event-loop lag and keepwire's memory (host-wide pressure
      // stays out: a busy test machine is not what is charted); it never sheds a request here
      governor: {
        enabled: true,
        admission: { enabled: false },
        signals: { psi: { enabled: false }, cgroup: { enabled: false } },
      },
      subsystems: [{
        name: "flappy",
        kind: "process",
        command: "/bin/sh",
        args: ["-c", "sleep 1; exit 3"],
        readyOn: "spawn",
        backoff: { initialMs: 200, maxMs: 400 },
        intensity: { maxRestarts: 10_000, periodSec: 60 },
      }],
    }));
    await rt.start();
    const base = `http://${rt.web!.address}`;
    const storage = rt.module<{ driver: { md: unknown; disks: string[] } } & Module>("storage")!;
    const mock = storage.driver.md;
    assert(mock instanceof RaidMock, "the storage driver is not the mock");
    // disk temperatures that move: one step a second
    let step = 0;
    const warm = setInterval(() => {
      step++;
      storage.driver.disks.forEach((d, i) =>
        mock.setDisk(d, { temperatureC: 34 + i * 3 + Math.round(4 * Math.sin(step / 3)) })
      );
    }, 1000);
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
      await page.goto(`${base}/setup`);
      await page.fill("input[name=password]", "charts browser secret");
      await page.click("button[type=submit]");
      await page.waitForSelector("#health-card");

      // let the history gather some samples (restarts, temperatures, signals)
      const deadline = Date.now() + 90_000;
      for (;;) {
        const r = await page.evaluate(`fetch("/api/history?series=supervisor.restarts.&since=10m")
          .then((r) => r.json())`) as { series: { values: (number | null)[] }[] };
        const restarts = (r.series[0]?.values ?? []).reduce<number>((a, v) => a + (v ?? 0), 0);
        // three buckets of the charts' default step over an hour (10 s)
        const t = await page.evaluate(`fetch("/api/history?series=governor.pressure")
          .then((r) => r.json())`) as { times: number[] };
        if (restarts >= 2 && t.times.length >= 3) break;
        assert(Date.now() < deadline, "the history gathered too little in 90 s");
        await page.waitForTimeout(500);
      }

      // the dashboard's governor card: the pressure chart against the overload line
      await page.goto(`${base}/`);
      await page.waitForSelector("#chart-dash-pressure .chart-plot canvas", { timeout: 30_000 });
      await pageUntil(
        page,
        `(window.kwCharts.charts.size > 0) &&
          [...window.kwCharts.charts.values()].every((s) => s.u && s.u.data[0].length > 0)`,
        30_000,
      );
      const dash = (await page.evaluate(PROBE)) as ChartState[];
      const pressure = dash.find((c) => c.id === "chart-dash-pressure")!;
      assert(pressure.values > 0 && pressure.inked > 50, JSON.stringify(pressure));
      assertEquals(pressure.thresholdsSeen, ["overload"], "no overload line on the pressure chart");
      await page.screenshot({ path: `${SHOTS}charts-01-dashboard-desktop.png`, fullPage: true });

      for (const [width, height, tag] of [[1280, 900, "desktop"], [390, 844, "phone"]] as const) {
        await page.setViewportSize({ width, height });
        await page.goto(`${base}/charts`);
        await page.waitForSelector("#chart-signal-eventLoopLagMs");
        const ids = ["chart-signal-eventLoopLagMs", "chart-restarts", "chart-events"]
          .concat(["chart-disk-temperature", "chart-smart"]);
        await pageUntil(
          page,
          `${JSON.stringify(ids)}.every((id) => {
            const el = document.getElementById(id);
            const st = el && window.kwCharts.charts.get(el);
            return st && st.u && st.u.data[0].length > 0;
          })`,
          30_000,
        );
        const states = (await page.evaluate(PROBE)) as ChartState[];
        for (const id of ids) {
          const c = states.find((s) => s.id === id);
          assert(
            c && c.drawn && c.points > 0 && c.values > 0,
            `${tag} ${id}: ${JSON.stringify(c)}`,
          );
          assert(c.inked > 50, `${tag} ${id}: no series on the canvas: ${JSON.stringify(c)}`);
        }
        const lag = states.find((s) => s.id === "chart-signal-eventLoopLagMs")!;
        assert(
          lag.thresholdsSeen.includes("elevated"),
          `${tag}: the elevated threshold is not drawn: ${JSON.stringify(lag)}`,
        );
        // the charts fit the viewport (no sideways scrolling on a phone)
        const overflow = await page.evaluate(
          "document.documentElement.scrollWidth - document.documentElement.clientWidth",
        ) as number;
        assert(overflow <= 0, `${tag}: the page is ${overflow} px wider than the screen`);
        const canvasWidth = await page.evaluate(
          "document.querySelector('#chart-restarts canvas').getBoundingClientRect().width",
        ) as number;
        assert(canvasWidth <= width - 30, `${tag}: a chart is ${canvasWidth} px wide`);
        await page.screenshot({ path: `${SHOTS}charts-02-charts-${tag}.png`, fullPage: true });
        // what a phone shows at once, at its own size
        if (tag === "phone") {
          await page.locator("#chart-events").scrollIntoViewIfNeeded();
          await page.screenshot({ path: `${SHOTS}charts-02-charts-phone-screen.png` });
        }
      }

      // live: new points arrive without a reload, and the canvas survives live refreshes
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${base}/charts`);
      await pageUntil(
        page,
        `(() => { const el = document.getElementById("chart-restarts");
          const st = el && window.kwCharts.charts.get(el); return st && st.u; })()`,
        30_000,
      );
      await page.evaluate(`window.__kwSame = true;
        window.__kwCanvas = document.querySelector("#chart-restarts canvas");`);
      const lastTime = async () =>
        await page.evaluate(`(() => { const st = window.kwCharts.charts.get(
          document.getElementById("chart-events")); const x = st.u.data[0]; return x[x.length - 1]; })()`) as number;
      const refreshes = async () => Number(await page.getAttribute("body", "data-refreshed") ?? 0);
      const t0 = await lastTime();
      const r0 = await refreshes();
      const until = Date.now() + 30_000;
      while (!((await lastTime()) > t0 && (await refreshes()) > r0)) {
        // an event makes the page refresh <main>
        rt.bus.publishUntyped({
          module: "browser",
          kind: "browser.nudge",
          severity: "info",
          payload: {},
        });
        assert(Date.now() < until, "no new point or no live refresh within 30 s");
        await page.waitForTimeout(700);
      }
      assertEquals(await page.evaluate("window.__kwSame"), true, "the page reloaded");
      assertEquals(
        await page.evaluate(
          `window.__kwCanvas === document.querySelector("#chart-restarts canvas")`,
        ),
        true,
        "the live refresh replaced the chart's canvas",
      );
      // the window picker redraws every chart over 6 h
      const drawnAt = await page.getAttribute("#chart-events", "data-drawn");
      await page.click("button[data-window='6h']");
      await page.waitForSelector("button[data-window='6h'].active");
      await pageUntil(
        page,
        `document.getElementById("chart-events").dataset.drawn !== ${JSON.stringify(drawnAt)}`,
        15_000,
      );
      // every chart still shows something over 6 h (one bucket of a minute, perhaps)
      for (const c of (await page.evaluate(PROBE)) as ChartState[]) {
        assert(c.drawn && c.values > 0, `6 h: ${JSON.stringify(c)}`);
      }
      await page.screenshot({ path: `${SHOTS}charts-03-live-6h-desktop.png`, fullPage: true });

      assertEquals(
        errors.filter((e) => !e.includes("401")),
        [],
        `page errors: ${errors.join("\n")}`,
      );
    } finally {
      clearInterval(warm);
      await browser.close();
      await rt.stop("test done");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
