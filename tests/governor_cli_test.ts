import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { kw, kwDaemon, MAIN } from "./helpers/cli.ts";

const TRACES = new URL("./fixtures/traces/", import.meta.url).pathname;

Deno.test("cli: governor replay prints one JSON line per transition", async () => {
  const r = await kw(["governor", "replay", `${TRACES}surge.jsonl`]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.map((l) => [l.from, l.to]), [
    ["normal", "overload"],
    ["overload", "elevated"],
    ["elevated", "normal"],
  ]);
  assertEquals(Object.keys(lines[0]), ["t", "from", "to", "reason"]);
  assertEquals(lines[1].t, 25_000);
});

Deno.test("cli: governor replay --config uses that config's thresholds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-replay-" });
  try {
    const cfg = `${dir}/tune.jsonc`;
    // Lag alone decides; with elevated at 50 the noisy trace (15..45 ms) never leaves normal.
    await Deno.writeTextFile(
      cfg,
      `{ // tuning
        "governor": { "thresholds": { "eventLoopLagMs": { "elevated": 50 }, "cpuPressure": null } } }`,
    );
    const r = await kw(["governor", "replay", `${TRACES}noisy.jsonl`, "--config", cfg]);
    assertEquals([r.code, r.stdout], [0, ""], r.stderr);
    const d = await kw(["governor", "replay", `${TRACES}noisy.jsonl`]);
    assertEquals(d.stdout.trim().split("\n").length, 1);
    // An invalid config is a usage error naming the field.
    await Deno.writeTextFile(cfg, `{"governor": {"hysteresis": 2}}`);
    const bad = await kw(["governor", "replay", `${TRACES}noisy.jsonl`, "-c", cfg]);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "governor.hysteresis");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: governor replay names the malformed line and exits 2", async () => {
  const r = await kw(["governor", "replay", `${TRACES}bad_line3.jsonl`]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "bad_line3.jsonl: line 3:");
  assertStringIncludes(r.stderr, "signals.eventLoopLagMs");
  const dir = await Deno.makeTempDir({ prefix: "kw-replay-" });
  try {
    const cases: [string, string][] = [
      ['{"t":0}\nnot json\n', "line 2: not JSON"],
      ['{"t":0}\n\n{"t":5,"signals":{"lagMs":1}}\n', "line 3: signals.lagMs: unknown field"],
      ['{"t":10}\n{"t":5}\n', "line 2: t 5 is before the previous line's 10"],
      ['{"signals":{}}\n', "line 1: t:"],
    ];
    for (const [text, want] of cases) {
      await Deno.writeTextFile(`${dir}/t.jsonl`, text);
      const x = await kw(["governor", "replay", `${dir}/t.jsonl`]);
      assertEquals(x.code, 2, text);
      assertStringIncludes(x.stderr, want);
    }
    const missing = await kw(["governor", "replay", `${dir}/nope.jsonl`]);
    assertEquals(missing.code, 2);
    assertStringIncludes(missing.stderr, "cannot read trace");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: governor status reads the governor `keepwire run` starts (text and --json); no daemon exits 3", async () => {
  // The real composition: `keepwire run` with a config whose governor reads PSI files
  // this test writes (not the host's pressure, which a busy machine changes), lag and
  // RSS off for the same reason.
  const dir = await Deno.makeTempDir({ prefix: "kw-gov-cli-" });
  const psi = `${dir}/pressure`;
  await Deno.mkdir(psi);
  const writePsi = (cpuTotalUs: number) =>
    Promise.all(["cpu", "memory", "io"].map((f) =>
      Deno.writeTextFile(
        `${psi}/${f}`,
        `some avg10=0.00 avg60=0.00 avg300=0.00 total=${f === "cpu" ? cpuTotalUs : 0}\n`,
      )
    ));
  await writePsi(0);
  const cfg = `${dir}/keepwire.json`;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      dataDir: `${dir}/data`,
      governor: {
        signals: {
          psi: { root: psi },
          cgroup: { enabled: false },
          lag: { enabled: false },
          rss: { enabled: false },
        },
      },
    }),
  );
  const none = await kw(["governor", "status", "-c", cfg]);
  assertEquals(none.code, 3);
  const d = await kwDaemon(["-c", cfg, "--listen", "127.0.0.1:0"], {
    env: { KEEPWIRE_GOVERNOR: "on" },
  });
  try {
    const j = await kw(["governor", "status", "--json", "-c", cfg]);
    assertEquals(j.code, 0, j.stderr);
    const snap = JSON.parse(j.stdout);
    assertEquals([snap.enabled, snap.level], [true, "normal"]);
    assertEquals(Object.keys(snap.sources), ["psi", "queues", "http"]);
    assertEquals(snap.sources.psi.root, psi);
    const t = await kw(["governor", "status", "-c", cfg]);
    assertEquals(t.code, 0, t.stderr);
    assertStringIncludes(t.stdout, "governor: NORMAL since");
    assertStringIncludes(t.stdout, "severe  wants");
    assertStringIncludes(t.stdout, "suspended: none");
    assertStringIncludes(t.stdout, "requests below priority bulk rejected");
    // CPU stalled all the time (the PSI total grows as fast as wall time): the daemon's
    // governor goes to elevated (cpuPressure 80) after its enter hold.
    const start = Date.now();
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await writePsi((Date.now() - start) * 1000);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let level = "normal";
    try {
      while (level === "normal" && Date.now() - start < 60_000) {
        const s = await kw(["governor", "status", "--json", "-c", cfg]);
        if (s.code === 0) level = JSON.parse(s.stdout).level;
      }
    } finally {
      writing = false;
      await writer;
    }
    assertEquals(level, "elevated");
  } finally {
    d.child.kill("SIGTERM");
    await d.child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: governor replay /dev/zero is refused at the read limit, not a hang", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "governor", "replay", "/dev/zero"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assertEquals([out.code, out.signal], [2, null], err);
  assertStringIncludes(
    err,
    "/dev/zero is larger than 64.0 MiB, the most keepwire reads as a trace",
  );
});
