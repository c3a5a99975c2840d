/**
 * The alert outbox and its scheduler on fake time: routing, order per recipient, backoff
 * with jitter, permanent failures per policy, rate limits, flap suppression, the digest,
 * and what a killed process leaves behind (in-flight rows resent, journal events after
 * the cursor routed). The channel here is a scripted stand-in; the real servers are in
 * alert_channels_test.ts.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { type ConfigInput, validateConfig } from "../mod/config/mod.ts";
import { EventBus, type KwEvent } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { AlertModule } from "../mod/alert/mod.ts";
import { type Channel, DeliveryError, type Message } from "../mod/alert/channels.ts";
import { fakeClock } from "./supervisor_fakes.ts";

type Behaviour = (m: Message, n: number) => Promise<string> | string;

/** A scripted channel: `behave` answers each send (throw DeliveryError to fail). */
class Scripted implements Channel {
  sent: Message[] = [];
  calls = 0;
  constructor(public behave: Behaviour = () => "250 ok") {}
  async send(m: Message): Promise<{ answer: string }> {
    const n = ++this.calls;
    const answer = await this.behave(m, n);
    this.sent.push(m);
    return { answer };
  }
  close() {}
}

const BASE_ALERT = {
  channels: {
    mail: { type: "email" as const, host: "127.0.0.1", port: 25, from: "kw@example.org" },
  },
  recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
};

function setup(
  alert: Record<string, unknown> = {},
  opts: { store?: Store; channel?: Scripted; random?: () => number } = {},
) {
  const { fc, clock } = fakeClock(Date.UTC(2026, 0, 5, 12, 0, 0));
  const config = validateConfig({
    identity: { name: "gw-east" },
    dataDir: "/nonexistent",
    alert: { ...BASE_ALERT, ...alert },
  } as unknown as ConfigInput);
  const store = opts.store ?? new Store({ path: ":memory:", now: () => clock.now() });
  const bus = new EventBus({ journal: store, now: () => clock.now() });
  const channel = opts.channel ?? new Scripted();
  const mod = new AlertModule({ config, store, bus, clock }, {
    channel: () => channel,
    random: opts.random ?? (() => 0.5),
  });
  const publish = (kind: string, payload: Record<string, unknown>, severity = "warning") =>
    bus.publishUntyped({
      module: kind.split(".")[0],
      kind,
      severity: severity as KwEvent["severity"],
      payload,
    });
  return { fc, clock, store, bus, channel, mod, publish, tick: (ms: number) => fc.tickAsync(ms) };
}

const degraded = (array: string) => ({
  array,
  health: "degraded",
  level: "raid1",
  degradedDisks: 1,
  mdadm: "DegradedArray",
});

Deno.test("an HA takeover becomes one mail in words naming the appliance, the time and what to do", async () => {
  const t = setup();
  await t.mod.start();
  t.publish("ha.role_changed", {
    node: "gw-east",
    from: "standby",
    to: "active",
    cause: "engine",
    reason: "keepalived reported MASTER (priority 100)",
    afterMs: 1000,
    priority: 100,
  }, "warning");
  await t.tick(10);
  assertEquals(t.channel.sent.length, 1);
  const m = t.channel.sent[0];
  assertStringIncludes(m.subject, "[gw-east]");
  assertStringIncludes(m.text, "took over and is now ACTIVE");
  assertStringIncludes(m.text, "2026-01-05 12:00:00 UTC");
  assertStringIncludes(m.text, "What to do:");
  assert(!m.text.includes("{"), "no JSON in the text");
  assertStringIncludes(m.html, "<strong>");
  assert(m.id.startsWith("kwa_"));
  assertEquals(t.mod.deliveries()[0].status, "sent");
  assertEquals(t.mod.deliveries()[0].answer, "250 ok");
  // a standby staying standby, a debug event and the module's own kinds raise nothing
  t.publish("ha.role_changed", {
    node: "n",
    from: "init",
    to: "standby",
    cause: "engine",
    reason: "r",
    afterMs: 0,
    priority: 1,
  });
  t.publish("alert.failed", { id: "x" }, "critical");
  t.publish("storage.rebuild_progress", { array: "md0" }, "critical");
  await t.tick(10);
  assertEquals(t.channel.sent.length, 1);
  await t.mod.stop();
});

