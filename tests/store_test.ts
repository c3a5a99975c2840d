import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { isNodeLocalSetting, Store } from "../mod/store/mod.ts";
import { UPGRADE_KEY } from "../mod/ha/upgrade_link.ts";
import { burstAndKill } from "./helpers/journal_kill.ts";
import { EventBus } from "../mod/events/mod.ts";

Deno.test("store: journal appends, queries by kind/module/severity/since, pages", () => {
  const store = new Store({ path: ":memory:" });
  const bus = new EventBus({ journal: store, now: () => 1000 });
  bus.publishUntyped({ module: "a", kind: "a.one", severity: "info", payload: { n: 1 } });
  bus.publishUntyped({ module: "a", kind: "a.two", severity: "warning", payload: { n: 2 } });
  bus.publishUntyped({ module: "b", kind: "b.one", severity: "error", payload: { n: 3 } });
  assertEquals(store.eventCount(), 3);
  assertEquals(store.events({ kind: "a.*" }).map((e) => e.payload.n), [2, 1]);
  assertEquals(store.events({ kind: "a." }).length, 2);
  assertEquals(store.events({ kind: "a.one" }).length, 1);
  assertEquals(store.events({ module: "b" })[0].kind, "b.one");
  assertEquals(store.events({ severity: "warning" }).map((e) => e.kind), ["b.one", "a.two"]);
  assertEquals(store.events({ sinceId: 1, order: "asc" }).map((e) => e.id), [2, 3]);
  assertEquals(store.events({ beforeId: 3, limit: 1 }).map((e) => e.id), [2]);
  store.close();
});

Deno.test("store: retention bounds the journal by count and by age", () => {
  let now = 10 * 86_400_000;
  const store = new Store({
    path: ":memory:",
    retention: { maxEvents: 100, maxAgeDays: 2 },
    now: () => now,
  });
  const bus = new EventBus({ journal: store, now: () => now });
  for (let i = 0; i < 250; i++) bus.publishUntyped({ module: "t", kind: "t.x", payload: { i } });
  store.trim();
  assertEquals(store.eventCount(), 100);
  assertEquals(store.events({ limit: 1 })[0].payload.i, 249);
  now += 3 * 86_400_000;
  bus.publishUntyped({ module: "t", kind: "t.new" });
  store.trim();
  assertEquals(store.events({}).map((e) => e.kind), ["t.new"]);
  store.close();
});

Deno.test("store: retention keeps a budget per class: no flood evicts the audit trail", () => {
  const store = new Store({
    path: ":memory:",
    retention: { maxEvents: 100, maxAgeDays: 90, maxAuditEvents: 50, maxUntrustedEvents: 20 },
  });
  const bus = new EventBus({ journal: store });
  bus.publishUntyped({ module: "auth", kind: "auth.user_created", payload: { user: "admin" } });
  bus.publishUntyped({ module: "update", kind: "update.installed", payload: {} });
  bus.publishUntyped({ module: "runtime", kind: "runtime.started", payload: {} });
  // a flood of ordinary events, then of events from unauthenticated clients
  for (let i = 0; i < 3000; i++) {
    bus.publishUntyped({ module: "t", kind: "t.noise", payload: { i } });
  }
  for (let i = 0; i < 3000; i++) {
    bus.publishUntyped({ module: "auth", kind: "auth.login_failed", payload: { i } });
  }
  store.trim();
  assertEquals(store.events({ kind: "t.noise", limit: 1000 }).length, 100);
  assertEquals(store.events({ kind: "auth.login_failed", limit: 1000 }).length, 20);
  for (const k of ["auth.user_created", "update.installed", "runtime.started"]) {
    assertEquals(store.events({ kind: k }).length, 1, `${k} was crowded out`);
  }
  assertEquals(store.eventCountFast(), store.eventCount());
  // the audit class itself keeps its newest maxAuditEvents
  for (let i = 0; i < 200; i++) bus.publishUntyped({ module: "runtime", kind: "runtime.tick" });
  store.trim();
  const audit = ["auth.", "update.", "runtime."].map((k) =>
    store.events({ kind: k, limit: 1000 }).filter((e) => e.kind !== "auth.login_failed").length
  );
  assertEquals(audit.reduce((a, b) => a + b), 50);
  store.close();
});

Deno.test("store: a journal written before retention classes is classified on upgrade", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-store-" });
  try {
    const path = `${dir}/db.sqlite`;
    const { DatabaseSync } = await import("node:sqlite");
    const old = new DatabaseSync(path);
    old.exec(`CREATE TABLE schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL);
      INSERT INTO schema_versions VALUES ('core', 1);
      CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,
        module TEXT NOT NULL, kind TEXT NOT NULL, severity INTEGER NOT NULL, payload TEXT NOT NULL);
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated INTEGER NOT NULL);
      INSERT INTO events (time, module, kind, severity, payload) VALUES
        (1, 'auth', 'auth.user_created', 2, '{}'), (2, 'auth', 'auth.login_failed', 3, '{}'),
        (3, 't', 't.x', 1, '{}');`);
    old.close();
    const s = new Store({ path, now: () => 10 });
    const cls = s.db.prepare("SELECT kind, class FROM events ORDER BY id").all().map((r) => ({
      ...r,
    }));
    assertEquals(cls, [
      { kind: "auth.user_created", class: 1 },
      { kind: "auth.login_failed", class: 2 },
      { kind: "t.x", class: 0 },
    ]);
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: migrations run once per module, in order, and refuse a newer schema", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-store-" });
  try {
    const path = `${dir}/db.sqlite`;
    let s = new Store({ path });
    assertEquals(s.migrate("m", ["CREATE TABLE t (a INTEGER)"]), 1);
    s.db.exec("INSERT INTO t VALUES (1)");
    s.close();
    s = new Store({ path });
    assertEquals(s.migrate("m", ["CREATE TABLE t (a INTEGER)", "ALTER TABLE t ADD b TEXT"]), 2);
    assertEquals(s.db.prepare("SELECT a, b FROM t").all().map((r) => ({ ...r })), [{
      a: 1,
      b: null,
    }]);
    assertThrows(() => s.migrate("m", ["CREATE TABLE t (a INTEGER)"]), Error, "newer");
    // a failing migration rolls back and keeps the version
    assertThrows(() => s.migrate("m", ["x", "y", "NOT SQL"]), Error, "migration 3");
    assertEquals(s.schemaVersion("m"), 2);
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: settings round-trip JSON values", () => {
  const s = new Store({ path: ":memory:" });
  s.setSetting("ui.theme", { dark: true });
  s.setSetting("ui.lang", "en");
  assertEquals(s.getSetting("ui.theme"), { dark: true });
  assertEquals(s.settings("ui."), { "ui.lang": "en", "ui.theme": { dark: true } });
  s.deleteSetting("ui.lang");
  assertEquals(s.getSetting("ui.lang"), undefined);
  s.close();
});

