/**
 * `.ci/run` judges test output: "N passed, N failed, N skipped", and a test ignored for a
 * tool whose package is listed and installed fails CI (a hidden skip). Also the helper that
 * decides those ignores (tests/helpers/tools.ts).
 */
import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { ignored, missingTools, TOOL_PACKAGES, which } from "./helpers/tools.ts";

const CI = new URL("../.ci/run", import.meta.url).pathname;
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function judge(log: string): Promise<{ code: number; out: string }> {
  const f = await Deno.makeTempFile({ prefix: "kw-ci-log-" });
  try {
    await Deno.writeTextFile(f, log);
    const o = await new Deno.Command("bash", {
      args: [CI],
      env: { KW_CI_LOG: f },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, out: dec(o.stdout) + dec(o.stderr) };
  } finally {
    await Deno.remove(f);
  }
}

// perl-base is Essential in Debian: listed in .ci/apt-packages.txt and always installed.
const INSTALLED = "perl-base";
const installed = await new Deno.Command("dpkg-query", {
  args: ["-W", "-f=${Status}", INSTALLED],
  stdout: "piped",
  stderr: "null",
}).output().catch(() => null);
const noDpkg = installed === null || !dec(installed.stdout).includes("install ok installed")
  ? ignored("dpkg-query does not show perl-base installed (not Debian?)")
  : undefined;

Deno.test("ci: the summary line counts ignored tests as skipped", async () => {
  const r = await judge("x\nok | 7 passed (3 steps) | 0 failed | 2 ignored (9s)\n");
  assertEquals(r.code, 0, r.out);
  assertStringIncludes(r.out, "7 passed, 0 failed, 2 skipped");
  const f = await judge("FAILED | 6 passed | 1 failed (9s)\n");
  assertEquals(f.code, 1, f.out);
  assertStringIncludes(f.out, "6 passed, 1 failed, 0 skipped");
  const none = await judge("no summary at all\n");
  assertEquals(none.code, 1, none.out);
});

Deno.test({
  name: "ci: a test ignored for a listed, installed package fails CI, naming the test",
  ignore: noDpkg !== undefined,
  async fn() {
    const r = await judge(
      "KW-IGNORED tests/x_test.ts: missing perl (package perl-base)\n" +
        "KW-IGNORED tests/y_test.ts: needs root\n" +
        "KW-IGNORED tests/z_test.ts: missing thing (package kw-not-a-listed-package)\n" +
        "ok | 3 passed | 0 failed | 3 ignored (1s)\n",
    );
    assertEquals(r.code, 1, r.out);
    assertStringIncludes(
      r.out,
      "tests/x_test.ts was ignored although package perl-base (.ci/apt-packages.txt) is installed",
    );
    assertEquals(r.out.includes("FAIL: tests/y_test.ts"), false, r.out);
    assertEquals(r.out.includes("FAIL: tests/z_test.ts"), false, r.out);
    assertStringIncludes(r.out, "3 passed, 0 failed, 3 skipped");
  },
});

Deno.test("tools helper: a missing tool gives a reason naming its package and a KW-IGNORED line", () => {
  const lines: string[] = [];
  const report = (l: string) => lines.push(l);
  const why = missingTools(["perl", "promtool"], { path: "/nonexistent", report });
  assertEquals(why, "missing perl (package perl-base); missing promtool (package prometheus)");
  assertEquals(lines, [
    "KW-IGNORED tests/ci_run_test.ts: missing perl (package perl-base)",
    "KW-IGNORED tests/ci_run_test.ts: missing promtool (package prometheus)",
  ]);
  assertEquals(which("sh") !== null, true);
  assertEquals(which("kw-no-such-tool"), null);
  const sh = which("sh")!;
  const dir = sh.slice(0, sh.lastIndexOf("/"));
  assertEquals(which("sh", dir), sh);
  assertEquals(missingTools([], { path: "/nonexistent", report }), undefined);
});

Deno.test("tools helper: every package it names is in .ci/apt-packages.txt", async () => {
  const listed = new Set(
    (await Deno.readTextFile(new URL("../.ci/apt-packages.txt", import.meta.url)))
      .split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")),
  );
  const unlisted = Object.entries(TOOL_PACKAGES).filter(([, p]) => !listed.has(p));
  assertEquals(unlisted, []);
});

Deno.test("repo: .tools (the local Deno install) is not tracked", async () => {
  // A tracked `.tools` symlink replaces the shared install with a link to itself on checkout.
  const root = new URL("../", import.meta.url).pathname;
  const out = await new Deno.Command("git", {
    args: ["-C", root, "ls-files", "--", ".tools"],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  if (out?.success) assertEquals(dec(out.stdout).trim(), "");
});
