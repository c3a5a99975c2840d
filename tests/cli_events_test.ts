// `keepwire events`: past events from the daemon or, without one, from the store;
// filters by kind, severity and time; -f follows the daemon's stream; colour only on a
// terminal and never with NO_COLOR.
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { kw, kwDaemon, MAIN } from "./helpers/cli.ts";
import { kindQuery, parseSince } from "../mod/cli/events.ts";
import { colourWanted, painter } from "../mod/cli/colour.ts";
import { CliError } from "../mod/cli/common.ts";
import type { KwEvent } from "../mod/events/mod.ts";

Deno.test("events: --since and --kind parsing", () => {
  const now = Date.UTC(2026, 0, 1);
  assertEquals(parseSince("10m", now), now - 600_000);
  assertEquals(parseSince("2h", now), now - 7_200_000);
  assertEquals(parseSince("2026-01-01T00:00:00Z", now), now);
  for (const bad of ["10", "yesterday", "10 m", "-5m"]) {
    try {
      parseSince(bad, now);
      assert(false, `accepted ${bad}`);
    } catch (e) {
      assert(e instanceof CliError && e.exitCode === 2, String(e));
    }
  }
  assertEquals(kindQuery("storage"), "storage.*");
  assertEquals(kindQuery("storage.*"), "storage.*");
  assertEquals(kindQuery("storage.array_degraded"), "storage.array_degraded");
  for (const bad of ["a*b", "x y", "*"]) {
    try {
      kindQuery(bad);
      assert(false, `accepted ${bad}`);
    } catch (e) {
      assert(e instanceof CliError && e.exitCode === 2, String(e));
    }
  }
});

Deno.test("colour: on a terminal only; NO_COLOR wins", () => {
  assertEquals(colourWanted(() => true, {}), true);
  assertEquals(colourWanted(() => false, {}), false);
  assertEquals(colourWanted(() => true, { NO_COLOR: "1" }), false);
  assertEquals(colourWanted(() => false, { FORCE_COLOR: "1" }), true);
  assertEquals(painter(true)("red", "x"), "\x1b[31mx\x1b[0m");
  assertEquals(painter(false)("red", "x"), "x");
});

function lines(out: string): KwEvent[] {
  return out.split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

Deno.test("events: from the daemon, followed, and from the store when none runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-events-" });
  const cfg = `${dir}/keepwire.json`;
  const worker = new URL("../examples/heartbeat_worker.ts", import.meta.url).pathname;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({ subsystems: [{ name: "engine", kind: "worker", module: worker }] }),
  );
  const common = ["--config", cfg, "--data", dir];
  const d = await kwDaemon([...common, "--listen", "127.0.0.1:0"]);
  let follower: Deno.ChildProcess | undefined;
  try {
    const r = await kw(["events", "--json", "--kind", "runtime", ...common]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(lines(r.stdout).map((e) => e.kind), ["runtime.started"]);
    const none = await kw(["events", "--json", "--severity", "critical", ...common]);
    assertEquals([none.code, none.stdout], [0, ""]);

    // follow: a subsystem stopped through the daemon shows up
    follower = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "events",
        "-f",
        "--json",
        "--kind",
        "supervisor.transition",
        ...common,
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const pump = (async () => {
      for await (const c of follower.stdout) out += new TextDecoder().decode(c);
    })();
    const seen = () =>
      lines(out).some((e) => e.payload.subsystem === "engine" && e.payload.to === "stopped");
    // wait until the follower is connected (its past events are printed first)
    const deadline = Date.now() + 60_000;
    while (!out.includes('"to":"ready"')) {
      assert(Date.now() < deadline, `follower printed nothing: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(!seen());
    const stop = await kw(["sub", "stop", "engine", ...common]);
    assertEquals(stop.code, 0, stop.stderr);
    while (!seen()) {
      assert(Date.now() < deadline, `the stop did not arrive: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(lines(out).every((e) => e.kind === "supervisor.transition"), out);
    follower.kill("SIGTERM");
    await follower.status;
    await pump;
    await follower.stderr.cancel();
    follower = undefined;
  } finally {
    follower?.kill("SIGKILL");
    await follower?.status;
    d.child.kill("SIGTERM");
    await d.child.status;
  }
  try {
    // no daemon: the store answers; text lines, no colour without a terminal
    const r = await kw(["events", "--kind", "runtime", "--since", "1h", ...common], {
      env: { NO_COLOR: "" },
    });
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "runtime.stopped");
    assert(!r.stdout.includes("\x1b["), "colour without a terminal");
    assert(/^\d{4}-\d\d-\d\dT\S+Z info {5}runtime\.started /m.test(r.stdout), r.stdout);
    const old = await kw([
      "events",
      "--json",
      "--since",
      "2000-01-01T00:00:00Z",
      "-n",
      "1",
      ...common,
    ]);
    assertEquals(lines(old.stdout).length, 1);
    const future = await kw(["events", "--json", "--since", "2999-01-01T00:00:00Z", ...common]);
    assertEquals(future.stdout, "");
    const f = await kw(["events", "-f", ...common]);
    assertEquals(f.code, 3, "follow needs a daemon");
    const bad = await kw(["events", "--severity", "loud", ...common]);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "--severity");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