Deno.test("rules route by kind prefix, module and minimum severity; unknown recipients are a config error naming the field", async () => {
  const t = setup({
    defaultRules: false,
    recipients: [
      { name: "ops", channel: "mail", to: "ops@example.org" },
      { name: "net", channel: "mail", to: "net@example.org" },
    ],
    rules: [
      { kinds: ["bypass.*"], minSeverity: "notice", recipients: ["net"] },
      { kinds: ["*"], modules: ["storage"], minSeverity: "error", recipients: ["ops"] },
    ],
  });
  await t.mod.start();
  const ev = (kind: string, severity: KwEvent["severity"]) =>
    ({ id: 1, time: 0, module: kind.split(".")[0], kind, severity, payload: {} }) as KwEvent;
  assertEquals(t.mod.recipientsFor(ev("bypass.mode_changed", "notice")), ["net"]);
  assertEquals(t.mod.recipientsFor(ev("bypass.mode_changed", "info")), []);
  assertEquals(t.mod.recipientsFor(ev("storage.array_degraded", "warning")), []);
  assertEquals(t.mod.recipientsFor(ev("storage.array_degraded", "error")), ["ops"]);
  await t.mod.stop();
  let err: Error | undefined;
  try {
    validateConfig({
      alert: { ...BASE_ALERT, rules: [{ kinds: ["ha.*"], recipients: ["nobody"] }] },
    } as unknown as ConfigInput);
  } catch (e) {
    err = e as Error;
  }
  assert(err, "config refused");
  assertStringIncludes(err.message, "alert.rules[0].recipients[0]");
});

Deno.test("a failing server: exponential backoff with jitter, the queue kept in order, delivered when it answers", async () => {
  let up = false;
  const ch = new Scripted((m) => {
    if (!up) throw new DeliveryError("ECONNREFUSED: connect refused");
    return `250 ok ${m.id}`;
  });
  const t = setup({ retry: { initialMs: 1000, factor: 2, maxMs: 8000, jitter: 0.2 } }, {
    channel: ch,
    random: () => 1, // the top of the jitter range: +20 %
  });
  await t.mod.start();
  for (const a of ["md0", "md1", "md2"]) t.publish("storage.array_degraded", degraded(a));
  await t.tick(5);
  assertEquals(ch.calls, 1, "one attempt: md1 and md2 wait behind md0");
  // attempts at +1.2 s, +2.4 s, +4.8 s, +9.6 s (capped 8 s * 1.2)
  const at: number[] = [];
  const start = t.clock.now();
  while (ch.calls < 5) {
    const before = ch.calls;
    await t.tick(100);
    if (ch.calls > before) at.push(t.clock.now() - start);
  }
  assertEquals(at.map((x) => Math.round(x / 100) * 100), [1200, 3600, 8400, 18000]);
  const head = t.mod.deliveries({ status: "pending" }).at(-1)!;
  assertEquals(head.attempts, 5);
  assertStringIncludes(head.lastError!, "ECONNREFUSED");
  up = true;
  await t.tick(10_000);
  assertEquals(ch.sent.map((m) => m.text.match(/array (md\d)/)![1]), ["md0", "md1", "md2"]);
  assertEquals(t.mod.status().counts.pending, 0);
  await t.mod.stop();
});

Deno.test("a permanent refusal fails at once under policy fail, and is retried under policy retry", async () => {
  for (const permanent of ["fail", "retry"] as const) {
    let n = 0;
    const ch = new Scripted(() => {
      if (++n < 3) throw new DeliveryError("SMTP 550: mailbox unavailable", { permanent: true });
      return "250 ok";
    });
    const t = setup({ retry: { initialMs: 1000, jitter: 0, permanent } }, { channel: ch });
    await t.mod.start();
    t.publish("storage.array_degraded", degraded("md0"));
    await t.tick(60_000);
    const d = t.mod.deliveries()[0];
    if (permanent === "fail") {
      assertEquals(d.status, "failed");
      assertEquals(d.attempts, 1);
      assertStringIncludes(d.lastError!, "550");
      // the operator retries: it goes out again (and the server accepts the third try)
      t.mod.retry(d.id);
      await t.tick(60_000);
      assertEquals(t.mod.delivery(d.id).status, "failed");
      t.mod.retry(d.id);
      await t.tick(10);
      assertEquals(t.mod.delivery(d.id).status, "sent");
    } else {
      assertEquals(d.status, "sent");
      assertEquals(d.attempts, 3);
    }
    await t.mod.stop();
  }
});

