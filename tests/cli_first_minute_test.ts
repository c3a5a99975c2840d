// The first minute: the startup line names the UI and the exact command that sets the
// first password for this data directory; that command works as printed from a checkout
// (the ./keepwire launcher); `user passwd` warns when the running daemon uses another
// data directory.
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { kw, kwDaemon } from "./helpers/cli.ts";
import { firstPasswordCommand, launcherName, shellWord } from "../mod/log/announce.ts";
import { daemonOnSocket, otherDataDirWarning } from "../mod/cli/daemons.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("launcher name: the checkout's ./keepwire, KEEPWIRE_LAUNCHER, else keepwire", () => {
  const main = `file://${ROOT}/main.ts`;
  assertEquals(launcherName({}, ROOT, main), "./keepwire");
  assertEquals(launcherName({}, "/tmp", main), `${ROOT}/keepwire`);
  assertEquals(launcherName({ KEEPWIRE_LAUNCHER: "bin/kw" }, ROOT, main), "bin/kw");
  assertEquals(launcherName({}, ROOT, "file:///tmp/deno-compile-keepwire/x.ts"), "keepwire");
  assertEquals(
    firstPasswordCommand("/srv/my data", "keepwire"),
    "keepwire user passwd admin --data '/srv/my data'",
  );
  assertEquals(shellWord("it's"), `'it'\\''s'`);
});

Deno.test("other data directory warning: only when no daemon uses the directory", () => {
  const redo = (d: string) => `kw --data ${d}`;
  assertEquals(otherDataDirWarning("/a", redo, []), undefined);
  assertEquals(otherDataDirWarning("/a", redo, [{ pid: 7, dataDir: "/a" }]), undefined);
  const w = otherDataDirWarning("/b", redo, [{ pid: 7, dataDir: "/a" }]);
  assert(w);
  assertStringIncludes(w, "pid 7 uses /a: kw --data /a");
});

Deno.test("first minute: the startup line's command sets the first password; passwd warns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-first-" });
  const other = await Deno.makeTempDir({ prefix: "kw-other-" });
  const d = await kwDaemon(["--data", dir, "--listen", "127.0.0.1:0"]);
  try {
    // the hint is printed right after the "running" line kwDaemon waited for: wait for it
    // (its pipe may be read a moment later on a busy machine)
    const deadline = Date.now() + 30_000;
    while (!/set the first password with: .+\n/.test(d.output()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const out = d.output();
    assertStringIncludes(out, `web on ${d.url}/, data in ${dir}`);
    const m = /set the first password with: (.+)\n/.exec(out);
    assert(m, `no first-password hint in: ${out}`);
    assertEquals(m[1], `./keepwire user passwd admin --data ${dir}`);

    // the command as printed, run by a shell in the checkout, sets it for this daemon
    const sh = await new Deno.Command("sh", {
      args: ["-c", `${m[1]} --password-stdin`],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = sh.stdin.getWriter();
    await w.write(new TextEncoder().encode("correct horse battery\n"));
    await w.close();
    const r = await sh.output();
    const dec = new TextDecoder();
    assertEquals(r.code, 0, dec.decode(r.stderr));
    assertStringIncludes(dec.decode(r.stdout), "created admin (admin)");
    assert(!dec.decode(r.stderr).includes("warning"), dec.decode(r.stderr));
    const login = await fetch(`${d.url}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "correct horse battery" }),
    });
    await login.body?.cancel();
    assertEquals(login.status, 200, "the running daemon accepts the password");

    // the daemon is also found through the configured directory's control socket
    assertEquals(await daemonOnSocket(dir), { pid: d.child.pid, dataDir: dir });
    assertEquals(await daemonOnSocket(other), null);

    // the wrong directory: the change is made, with a warning naming the daemon's one
    const wrong = await kw(["user", "passwd", "admin", "--password-stdin", "--data", other], {
      stdin: "another good password\n",
    });
    assertEquals(wrong.code, 0, wrong.stderr);
    assertStringIncludes(wrong.stderr, `no keepwire daemon uses ${other}`);
    assertStringIncludes(
      wrong.stderr,
      `pid ${d.child.pid} uses ${dir}: ./keepwire user passwd admin --data ${dir}\n`,
    );
  } finally {
    d.child.kill("SIGTERM");
    await d.child.status;
  }
  // once an admin exists the hint is gone
  const again = await kwDaemon(["--data", dir, "--listen", "127.0.0.1:0"]);
  try {
    assert(!again.output().includes("first password"), again.output());
  } finally {
    again.child.kill("SIGTERM");
    await again.child.status;
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("status exits 3 when no daemon runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-status-" });
  try {
    const r = await kw(["status", "--data", dir]);
    assertEquals(r.code, 3, r.stderr);
    assertStringIncludes(r.stdout, "not running");
    assertEquals(r.stderr, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
