/** Bypass API routes through the real web app (app.request, trusted like the control socket). */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import type { BypassModule } from "../mod/bypass/mod.ts";
import type { MockBypassDriver } from "../hw/bypass/mock.ts";

const BYPASS = {
  segments: [
    { name: "wan", ports: ["eth2", "eth3"] as [string, string] },
    { name: "lan", ports: ["eth4", "eth5"] as [string, string] },
  ],
};

Deno.test("bypass routes: GET, hold, release, set; 400 naming fields, 404, 409", async () => {
  const t = await startTestRuntime({ hardware: { bypass: BYPASS } });
  const app = t.rt.web!.app!;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.request(path, {
      method,
      headers: body !== undefined ? { "content-type": "application/json" } : {},
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    }, { trusted: true });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };
  try {
    let r = await call("GET", "/api/bypass");
    assertEquals(r.status, 200);
    const segs = r.body.segments as {
      name: string;
      mode: string;
      ports: string[];
      driver: string;
    }[];
    assertEquals(segs.map((s) => [s.name, s.mode, s.driver]), [["wan", "inline", "mock"], [
      "lan",
      "inline",
      "mock",
    ]]);

    r = await call("POST", "/api/bypass/wan/hold", { reason: "cabling work", by: "alice" });
    assertEquals(r.status, 200);
    const held =
      (r.body.segments as { mode: string; holds: { reason: string; by: string }[] }[])[0];
    assertEquals(held.mode, "bypass");
    assertEquals(held.holds.map((h) => [h.reason, h.by]), [["cabling work", "alice"]]);

    r = await call("POST", "/api/bypass/all/hold", { reason: "lab test" });
    assertEquals((r.body.segments as { mode: string }[]).map((s) => s.mode), ["bypass", "bypass"]);

    r = await call("POST", "/api/bypass/wan/set", { mode: "inline" });
    assertEquals(r.status, 409);
    assertEquals((r.body.error as { code: string }).code, "held");
    assertStringIncludes((r.body.error as { message: string }).message, "held by");

    r = await call("POST", "/api/bypass/all/release", { reason: "lab test" });
    assertEquals(r.status, 200);
    assertEquals((r.body.segments as { mode: string }[]).map((s) => s.mode), ["bypass", "inline"]);
    r = await call("POST", "/api/bypass/wan/release", { reason: "nothing-held" });
    assertEquals(r.status, 200);
    assertEquals(r.body.released, [{ segment: "wan", released: false, remaining: 0 }]);
    r = await call("POST", "/api/bypass/wan/release", { reason: "cabling work" });
    assertEquals((r.body.segments as { mode: string }[])[0].mode, "inline");
    // keepwire's own reasons cannot be taken through the API, but can be released
    r = await call("POST", "/api/bypass/wan/hold", { reason: "update" });
    assertEquals(r.status, 400);
    assertEquals((r.body.error as { code: string }).code, "bad_request");
    assertStringIncludes(
      (r.body.error as { fields: Record<string, string> }).fields.reason,
      "reserved",
    );
    await t.rt.module<BypassModule>("bypass")!.hold("wan", "update", "updater");
    r = await call("POST", "/api/bypass/wan/release", { reason: "update" });
    assertEquals(r.status, 200);
    assertEquals(r.body.released, [{ segment: "wan", released: true, remaining: 0 }]);

    r = await call("POST", "/api/bypass/lan/set", { mode: "disconnect" });
    assertEquals((r.body.segments as { mode: string }[])[0].mode, "disconnect");
    r = await call("GET", "/api/bypass/lan");
    assertEquals((r.body.segment as { holds: { reason: string; mode: string }[] }).holds, [
      {
        ...(r.body.segment as { holds: Record<string, unknown>[] }).holds[0],
        reason: "manual",
        mode: "disconnect",
      },
    ]);
    r = await call("POST", "/api/bypass/lan/set", { mode: "inline" });
    assertEquals((r.body.segments as { mode: string }[])[0].mode, "inline");

    // errors
    r = await call("POST", "/api/bypass/wan/hold", { reason: "two\nlines", extra: 1 });
    assertEquals(r.status, 400);
    const fields = (r.body.error as { fields: Record<string, string> }).fields;
    assert(fields.reason, JSON.stringify(r.body));
    assertEquals(fields.extra, "unknown field");
    r = await call("POST", "/api/bypass/wan/set", { mode: "sideways" });
    assertEquals(r.status, 400);
    assert((r.body.error as { fields: Record<string, string> }).fields.mode);
    r = await call("POST", "/api/bypass/wan/hold", "not json");
    assertEquals(r.status, 400);
    r = await call("POST", "/api/bypass/nope/hold", { reason: "lab" });
    assertEquals(r.status, 404);
    assertEquals((r.body.error as { code: string }).code, "segment_not_found");
    assertStringIncludes((r.body.error as { message: string }).message, 'no bypass segment "nope"');
    r = await call("GET", "/api/bypass/nope");
    assertEquals(r.status, 404);
    r = await call("POST", "/api/bypass/all/set", { mode: "bypass" });
    assertEquals(r.status, 400);
    assertEquals(
      (r.body.error as { fields: Record<string, string> }).fields.segment,
      "one segment name",
    );

    // a relay that does not move: 502 switch_failed, the hold is recorded
    const card = t.rt.module<BypassModule>("bypass")!.driverOf("lan") as MockBypassDriver;
    card.injectFault({ stuck: true });
    r = await call("POST", "/api/bypass/lan/hold", { reason: "stuck test" });
    assertEquals(r.status, 502);
    assertEquals((r.body.error as { code: string }).code, "switch_failed");
    r = await call("GET", "/api/bypass/lan");
    const lan = r.body.segment as { mode: string; holds: { reason: string }[] };
    assertEquals([lan.mode, lan.holds.map((h) => h.reason)], ["unknown", ["stuck test"]]);
    card.clearFaults();
    r = await call("POST", "/api/bypass/lan/release", { reason: "stuck test" });
    assertEquals(r.status, 200);
    assertEquals((r.body.segments as { mode: string }[])[0].mode, "inline");

    // the events are in the journal under module "bypass"
    const ev = t.rt.store.events({ module: "bypass", limit: 1000, order: "asc" }).map((e) =>
      e.kind
    );
    for (const k of ["bypass.mode_changed", "bypass.hold_added", "bypass.hold_released"]) {
      assert(ev.includes(k), `${k} in ${ev.join(",")}`);
    }
    // and the status page carries the segments
    const st = t.rt.status() as { modules: { bypass: { segments: unknown[] } } };
    assertEquals(st.modules.bypass.segments.length, 2);
    assert(t.rt.health().parts.bypass.ok);
  } finally {
    await t.close();
  }
});
