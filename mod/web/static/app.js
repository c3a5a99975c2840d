// keepwire web UI behaviour: confirmations, JSON actions, uploads with progress,
// live refresh over Server-Sent Events. No inline scripts (CSP script-src 'self').
"use strict";

// Flash messages and shown-once secrets live in #notices, outside <main>: a live refresh
// morphs <main> only, so they stay until the user dismisses them (or the next action).
function flash(msg, isError) {
  const el = document.getElementById("flash");
  if (!el) return alert(msg);
  el.textContent = "";
  const span = document.createElement("span");
  span.textContent = msg;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "×";
  close.title = "dismiss";
  close.addEventListener("click", () => el.classList.add("hidden"));
  el.append(span, close);
  el.className = "flash" + (isError ? " error" : "");
}

function showSecret(label, value) {
  const box = document.getElementById("secret");
  if (!box) return alert(label + "\n" + value);
  document.getElementById("secret-label").textContent = label;
  document.getElementById("secret-value").textContent = value;
  box.classList.remove("hidden");
}

document.addEventListener("click", (ev) => {
  if (!ev.target.closest("#secret-dismiss")) return;
  document.getElementById("secret-value").textContent = "";
  document.getElementById("secret").classList.add("hidden");
});

// A form the user has typed into (or chosen a file in) is "dirty": live refreshes leave it
// alone until it is submitted or reset. A field the user has put the cursor in counts too:
// a refresh landing between the focus and the first keystroke must not swap the form out
// under the cursor (typing would then go nowhere).
function markDirty(ev) {
  if (!ev.target.closest) return;
  const el = ev.target.closest("form") || ev.target;
  el.dataset.dirty = "1";
}
document.addEventListener("input", markDirty);
document.addEventListener("change", markDirty);
document.addEventListener("focusin", (ev) => {
  if (ev.target.closest && ev.target.matches("input, textarea, select")) markDirty(ev);
});
document.addEventListener("toggle", markDirty, true); // an opened <details> stays open
function clean(form) {
  form.reset();
  delete form.dataset.dirty;
}

async function callApi(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  try {
    data = await res.json();
  } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const e = data && data.error;
    let msg = e ? e.message : `HTTP ${res.status}`;
    if (e && e.fields) {
      // field errors the message does not already say (never the same words twice)
      const extra = Object.entries(e.fields).filter(([, v]) => !msg.includes(String(v)))
        .map(([k, v]) => `${k}: ${v}`);
      if (extra.length) msg += " — " + extra.join("; ");
    }
    throw new Error(msg);
  }
  return data;
}

function formJson(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.type === "file" || el.type === "submit") continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else {
      // typed text loses stray spaces at its ends (never a password)
      const v = el.type === "password" ? el.value : el.value.trim();
      if (v !== "") out[el.name] = el.dataset.type === "number" ? Number(v) : v;
    }
  }
  return out;
}

function confirmed(el) {
  const q = el.dataset.confirm;
  return !q || window.confirm(q);
}

// JSON action buttons: <button data-api="/api/x" data-method="POST" data-body='{"a":1}' data-confirm="Sure?">
document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("button[data-api]");
  if (!btn) return;
  ev.preventDefault();
  if (!confirmed(btn)) return;
  btn.disabled = true;
  try {
    const body = btn.dataset.body ? JSON.parse(btn.dataset.body) : {};
    await callApi(btn.dataset.method || "POST", btn.dataset.api, body);
    flash(btn.dataset.done || "done");
    if (btn.dataset.then) {
      leaving = true;
      location.href = btn.dataset.then;
    } else refreshSoon(0);
  } catch (e) {
    flash(e.message, true);
  } finally {
    btn.disabled = false;
  }
});

