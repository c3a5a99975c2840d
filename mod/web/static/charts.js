// keepwire charts: draws the metric history (GET /api/history) with uPlot, served from its
// npm package (/static/uPlot.iife.min.js and .css, loaded only on pages that hold a chart).
// A chart is a <figure class="chart" data-chart="SERIES|PREFIX." data-keep> the server
// renders (mod/web/ui/chart.tsx): the live refresh leaves it alone, this file fills it,
// fetches it again every sampling interval and resizes it with its card.
"use strict";
(function () {
  const SEVERITY = {
    info: "#2457c5",
    notice: "#0b7285",
    warning: "#b36b00",
    error: "#c0262d",
    critical: "#6a1b9a",
  };
  const THRESHOLD = { elevated: "#b36b00", overload: "#e8590c", severe: "#c0262d" };
  const PALETTE = [
    "#2457c5",
    "#1d7f46",
    "#e8590c",
    "#6a1b9a",
    "#0b7285",
    "#c0262d",
    "#5c940d",
    "#d6336c",
    "#495057",
    "#b36b00",
  ];
  const WINDOW_KEY = "kw-chart-window";
  /** element -> { u, key, timer, busy } */
  const charts = new Map();

  let loading = null;
  function loadUplot() {
    if (window.uPlot) return Promise.resolve();
    if (loading) return loading;
    loading = new Promise((resolve, reject) => {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = "/static/uPlot.min.css";
      document.head.appendChild(css);
      const s = document.createElement("script");
      s.src = "/static/uPlot.iife.min.js";
      s.onload = () => resolve();
      s.onerror = () => reject(new Error("the chart library did not load"));
      document.head.appendChild(s);
    });
    return loading;
  }

  function fmt(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "—";
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return String(Number(v.toFixed(a >= 10 ? 1 : 2)));
  }

  function fmtStep(ms) {
    if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
    if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
    if (ms % 60_000 === 0) return `${ms / 60_000} min`;
    return `${Math.round(ms / 1000)} s`;
  }

  function colourOf(s, i) {
    if (s.name.startsWith("events.") && SEVERITY[s.label]) return SEVERITY[s.label];
    return PALETTE[i % PALETTE.length];
  }

  // Threshold lines of the series (all series of a chart share them, or there are none).
  function thresholdsOf(body) {
    const first = body.series[0] && body.series[0].thresholds;
    if (!first) return [];
    const same = body.series.every((s) => JSON.stringify(s.thresholds) === JSON.stringify(first));
    if (!same) return [];
    return Object.entries(first).map(([name, value]) => ({
      name,
      value,
      colour: THRESHOLD[name] || "#c0262d",
    }));
  }

  // Draws each threshold as a dashed line across the plot, named at its right end.
  function thresholdPlugin(lines) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const { left, top, width, height } = u.bbox;
          const px = window.uPlot.pxRatio || 1;
          ctx.save();
          ctx.lineWidth = 2 * px;
          ctx.setLineDash([7 * px, 4 * px]);
          ctx.font = `${11 * px}px system-ui, sans-serif`;
          ctx.textAlign = "right";
          for (const l of lines) {
            const y = Math.round(u.valToPos(l.value, "y", true));
            if (y < top - 1 || y > top + height + 1) continue;
            ctx.strokeStyle = l.colour;
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + width, y);
            ctx.stroke();
            ctx.fillStyle = l.colour;
            ctx.fillText(`${l.name} ${fmt(l.value)}`, left + width - 4 * px, y - 4 * px);
          }
          ctx.restore();
        }],
      },
    };
  }

  function note(el, text) {
    let p = el.querySelector(".chart-note");
    if (!text) {
      if (p) p.remove();
      return;
    }
    if (!p) {
      p = document.createElement("p");
      p.className = "muted chart-note";
      el.appendChild(p);
    }
    p.textContent = text;
  }

  function caption(el, body) {
    const fc = el.querySelector("figcaption");
    if (!fc) return;
    let span = fc.querySelector(".chart-unit");
    if (!span) {
      span = document.createElement("span");
      span.className = "chart-unit muted";
      fc.appendChild(span);
    }
    const units = [...new Set(body.series.map((s) => s.unit))];
    const counter = body.series.some((s) => s.kind === "counter");
    span.textContent = counter
      ? ` — ${el.dataset.per || units.join(", ")} per ${fmtStep(body.step)}`
      : units.length
      ? ` — ${units.join(", ")}`
      : "";
  }

  function legendOfThresholds(el, lines, unit) {
    let box = el.querySelector(".chart-thresholds");
    if (!lines.length) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = document.createElement("p");
      box.className = "chart-thresholds muted";
      el.appendChild(box);
    }
    box.textContent = "";
    box.append("thresholds: ");
    lines.forEach((l, i) => {
      const sw = document.createElement("span");
      sw.className = `swatch ${l.name}`;
      box.append(sw, `${l.name} ${fmt(l.value)} ${unit}${i < lines.length - 1 ? " · " : ""}`);
    });
  }

  function widthOf(el) {
    return Math.max(160, Math.floor(el.clientWidth));
  }

  // A chart of many series (SMART counters of every disk) draws only those that are not 0
  // throughout the window and says how many it left out; with none left, it draws the first
  // (a flat line at 0 is the honest picture).
  const MANY = 6;
  function visible(body) {
    if (body.series.length <= MANY) return { body, hidden: 0 };
    const keep = body.series.filter((s) => s.values.some((v) => v !== null && v !== 0));
    const shown = keep.length ? keep : body.series.slice(0, 1);
    return { body: { ...body, series: shown }, hidden: body.series.length - shown.length };
  }

  // "1 restart", "2 restarts"
  function withUnit(v, unit) {
    const u = v === 1 && /[^s]s$/.test(unit) ? unit.slice(0, -1) : unit;
    return `${fmt(v)} ${u}`;
  }

  // A counter's newest bucket is still filling (it would read as a drop): not drawn, unless
  // it is the only one. A counter bucket covers [t, t + step): the step line of the last one
  // is closed at its end.
  function completeBuckets(body) {
    if (!body.series.some((s) => s.kind === "counter")) return body;
    let times = body.times;
    let series = body.series;
    const n = times.length;
    if (n >= 2 && times[n - 1] + body.step > body.until) {
      times = times.slice(0, -1);
      series = series.map((s) => ({ ...s, values: s.values.slice(0, -1) }));
    }
    if (times.length) {
      times = [...times, times[times.length - 1] + body.step];
      series = series.map((s) => ({ ...s, values: [...s.values, s.values[s.values.length - 1]] }));
    }
    return { ...body, times, series };
  }

  function lastIdx(u, sidx) {
    const d = u.data[sidx];
    for (let i = d.length - 1; i >= 0; i--) if (d[i] !== null && d[i] !== undefined) return i;
    return null;
  }

  function fmtTime(sec) {
    return new Date(sec * 1000).toLocaleString([], {
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
  }

  function build(el, st, body) {
    const lines = thresholdsOf(body);
    const unit = body.series[0] ? body.series[0].unit : "";
    const sameUnit = body.series.every((s) => s.unit === unit);
    const counter = body.series.every((s) => s.kind === "counter");
    const lowest = lines.length ? Math.min(...lines.map((l) => l.value)) : null;
    if (st.u) st.u.destroy();
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    const old = el.querySelector(".chart-plot");
    const fc = el.querySelector("figcaption");
    if (old) old.replaceWith(plot);
    else if (fc) fc.after(plot);
    else el.prepend(plot);
    const opts = {
      width: widthOf(el),
      height: Number(el.dataset.height || 200),
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        // one bucket alone: a bucket either side (uPlot would span years)
        x: {
          time: true,
          range: (u, min, max) => {
            if (st.single === null) return [min, max];
            const pad = Math.max(60, (st.step || 60_000) / 1000);
            return [st.single - pad, st.single + pad];
          },
        },
        y: {
          // from 0, and high enough to show the first threshold line
          range: (u, min, max) => {
            let hi = Math.max(max == null ? 0 : max, lowest == null ? 0 : lowest * 1.15);
            if (counter) hi = Math.max(hi, 1);
            if (hi <= 0) hi = 1;
            const lo = Math.min(0, min == null ? 0 : min);
            return [lo, hi * 1.05];
          },
        },
      },
      axes: [
        { stroke: "#5d6778", grid: { stroke: "#e6e9ef" }, ticks: { stroke: "#dde1e8" } },
        {
          stroke: "#5d6778",
          grid: { stroke: "#e6e9ef" },
          ticks: { stroke: "#dde1e8" },
          size: 48,
          label: sameUnit ? unit : "",
          labelSize: 16,
          labelFont: "12px system-ui, sans-serif",
          values: (u, vals) => vals.map(fmt),
        },
      ],
      series: [
        {
          // no cursor on the chart: the legend shows the newest values
          label: "time",
          value: (u, v, si, idx) => {
            const x = u.data[0];
            if (idx === null || idx === undefined) {
              return x.length ? `newest, ${fmtTime(x[x.length - 1])}` : "—";
            }
            return fmtTime(v);
          },
        },
        ...body.series.map((s, i) => ({
          label: s.label,
          stroke: colourOf(s, i),
          width: 2,
          spanGaps: true,
          fill: body.series.length === 1 ? colourOf(s, i) + "22" : undefined,
          paths: counter ? window.uPlot.paths.stepped({ align: 1 }) : undefined,
          value: (u, v, si, idx) => {
            if (idx === null || idx === undefined) {
              const i = lastIdx(u, si);
              v = i === null ? null : u.data[si][i];
            }
            return v === null || v === undefined ? "—" : withUnit(v, s.unit);
          },
        })),
      ],
      plugins: lines.length ? [thresholdPlugin(lines)] : [],
    };
    st.u = new window.uPlot(opts, dataOf(body), plot);
    legendOfThresholds(el, lines, unit);
  }

  function dataOf(body) {
    return [body.times.map((t) => t / 1000), ...body.series.map((s) => s.values)];
  }

  function keyOf(body) {
    return JSON.stringify(body.series.map((s) => [s.name, s.unit, s.kind, s.thresholds]));
  }

  async function update(el) {
    const st = charts.get(el);
    if (!st || st.busy) return;
    st.busy = true;
    try {
      const since = (el.dataset.followWindow !== undefined && currentWindow()) ||
        el.dataset.since || "1h";
      const q = new URLSearchParams({ series: el.dataset.chart, since });
      const res = await fetch(`/api/history?${q}`, { credentials: "same-origin" });
      if (!res.ok) {
        if (res.status === 404) throw new Error(el.dataset.empty || "nothing recorded yet");
        throw new Error(`the history answered HTTP ${res.status}`);
      }
      let body = completeBuckets(await res.json());
      st.intervalMs = body.intervalMs || st.intervalMs;
      el.dataset.points = String(body.times.length);
      if (!body.series.length || !body.times.length) {
        if (st.u) {
          st.u.destroy();
          st.u = null;
          st.key = "";
          const plot = el.querySelector(".chart-plot");
          if (plot) plot.remove();
        }
        legendOfThresholds(el, [], "");
        note(el, el.dataset.empty || "nothing recorded yet");
        return;
      }
      await loadUplot();
      const all = body;
      const v = visible(all);
      body = v.body;
      note(
        el,
        v.hidden
          ? `${v.hidden} more series at 0 throughout (of ${all.series.length}: ${
            [...new Set(all.series.map((s) => s.label.replace(/^\S+ /, "")))].join(", ")
          })`
          : "",
      );
      caption(el, body);
      st.step = body.step;
      st.single = body.times.length === 1 ? body.times[0] / 1000 : null;
      const key = keyOf(body);
      if (!st.u || st.key !== key) {
        st.key = key;
        build(el, st, body);
      } else st.u.setData(dataOf(body));
      el.dataset.drawn = String(Date.now());
    } catch (e) {
      note(el, e.message);
    } finally {
      st.busy = false;
    }
  }

  function schedule(el) {
    const st = charts.get(el);
    if (!st) return;
    clearTimeout(st.timer);
    const every = Math.max(2000, st.intervalMs || 10_000);
    st.timer = setTimeout(async () => {
      if (!el.isConnected) return forget(el);
      if (!document.hidden) await update(el);
      schedule(el);
    }, every);
  }

  function forget(el) {
    const st = charts.get(el);
    if (!st) return;
    clearTimeout(st.timer);
    if (st.u) st.u.destroy();
    if (st.ro) st.ro.disconnect();
    charts.delete(el);
  }

  function attach(el) {
    if (charts.has(el)) return;
    const st = {
      u: null,
      key: "",
      timer: null,
      busy: false,
      intervalMs: 10_000,
      step: 0,
      single: null,
    };
    charts.set(el, st);
    if (window.ResizeObserver) {
      let last = 0;
      st.ro = new ResizeObserver(() => {
        const w = widthOf(el);
        if (st.u && w !== last) {
          last = w;
          st.u.setSize({ width: w, height: Number(el.dataset.height || 200) });
        }
      });
      st.ro.observe(el);
    }
    update(el).then(() => schedule(el));
  }

  // Charts the live refresh added (a new subsystem, a signal that started reporting) are
  // drawn; charts it removed are forgotten.
  function scan() {
    for (const el of [...charts.keys()]) if (!el.isConnected) forget(el);
    document.querySelectorAll("figure.chart[data-chart]").forEach(attach);
    markWindow();
  }

  // The window picker (buttons with data-window) sets the window of every chart on the page,
  // kept for the tab's session.
  function currentWindow() {
    try {
      return sessionStorage.getItem(WINDOW_KEY);
    } catch (_) {
      return null;
    }
  }
  function markWindow() {
    const w = currentWindow() || "1h";
    document.querySelectorAll("button[data-window]").forEach((b) => {
      b.classList.toggle("active", b.dataset.window === w);
      b.setAttribute("aria-pressed", b.dataset.window === w ? "true" : "false");
    });
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("button[data-window]");
    if (!b) return;
    try {
      sessionStorage.setItem(WINDOW_KEY, b.dataset.window);
    } catch (_) { /* private mode: this page only */ }
    markWindow();
    for (const el of charts.keys()) update(el);
  });

  window.kwCharts = { charts, update, scan };
  document.addEventListener("DOMContentLoaded", () => {
    scan();
    // app.js stamps body[data-refreshed] after each live refresh of <main>
    new MutationObserver(scan).observe(document.body, {
      attributes: true,
      attributeFilter: ["data-refreshed"],
    });
  });
})();
