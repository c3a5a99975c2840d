import { startTestRuntime } from "../tests/helpers/runtime.ts";
import { DEFAULT_CONFIG } from "../mod/config/mod.ts";
const t = await startTestRuntime({ subsystems: DEFAULT_CONFIG.subsystems });
const app = t.rt.web!.app!;
async function time(label: string, path: string, headers: Record<string, string>, n = 2000) {
  for (let i = 0; i < 200; i++) {
    await (await app.request(path, { headers }, { trusted: false })).arrayBuffer();
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await (await app.request(path, { headers }, { trusted: false })).arrayBuffer();
  }
  console.log(label, ((performance.now() - t0) / n * 1000).toFixed(1), "us/req");
}
await time("health anon", "/api/health", {});
await time("health token", "/api/health", t.auth);
await time("status token", "/api/status", t.auth);
const s0 = performance.now();
for (let i = 0; i < 2000; i++) t.rt.status();
console.log("status() only", ((performance.now() - s0) / 2000 * 1000).toFixed(1), "us");
const h0 = performance.now();
for (let i = 0; i < 2000; i++) t.rt.health();
console.log("health() only", ((performance.now() - h0) / 2000 * 1000).toFixed(1), "us");
const s = t.rt.status() as Record<string, unknown>;
for (const [k, v] of Object.entries(s.modules as Record<string, unknown>)) {
  console.log(k, JSON.stringify(v).length);
}
await t.close();