Deno.test("rate limit per channel: at most count per window, the rest wait and go later, none dropped", async () => {
  const t = setup({
    rateLimit: { count: 3, perMs: 60_000 },
    recipients: [
      { name: "a", channel: "mail", to: "a@example.org" },
      { name: "b", channel: "mail", to: "b@example.org" },
    ],
  });
  await t.mod.start();
  for (let i = 0; i < 5; i++) t.publish("storage.array_degraded", degraded(`md${i}`));
  await t.tick(1000);
  assertEquals(t.channel.sent.length, 3);
  await t.tick(60_000);
  assertEquals(t.channel.sent.length, 6);
  await t.tick(120_000);
  assertEquals(t.channel.sent.length, 10);
  await t.mod.stop();
});

Deno.test("10,000 changes of one thing in a burst: flap suppression sends `changes` alerts then one summary per window", async () => {
  const t = setup({
    flap: { changes: 4, windowMs: 600_000 },
    rateLimit: { count: 20, perMs: 3_600_000 },
  });
  await t.mod.start();
  for (let i = 0; i < 10_000; i++) {
    t.publish("storage.array_degraded", degraded("md0"));
  }
  await t.tick(1000);
  assertEquals(t.channel.sent.length, 4);
  assertEquals(t.mod.status().counts.suppressed, 9_996);
  await t.tick(600_000);
  assertEquals(t.channel.sent.length, 5);
  const summary = t.channel.sent[4];
  assertStringIncludes(summary.subject, "FLAPPING: array md0 (9996 alerts folded)");
  assertStringIncludes(summary.text, "DEGRADED");
  // another thing is not held back by md0's flapping
  t.publish("storage.array_degraded", degraded("md9"));
  await t.tick(10);
  assertEquals(t.channel.sent.length, 6);
  await t.mod.stop();
});

