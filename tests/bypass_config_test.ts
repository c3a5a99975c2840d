/** Config of the bypass segments: defaults, every driver, errors naming segment, driver and field. */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { ConfigError, DEFAULT_CONFIG, validateConfig } from "../mod/config/mod.ts";
import { bypassConfigSchema, segmentConfigSchema } from "../hw/bypass/config.ts";

function problems(bypass: unknown): string {
  try {
    validateConfig({ hardware: { bypass } });
  } catch (e) {
    assert(e instanceof ConfigError, String(e));
    return e.problems.join("\n");
  }
  throw new Error("config was accepted");
}

Deno.test("bypass config: the embedded default is one mock segment with safe policies", () => {
  const c = validateConfig(DEFAULT_CONFIG).hardware.bypass;
  assertEquals(c.segments.length, 1);
  const s = c.segments[0];
  assertEquals([s.name, s.driver, s.ports], ["seg0", "mock", ["eth2", "eth3"]]);
  assertEquals(s.policies, {
    powerOff: "bypass",
    powerUp: "bypass",
    watchdogExpiry: "bypass",
    provision: true,
  });
  assertEquals(s.watchdog, { timeoutMs: 0, petBy: "supervisor", onExpiry: "hold" });
  assertEquals([c.pollMs, c.switchTimeoutMs, c.onStop, c.holdAtStart], [
    1000,
    5000,
    "bypass",
    null,
  ]);
  assertEquals(bypassConfigSchema.parse({}).segments[0].name, "seg0");
});

Deno.test("bypass config: every driver with its options validates", () => {
  const c = validateConfig({
    hardware: {
      bypass: {
        segments: [
          { name: "m", ports: ["m1", "m2"], mock: { switchMs: 500, stuck: true } },
          {
            name: "wan",
            ports: ["eth2", "eth3"],
            driver: "silicom",
            silicom: { root: "/proc/net/bypass" },
            policies: { powerUp: "inline", watchdogExpiry: "disconnect" },
            watchdog: { timeoutMs: 3000 },
          },
          {
            name: "lan",
            ports: ["eth4", "eth5"],
            driver: "gpio",
            gpio: { chip: "gpiochip0", line: 17, statusLine: "RELAY_OK", tool: "v2" },
          },
          {
            name: "vm",
            ports: ["pa", "pb"],
            driver: "tc",
            tc: { netns: "app", engine: ["ia", "ib"] },
          },
        ],
        holdAtStart: "startup",
      },
    },
  }).hardware.bypass;
  assertEquals(c.segments.map((s) => s.driver), ["mock", "silicom", "gpio", "tc"]);
  assertEquals(c.segments[2].gpio?.gpioset, "gpioset");
  assertEquals(c.segments[3].tc?.prio, 1);
});

Deno.test("bypass config: a misconfigured driver names the segment, the driver and the field", () => {
  let t = problems({ segments: [{ name: "lan", ports: ["a", "b"], driver: "gpio" }] });
  assertStringIncludes(
    t,
    'hardware.bypass.segments[0] (name "lan").gpio: driver gpio needs its options object "gpio"',
  );
  t = problems({
    segments: [{
      name: "lan",
      ports: ["a", "b"],
      driver: "gpio",
      gpio: { chip: "gpiochip0", line: 17, lines: 3 },
    }],
  });
  assertStringIncludes(t, '(name "lan").gpio.lines: unknown field');
  t = problems({
    segments: [{ name: "wan", ports: ["a", "b"], driver: "silicom", gpio: { chip: "x", line: 1 } }],
  });
  assertStringIncludes(
    t,
    '(name "wan").gpio: options for driver gpio given, but the driver is silicom',
  );
  t = problems({ segments: [{ name: "wan", ports: ["a", "b"], driver: "bpctl" }] });
  assertStringIncludes(t, '(name "wan").driver:');
  assertStringIncludes(t, '"silicom"');
  t = problems({
    segments: [{
      name: "vm",
      ports: ["pa", "pb"],
      driver: "tc",
      tc: { engine: ["pa", "x"] },
      watchdog: { timeoutMs: 1000 },
    }],
  });
  assertStringIncludes(t, '(name "vm").tc.engine: engine interfaces must differ');
  assertStringIncludes(t, '(name "vm").watchdog.timeoutMs: driver tc has no card watchdog; use 0');
  t = problems({
    segments: [{
      name: "lan",
      ports: ["a", "b"],
      driver: "gpio",
      gpio: { chip: "c", line: 1 },
      policies: { powerOff: "inline" },
    }],
  });
  assertStringIncludes(
    t,
    '(name "lan").policies.powerOff: driver gpio cannot do inline here (fixed: bypass)',
  );
  t = problems({ segments: [{ name: "x", ports: ["a", "a"] }] });
  assertStringIncludes(t, '(name "x").ports: the two ports must differ');
  t = problems({ segments: [{ name: "x", ports: ["a", "b"], watchdog: { timeoutMs: 50 } }] });
  assertStringIncludes(t, "watchdog.timeoutMs: 0 (off) or at least 100 ms");
});

Deno.test("bypass config: names are unique and a port belongs to one segment", () => {
  const t = problems({
    segments: [
      { name: "a", ports: ["eth2", "eth3"] },
      { name: "a", ports: ["eth3", "eth4"] },
    ],
  });
  assertStringIncludes(t, 'segment name "a" is used twice');
  assertStringIncludes(t, 'port eth3 of segment "a" is already in segment "a"');
  assertStringIncludes(problems({ holdAtStart: "two words" }), "hardware.bypass.holdAtStart:");
  // another component's reason would be released by that component
  for (const r of ["update", "shutdown", "watchdog", "supervisor:engine", "manual"]) {
    assertStringIncludes(problems({ holdAtStart: r }), "hardware.bypass.holdAtStart:");
  }
  assert(segmentConfigSchema.safeParse({ name: "ok", ports: ["a", "b"] }).success);
});