// JSON forms: <form data-api="/api/x" data-method="POST" data-confirm="...">
document.addEventListener("submit", async (ev) => {
  const form = ev.target.closest("form[data-api]");
  if (!form) return;
  ev.preventDefault();
  if (!confirmed(form)) return;
  const file = form.querySelector("input[type=file]");
  try {
    if (file) {
      await upload(form, file);
      delete form.dataset.dirty;
      refreshSoon(0);
    } else {
      const data = await callApi(form.dataset.method || "POST", form.dataset.api, formJson(form));
      // an answer that says it did not work ({ok: false}, e.g. a test send the server refused)
      const refused = !!data && data.ok === false;
      flash(refused ? form.dataset.failed || "failed" : form.dataset.done || "done", refused);
      if (form.dataset.show === "secret" && data) {
        showSecret(
          "Copy this now: it is shown once and cannot be read again.",
          data.token || JSON.stringify(data, null, 2),
        );
      } else if (form.dataset.show && data) {
        // the server's answer in a box of the page (marked data-keep: refreshes leave it)
        const box = document.getElementById(form.dataset.show);
        if (box) {
          box.textContent = typeof data.answer === "string"
            ? `${refused ? "refused" : "accepted"} in ${data.ms} ms: ${data.answer}`
            : JSON.stringify(data, null, 2);
          box.dataset.ok = refused ? "no" : "yes";
          box.classList.remove("hidden");
        }
      }
      if (form.dataset.then) {
        // the server already reduced ?next= to a same-origin path (mod/web/redirect.ts)
        leaving = true;
        location.href = form.dataset.then;
        return;
      }
      clean(form);
      refreshSoon(0);
    }
  } catch (e) {
    flash(e.message, true);
  }
});

let uploading = false;
function upload(form, input) {
  return new Promise((resolve, reject) => {
    uploading = true;
    if (!input.files.length) return reject(new Error("choose a file first"));
    const bar = document.getElementById("upload-progress");
    const label = document.getElementById("upload-label");
    if (bar) bar.value = 0;
    if (label) label.textContent = "uploading 0%";
    const inst = document.getElementById("install-label");
    if (inst) inst.textContent = "waiting for the upload";
    const xhr = new XMLHttpRequest();
    xhr.open(form.dataset.method || "POST", form.dataset.api);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.setRequestHeader("x-filename", input.files[0].name);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      if (bar) bar.value = e.loaded / e.total;
      if (label) label.textContent = `uploading ${pct}%`;
    };
    xhr.onloadend = () => {
      uploading = false;
    };
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch (_) { /* */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        if (bar) bar.value = 1;
        if (label) label.textContent = "uploaded and installed";
        flash(form.dataset.done || "uploaded");
        resolve(data);
      } else {
        const msg = data && data.error ? data.error.message : `HTTP ${xhr.status}`;
        if (label) label.textContent = "failed: " + msg;
        reject(new Error(msg));
      }
    };
    xhr.onerror = () => reject(new Error("upload failed (connection)"));
    xhr.send(input.files[0]);
  });
}

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("#logout");
  if (!b) return;
  ev.preventDefault();
  leaving = true;
  try {
    await callApi("POST", "/api/logout", {});
  } catch (_) { /* ignore */ }
  location.href = "/login";
});