Deno.test("a kill -9 leaves rows in flight and events unrouted: the next start sends both, duplicates counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw_alert_kill_" });
  try {
    const path = `${dir}/keepwire.db`;
    // run 1: the server never answers; the process dies with the attempt under way
    const hang = new Scripted(() => new Promise<string>(() => {}));
    const s1 = new Store({ path });
    const t1 = setup({}, { store: s1, channel: hang });
    await t1.mod.start();
    t1.publish("storage.array_degraded", degraded("md0"));
    await t1.tick(10);
    assertEquals(hang.calls, 1);
    // an event journalled after the alert module stopped listening (as if the process
    // died between the journal write and the routing)
    await t1.mod.stop().catch(() => {});
    t1.publish("storage.array_degraded", degraded("md1"));
    // stop() clears in-flight rows when it gets the chance; a kill does not: put it back
    s1.db.exec("UPDATE alert_outbox SET inflight = 1 WHERE status = 'pending'");
    s1.close();
    // run 2
    const s2 = new Store({ path });
    const t2 = setup({}, { store: s2 });
    await t2.mod.start();
    await t2.tick(10);
    const texts = t2.channel.sent.map((m) => m.text.match(/array (md\d)/)![1]).sort();
    assertEquals(texts, ["md0", "md1"]);
    assertEquals(t2.mod.status().resent, 1, "the one in flight is counted as a possible duplicate");
    const resent = t2.store.events({ kind: "alert.resent_after_restart" });
    assertEquals(resent.length, 1);
    await t2.mod.stop();
    s2.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("digest recipients get one message a day with every alert in it", async () => {
  const t = setup({
    digestAt: "13:00",
    recipients: [
      { name: "ops", channel: "mail", to: "ops@example.org" },
      { name: "boss", channel: "mail", to: "boss@example.org", digest: true },
    ],
  });
  await t.mod.start();
  t.publish("storage.array_degraded", degraded("md0"));
  t.publish("auth.locked", { user: "admin", forMs: 900_000 }, "warning");
  await t.tick(10);
  assertEquals(t.channel.sent.map((m) => m.to), ["ops@example.org", "ops@example.org"]);
  await t.tick(3_600_000); // 13:00 UTC
  const digest = t.channel.sent.filter((m) => m.to === "boss@example.org");
  assertEquals(digest.length, 1);
  assertStringIncludes(digest[0].subject, "daily digest: 2 alerts");
  assertStringIncludes(digest[0].text, "md0 is DEGRADED");
  assertStringIncludes(digest[0].text, "Account admin is LOCKED OUT");
  await t.mod.stop();
});

Deno.test("bypass held longer than bypassHeldMs raises one alert; released in time raises none", async () => {
  const t = setup({ bypassHeldMs: 600_000 });
  await t.mod.start();
  const hold = (segment: string, holds: string[], kind = "bypass.hold_added") =>
    t.publish(
      kind,
      { segment, reason: "x", count: holds.length, by: "t", mode: "bypass", holds },
      "notice",
    );
  hold("lan0", ["maintenance"]);
  hold("lan1", ["maintenance"]);
  await t.tick(300_000);
  hold("lan1", [], "bypass.hold_released");
  await t.tick(400_000);
  assertEquals(t.channel.sent.length, 1);
  assertStringIncludes(
    t.channel.sent[0].text,
    "Bypass segment lan0 has been held for 10 minutes (maintenance)",
  );
  await t.mod.stop();
});

Deno.test("bad configuration: recipient address, template placeholder and URL are refused naming the field", () => {
  const bad: [Record<string, unknown>, string][] = [
    [
      { ...BASE_ALERT, recipients: [{ name: "ops", channel: "mail", to: "not-an-address" }] },
      "alert.recipients[0].to",
    ],
    [
      { channels: { sms: { type: "sms", url: "http://gw/api?x={nope}" } }, recipients: [] },
      "alert.channels.sms.url",
    ],
    [
      { channels: { sms: { type: "sms", url: "ftp://gw/" } }, recipients: [] },
      "alert.channels.sms.url",
    ],
    [
      { channels: { sms: { type: "sms", url: "http://gw/", successMatch: "(" } }, recipients: [] },
      "alert.channels.sms.successMatch",
    ],
    [
      { channels: { w: { type: "webhook", url: "http://h/", secret: "abc" } }, recipients: [] },
      "alert.channels.w.secret",
    ],
    [{
      channels: { sms: { type: "sms", url: "http://gw/" } },
      recipients: [{ name: "p", channel: "sms", to: "call me" }],
    }, "alert.recipients[0].to"],
  ];
  for (const [alert, field] of bad) {
    let msg = "";
    try {
      validateConfig({ alert } as unknown as ConfigInput);
    } catch (e) {
      msg = (e as Error).message.replace(/ \(name "[^"]*"\)/g, "");
    }
    assertStringIncludes(msg, field);
  }
});

Deno.test("10,000 events about different things in a burst: the rate limit holds sends to count per window, none dropped", async () => {
  const t = setup({ rateLimit: { count: 30, perMs: 3_600_000 } });
  await t.mod.start();
  for (let i = 0; i < 10_000; i++) t.publish("storage.array_degraded", degraded(`md${i}`));
  await t.tick(60_000);
  assertEquals(t.channel.sent.length, 30);
  assertEquals(t.mod.status().counts.pending, 9_970);
  await t.tick(3_600_000);
  assertEquals(t.channel.sent.length, 60);
  assertEquals(t.mod.status().counts.pending, 9_940);
  await t.mod.stop();
});

Deno.test("first start: what this boot journalled before the module started is routed, older history is not", async () => {
  const t = setup();
  t.bus.publishUntyped({
    module: "storage",
    kind: "storage.array_degraded",
    severity: "warning",
    payload: degraded("md_old"),
    time: t.clock.now() - 3_600_000,
  });
  t.publish("storage.array_degraded", degraded("md7"));
  t.publish("watchdog.last_reset_by_watchdog", { device: "/dev/watchdog0" });
  await t.mod.start();
  await t.tick(10);
  const texts = t.channel.sent.map((m) => m.text.split("\n")[0]);
  assertEquals(texts.length, 2, texts.join(" | "));
  assertStringIncludes(texts[0], "md7");
  assertStringIncludes(texts[1], "hardware watchdog reset");
  await t.mod.stop();
});
