/**
 * One executable without `denort`: `deno bundle` of main.ts into keepwire.js and its chunks, the
 * Worker host bundled beside it as worker_host.js (mod/supervisor/worker.ts picks it when it runs
 * bundled), the web UI's static files, the SDK and the examples (vendor worker modules import
 * `mod/sdk/mod.ts` as source), the pinned `deno` binary and a two-line launcher `keepwire`.
 *
 * main.ts is bundled with code splitting: what the start path loads with `await import()` only
 * when it is used (the other CLI commands and commander, nodemailer, @peculiar/x509, prom-client,
 * jsonc-parser, ...) lands in chunk files beside keepwire.js, read when first imported. In one
 * file, every start read, scanned and kept the source of all of it (4 MB; 2.3 MB are not used
 * by a running appliance).
 *
 * Layout of the output directory (the image installs it as /usr/lib/keepwire):
 *   keepwire  keepwire.js  *.js (chunks)  worker_host.js  deno  static/  mod/sdk/mod.ts  examples/
 *
 * Usage: deno run -A image/bundle.ts [--out DIR] [--deno PATH|--no-deno]
 * @module
 */
import { parseArgs } from "node:util";
import { basename, dirname, join } from "node:path";
import { createRequire } from "node:module";
import { VENDOR } from "../mod/web/ui/vendor.ts";
import { V8_FLAGS } from "./v8_flags.ts";

/** The repository root (this file lives in image/). */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export { V8_FLAGS };

/** The launcher: runs the deno beside it (or KEEPWIRE_DENO) on keepwire.js. */
export const LAUNCHER = `#!/bin/sh
here=$(dirname "$(readlink -f "$0")"); exec "\${KEEPWIRE_DENO:-$here/deno}" run -A --v8-flags=${V8_FLAGS} --unstable-net --no-config --no-lock "$here/keepwire.js" "$@"
`;

const WORKER_HOST = "mod/supervisor/worker_host.ts";

/**
 * Rewrite every non-ASCII character of a bundled file as its `\uXXXX` escape. esbuild escapes
 * them in string literals already; what is left are comments ("→", "—" in doc comments), and
 * one of those makes V8 hold the whole source as a two-byte string: 8 MB of heap for the 4 MB
 * keepwire.js of one file, for as long as the process lives (V8 keeps a script's source for lazy
 * compilation), against 4 MB as ASCII. The escape means the same character in a string,
 * template, regular expression or identifier, and is plain text in a comment.
 * (`deno bundle --minify` drops the comments too but breaks `require` of CommonJS packages.)
 */
export async function asciiOnly(path: string): Promise<void> {
  const text = await Deno.readTextFile(path);
  if (!/[\u0080-\uffff]/.test(text)) return;
  await Deno.writeTextFile(
    path,
    text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
  );
}

/** What buildBundle made. */
export interface BundleResult {
  dir: string;
  /** bytes of keepwire.js and its chunks (worker_host.js not counted) */
  jsBytes: number;
  /** JavaScript files of main.ts: keepwire.js and its chunks */
  jsFiles: number;
  ms: number;
}

async function run(cmd: string, args: string[], cwd = ROOT): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (out.code !== 0) {
    const err = new TextDecoder().decode(out.stderr).split("\n").filter((l) =>
      !/bundler warning|jsx|note:|^\s*at |experimental/i.test(l)
    ).join("\n");
    throw new Error(`${cmd} ${args.slice(0, 2).join(" ")} failed (exit ${out.code}):\n${err}`);
  }
}

/** The file in a bundle directory that lists the JavaScript files its build wrote. */
export const BUILT_LIST = ".keepwire-js";

/** Remove the JavaScript an earlier build wrote into `dir` (listed in {@link BUILT_LIST}). */
async function removeEarlierBuild(dir: string): Promise<void> {
  let names = ["keepwire.js", "worker_host.js"];
  try {
    names = (await Deno.readTextFile(join(dir, BUILT_LIST))).split("\n")
      .filter((n) => /^[\w.-]+\.js$/.test(n));
  } catch { /* no earlier build, or one from before the list */ }
  for (const n of names) await Deno.remove(join(dir, n)).catch(() => {});
}

