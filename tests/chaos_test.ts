/**
 * The chaos suite in its bounded (CI) form: every scenario in `chaos/` is one test that must
 * lose nothing and not throw. The runner itself (discovery, table, exit codes) is tested on
 * scenarios written to a temp folder.
 */
import { discoverScenarios, formatTable, rowFailed, runScenario } from "../chaos/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { missingTools } from "./helpers/tools.ts";

const scenarios = await discoverScenarios();
// The scenarios mount filesystems, build namespaces and kill daemons: root only (CI is root).
const notRoot = scenarios.length ? missingTools([], { root: true }) : undefined;

for (const s of scenarios) {
  Deno.test({
    name: `chaos ${s.name} (bounded): 0 lost`,
    ignore: notRoot !== undefined,
    // Scenarios run whole daemons and kill processes mid-write; leaks are theirs to clean up,
    // checked by the scenario (e.g. no orphan survives), not by Deno's per-test sanitizer.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const lines: string[] = [];
      const row = await runScenario(s, { bounded: true, log: (l) => lines.push(l) });
      const table = formatTable([row]);
      console.log(`${table.split("\n").slice(0, 3).join("\n")}`);
      const ctx = `\n${table}\nlog:\n${lines.slice(-30).join("\n")}`;
      assert(row.result, `scenario threw: ${row.error}${ctx}`);
      assert(row.result.injected > 0, `nothing injected${ctx}`);
      assertEquals(row.result.lost, 0, `lost > 0${ctx}`);
      assertEquals(row.result.survived, row.result.injected, `survived != injected${ctx}`);
    },
  });
}

Deno.test("chaos runner: every .ts file in chaos/ but mod.ts and types.ts is a scenario", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(new URL("../chaos/", import.meta.url))) {
    if (e.name.endsWith(".ts") && e.name !== "mod.ts" && e.name !== "types.ts") {
      files.push(e.name.slice(0, -3));
    }
  }
  assertEquals(scenarios.map((s) => s.name), files.sort());
});

const FAKE = (name: string, body: string) =>
  `export const scenario = { name: ${JSON.stringify(name)}, description: "fake",
  async run() { ${body} } };\n`;

async function fakeDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-" });
  for (const [f, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${f}`, text);
  return dir;
}

Deno.test("chaos runner: discovers by folder, refuses a file without a scenario", async () => {
  const dir = await fakeDir({
    "b_ok.ts": FAKE("b_ok", "return { injected: 3, survived: 3, lost: 0 };"),
    "a_lost.ts": FAKE("a_lost", "return { injected: 3, survived: 2, lost: 1, notes: 'x' };"),
    "types.ts": "export const notAScenario = 1;\n",
  });
  try {
    const found = await discoverScenarios(new URL(`file://${dir}/`));
    assertEquals(found.map((s) => s.name), ["a_lost", "b_ok"]);
    await Deno.writeTextFile(`${dir}/c_none.ts`, "export const x = 1;\n");
    let err = "";
    await discoverScenarios(new URL(`file://${dir}/`)).catch((e) => err = e.message);
    assertStringIncludes(err, "c_none.ts does not export");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chaos runner: a lost fault, a throw or counts that do not add up fail the row", async () => {
  const mk = (run: () => Promise<{ injected: number; survived: number; lost: number }>) => ({
    name: "x",
    description: "x",
    run,
  });
  const opts = { bounded: true, log: () => {} };
  const ok = await runScenario(
    mk(() => Promise.resolve({ injected: 2, survived: 2, lost: 0 })),
    opts,
  );
  const lost = await runScenario(
    mk(() => Promise.resolve({ injected: 2, survived: 1, lost: 1 })),
    opts,
  );
  const odd = await runScenario(
    mk(() => Promise.resolve({ injected: 5, survived: 2, lost: 0 })),
    opts,
  );
  const threw = await runScenario(mk(() => Promise.reject(new Error("boom"))), opts);
  assertEquals([ok, lost, odd, threw].map(rowFailed), [false, true, true, true]);
  const table = formatTable([ok, lost, odd, threw]);
  assertStringIncludes(table, "THREW: boom");
  assertStringIncludes(table, "COUNTS DO NOT ADD UP");
  assertStringIncludes(table, "3 of 4 scenarios FAILED");
  assertStringIncludes(formatTable([ok]), "1 scenarios, 0 lost");
});

Deno.test("chaos runner CLI: unknown scenario exits 2, naming what exists", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../chaos/mod.ts", import.meta.url).pathname, "no_such_fault"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  assertStringIncludes(new TextDecoder().decode(out.stderr), "unknown scenario no_such_fault");
});
