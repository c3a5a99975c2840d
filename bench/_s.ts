const t0 = performance.now();
const { loadConfig } = await import("../mod/config/mod.ts");
const t1 = performance.now();
const { Runtime } = await import("../mod/runtime.ts");
const t2 = performance.now();
const cfg = await loadConfig({ dataDir: "/tmp/kws", listen: "127.0.0.1:0" });
const rt = new Runtime(cfg);
const orig = rt.start.bind(rt);
await rt.start();
const t3 = performance.now();
const kinds = rt.store.events({ order: "asc", limit: 100 }).map((e) => `${e.kind}`);
console.log({
  config: t1 - t0,
  runtimeImport: t2 - t1,
  start: t3 - t2,
  sinceOrigin: performance.now(),
});
for (const m of ["bypass", "storage", "watchdog", "supervisor", "update", "governor", "web"]) {}
console.log(kinds.slice(0, 12).join(" "));
await rt.stop();
Deno.exit(0);