// Live refresh: fetch the page again and morph <main> in place (idiomorph, served from its
// npm package): unchanged nodes stay, focused fields keep their value, dirty forms and a
// paused event table are skipped.
let refreshTimer = null;
let lastRefresh = 0;
// leaving the page (sign-out, a link): no refresh may start a second navigation
let leaving = false;
window.addEventListener("beforeunload", () => {
  leaving = true;
});
window.addEventListener("pageshow", () => {
  leaving = false; // back from the page cache
});
function refreshMs() {
  return Number(document.body.dataset.refreshMs || "1500");
}
function keep(oldNode) {
  if (oldNode.nodeType !== 1) return false;
  if (oldNode.dataset.dirty || oldNode.hasAttribute("data-keep")) return true;
  const paused = document.getElementById("pause-live");
  return oldNode.id === "live-events" && !!(paused && paused.checked);
}
function refreshSoon(delay) {
  const forced = delay === 0;
  if (document.body.dataset.live !== "on" && !forced) return;
  if (refreshTimer) return;
  const wait = delay !== undefined ? delay : Math.max(0, refreshMs() - (Date.now() - lastRefresh));
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    lastRefresh = Date.now();
    if (uploading) {
      refreshSoon();
      return;
    } // keep the progress bars while uploading
    if (leaving) return;
    try {
      const res = await fetch(location.href, { credentials: "same-origin" });
      if (leaving) return;
      if (res.redirected && new URL(res.url).pathname !== location.pathname) {
        location.href = res.url; // signed out meanwhile
        return;
      }
      if (!res.ok) return;
      const html = await res.text();
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.querySelector("main");
      const cur = document.querySelector("main");
      if (fresh && cur) {
        if (window.Idiomorph) {
          window.Idiomorph.morph(cur, fresh, {
            morphStyle: "innerHTML",
            ignoreActiveValue: true,
            callbacks: { beforeNodeMorphed: (o) => !keep(o) },
          });
        } else cur.innerHTML = fresh.innerHTML;
      }
      const rm = doc.body.dataset.refreshMs;
      if (rm) document.body.dataset.refreshMs = rm;
      document.body.dataset.refreshed = String(Date.now());
    } catch (_) { /* offline for a moment */ }
  }, wait);
}

// A live row at once (generic words); the refresh that follows morphs it into the
// server's sentence from the words table.
function addEventRow(e) {
  const tbody = document.querySelector("#live-events tbody");
  // a refresh may already have brought this event's row (two rows with one id break the morph)
  if (!tbody || document.getElementById("ev-" + e.id)) return;
  const tr = document.createElement("tr");
  tr.id = "ev-" + e.id;
  tr.dataset.id = e.id;
  tr.dataset.kind = e.kind;
  const when = document.createElement("td");
  when.className = "when";
  when.textContent = new Date(e.time).toISOString().replace("T", " ").slice(0, 19);
  const sev = document.createElement("td");
  const badge = document.createElement("span");
  badge.className = "badge " + e.severity;
  badge.textContent = e.severity;
  sev.appendChild(badge);
  const what = document.createElement("td");
  what.className = "what";
  const sentence = document.createElement("span");
  sentence.className = "sentence";
  sentence.textContent = e.module + ": " + e.kind.replace(/^[^.]*\./, "").replaceAll("_", " ");
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = e.kind;
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(e.payload, null, 2);
  details.append(summary, pre);
  what.append(sentence, details);
  tr.append(when, sev, what);
  tbody.insertBefore(tr, tbody.firstChild);
  while (tbody.children.length > Number(tbody.dataset.max || 200)) {
    tbody.removeChild(tbody.lastChild);
  }
}

function updateProgress(e) {
  if (!/progress$/.test(e.kind)) return;
  const bar = document.getElementById("install-progress");
  const label = document.getElementById("install-label");
  const p = e.payload || {};
  const frac = typeof p.progress === "number"
    ? p.progress
    : (p.done && p.total ? p.done / p.total : null);
  if (bar && frac !== null) bar.value = frac;
  if (label) {
    label.textContent = (p.phase || "installing") +
      (frac !== null ? ` ${Math.round(frac * 100)}%` : "");
  }
}

function startLive() {
  if (!window.EventSource || document.body.dataset.live !== "on") return;
  const dot = document.getElementById("live-dot");
  const filter = document.body.dataset.stream || "";
  const es = new EventSource("/api/events/stream" + filter);
  es.addEventListener("hello", () => dot && dot.classList.add("on"));
  es.addEventListener("event", (m) => {
    let e;
    try {
      e = JSON.parse(m.data);
    } catch (_) {
      return;
    }
    const paused = document.getElementById("pause-live");
    if (!(paused && paused.checked)) addEventRow(e);
    updateProgress(e);
    if (!/progress$/.test(e.kind)) refreshSoon();
  });
  es.onerror = () => dot && dot.classList.remove("on");
  // values that change without an event (pressure, sync progress): a slow refresh too
  setInterval(() => refreshSoon(), 15_000);
}

document.addEventListener("DOMContentLoaded", startLive);
