/**
 * Running the external tools of the gpio and tc drivers (gpioset, gpioget, tc, ip):
 * one-shot runs with captured output, and long-lived children (GPIO line holders).
 * Injectable so tests can substitute a recorder.
 * @module
 */

/** Result of one tool run. */
export interface BypassToolResult {
  /** Exit code (127 when the executable was not found). */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Options of one tool run. */
export interface BypassToolOptions {
  /** Text fed to stdin. */
  stdin?: string;
  /** Environment overrides (merged over the process environment). */
  env?: Record<string, string>;
}

/** Runs a tool to completion. */
export type BypassToolRunner = (
  cmd: string,
  args: string[],
  opts?: BypassToolOptions,
) => Promise<BypassToolResult>;

/** A long-lived child process. */
export interface BypassChild {
  /** Process id. */
  readonly pid: number;
  /** Resolves when the child exits. */
  readonly exited: Promise<{ code: number; signal: string | null }>;
  /** True once it has exited. */
  readonly done: boolean;
  /** Standard error collected so far. */
  stderr(): string;
  /** Send a signal (ignored when already exited). */
  kill(signal: Deno.Signal): void;
}

/** Starts a long-lived child. */
export type BypassSpawner = (
  cmd: string,
  args: string[],
  opts?: { env?: Record<string, string> },
) => BypassChild;

const dec = new TextDecoder();

/** The real runner (Deno.Command). */
export async function runBypassTool(
  cmd: string,
  args: string[],
  opts: BypassToolOptions = {},
): Promise<BypassToolResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      env: opts.env,
      stdin: opts.stdin !== undefined ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    return { code: 127, stdout: "", stderr: `${cmd}: ${(e as Error).message}` };
  }
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    } catch { /* the tool exited early; its exit code tells */ }
  }
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The real spawner (Deno.Command, stdout discarded, stderr collected). */
export function spawnBypassChild(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string> } = {},
): BypassChild {
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  let done = false;
  const pump = (async () => {
    try {
      for await (const chunk of child.stderr) err += dec.decode(chunk, { stream: true });
    } catch { /* closed */ }
  })();
  const exited = child.status.then(async (s) => {
    done = true;
    await pump;
    return { code: s.code, signal: s.signal };
  });
  return {
    pid: child.pid,
    exited,
    get done() {
      return done;
    },
    stderr: () => err,
    kill(signal: Deno.Signal) {
      if (done) return;
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
  };
}
