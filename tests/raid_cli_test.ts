// `keepwire raid status`: --mdstat files (JSON shape, text, malformed → exit 2 with the
// line), --sysfs, the configured driver without a daemon, the running daemon, and a real
// subprocess run for the exit code.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { runCli } from "../mod/cli/mod.ts";
import { controlSocketPath } from "../mod/cli/client.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";

const FIX = fromFileUrl(new URL("./fixtures/mdstat/", import.meta.url));
const ROOT = fromFileUrl(new URL("../", import.meta.url));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => void err.push(a.map(String).join(" "));
  try {
    const code = await runCli(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const KEYS = [
  "name",
  "level",
  "active",
  "readOnly",
  "health",
  "raidDisks",
  "activeDisks",
  "degradedDisks",
  "failed",
  "spares",
  "replacements",
  "writeMostly",
  "members",
  "sync",
];

Deno.test("cli raid status --mdstat FILE --json: the documented shape", async () => {
  const r = await cli(["raid", "status", "--mdstat", join(FIX, "sync_states.mdstat"), "--json"]);
  assertEquals([r.code, r.err], [0, ""]);
  const body = JSON.parse(r.out) as { arrays: Record<string, unknown>[] };
  assertEquals(Object.keys(body), ["arrays"]);
  assertEquals(body.arrays.length, 10);
  for (const a of body.arrays) assertEquals(Object.keys(a), KEYS);
  assertEquals(body.arrays[1], {
    name: "md21",
    level: "raid1",
    active: true,
    readOnly: false,
    health: "rebuilding",
    raidDisks: 2,
    activeDisks: 1,
    degradedDisks: 1,
    failed: [],
    spares: [],
    replacements: [],
    writeMostly: [],
    members: [{ name: "sdc3", index: 2, flags: [] }, { name: "sdd3", index: 1, flags: [] }],
    sync: { action: "recovery", progress: 0.15, finishSeconds: 90, speedKiBps: 98232 },
  });
  assertEquals(body.arrays[5].readOnly, true);
  assertEquals(body.arrays[5].sync, {
    action: "resync",
    progress: 0,
    finishSeconds: null,
    speedKiBps: null,
  });
});

Deno.test("cli raid status: raid0/linear raidDisks = member count; inactive level null", async () => {
  const r = await cli(["raid", "status", "--mdstat", join(FIX, "external.mdstat"), "--json"]);
  const arrays = (JSON.parse(r.out) as { arrays: Record<string, unknown>[] }).arrays;
  assertEquals(arrays.map((a) => [a.name, a.level, a.active, a.raidDisks, a.health]), [
    ["md126", "raid1", true, 2, "ok"],
    ["md127", null, false, 0, "inactive"],
    ["md124", "raid0", true, 2, "ok"],
    ["md125", null, false, 0, "inactive"],
  ]);
  const lin = await cli(["raid", "status", "--mdstat", join(FIX, "all_levels.mdstat"), "--json"]);
  const l = (JSON.parse(lin.out) as { arrays: Record<string, unknown>[] }).arrays[0];
  assertEquals([l.level, l.raidDisks, l.activeDisks, l.degradedDisks], ["linear", 2, 2, 0]);
});

Deno.test("cli raid status: text output", async () => {
  const r = await cli(["raid", "status", "--mdstat", join(FIX, "flags.mdstat")]);
  assertEquals(r.code, 0);
  assertEquals(r.out.split("\n"), [
    "md10  raid1  OK  2/2 disks  [UU]  failed: sdd2,sde2  spares: sdc2  write-mostly: sdb2,sdc2,sde2",
    "md11  raid5  OK  3/3 disks  [UUU]",
    "md12  raid1  REBUILDING  2/2 disks  [UU]  recovery 27.3% 24576 KiB/s ETA 30s  replacing: sdi2",
  ]);
  const q = await cli(["raid", "status", "--mdstat", join(FIX, "sync_states.mdstat")]);
  assert(q.out.includes("md24  raid1  OK  2/2 disks  [UU]  resync=DELAYED"), q.out);
  assert(q.out.includes("md25  raid1  OK  2/2 disks  [UU]  auto-read-only  resync=PENDING"), q.out);
});

Deno.test("cli raid status: malformed mdstat → exit 2 naming file and line", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_raidcli_" });
  try {
    const bad = join(tmp, "bad.mdstat");
    await Deno.writeTextFile(
      bad,
      "Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1]\n      100 blocks [2/2] [UU]\n" +
        "      [==>....]  resync = ?% (1/100) finish=1.0min speed=1K/sec\n",
    );
    const r = await cli(["raid", "status", "--mdstat", bad, "--json"]);
    assertEquals([r.code, r.out], [2, ""]);
    assert(r.err.startsWith(`keepwire: ${bad}:4: bad progress line`), r.err);
    const missing = await cli(["raid", "status", "--mdstat", join(tmp, "nope")]);
    assertEquals(missing.code, 2);
    assert(missing.err.includes("cannot read --mdstat"), missing.err);
    const usage = await cli(["raid", "status", "--sysfs", tmp]);
    assertEquals(usage.code, 2);
    assert(usage.err.includes("--sysfs needs --mdstat"), usage.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli raid status: unknown lines are warnings on stderr, not failures", async () => {
  const r = await cli(["raid", "status", "--mdstat", join(FIX, "unknown_lines.mdstat"), "--json"]);
  assertEquals(r.code, 0);
  assertEquals(r.err.split("\n").length, 7);
  assert(
    r.err.startsWith('keepwire: warning: mdstat line 2 not understood: "read_ahead 1024 sectors"'),
  );
  assertEquals(JSON.parse(r.out).arrays.length, 2);
});

Deno.test("cli raid status --mdstat --sysfs: sysfs wins", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_raidcli_" });
  try {
    const md = join(tmp, "md24", "md");
    await Deno.mkdir(md, { recursive: true });
    await Deno.writeTextFile(join(md, "array_state"), "clean\n");
    await Deno.writeTextFile(join(md, "sync_action"), "check\n");
    await Deno.writeTextFile(join(md, "sync_completed"), "delayed\n");
    const r = await cli([
      "raid",
      "status",
      "--mdstat",
      join(FIX, "sync_states.mdstat"),
      "--sysfs",
      tmp,
      "--json",
    ]);
    const a = (JSON.parse(r.out) as { arrays: { name: string; sync: unknown }[] }).arrays
      .find((x) => x.name === "md24");
    assertEquals(a?.sync, { action: "check", progress: 0, finishSeconds: null, speedKiBps: null });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli raid status without --mdstat: configured driver, no daemon needed", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_raidcli_" });
  try {
    const mock = await cli(["raid", "status", "--json", "-d", tmp]);
    assertEquals(mock.code, 0, mock.err);
    const arrays = (JSON.parse(mock.out) as { arrays: { name: string; health: string }[] }).arrays;
    assertEquals(arrays.map((a) => [a.name, a.health]), [["md0", "ok"], ["md1", "ok"]]);

    const mdstat = join(tmp, "mdstat");
    await Deno.copyFile(join(FIX, "inactive.mdstat"), mdstat);
    const cfg = join(tmp, "keepwire.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ hardware: { raid: { driver: "md", mdstat, useSysfs: false } } }),
    );
    const md = await cli(["raid", "status", "-c", cfg, "-d", tmp]);
    assertEquals(md.code, 0, md.err);
    assertEquals(md.out.split("\n")[0], "md40  -  INACTIVE  inactive  spares: sda5,sdb5,sdc5");

    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ hardware: { raid: { driver: "md", mdstat: join(tmp, "gone") } } }),
    );
    const gone = await cli(["raid", "status", "-c", cfg, "-d", tmp]);
    assertEquals(gone.code, 1);
    assert(gone.err.includes("hardware.raid.mdstat"), gone.err);

    await Deno.writeTextFile(mdstat, "Personalities : [raid1]\nmd0 : active raid1 x\n");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ hardware: { raid: { driver: "md", mdstat, useSysfs: false } } }),
    );
    const bad = await cli(["raid", "status", "-c", cfg, "-d", tmp]);
    assertEquals(bad.code, 2);
    assert(bad.err.includes(`${mdstat}:2: unexpected "x"`), bad.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "cli raid status: asks the running daemon (GET /api/storage) when one runs",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "kw_raidcli_" });
    const rt = new Runtime(validateConfig({
      dataDir: tmp,
      web: { listen: "127.0.0.1:0" },
      governor: { enabled: false },
      hardware: { raid: { driver: "mock", scenario: "array-failure", pollMs: 60_000 } },
    }));
    try {
      await rt.start();
      const r = await cli(["raid", "status", "--json", "-d", tmp]);
      assertEquals(r.code, 0, r.err);
      const arrays = (JSON.parse(r.out) as { arrays: { name: string; spares: string[] }[] })
        .arrays;
      assertEquals(arrays.map((a) => a.name), ["md0", "md1"]);
      assertEquals(arrays[1].spares, ["sdg1"]);
    } finally {
      await rt.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("cli raid status: a daemon answer of another shape is named, not half-read", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_raidcli_" });
  // a stand-in daemon on the control socket answering /api/storage with a wrong field type
  const server = Deno.serve(
    { path: controlSocketPath(tmp), onListen: () => {} },
    () =>
      Response.json({
        arrays: [{ name: "md0", health: 5 }],
        disks: [],
        updatedAt: null,
        error: null,
      }),
  );
  try {
    const r = await cli(["raid", "status", "--json", "-d", tmp]);
    assertEquals(r.code, 1, r.err);
    assert(r.err.includes("/api/storage answer is not understood (arrays.0."), r.err);
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli raid status: real process exit code 2 on malformed input", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kw_raidcli_" });
  try {
    const bad = join(tmp, "bad.mdstat");
    await Deno.writeTextFile(bad, "Personalities : [raid1]\n      1 blocks [1/1] [U]\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "main.ts"), "raid", "status", "--mdstat", bad],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 2, err);
    assert(err.includes(`${bad}:2: status line outside an array`), err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli raid status --mdstat /dev/zero: refused at the read limit, not a hang", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "main.ts"), "raid", "status", "--mdstat", "/dev/zero"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assertEquals([out.code, out.signal], [2, null], err);
  assert(
    err.includes("/dev/zero is larger than 1.0 MiB, the most keepwire reads as a mdstat"),
    err,
  );
});
