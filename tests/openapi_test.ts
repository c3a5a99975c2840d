/**
 * The OpenAPI document at /api/openapi.json, against what the app really does:
 * - a real OpenAPI 3.1 validator (@seriousme/openapi-schema-validator) accepts it, and
 *   every schema in it compiles as JSON Schema 2020-12 (ajv);
 * - every route the Hono app registered under /api (and /metrics) has an apiDoc entry
 *   with an operationId, its request schemas and its response schemas;
 * - real answers of every GET operation (and of a few commands) on a running runtime with
 *   subsystems, bypass segments, RAID, update slots and alert deliveries match the schema
 *   the document declares for their status: a field renamed, removed or added without
 *   its schema fails here, naming the operation and the field.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestRuntime, type TestRuntime } from "./helpers/runtime.ts";
import { startSmsGateway, waitFor } from "./alert_servers.ts";
import type { ConfigInput } from "../mod/config/mod.ts";
import { apiDocOf, isDocumented } from "../mod/web/openapi.ts";
import { encodeFrame } from "../mod/repl/frame.ts";

const WORKER = new URL("../examples/heartbeat_worker.ts", import.meta.url).pathname;

type Json = Record<string, unknown>;
type Operation = {
  operationId?: string;
  parameters?: { name: string; in: string; schema?: Json }[];
  requestBody?: { content: Record<string, { schema?: Json }> };
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
};
type Doc = { paths: Record<string, Record<string, Operation>>; components: Json };

function operations(doc: Doc): { method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op }))
  );
}

/** A runtime with something in every part: a subsystem, slots, an alert channel. */
async function fullRuntime(): Promise<
  { t: TestRuntime; gw: ReturnType<typeof startSmsGateway>; dir: string }
