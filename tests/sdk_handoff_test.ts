/**
 * Queue handoff: the machine (on at N, off at M, no peer → local), the thresholds through
 * the API (zod-validated, errors naming the field, persisted), the Handoff page with its
 * form, and the `ha status` lines.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { handoffLines, HandoffMachine } from "../mod/sdk/handoff.ts";
import { startTestRuntime } from "./helpers/runtime.ts";

Deno.test("handoff machine: on at onAt, off at offAt (hysteresis), local without a peer", () => {
  const m = new HandoffMachine({ enabled: true, onAt: 10, offAt: 3 }, 0);
  const seq: string[] = [];
  for (
    const [d, peer] of [[5, true], [10, true], [6, true], [4, true], [3, true], [9, true]] as const
  ) {
    m.report(d, d, false, peer);
    seq.push(`${d}:${m.state().target}`);
  }
  assertEquals(seq, ["5:local", "10:peer", "6:peer", "4:peer", "3:local", "9:local"]);
  m.report(12, 100);
  assertEquals(m.state().target, "peer");
  assert(m.state().reason.includes("queue 12 reached 10"), m.state().reason);
  assertEquals(m.state().since, 100);
  // the peer is gone: work stays local whatever the depth
  m.report(50, 200, false, false);
  assertEquals(m.state().target, "local");
  assert(m.state().reason.includes("no peer"), m.state().reason);
  // off: always local
  m.configure({ enabled: false, onAt: 10, offAt: 3 }, 300);
  m.report(99, 301);
  assertEquals(m.state().target, "local");
  assert(m.state().reason.startsWith("handoff off"));
});

Deno.test("handoff thresholds: API validates and persists them; the page shows the form; ha status lines", async () => {
  const rt = await startTestRuntime();
  try {
    const post = (body: unknown) =>
      rt.api("/api/sdk/smsgw/handoff", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    for (
      const [body, field] of [
        [{ enabled: true, onAt: 100, offAt: 100 }, "offAt"],
        [{ enabled: true, onAt: 0, offAt: 0 }, "onAt"],
        [{ enabled: "yes", onAt: 10, offAt: 1 }, "enabled"],
        [{ enabled: true, onAt: 10 }, "offAt"],
      ] as const
    ) {
      const r = await post(body);
      const b = await r.json();
      assertEquals([r.status, b.error.code], [422, "sdk_invalid_handoff"], JSON.stringify(b));
      assert(field in b.error.fields, `${JSON.stringify(b)} names ${field}`);
    }
    const ok = await post({ enabled: true, onAt: 800, offAt: 200 });
    assertEquals(ok.status, 200);
    const v = await ok.json();
    assertEquals(v.settings, { enabled: true, onAt: 800, offAt: 200 });
    // single node: no peer to hand work to
    assertEquals(v.target, "local");
    const all = await (await rt.api("/api/sdk")).json();
    assertEquals(all.node.role, "single");
    const entry = all.subsystems.find((s: { subsystem: string }) => s.subsystem === "smsgw");
    assertEquals(entry.handoff.settings.onAt, 800);
    const lines = handoffLines(all.subsystems);
    assertEquals(lines.length, 1);
    assert(lines[0].startsWith("handoff smsgw: new work → "), lines[0]);
    const page = await (await rt.api("/handoff")).text();
    assert(page.includes('data-api="/api/sdk/smsgw/handoff"'), "no thresholds form");
    assert(page.includes('value="800"'), "the form shows the saved threshold");
    assert(page.includes("new work goes to"), "the page says where new work goes");
    // nothing was saved by the refused requests before: the stored row is the good one
    const row = rt.rt.store.db.prepare("SELECT on_at, off_at, by FROM sdk_handoff").all();
    assertEquals(row.map((r) => ({ ...r })), [{ on_at: 800, off_at: 200, by: row[0].by }]);
  } finally {
    await rt.close();
  }
});
