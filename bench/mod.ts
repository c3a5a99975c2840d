/**
 * `deno task bench`: runs every benchmark and prints one table each (our figure,
 * the baseline or peer measured in the same run, the ratio, the target).
 * `deno task bench NAME...` runs only the named ones.
 */
import { type BenchRow, printTable } from "./types.ts";

const ALL: Record<string, string> = {
  startup: "./startup.ts",
  web: "./web.ts",
  mdstat: "./mdstat.ts",
  bypass_tc: "./bypass_tc.ts",
  supervisor: "./supervisor.ts",
  update: "./update.ts",
  governor: "./governor.ts",
  alert: "./alert.ts",
  ha: "./ha.ts",
  replication: "./replication.ts",
  image: "./image.ts",
};

const pick = Deno.args.length ? Deno.args : Object.keys(ALL);
let failed = 0;
for (const name of pick) {
  const path = ALL[name];
  if (!path) {
    console.error(`bench: unknown benchmark "${name}" (have: ${Object.keys(ALL).join(", ")})`);
    Deno.exit(2);
  }
  try {
    const mod = await import(path) as { bench: () => Promise<BenchRow[]> };
    printTable(name, await mod.bench());
  } catch (e) {
    failed++;
    console.error(`bench ${name} failed: ${(e as Error).stack ?? e}`);
  }
}
Deno.exit(failed ? 1 : 0);