> {
  const dir = await Deno.makeTempDir({ prefix: "kw-oa-" });
  const gw = startSmsGateway({ user: "kw", password: "gw-pass-77" });
  const slotA = join(dir, "A.img"), slotB = join(dir, "B.img");
  await Deno.writeTextFile(slotA, "factory image A\n");
  await Deno.writeTextFile(slotB, "");
  const config = {
    subsystems: [{ name: "engine", kind: "worker", module: WORKER, criticality: "optional" }],
    update: {
      compatible: "keepwire-dev",
      bootedSlot: "A",
      bootloader: { backend: "file", file: join(dir, "bootenv.json") },
      slots: {
        rootfs: { a: { device: slotA, bootname: "A" }, b: { device: slotB, bootname: "B" } },
      },
    },
    alert: {
      channels: {
        sms: {
          type: "sms",
          preset: "ozeki",
          url: `${gw.url}/api`,
          username: "kw",
          password: "gw-pass-77",
        },
      },
      recipients: [{ name: "duty", channel: "sms", to: "+3611111111" }],
      rules: [{ kinds: ["test.*"], minSeverity: "warning", recipients: ["duty"] }],
    },
  };
  try {
    const t = await startTestRuntime(config as unknown as ConfigInput);
    return { t, gw, dir };
  } catch (e) {
    await gw.stop();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

function ajv(doc: Doc): Ajv2020 {
  const a = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  a.addSchema({ $id: "doc", components: doc.components }, "doc");
  return a;
}

/** JSON Schema refs of the document point into it: `#/components/...` → `doc#/components/...`. */
function anchored(schema: Json): Json {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/'));
}

Deno.test("openapi: a real OpenAPI 3.1 validator accepts the document; every schema compiles", async () => {
  const t = await startTestRuntime();
  try {
    const doc = await (await t.api("/api/openapi.json")).json() as Doc;
    const v = new Validator();
    const res = await v.validate(doc as unknown as Json);
    assert(res.valid, `OpenAPI validator: ${JSON.stringify(res.errors, null, 2)}`);
    assertEquals(v.version, "3.1");
    const a = ajv(doc);
    for (const { method, path, op } of operations(doc)) {
      const schemas = [
        ...Object.values(op.responses).flatMap((r) => Object.values(r.content ?? {})),
        ...Object.values(op.requestBody?.content ?? {}),
        ...(op.parameters ?? []),
      ].map((m) => m.schema).filter((s): s is Json => !!s);
      for (const s of schemas) {
        try {
          a.compile(anchored(s));
        } catch (e) {
          throw new Error(`${method} ${path}: a schema does not compile: ${(e as Error).message}`);
        }
      }
    }
  } finally {
    await t.close();
  }
});

Deno.test("openapi: every route is documented with an operationId, its request and response schemas", async () => {
  const t = await startTestRuntime();
  try {
    const doc = await (await t.api("/api/openapi.json")).json() as Doc;
    const routes = t.rt.web!.app!.routes.filter((r) =>
      r.method !== "ALL" && isDocumented(r.path) && !r.path.includes("*")
    );
    assert(routes.length > 40, `only ${routes.length} API routes found`);
    const problems: string[] = [];
    for (const r of routes) {
      const where = `${r.method} ${r.path}`;
      const d = apiDocOf(r.method, r.path);
      if (!d) {
        problems.push(
          `${where} has no apiDoc: call apiDoc("${r.method}", "${r.path}", {operationId, ` +
            `summary, response, ...}) next to the route (mod/web/openapi.ts)`,
        );
        continue;
      }
      const op = doc.paths[r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")]?.[r.method.toLowerCase()];
      if (!op) {
        problems.push(`${where} is missing from /api/openapi.json`);
        continue;
      }
      const ok = Object.entries(op.responses).filter(([s]) => /^2\d\d$/.test(s));
      if (
        !ok.length || !ok.every(([, a]) => Object.values(a.content ?? {}).some((m) => m.schema))
      ) {
        problems.push(`${where} has no schema for its success answer (apiDoc response)`);
      }
      for (const [s, a] of Object.entries(op.responses)) {
        if (/^[45]\d\d$|^default$/.test(s) && !d.responses?.[Number(s)]) {
          const schema = a.content?.["application/json"]?.schema;
          if (schema?.$ref !== "#/components/schemas/Error") {
            problems.push(`${where}: error answer ${s} does not use the Error schema`);
          }
        }
      }
      if (["POST", "PUT", "PATCH"].includes(r.method) && !d.body && !d.otherBodies) {
        // commands without a body are fine only when they take none
        if (op.requestBody) problems.push(`${where}: request body without a schema`);
      }
      if (d.body && !op.requestBody?.content["application/json"]?.schema) {
        problems.push(`${where}: body schema missing from the document`);
      }
      for (const m of r.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
        if (!op.parameters?.some((p) => p.in === "path" && p.name === m[1])) {
          problems.push(`${where}: path parameter ${m[1]} not documented`);
        }
      }
    }
    const ids = operations(doc).map((o) => o.op.operationId);
    const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
    if (dup.length) problems.push(`operationIds used twice: ${dup.join(", ")}`);
    if (ids.some((id) => !id || id.endsWith("Undocumented"))) {
      problems.push("an operation has no operationId of its own");
    }
    assertEquals(problems, [], problems.join("\n"));
    // the query of /api/events and the body of login come from the validators
    const q = doc.paths["/api/events"].get.parameters!.map((p) => p.name);
    for (const n of ["since", "kind", "severity", "limit"]) assert(q.includes(n), n);
    assert(doc.paths["/api/login"].post.requestBody, "login body schema missing");
    assert(
      doc.paths["/api/update"].post.requestBody!.content["application/octet-stream"],
      "bundle upload media type missing",
    );
  } finally {
    await t.close();
  }
});

Deno.test("openapi: real answers of every GET operation match their declared schemas", async () => {
  const { t, gw, dir } = await fullRuntime();
  try {
    const doc = await (await t.api("/api/openapi.json")).json() as Doc;
    const a = ajv(doc);
    const check = async (
      method: string,
      path: string,
      url: string,
      init: RequestInit = {},
      ok = false,
    ): Promise<unknown> => {
      const op = doc.paths[path]?.[method.toLowerCase()];
      assert(op, `${method} ${path} is not in the document`);
      const res = await t.api(url, {
        ...init,
        method,
        headers: { "content-type": "application/json", origin: t.base },
      });
      if (ok && res.status >= 300) {
        throw new Error(`${method} ${url} answered ${res.status}: ${await res.text()}`);
      }
      if (!op.responses[String(res.status)] && res.status !== 500 && res.status !== 507) {
        throw new Error(
          `${method} ${url} (${op.operationId}) answered ${res.status}, a status its apiDoc ` +
            `does not list (errors: {${res.status}: "..."}): ${await res.text()}`,
        );
      }
      const declared = op.responses[String(res.status)] ?? op.responses.default;
      const media = Object.keys(declared?.content ?? {})[0];
      const type = res.headers.get("content-type") ?? "";
      if (!media?.startsWith("application/json")) {
        await res.body?.cancel();
        throw new Error(`${method} ${url}: answer ${res.status} is not documented as JSON`);
      }
      assert(type.startsWith("application/json"), `${method} ${url}: content-type ${type}`);
      const body = await res.json();
      const validate = a.compile(anchored(declared.content![media].schema!));
      if (!validate(body)) {
        throw new Error(
          `${method} ${url} (${op.operationId}) answered ${res.status} not matching its ` +
            `documented schema (fix the zod schema its apiDoc or statusDoc names):\n${
              validate.errors!.map((e) =>
                `  ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`
              ).join("\n")
            }\nanswer: ${JSON.stringify(body).slice(0, 2000)}`,
        );
      }
      return body;
    };

    // something in each part: the subsystem ready, an alert delivered, a bypass hold,
    // a slot marked good (history)
    await waitFor("engine ready", async () => {
      const s = await (await t.api("/api/subsystems/engine")).json();
      return s.subsystem?.state === "ready";
    });
    t.rt.bus.publishUntyped({
      module: "test",
      kind: "test.alarm",
      severity: "warning",
      payload: { what: "openapi test" },
    });
    await waitFor("an alert delivery sent", async () => {
      const r = await (await t.api("/api/alert/outbox?status=sent")).json();
      return r.deliveries?.length > 0;
    });
    await check("POST", "/api/bypass/{segment}/hold", "/api/bypass/seg0/hold", {
      body: JSON.stringify({ reason: "openapi test" }),
    }, true);
    await check("POST", "/api/update/mark-good", "/api/update/mark-good", { body: "{}" }, true);

    const delivery = (await (await t.api("/api/alert/outbox")).json()).deliveries[0].id;
    // a set-aside tail to read (one empty frame)
    await Deno.mkdir(`${t.dataDir}/repl/tails`, { recursive: true });
    await Deno.writeFile(
      `${t.dataDir}/repl/tails/tail-p-e1-s1-1-x.kwtail`,
      encodeFrame({ pairId: "p", schemaVersion: "1", epoch: 1, seq: 1, changesets: [] }),
    );
    const values: Record<string, string> = {
      tail: "tail-p-e1-s1-1-x.kwtail",
      name: "engine",
      segment: "seg0",
      id: delivery,
      subsystem: "engine",
    };
    // required query parameters
    const queries: Record<string, string> = { "/api/history": "?series=bypass." };
    let checked = 0;
    for (const { method, path, op } of operations(doc)) {
      if (method !== "GET") continue;
      const media = Object.keys(op.responses["200"]?.content ?? {})[0] ?? "";
      const url = path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, n: string) => {
        assert(values[n], `no test value for path parameter ${n} of ${path}`);
        return encodeURIComponent(values[n]);
      });
      if (media === "text/event-stream") {
        const ac = new AbortController();
        const res = await t.api(url, { signal: ac.signal });
        assertEquals(res.status, 200);
        assert(res.headers.get("content-type")!.startsWith("text/event-stream"), path);
        const first = new TextDecoder().decode((await res.body!.getReader().read()).value);
        assert(first.includes("event: hello"), first);
        ac.abort();
        checked++;
        continue;
      }
      if (media === "application/octet-stream") {
        const res = await t.api(url);
        assertEquals(res.status, 200, path);
        assertEquals(res.headers.get("content-type"), media, path);
        await res.body?.cancel();
        checked++;
        continue;
      }
      if (media.startsWith("text/plain")) {
        const res = await t.api(url);
        assertEquals(res.status, 200);
        assert(res.headers.get("content-type")!.startsWith("text/plain"), path);
        assert((await res.text()).includes("keepwire_"), path);
        checked++;
        continue;
      }
      await check("GET", path, url + (queries[path] ?? ""), {}, true);
      checked++;
    }
    assert(checked >= 20, `only ${checked} GET operations checked`);
    // a wrong name is answered with the documented error shape too
    await check("GET", "/api/subsystems/{name}", "/api/subsystems/nosuch");
    await check("GET", "/api/alert/outbox/{id}", "/api/alert/outbox/nosuch");

    // answers of commands match their schemas too (and documented errors the Error shape)
    const body = (v: unknown) => ({ body: JSON.stringify(v) });
    await check("POST", "/api/bypass/{segment}/release", "/api/bypass/seg0/release", {
      ...body({ reason: "openapi test" }),
    }, true);
    await check("POST", "/api/bypass/{segment}/set", "/api/bypass/seg0/set", {
      ...body({ mode: "inline" }),
    }, true);
    await check("PUT", "/api/settings", "/api/settings", body({ refreshMs: 2000 }), true);
    const token = await check("POST", "/api/tokens", "/api/tokens", body({ name: "oa-t" }), true);
    await check(
      "DELETE",
      "/api/tokens/{id}",
      `/api/tokens/${(token as { id: string }).id}`,
      {},
      true,
    );
    await check("POST", "/api/alert/test", "/api/alert/test", body({ channel: "sms" }), true);
    await check("POST", "/api/alert/retry-failed", "/api/alert/retry-failed", {}, true);
    await check(
      "POST",
      "/api/subsystems/{name}/restart",
      "/api/subsystems/engine/restart",
      {},
      true,
    );
    await check("POST", "/api/ha/maintenance", "/api/ha/maintenance", body({ on: true }));
    await check("POST", "/api/bypass/{segment}/hold", "/api/bypass/nosuch/hold", {
      ...body({ reason: "x" }),
    });
  } finally {
    await t.close();
    await gw.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openapi: a route whose answer drifts from its schema fails the check", async () => {
  // the same validation as above, on a document whose schema lacks a field the answer has
  const t = await startTestRuntime();
  try {
    const doc = await (await t.api("/api/openapi.json")).json() as Doc;
    const schema = structuredClone(
      doc.paths["/api/storage"].get.responses["200"].content!["application/json"].schema!,
    ) as { properties: Record<string, unknown>; required: string[] };
    const v = ajv(doc).compile(anchored(schema));
    const body = await (await t.api("/api/storage")).json() as Json;
    assert(v(body), JSON.stringify(v.errors));
    assert(!v({ ...body, extra: 1 }), "an undocumented field must fail");
    const { updatedAt: _, ...renamed } = body;
    assert(!v({ ...renamed, updated: body.updatedAt }), "a renamed field must fail");
  } finally {
    await t.close();
  }
});

Deno.test("typed UI reads: the subsystems, storage and update pages render their routes' typed answers", async () => {
  const { t, gw, dir } = await fullRuntime();
  try {
    await waitFor("engine ready", async () => {
      const s = await (await t.api("/api/subsystems/engine")).json();
      return s.subsystem?.state === "ready";
    });
    const mark = await t.api("/api/update/mark-good", {
      method: "POST",
      headers: { "content-type": "application/json", origin: t.base },
      body: "{}",
    });
    assertEquals(mark.status, 200);
    const page = async (path: string) => {
      const r = await t.api(path);
      assertEquals(r.status, 200, path);
      return await r.text();
    };
    const subs = await page("/subsystems");
    assert(/<tr data-name="engine">[\s\S]*?ready[\s\S]*?optional/.test(subs), subs);
    const storage = await page("/storage");
    assert(storage.includes('data-array="md0"'), storage);
    assert(/raid1 · 2\/2 disks active/.test(storage), "array level and disks");
    assert(/<td>sda1<\/td>/.test(storage), "a member row");
    const update = await page("/update");
    assert(/rootfs A \(booted\)/.test(update), update);
    assert(
      /mark-good/.test(update) && /<td>A<\/td>|\(A\)/.test(update),
      "history row of mark-good",
    );
  } finally {
    await t.close();
    await gw.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("typed UI reads: readApi refuses a schema that is not the route's answer", async () => {
  const { readApi } = await import("../mod/web/ui/data.ts");
  const { storageViewSchema } = await import("../mod/storage/types.ts");
  const { updateFullStatusSchema } = await import("../mod/update/status.ts");
  const answer = { arrays: [], disks: [], updatedAt: null, error: null };
  const d = { internal: <T>() => Promise.resolve(answer as T) };
  assertEquals(await readApi(d, "/api/storage", storageViewSchema), answer);
  let err = "";
  try {
    await readApi(d, "/api/storage", updateFullStatusSchema);
  } catch (e) {
    err = (e as Error).message;
  }
  assertEquals(err, "GET /api/storage does not answer with the schema the page reads it with");
});

Deno.test("openapi: docs/api.md is generated from the apiDoc entries and up to date", async () => {
  const { renderApiDocs } = await import("../mod/web/gen_api_docs.ts");
  const onDisk = await Deno.readTextFile(new URL("../docs/api.md", import.meta.url));
  assertEquals(onDisk, renderApiDocs(), "docs/api.md is stale: run `tools/deno task docs`");
});
