/** Bypass module and segment state machine on mock cards with a fake clock. */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { bypassRig } from "./bypass_rig.ts";
import { BypassHeldError, BypassSwitchError } from "../mod/bypass/mod.ts";

const one = { segments: [{ name: "seg0", ports: ["eth2", "eth3"] as [string, string] }] };

Deno.test("bypass: a card found in bypass with no holds is switched inline and read back", async () => {
  const r = await bypassRig(one);
  try {
    const s = r.mod.segments()[0];
    assertEquals(s.mode, "inline");
    assertEquals(s.readBack, "inline");
    assertEquals(s.holds, []);
    assertEquals(r.cards.get("seg0")!.setCalls, ["inline"]);
    const found = r.kinds("bypass.segment_found")[0];
    assertEquals(found.payload.mode, "bypass");
    const ch = r.kinds("bypass.mode_changed");
    assertEquals(ch.length, 1);
    assertEquals(ch[0].payload.from, "bypass");
    assertEquals(ch[0].payload.to, "inline");
    assert(r.mod.health().ok);
  } finally {
    await r.close();
  }
});

Deno.test("bypass: holds are named and counted; the segment stays in bypass until the last release", async () => {
  const r = await bypassRig(one);
  try {
    const card = r.cards.get("seg0")!;
    await r.mod.hold("seg0", "supervisor:engine", "supervisor");
    await r.mod.hold("seg0", "supervisor:engine", "supervisor");
    await r.mod.hold("all", "update", "updater");
    assertEquals(card.mode, "bypass");
    let s = r.mod.segments()[0];
    assertEquals(s.mode, "bypass");
    assertEquals(
      s.holds.map((h) => [h.reason, h.count, h.by]),
      [["supervisor:engine", 2, "supervisor"], ["update", 1, "updater"]],
    );
    // The update finishing does not put the segment inline while faults remain.
    await r.mod.release("seg0", "update");
    assertEquals(card.mode, "bypass");
    await r.mod.release("seg0", "supervisor:engine");
    assertEquals(card.mode, "bypass");
    assertEquals(r.mod.segments()[0].holds[0].count, 1);
    await r.mod.release("all", "supervisor:engine");
    s = r.mod.segments()[0];
    assertEquals(s.mode, "inline");
    assertEquals(s.holds, []);
    assertEquals(card.mode, "inline");
    // Only one switch to bypass and one back, however many holds.
    assertEquals(card.setCalls, ["inline", "bypass", "inline"]);
    assertEquals(r.kinds("bypass.hold_added").length, 3);
    assertEquals(r.kinds("bypass.hold_released").length, 3);
    const last = r.kinds("bypass.hold_released").at(-1)!;
    assertEquals(last.payload.remaining, 0);
    assertEquals(last.module, "bypass");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: releasing a hold that is not there changes nothing; force drops every count", async () => {
  const r = await bypassRig(one);
  try {
    const res = await r.mod.releaseWith("seg0", "update");
    assertEquals(res, [{ segment: "seg0", released: false, remaining: 0 }]);
    assertEquals(r.kinds("bypass.hold_released").length, 0);
    for (let i = 0; i < 3; i++) await r.mod.hold("seg0", "supervisor:engine");
    const forced = await r.mod.releaseWith("seg0", "supervisor:engine", { force: true });
    assertEquals(forced, [{ segment: "seg0", released: true, remaining: 0 }]);
    assertEquals(r.mod.segments()[0].mode, "inline");
    await assertRejects(() => r.mod.hold("seg0", "bad\u0007reason"), Error, "invalid hold reason");
    await assertRejects(() => r.mod.hold("nope", "update"), Error, 'no bypass segment "nope"');
  } finally {
    await r.close();
  }
});

Deno.test("bypass: set is a manual hold; set inline is refused while another hold is active", async () => {
  const r = await bypassRig(one);
  try {
    const card = r.cards.get("seg0")!;
    await r.mod.set("seg0", "disconnect");
    assertEquals(card.mode, "disconnect");
    assertEquals(r.mod.segments()[0].holds.map((h) => [h.reason, h.mode]), [[
      "manual",
      "disconnect",
    ]]);
    await r.mod.set("seg0", "bypass");
    assertEquals(card.mode, "bypass");
    assertEquals(r.mod.segments()[0].holds.map((h) => [h.reason, h.count, h.mode]), [[
      "manual",
      1,
      "bypass",
    ]]);
    await r.mod.hold("seg0", "update", "updater");
    const e = await assertRejects(() => r.mod.set("seg0", "inline"), BypassHeldError);
    assertStringIncludes(e.message, "held by update");
    assertEquals(card.mode, "bypass");
    assertEquals(r.mod.segments()[0].holds.length, 2, "nothing was released by the refused set");
    await r.mod.release("seg0", "update");
    await r.mod.set("seg0", "inline");
    assertEquals(card.mode, "inline");
    assertEquals(r.mod.segments()[0].holds, []);
    // disconnect wins over bypass while both are held
    await r.mod.hold("seg0", "update");
    await r.mod.set("seg0", "disconnect");
    assertEquals(r.mod.segments()[0].mode, "disconnect");
    await r.mod.set("seg0", "bypass");
    assertEquals(r.mod.segments()[0].mode, "bypass");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: holds survive a restart of keepwire (store closed and reopened)", async () => {
  const r = await bypassRig(one);
  try {
    const card = r.cards.get("seg0")!;
    await r.mod.hold("seg0", "update", "updater");
    await r.mod.hold("seg0", "supervisor:engine", "supervisor");
    await r.mod.hold("seg0", "supervisor:engine", "supervisor");
    const calls = card.setCalls.length;
    await r.restart();
    const s = r.mod.segments()[0];
    assertEquals(s.mode, "bypass");
    assertEquals(
      s.holds.map((h) => [h.reason, h.count, h.by]),
      [["supervisor:engine", 2, "supervisor"], ["update", 1, "updater"]],
    );
    assertEquals(card.setCalls.length, calls, "the relay never moved across the restart");
    await r.mod.release("seg0", "update");
    await r.mod.release("seg0", "supervisor:engine");
    await r.mod.release("seg0", "supervisor:engine");
    assertEquals(card.mode, "inline");
    await r.restart();
    assertEquals(r.mod.segments()[0].holds, []);
    assertEquals(r.mod.segments()[0].mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: a partial release is persisted: the released count does not come back after a restart", async () => {
  const r = await bypassRig(one);
  try {
    for (let i = 0; i < 3; i++) await r.mod.hold("seg0", "supervisor:engine", "supervisor");
    await r.mod.hold("seg0", "lab", "alice");
    await r.mod.release("seg0", "supervisor:engine");
    await r.mod.releaseWith("seg0", "lab", { force: true });
    const before = r.mod.segments()[0].holds.map((h) => [h.reason, h.count]);
    assertEquals(before, [["supervisor:engine", 2]]);
    await r.restart();
    assertEquals(r.mod.segments()[0].holds.map((h) => [h.reason, h.count]), before);
    // two more releases (not three) put the segment inline
    await r.mod.release("seg0", "supervisor:engine");
    assertEquals(r.mod.segments()[0].mode, "bypass");
    await r.mod.release("seg0", "supervisor:engine");
    assertEquals(r.mod.segments()[0].mode, "inline");
    await r.restart();
    assertEquals(r.mod.segments()[0].holds, []);
  } finally {
    await r.close();
  }
});

Deno.test("bypass: a stuck relay is reported unknown with an error event and retried until it moves", async () => {
  const r = await bypassRig({ ...one, retry: { initialMs: 1000, maxMs: 4000 } });
  try {
    const card = r.cards.get("seg0")!;
    card.injectFault({ stuck: true });
    const e = await assertRejects(() => r.mod.hold("seg0", "update"), BypassSwitchError);
    assertStringIncludes(e.message, "read back inline after setting bypass");
    let s = r.mod.segments()[0];
    assertEquals(s.mode, "unknown", "never silently inline");
    assertEquals(s.readBack, "inline");
    assertEquals(s.holds.map((h) => h.reason), ["update"], "the hold is recorded");
    assertEquals(r.mod.health().ok, false);
    const f1 = r.kinds("bypass.switch_failed");
    assertEquals(f1.length, 1);
    assertEquals(f1[0].severity, "error");
    assertEquals(f1[0].payload.wanted, "bypass");
    assertEquals(f1[0].payload.readBack, "inline");
    assertEquals(f1[0].payload.retryInMs, 1000);
    // retries double: 1 s, 2 s, 4 s, 4 s
    await r.advance(1000);
    assertEquals(r.kinds("bypass.switch_failed").length, 2);
    await r.advance(2000);
    assertEquals(r.kinds("bypass.switch_failed").length, 3);
    assertEquals(r.kinds("bypass.switch_failed")[2].severity, "critical");
    assertEquals(r.kinds("bypass.switch_failed")[2].payload.retryInMs, 4000);
    // polls do not hide the failure while a retry is pending
    await r.advance(1000);
    assertEquals(r.mod.segments()[0].mode, "unknown");
    card.clearFaults();
    await r.advance(3000);
    s = r.mod.segments()[0];
    assertEquals(s.mode, "bypass");
    assertEquals(s.failures, 0);
    assertEquals(card.mode, "bypass");
    const ch = r.kinds("bypass.mode_changed").at(-1)!;
    assertEquals(ch.payload.from, "unknown");
    assertEquals(ch.payload.to, "bypass");
    assertEquals(ch.payload.recovered, true);
    assert(r.mod.health().ok);
  } finally {
    await r.close();
  }
});

Deno.test("bypass: a slow relay past switchTimeoutMs fails, a slow one within it works", async () => {
  const r = await bypassRig({
    segments: [{ name: "seg0", ports: ["a", "b"], mock: { switchMs: 500, initialMode: "inline" } }],
    switchTimeoutMs: 2000,
    retry: { initialMs: 5000, maxMs: 5000 },
  });
  try {
    const card = r.cards.get("seg0")!;
    const p = r.mod.hold("seg0", "update");
    await r.advance(500);
    await p;
    assertEquals(r.mod.segments()[0].mode, "bypass");
    assertEquals(r.mod.segments()[0].lastSwitchMs, 500);
    card.injectFault({ slowMs: 3000 });
    const q = r.mod.release("seg0", "update");
    const rejected = assertRejects(() => q, BypassSwitchError, "did not finish within 2000 ms");
    await r.advance(2000);
    await rejected;
    assertEquals(r.mod.segments()[0].mode, "unknown");
    card.clearFaults();
    await r.advance(1500); // the slow relay arrives at inline meanwhile
    assertEquals(card.mode, "inline");
    await r.advance(5000); // retry: reads back inline, reports it
    assertEquals(r.mod.segments()[0].mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: driver errors on read-back make the segment unknown until the driver answers", async () => {
  const r = await bypassRig({ ...one, pollMs: 1000, retry: { initialMs: 2000, maxMs: 2000 } });
  try {
    const card = r.cards.get("seg0")!;
    card.injectFault({ error: "i2c bus timeout", errorOn: "read" });
    await r.advance(1000);
    const s = r.mod.segments()[0];
    assertEquals(s.mode, "unknown");
    assertStringIncludes(s.lastError ?? "", "i2c bus timeout");
    assertEquals(r.kinds("bypass.switch_failed").length, 1);
    card.clearFaults();
    await r.advance(2000);
    assertEquals(r.mod.segments()[0].mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: someone flips the relay behind keepwire's back → mode_drift and switched back", async () => {
  const r = await bypassRig({ ...one, pollMs: 1000 });
  try {
    const card = r.cards.get("seg0")!;
    card.mode = "bypass";
    await r.advance(1000);
    const d = r.kinds("bypass.mode_drift");
    assertEquals(d.length, 1);
    assertEquals(d[0].payload.expected, "inline");
    assertEquals(d[0].payload.observed, "bypass");
    assertEquals(card.mode, "inline");
    assertEquals(r.mod.segments()[0].mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: card watchdog armed for inline, petted, expires into a persisted watchdog hold", async () => {
  const r = await bypassRig({
    segments: [{ name: "seg0", ports: ["a", "b"], watchdog: { timeoutMs: 3000 } }],
    pollMs: 500,
  });
  try {
    const card = r.cards.get("seg0")!;
    let s = r.mod.segments()[0];
    assertEquals(s.mode, "inline");
    assert(s.watchdog.armed);
    assertEquals(s.watchdog.effectiveMs, 3000);
    assertEquals(r.kinds("bypass.watchdog_armed").length, 1);
    for (let i = 0; i < 10; i++) {
      await r.advance(1000);
      await r.mod.petWatchdogs();
    }
    assertEquals(card.pets, 10);
    assertEquals(card.mode, "inline");
    // The supervisor stops petting (appliance unhealthy): the card fails open.
    await r.advance(3000);
    assertEquals(card.mode, "bypass");
    await r.advance(500);
    const ex = r.kinds("bypass.watchdog_expired");
    assertEquals(ex.length, 1);
    assertEquals(ex[0].severity, "critical");
    s = r.mod.segments()[0];
    assertEquals(s.mode, "bypass");
    assertEquals(s.holds.map((h) => [h.reason, h.by]), [["watchdog", "card-watchdog"]]);
    assertEquals(r.kinds("bypass.mode_drift").length, 0, "expiry is not reported as drift");
    // still bypass after a restart: the watchdog hold is persisted
    await r.restart();
    assertEquals(r.mod.segments()[0].mode, "bypass");
    await r.mod.release("seg0", "watchdog");
    s = r.mod.segments()[0];
    assertEquals(s.mode, "inline");
    assert(s.watchdog.armed, "re-armed before going inline");
    assertEquals(card.mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: onExpiry=rearm goes back inline after an expiry; petBy=module pets by itself", async () => {
  const r = await bypassRig({
    segments: [
      { name: "a", ports: ["a1", "a2"], watchdog: { timeoutMs: 1000, onExpiry: "rearm" } },
      { name: "b", ports: ["b1", "b2"], watchdog: { timeoutMs: 1000, petBy: "module" } },
    ],
    pollMs: 200,
  });
  try {
    await r.advance(1100);
    assertEquals(r.kinds("bypass.watchdog_expired").map((e) => e.payload.segment), ["a"]);
    await r.advance(400);
    const a = r.mod.segment("a");
    assertEquals(a.mode, "inline");
    assertEquals(a.holds, []);
    assert(a.watchdog.armed);
    await r.advance(10_000);
    const b = r.mod.segment("b");
    assertEquals(b.mode, "inline");
    assert(b.watchdog.pets >= 30, `module pets every 333 ms (${b.watchdog.pets})`);
    assertEquals(r.cards.get("b")!.mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: policies are provisioned only when they differ (no EEPROM write on every boot)", async () => {
  const r = await bypassRig({
    segments: [{
      name: "seg0",
      ports: ["a", "b"],
      policies: { powerOff: "bypass", powerUp: "disconnect", watchdogExpiry: "disconnect" },
    }],
  });
  try {
    const card = r.cards.get("seg0")!;
    assertEquals(card.policyWrites, 1);
    assertEquals(card.policies.powerUp, "disconnect");
    assertEquals(card.policies.watchdogExpiry, "disconnect");
    const w = r.kinds("bypass.policies_written")[0];
    assertEquals(w.payload.written, { powerUp: "disconnect", watchdogExpiry: "disconnect" });
    await r.restart();
    await r.restart();
    assertEquals(card.policyWrites, 1, "restarts do not rewrite");
    // power cycle: the card comes up in its power-up policy; keepwire puts it inline
    card.powerCycle();
    assertEquals(card.mode, "disconnect");
    await r.restart();
    assertEquals(card.mode, "inline");
  } finally {
    await r.close();
  }
});

Deno.test("bypass: provision=false only reports a difference", async () => {
  const r = await bypassRig({
    segments: [{
      name: "seg0",
      ports: ["a", "b"],
      policies: { powerOff: "inline", provision: false },
    }],
  });
  try {
    assertEquals(r.cards.get("seg0")!.policyWrites, 0);
    const d = r.kinds("bypass.policies_differ")[0];
    assertEquals(d.payload.wanted, { powerOff: "inline" });
    assertEquals(d.payload.card, { powerOff: "bypass" });
  } finally {
    await r.close();
  }
});

Deno.test("bypass: a policy the card cannot do fails the start naming segment and field", async () => {
  await assertRejects(
    () =>
      bypassRig({
        segments: [{ name: "wan", ports: ["a", "b"], policies: { watchdogExpiry: "tap" } }],
      }),
    Error,
    'segment "wan" (driver mock): policies.watchdogExpiry: tap is not possible',
  );
});

Deno.test("bypass: holdAtStart holds every segment until the supervisor releases it", async () => {
  const r = await bypassRig({
    segments: [{ name: "s1", ports: ["a", "b"] }, { name: "s2", ports: ["c", "d"] }],
    holdAtStart: "startup",
  });
  try {
    assertEquals(r.mod.segments().map((s) => s.mode), ["bypass", "bypass"]);
    assertEquals(r.cards.get("s1")!.setCalls, [], "never went inline");
    await r.mod.release("all", "startup");
    assertEquals(r.mod.segments().map((s) => s.mode), ["inline", "inline"]);
  } finally {
    await r.close();
  }
});

Deno.test("bypass: an orderly stop leaves the wire in bypass (onStop=bypass) or as is (keep)", async () => {
  const r = await bypassRig(one);
  const card = r.cards.get("seg0")!;
  assertEquals(card.mode, "inline");
  await r.close();
  assertEquals(card.mode, "bypass");
  assert(card.closed);
  const k = await bypassRig({ ...one, onStop: "keep" });
  const kc = k.cards.get("seg0")!;
  await k.close();
  assertEquals(kc.mode, "inline");
});

Deno.test("bypass: prepareStop takes one shutdown hold per segment; it and holdAtStart are released when essentials are ready after the restart", async () => {
  const r = await bypassRig({
    segments: [{ name: "s1", ports: ["a", "b"] }, { name: "s2", ports: ["c", "d"] }],
    holdAtStart: "startup",
  });
  try {
    const ready = (ready: boolean) =>
      r.bus.publish({
        module: "supervisor",
        kind: "supervisor.essentials_ready",
        payload: { ready },
      });
    ready(false);
    assertEquals(r.mod.segments().map((s) => s.mode), ["bypass", "bypass"]);
    ready(true);
    await r.advance(0);
    assertEquals(r.mod.segments().map((s) => [s.mode, s.holds.length]), [
      ["inline", 0],
      ["inline", 0],
    ]);
    assertEquals(r.kinds("bypass.start_holds_released").map((e) => e.payload.released), [[
      "startup",
    ]]);
    // an operator's hold later is not touched by readiness changes
    await r.mod.hold("s1", "lab", "alice");
    ready(false);
    ready(true);
    await r.advance(0);
    assertEquals(r.mod.segment("s1").holds.map((h) => h.reason), ["lab"]);
    await r.mod.release("s1", "lab");

    await r.mod.prepareStop();
    await r.mod.prepareStop(); // a second stop request does not count it up
    assertEquals(
      r.mod.segments().map((s) => [s.mode, s.holds.map((h) => [h.reason, h.count, h.by])]),
      [["bypass", [["shutdown", 1, "keepwire-stop"]]], ["bypass", [[
        "shutdown",
        1,
        "keepwire-stop",
      ]]]],
    );
    ready(true); // readiness while stopping releases nothing
    await r.advance(0);
    assertEquals(r.mod.segment("s1").holds.map((h) => h.reason), ["shutdown"]);

    const calls = r.cards.get("s1")!.setCalls.length;
    await r.restart();
    assertEquals(
      r.mod.segments().map((s) => [s.mode, s.holds.map((h) => h.reason)]),
      [["bypass", ["shutdown", "startup"]], ["bypass", ["shutdown", "startup"]]],
    );
    assertEquals(r.cards.get("s1")!.setCalls.length, calls, "the relay never moved");
    ready(false);
    await r.advance(0);
    assertEquals(r.mod.segment("s2").mode, "bypass", "not ready: still held");
    ready(true);
    await r.advance(0);
    assertEquals(r.mod.segments().map((s) => [s.mode, s.holds.length]), [
      ["inline", 0],
      ["inline", 0],
    ]);
    const rel = r.kinds("bypass.start_holds_released").at(-1)!;
    assertEquals(rel.payload.released, ["shutdown", "startup"]);
    assertEquals(
      r.kinds("bypass.hold_released").slice(-4).map((e) => [e.payload.reason, e.payload.by]),
      [
        ["shutdown", "essentials-ready"],
        ["shutdown", "essentials-ready"],
        ["startup", "essentials-ready"],
        ["startup", "essentials-ready"],
      ],
    );
  } finally {
    await r.close();
  }
});

Deno.test("bypass: with onStop=keep prepareStop takes no hold", async () => {
  const r = await bypassRig({ ...one, onStop: "keep" });
  try {
    await r.mod.prepareStop();
    assertEquals(r.mod.segments()[0].holds, []);
    assertEquals(r.mod.segments()[0].mode, "inline");
  } finally {
    await r.close();
  }
});
