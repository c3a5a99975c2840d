/**
 * `keepwire bypass ...` against a real daemon started in-process (Runtime on a
 * temp data dir, web on 127.0.0.1:0, CLI over the control socket), then offline.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { loadConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import { runCli } from "../mod/cli/mod.ts";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" "));
  try {
    const code = await runCli(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("bypass CLI: status, hold, release, set through the daemon; status offline; exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-bypass-cli-" });
  const cfgFile = join(dir, "keepwire.jsonc");
  await Deno.writeTextFile(
    cfgFile,
    JSON.stringify({
      dataDir: join(dir, "data"),
      web: { listen: "127.0.0.1:0" },
      governor: { enabled: false },
      hardware: {
        bypass: {
          segments: [
            {
              name: "wan",
              ports: ["eth2", "eth3"],
              watchdog: { timeoutMs: 3000, petBy: "module" },
            },
            { name: "lan", ports: ["eth4", "eth5"] },
          ],
        },
      },
    }),
  );
  const common = ["--config", cfgFile];
  const rt = new Runtime(await loadConfig({ file: cfgFile, env: {} }));
  let stopped = false;
  try {
    await rt.start();
    let r = await cli(["bypass", "status", "--json", ...common]);
    assertEquals(r.code, 0, r.err);
    const st = JSON.parse(r.out) as {
      daemon: boolean;
      segments: {
        name: string;
        ports: string[];
        mode: string;
        holds: unknown[];
        driver: string;
        watchdog: { armed: boolean; timeoutMs: number };
      }[];
    };
    assertEquals(st.daemon, true);
    assertEquals(st.segments.map((s) => [s.name, s.ports, s.mode, s.holds, s.driver]), [
      ["wan", ["eth2", "eth3"], "inline", [], "mock"],
      ["lan", ["eth4", "eth5"], "inline", [], "mock"],
    ]);
    assertEquals(st.segments[0].watchdog.armed, true);
    assertEquals(st.segments[0].watchdog.timeoutMs, 3000);

    // a reason is the operator's free text
    r = await cli([
      "bypass",
      "hold",
      "all",
      "--reason",
      "isp maintenance",
      "--by",
      "ops",
      ...common,
    ]);
    assertEquals(r.code, 0, r.err);
    assertStringIncludes(r.out, "wan");
    assert(/wan\s+eth2\/eth3\s+mock\s+bypass\s+isp maintenance/.test(r.out), r.out);
    r = await cli(["bypass", "hold", "wan", "--reason", "isp maintenance", ...common]);
    assert(/wan .* isp maintenance x2/.test(r.out.replace(/\s+/g, " ")), r.out);

    r = await cli(["bypass", "set", "lan", "inline", ...common]);
    assertEquals(r.code, 1, "refused while the operator's hold holds lan");
    assertStringIncludes(r.err, "held by isp maintenance (x1, by ops)");
    assertStringIncludes(r.err, "--reason 'isp maintenance'");

    r = await cli(["bypass", "set", "lan", "sideways", ...common]);
    assertEquals(r.code, 2);
    r = await cli(["bypass", "hold", "nope", "--reason", "lab", ...common]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.err, 'no bypass segment "nope"');
    r = await cli(["bypass", "hold", "wan", "--reason", "two\nlines", ...common]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.err, "printable characters only");
    // keepwire's own reasons cannot be taken by hand (their owner would release them)
    r = await cli(["bypass", "hold", "wan", "--reason", "update", ...common]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.err, '"update" is reserved');
    r = await cli(["bypass", "hold", "wan", ...common]);
    assertEquals(r.code, 2, "--reason is required");

    r = await cli(["bypass", "release", "lan", "--reason", "isp maintenance", ...common]);
    assertEquals(r.code, 0);
    r = await cli(["bypass", "release", "lan", "--reason", "isp maintenance", ...common]);
    assertStringIncludes(r.out, 'lan: no hold "isp maintenance" (nothing released)');
    // releasing one of keepwire's own reasons is allowed (nothing held here)
    r = await cli(["bypass", "release", "lan", "--reason", "update", ...common]);
    assertEquals(r.code, 0, r.err);
    r = await cli(["bypass", "set", "lan", "disconnect", ...common]);
    assertEquals(r.code, 0);
    assert(/lan\s+eth4\/eth5\s+mock\s+disconnect\s+manual \(disconnect\)/.test(r.out), r.out);

    r = await cli(["bypass", "status", ...common]);
    assertEquals(r.code, 0);
    assert(
      /wan\s+eth2\/eth3\s+mock\s+bypass\s+isp maintenance x2\s+disarmed 3000 ms, pet by module/
        .test(r.out),
      r.out,
    );

    await rt.stop("test");
    stopped = true;
    // No daemon: status reads the store (holds persisted, plus the runtime's
    // shutdown hold that keeps the wire up until the next start is ready) and the hardware.
    r = await cli(["bypass", "status", "--json", ...common]);
    assertEquals(r.code, 0, r.err);
    const off = JSON.parse(r.out) as {
      daemon: boolean;
      segments: { name: string; holds: { reason: string; count: number }[] }[];
    };
    assertEquals(off.daemon, false);
    assertEquals(off.segments.map((s) => [s.name, s.holds.map((h) => [h.reason, h.count])]), [
      ["wan", [["isp maintenance", 2], ["shutdown", 1]]],
      ["lan", [["manual", 1], ["shutdown", 1]]],
    ]);
    r = await cli(["bypass", "status", ...common]);
    assertStringIncludes(r.out, "keepwire is not running");
    r = await cli(["bypass", "hold", "wan", "--reason", "lab", ...common]);
    assertEquals(r.code, 3, "hold needs the daemon");
  } finally {
    if (!stopped) await rt.stop("test");
    await Deno.remove(dir, { recursive: true });
  }
});
