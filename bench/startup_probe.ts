/**
 * Child process of the startup bench: goes through keepwire's start-up step by step in one
 * process (as `main.ts run` does) and prints, as one JSON line, the time and the memory
 * (RSS, V8 heap) after each step: Deno itself, the config module (zod and every module's
 * schema), the rest of the module graph, the started runtime, and 10 s of idle.
 *
 * Usage: deno run -A --v8-flags=--expose-gc bench/startup_probe.ts DATA_DIR [--no-subsystems]
 * @module
 */

/** One step of the start-up. */
export interface ProbeStep {
  /** What was done. */
  step: string;
  /** ms since the runtime started (performance.now) when it was done. */
  atMs: number;
  /** Resident set after a full GC (MB). */
  rssMb: number;
  /** V8 heap in use after a full GC (MB). */
  heapMb: number;
  /** zod schema instances built so far (every `z.*()` call and every method returning a copy). */
  zodSchemas: number;
}

/** What the probe prints. */
export interface ProbeResult {
  /** The steps, in order. */
  steps: ProbeStep[];
  /** ms each module took to start (the runtime.started event). */
  moduleStartMs: Record<string, number>;
  /** OS threads at the end (main + Worker isolates + Deno's own). */
  threads: number;
}

if (import.meta.main) {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const steps: ProbeStep[] = [];
  // zod calls this hook of its global config on every schema it constructs (zod/compile uses
  // it); counting there says how many schemas each step builds
  let zodSchemas = 0;
  (globalThis as { __zod_globalConfig?: unknown }).__zod_globalConfig = {
    postProcessor: () => zodSchemas++,
  };
  const mark = (step: string) => {
    const atMs = performance.now();
    gc();
    const m = Deno.memoryUsage();
    steps.push({
      step,
      atMs,
      rssMb: m.rss / 1048576,
      heapMb: m.heapUsed / 1048576,
      zodSchemas,
    });
  };
  mark("deno");
  const { loadConfig } = await import("../mod/config/mod.ts");
  mark("config module (zod, schemas)");
  const { Runtime } = await import("../mod/runtime.ts");
  mark("module graph");
  const config = await loadConfig({ dataDir: Deno.args[0], listen: "127.0.0.1:0" });
  if (Deno.args.includes("--no-subsystems")) config.subsystems = [];
  const rt = new Runtime(config);
  let moduleStartMs: Record<string, number> = {};
  rt.bus.subscribe((e) => {
    moduleStartMs = (e.payload as { moduleStartMs: Record<string, number> }).moduleStartMs;
  }, { kindPrefix: "runtime.started" });
  await rt.start();
  mark("runtime started");
  await new Promise((r) => setTimeout(r, 10_000));
  mark("10 s idle");
  const threads = [...Deno.readDirSync("/proc/self/task")].length;
  console.log(JSON.stringify({ steps, moduleStartMs, threads } satisfies ProbeResult));
  await rt.stop("probe done");
  Deno.exit(0);
}
