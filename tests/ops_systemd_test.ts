// image/keepwire.service: accepted by the real systemd-analyze verify, and it keeps the
// settings keepwire relies on (sd_notify from the main process, the watchdog, restarts,
// the cgroup kill that leaves no orphan).
import { assert, assertEquals } from "./helpers/assert.ts";
import { missingTools } from "./helpers/tools.ts";

const UNIT = new URL("../image/keepwire.service", import.meta.url);
const missing = missingTools(["systemd-analyze"]);

/** Settings of a unit file by section, keys to values (last one wins). */
function parseUnit(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      section = m[1];
      out[section] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    out[section][line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Run systemd-analyze verify on unit text, with ExecStart's binary replaced by a real one. */
async function verify(text: string): Promise<{ code: number; out: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kw-unit-" });
  try {
    const bin = `${dir}/keepwire`;
    await Deno.writeTextFile(bin, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    await Deno.writeTextFile(
      `${dir}/keepwire.service`,
      text.replaceAll("/usr/bin/keepwire ", `${bin} `),
    );
    const r = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${dir}/keepwire.service`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim() };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("systemd unit: the settings keepwire relies on", async () => {
  const u = parseUnit(await Deno.readTextFile(UNIT));
  const s = u.Service;
  assertEquals(s.Type, "notify");
  // selfmon sends READY/WATCHDOG/STOPPING from keepwire's own pid (MAINPID)
  assertEquals(s.NotifyAccess, "main");
  assert(Number(s.WatchdogSec) >= 5, `WatchdogSec ${s.WatchdogSec}`);
  assertEquals(s.Restart, "always");
  assertEquals(s.KillMode, "control-group");
  assert(Number(s.OOMScoreAdjust) < 0, "OOMScoreAdjust must protect keepwire");
  // the stop timeout must leave room for keepwire's own orderly stop (10 s default)
  assert(Number(s.TimeoutStopSec) > 10, `TimeoutStopSec ${s.TimeoutStopSec}`);
  assert(u.Unit.StartLimitIntervalSec && u.Unit.StartLimitBurst, "StartLimit* in [Unit]");
  assert(/ run .*--data \/var\/lib\/keepwire/.test(s.ExecStart), s.ExecStart);
  assertEquals(s.StateDirectory, "keepwire");
  assertEquals(u.Install.WantedBy, "multi-user.target");
});

Deno.test({
  name: "systemd unit: systemd-analyze verify accepts it without a warning",
  ignore: missing !== undefined,
  async fn() {
    const text = await Deno.readTextFile(UNIT);
    const ok = await verify(text);
    assertEquals(ok, { code: 0, out: "" });
    // the check sees mistakes: a misspelt key is a warning, a bad Type an error
    const typo = await verify(text.replace("WatchdogSec=", "WatchdogSecs="));
    assert(typo.out.includes("Unknown key"), typo.out);
    const bad = await verify(text.replace("Type=notify", "Type=notifyy"));
    assert(bad.out.includes("service type"), bad.out);
  },
});
