import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { missingTools } from "./helpers/tools.ts";
import { stateSet } from "../mod/web/metrics.ts";

const noPromtool = missingTools(["promtool"]);

Deno.test("metrics: /metrics needs auth, has HELP and TYPE per keepwire_ family", async () => {
  const t = await startTestRuntime();
  try {
    const anon = await fetch(`${t.base}/metrics`);
    assertEquals(anon.status, 401);
    await anon.body?.cancel();
    t.rt.bus.publishUntyped({ module: "demo", kind: "demo.x", severity: "warning" });
    const r = await t.api("/metrics");
    assertEquals(r.status, 200);
    assertStringIncludes(r.headers.get("content-type") ?? "", "text/plain");
    const text = await r.text();
    const families = new Set<string>();
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const name = line.split(/[{ ]/)[0];
      assert(name.startsWith("keepwire_"), `unprefixed metric ${name}`);
      families.add(name.replace(/_(bucket|sum|count)$/, ""));
    }
    for (const f of families) {
      assertStringIncludes(text, `# HELP ${f} `);
      assertStringIncludes(text, `# TYPE ${f} `);
    }
    assertStringIncludes(text, 'keepwire_events_published_total{severity="warning"} 1');
    assertStringIncludes(text, "keepwire_healthy 1");
  } finally {
    await t.close();
  }
});

Deno.test({
  name: "metrics: promtool check metrics accepts /metrics with no warnings",
  ignore: noPromtool !== undefined,
  async fn() {
    const t = await startTestRuntime();
    try {
      t.rt.bus.publishUntyped({ module: "demo", kind: "demo.x", severity: "warning" });
      const text = await (await t.api("/metrics")).text();
      const p = new Deno.Command("promtool", {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(text));
      await w.close();
      const out = await p.output();
      const msg = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, msg);
      assertEquals(msg.trim(), "", `promtool warnings: ${msg}`);
    } finally {
      await t.close();
    }
  },
});

Deno.test("metrics: stateSet gives one sample per state, 1 only for the item's own state", () => {
  const items = [{ n: "a", s: "ok" }, { n: "b", s: "failed" }, { n: "c", s: "odd" }];
  const samples = stateSet(items, ["ok", "failed"] as const, (i) => i.s, (i) => ({ x: i.n }), "h");
  assertEquals(samples, [
    { labels: { x: "a", h: "ok" }, value: 1 },
    { labels: { x: "a", h: "failed" }, value: 0 },
    { labels: { x: "b", h: "ok" }, value: 0 },
    { labels: { x: "b", h: "failed" }, value: 1 },
    // a state outside the set is all zeros, not a new series
    { labels: { x: "c", h: "ok" }, value: 0 },
    { labels: { x: "c", h: "failed" }, value: 0 },
  ]);
});