Deno.test("store: node-local settings live in settings_local, shared ones in settings", () => {
  const s = new Store({ path: ":memory:" });
  s.setSetting("ha.maintenance", { on: true, by: "admin" });
  s.setSetting("alert.cursor", 42);
  s.setSetting("alert.stopped.mail", { url: "x" });
  s.setSetting("alert.recipients", ["a@b.c"]);
  s.setSetting("ui", { refreshMs: 1500 });
  const keys = (t: string) =>
    (s.db.prepare(`SELECT key FROM ${t} ORDER BY key`).all() as { key: string }[]).map((r) =>
      r.key
    );
  assertEquals(keys("settings_local"), ["alert.cursor", "alert.stopped.mail", "ha.maintenance"]);
  assertEquals(keys("settings"), ["alert.recipients", "ui"]);
  assertEquals(s.getSetting("alert.cursor"), 42);
  assertEquals(Object.keys(s.settings("alert.")), [
    "alert.cursor",
    "alert.recipients",
    "alert.stopped.mail",
  ]);
  s.deleteSetting("alert.stopped.mail");
  assertEquals(s.getSetting("alert.stopped.mail"), undefined);
  assert(isNodeLocalSetting("node.hostname") && !isNodeLocalSetting("nodes"));
  s.close();
});

Deno.test("store: the rolling upgrade's saved step is node-local (a standby saves it)", () => {
  // the HA rollout saves its step on the node that runs it, also after it handed the active
  // role over; on a standby the shared table is read-only (the replication guard refuses
  // the write, here a trigger), so a shared key crashed the rollout at local_installing
  const s = new Store({ path: ":memory:" });
  s.db.exec(
    "CREATE TRIGGER ro BEFORE INSERT ON settings BEGIN SELECT RAISE(ABORT, 'not authorized'); END",
  );
  s.setSetting(UPGRADE_KEY, { state: "local_installing" });
  assertEquals(s.getSetting(UPGRADE_KEY), { state: "local_installing" });
  assert(isNodeLocalSetting(UPGRADE_KEY));
  s.close();
});

Deno.test("store: an old-layout store (one settings table) keeps every value after the split", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-store-" });
  try {
    const path = `${dir}/db.sqlite`;
    // the layout before the split: core schema version 2, every key in `settings`
    let s = new Store({ path });
    s.db.exec("DROP TABLE settings_local");
    s.db.exec("DROP TABLE pair_journal"); // core migration 4, after the split
    s.db.exec("UPDATE schema_versions SET version = 2 WHERE module = 'core'");
    const old: Record<string, unknown> = {
      "ha.maintenance": { on: true, by: "admin", at: 5 },
      "alert.cursor": 1234,
      "alert.stopped.sms": { url: "https://sms.example/x" },
      "alert.recipients": [{ name: "ops", channel: "mail", to: "ops@example.com" }],
      "ui": { refreshMs: 2000, banner: "hello" },
      "vendor.thing": "kept",
    };
    const ins = s.db.prepare("INSERT INTO settings (key, value, updated) VALUES (?, ?, 1)");
    for (const [k, v] of Object.entries(old)) ins.run(k, JSON.stringify(v));
    s.close();
    s = new Store({ path });
    assertEquals(s.schemaVersion("core"), 4);
    for (const [k, v] of Object.entries(old)) assertEquals(s.getSetting(k), v, k);
    assertEquals(s.settings(), old);
    const n = (t: string) =>
      Number((s.db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n);
    assertEquals([n("settings"), n("settings_local")], [3, 3]);
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: every acknowledged event survives kill -9 of the runtime during a 10,000-event burst", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-kill9-" });
  let acked = new Map<number, number>();
  try {
    // kill in the middle of the burst
    const run = await burstAndKill(dir, 10_000, 3000, { stderr: "inherit" });
    acked = run.acked;
    assert(run.killed, "the burst ended before the kill");
    assertEquals(run.status.signal, "SIGKILL");
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  try {
    const store = new Store({ path: `${dir}/keepwire.db` });
    const rows = store.events({ kind: "test.burst", order: "asc", limit: 10_000 });
    const byId = new Map(rows.map((r) => [r.id, r.payload.seq as number]));
    let missing = 0;
    for (const [id, seq] of acked) if (byId.get(id) !== seq) missing++;
    console.log(`kill -9: ${acked.size} acknowledged, ${rows.length} stored, ${missing} missing`);
    assertEquals(missing, 0);
    assert(rows.length >= acked.size);
    // the runtime never got to write runtime.stopped
    assertEquals(store.events({ kind: "runtime.stopped" }).length, 0);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
