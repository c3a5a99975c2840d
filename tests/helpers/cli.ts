/** Test helper: run the real `keepwire` CLI (main.ts) in a subprocess. */

/** Result of one CLI run. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Path of main.ts. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * Environment of every keepwire the tests start: no colour, and the load governor off
 * (KEEPWIRE_GOVERNOR) so how busy the machine is cannot change what a test sees; the
 * governor's own tests pass `KEEPWIRE_GOVERNOR: "on"`.
 */
const BASE_ENV = { NO_COLOR: "1", KEEPWIRE_GOVERNOR: "off" };

/** Run `keepwire ...args` to completion. */
export async function kw(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string; cwd?: string } = {},
): Promise<CliResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { ...BASE_ENV, ...opts.env },
    cwd: opts.cwd,
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Start `keepwire run ...` in the background; resolves once it prints its "running" line. */
export async function kwDaemon(
  args: string[],
  opts: { env?: Record<string, string> } = {},
): Promise<{ child: Deno.ChildProcess; url: string; output: () => string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", ...args],
    env: { ...BASE_ENV, ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += dec.decode(chunk);
  };
  pump(child.stdout);
  pump(child.stderr);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const m = /web on (https?:\/\/\S+)\//.exec(text);
    if (m) return { child, url: m[1], output: () => text };
    const st = await Promise.race([
      child.status,
      new Promise<null>((r) => setTimeout(() => r(null), 50)),
    ]);
    if (st) throw new Error(`keepwire run exited ${st.code}: ${text}`);
  }
  child.kill("SIGKILL");
  throw new Error(`keepwire run did not start: ${text}`);
}
