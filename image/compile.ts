/**
 * `deno task compile`: builds the single `keepwire` binary with `deno compile`.
 * deno compile needs Deno's `denort` base binary, normally downloaded from a host
 * this network cannot reach: set DENORT_BIN to a local denort of the same Deno
 * version. Without one, this fails with one clear sentence.
 * Usage: deno task compile [--output PATH] [--target TRIPLE]
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { V8_FLAGS } from "./bundle.ts";

/**
 * Where deno keeps downloaded denort archives for this version and target, given the
 * environment that locates deno's cache (DENO_DIR, else XDG_CACHE_HOME or HOME).
 */
export function cachedDenortPath(
  target: string,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): string {
  const denoDir = env.DENO_DIR ??
    join(env.XDG_CACHE_HOME ?? join(env.HOME ?? "/root", ".cache"), "deno");
  return join(denoDir, "dl", "release", `v${Deno.version.deno}`, `denort-${target}.zip`);
}

/** Decide which base binary to use, or explain in one sentence why there is none. */
export async function resolveDenort(
  env: Record<string, string | undefined>,
  target: string,
): Promise<{ ok: true; denortBin?: string } | { ok: false; message: string }> {
  const bin = env.DENORT_BIN;
  if (bin) {
    try {
      const st = await Deno.stat(bin);
      if (!st.isFile || ((st.mode ?? 0o100) & 0o111) === 0) {
        return { ok: false, message: `DENORT_BIN=${bin} is not an executable file.` };
      }
    } catch {
      return { ok: false, message: `DENORT_BIN=${bin} does not exist.` };
    }
    return { ok: true, denortBin: bin };
  }
  try {
    await Deno.stat(cachedDenortPath(target, env));
    return { ok: true };
  } catch {
    return {
      ok: false,
      message:
        `deno compile needs the denort ${Deno.version.deno} base binary for ${target}, which cannot be downloaded here: set DENORT_BIN to a local denort of that version.`,
    };
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      output: { type: "string", default: "image/out/keepwire" },
      target: { type: "string", default: "x86_64-unknown-linux-gnu" },
    },
    strict: true,
  });
  const r = await resolveDenort(Deno.env.toObject(), values.target!);
  if (!r.ok) {
    console.error(`compile: ${r.message}`);
    Deno.exit(1);
  }
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "-A",
      `--v8-flags=${V8_FLAGS}`,
      "--unstable-net",
      "--target",
      values.target!,
      "--include",
      join(root, "examples"),
      "--include",
      join(root, "mod/web/static"),
      "--output",
      values.output!,
      join(root, "main.ts"),
    ],
    env: r.denortBin ? { DENORT_BIN: r.denortBin } : {},
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (out.code !== 0) {
    console.error("compile: deno compile failed (see above).");
    Deno.exit(out.code);
  }
  console.log(`compile: wrote ${values.output}`);
}