/**
 * Bundle keepwire into `dir` (created; files in it are replaced). `deno` is the binary to
 * place beside the launcher: a path to copy, or null to leave it out (KEEPWIRE_DENO then).
 */
export async function buildBundle(
  dir: string,
  opts: { deno?: string | null } = {},
): Promise<BundleResult> {
  const t0 = performance.now();
  await Deno.mkdir(dir, { recursive: true });
  const deno = Deno.execPath();
  // the JavaScript of an earlier build goes (chunk names carry a hash of their content), and
  // only that: the list of what it wrote, or its two fixed names; nothing else in `dir`
  await removeEarlierBuild(dir);
  const written: string[] = [];
  // two runs, each one entry: with two entries esbuild keeps the source tree's layout
  const split = await Deno.makeTempDir({ dir, prefix: ".split-" });
  let jsBytes = 0, jsFiles = 0;
  try {
    await run(deno, [
      "bundle",
      "--platform",
      "deno",
      "--code-splitting",
      "--outdir",
      split,
      "main.ts",
    ]);
    for await (const e of Deno.readDir(split)) {
      if (!e.isFile || !e.name.endsWith(".js")) continue;
      // chunks import each other as ./name.js: all of them stay in one directory
      const to = join(dir, e.name === "main.js" ? "keepwire.js" : e.name);
      await Deno.rename(join(split, e.name), to);
      written.push(basename(to));
      await asciiOnly(to);
      jsBytes += (await Deno.stat(to)).size;
      jsFiles++;
    }
  } finally {
    await Deno.remove(split, { recursive: true });
  }
  await run(deno, ["bundle", "--platform", "deno", "-o", join(dir, "worker_host.js"), WORKER_HOST]);
  await asciiOnly(join(dir, "worker_host.js"));
  written.push("worker_host.js");
  await Deno.writeTextFile(join(dir, BUILT_LIST), written.sort().join("\n") + "\n");
  const copies: [string, string][] = [
    ["mod/web/static/app.css", "static/app.css"],
    ["mod/web/static/app.js", "static/app.js"],
    ["mod/web/static/charts.js", "static/charts.js"],
    ["mod/sdk/mod.ts", "mod/sdk/mod.ts"],
    ["examples/heartbeat_worker.ts", "examples/heartbeat_worker.ts"],
    ["examples/notify_service.sh", "examples/notify_service.sh"],
  ];
  for (const [from, to] of copies) {
    await Deno.mkdir(dirname(join(dir, to)), { recursive: true });
    await Deno.copyFile(join(ROOT, from), join(dir, to));
  }
  // browser libraries the UI serves from npm packages: keepwire.js reads them from static/
  const require = createRequire(join(ROOT, "mod/web/ui/vendor.ts"));
  for (const [name, spec] of Object.entries(VENDOR)) {
    await Deno.copyFile(require.resolve(spec), join(dir, "static", name));
  }
  await Deno.writeTextFile(join(dir, "keepwire"), LAUNCHER, { mode: 0o755 });
  await Deno.chmod(join(dir, "keepwire"), 0o755);
  const denoSrc = opts.deno === undefined ? deno : opts.deno;
  await Deno.remove(join(dir, "deno")).catch(() => {});
  if (denoSrc) {
    await Deno.copyFile(denoSrc, join(dir, "deno"));
    await Deno.chmod(join(dir, "deno"), 0o755);
  }
  await Deno.stat(join(dir, "keepwire.js")); // main.ts's entry, named for the launcher
  return { dir, jsBytes, jsFiles, ms: Math.round(performance.now() - t0) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: join(ROOT, "image/out/bundle") },
      deno: { type: "string" },
      "no-deno": { type: "boolean", default: false },
    },
    strict: true,
  });
  try {
    const r = await buildBundle(values.out!, {
      deno: values["no-deno"] ? null : values.deno ?? Deno.execPath(),
    });
    console.log(
      `bundle: ${r.dir}/keepwire (keepwire.js and ${r.jsFiles - 1} chunks, ${
        (r.jsBytes / 1e6).toFixed(1)
      } MB) in ${r.ms} ms`,
    );
  } catch (e) {
    console.error(`bundle: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
