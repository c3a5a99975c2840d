/**
 * The SDK's tables from real subsystems: a worker declares and writes through the SDK
 * (postMessage), a process through its local socket (HTTP + JSON, KEEPWIRE_SDK_SOCKET),
 * both supervised by the real Supervisor. The worker learns its node's role and sees its
 * writes refused once the node is a standby.
 */
import { join } from "node:path";
import { systemClock } from "../mod/module.ts";
import { Store } from "../mod/store/mod.ts";
import { Supervisor } from "../mod/supervisor/supervisor.ts";
import { defaultRunners } from "../mod/supervisor/mod.ts";
import { WorkerPool } from "../mod/supervisor/worker.ts";
import type { SubsystemSpec } from "../mod/supervisor/config.ts";
import { SdkHost } from "../mod/sdk/host.ts";
import type { HandoffInfo, NodeInfo } from "../mod/sdk/mod.ts";
import { SdkSockets } from "../mod/sdk/socket.ts";
import { ReplRegistry } from "../mod/repl/registry.ts";
import { missingTools } from "./helpers/tools.ts";
import { assert, assertEquals, MockEscalation, spec, supConfig } from "./supervisor_fakes.ts";
import { waitFor } from "./helpers/procs.ts";

const SDK = new URL("../mod/sdk/mod.ts", import.meta.url).href;

async function withRig(
  specs: (dir: string) => SubsystemSpec[],
  fn: (
    ctx: {
      host: SdkHost;
      sup: Supervisor;
      dir: string;
      setRole: (r: string) => void;
    },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kw-sdk-sub-" });
  const store = new Store({ path: join(dir, "kw.db") });
  let role = "active";
  const host = new SdkHost({
    store,
    ha: () => ({ role, node: "n1", peer: "n2" }),
    registry: new ReplRegistry({ core: false }),
  });
  const sockets = new SdkSockets(host, join(dir, "sdk"));
  const list = specs(dir);
  const pool = new WorkerPool(list.some((s) => s.kind === "worker") ? 1 : 0);
  const sup = new Supervisor({
    specs: list,
    config: supConfig(),
    clock: systemClock,
    publish: () => {},
    runners: defaultRunners(pool, undefined, { host, sockets }),
    escalation: new MockEscalation(),
  });
  pool.warm();
  try {
    await sup.startAll();
    await fn({
      host,
      sup,
      dir,
      setRole: (r) => {
        role = r;
        host.refreshNode();
      },
    });
  } finally {
    await sup.stopAll();
    pool.close();
    await sockets.close();
    host.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const status = (sup: Supervisor, name: string) =>
  sup.list().find((s) => s.name === name)?.statusText ?? "";

Deno.test("sdk tables from a worker subsystem: declare, refuse no-PK, write, read, standby refusal", async () => {
  await withRig((dir) => {
    const mod = join(dir, "w.ts");
    Deno.writeTextFileSync(
      mod,
      `import { node, onNode, ready, status, tables, SdkError } from "${SDK}";
const out = [];
try {
  await tables({ group: "bad", durability: "sync",
    tables: [{ name: "w_nopk", columns: { a: "TEXT" }, primaryKey: [] }] });
  out.push("nopk:accepted");
} catch (e) { out.push("nopk:" + (e instanceof SdkError ? e.code : "other")); }
const db = await tables({ group: "g", durability: "sync",
  tables: [{ name: "w_items", columns: { id: "TEXT NOT NULL", v: "INTEGER" }, primaryKey: ["id"] }] });
const w = await db.write([{ sql: "INSERT INTO w_items (id, v) VALUES (?, ?)", params: ["a", 1] },
  { sql: "INSERT INTO w_items (id, v) VALUES (?, ?)", params: ["b", 2] }]);
out.push("durable:" + w.durable);
const rows = await db.query("SELECT sum(v) AS s FROM w_items");
out.push("sum:" + rows[0].s);
out.push("role:" + node()?.role);
ready();
status(out.join(" "));
onNode(async (n) => {
  try {
    await db.write({ sql: "DELETE FROM w_items" });
    status("standby-write:accepted");
  } catch (e) {
    status("standby-write:" + n.role + ":" + (e instanceof SdkError ? e.code : String(e)));
  }
});
`,
    );
    return [spec({ name: "wtab", kind: "worker", module: mod })];
  }, async ({ host, sup, setRole }) => {
    await waitFor(() => status(sup, "wtab").includes("role:"), 30_000, "worker status");
    assertEquals(
      status(sup, "wtab"),
      "nopk:sdk_no_primary_key durable:local sum:3 role:active",
    );
    assertEquals(host.query("wtab", "SELECT id FROM w_items ORDER BY id"), [{ id: "a" }, {
      id: "b",
    }]);
    setRole("standby");
    await waitFor(() => status(sup, "wtab").startsWith("standby-write"), 30_000, "standby write");
    assertEquals(status(sup, "wtab"), "standby-write:standby:sdk_not_active");
    assertEquals(host.query("wtab", "SELECT count(*) AS n FROM w_items"), [{ n: 2 }]);
  });
});

Deno.test({
  name: "sdk tables from a process subsystem over its local socket (JSON protocol)",
  ignore: missingTools(["setsid"]) !== undefined,
  fn: async () => {
    await withRig((dir) => {
      const script = join(dir, "p.ts");
      // a process subsystem in any language speaks the protocol; this one is a Deno script
      Deno.writeTextFileSync(
        script,
        `const client = Deno.createHttpClient({
  proxy: { transport: "unix", path: Deno.env.get("KEEPWIRE_SDK_SOCKET") },
});
async function c(file, path, body) {
  const r = await fetch("http://kw" + path, {
    client,
    method: body ? "POST" : "GET",
    headers: { "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  Deno.writeTextFileSync(${
          JSON.stringify(dir)
        } + "/" + file, JSON.stringify({ status: r.status, ...(await r.json()) }));
}
await c("declare.json", "/v1/declare", { group: "g", durability: "async",
  tables: [{ name: "p_kv", columns: { k: "TEXT NOT NULL", v: "TEXT" }, primaryKey: ["k"] }] });
await c("nopk.json", "/v1/declare", { group: "h", durability: "sync",
  tables: [{ name: "p_log", columns: { line: "TEXT" } }] });
await c("write.json", "/v1/write", { group: "g",
  statements: [{ sql: "INSERT INTO p_kv (k, v) VALUES (?, ?)", params: ["x", "1"] }] });
await c("query.json", "/v1/query", { sql: "SELECT k, v FROM p_kv" });
await c("denied.json", "/v1/query", { sql: "SELECT * FROM users" });
await c("node.json", "/v1/node");
Deno.writeTextFileSync(${JSON.stringify(dir)} + "/done", "");
setInterval(() => {}, 1000);
`,
      );
      return [spec({
        name: "ptab",
        kind: "process",
        module: undefined,
        command: Deno.execPath(),
        args: ["run", "-A", "--no-config", script],
      })];
    }, async ({ dir, host }) => {
      await waitFor(
        () => {
          try {
            Deno.statSync(join(dir, "done"));
            return true;
          } catch {
            return false;
          }
        },
        30_000,
        "the process's calls",
      );
      const read = (f: string) => JSON.parse(Deno.readTextFileSync(join(dir, f)));
      assertEquals(read("declare.json"), {
        status: 200,
        value: { group: "g", version: 1, tables: ["p_kv"], durability: "async" },
      });
      const nopk = read("nopk.json");
      assertEquals([nopk.status, nopk.error.code], [422, "sdk_no_primary_key"]);
      assert(nopk.error.message.includes('"p_log"'), nopk.error.message);
      assertEquals(read("write.json").value.durable, "local");
      assertEquals(read("query.json"), { status: 200, value: [{ k: "x", v: "1" }] });
      assertEquals(read("denied.json").error.code, "sdk_sql_refused");
      assertEquals(read("node.json").value.role, "active");
      assertEquals(host.query("ptab", "SELECT v FROM p_kv WHERE k = 'x'"), [{ v: "1" }]);
      // the socket is the subsystem's own: mode 0600
      const st = Deno.statSync(join(dir, "sdk", "ptab.sock"));
      assertEquals((st.mode ?? 0) & 0o777, 0o600);
    });
  },
});

Deno.test({
  name: "sdk push: a process subsystem's event stream gets role and handoff changes",
  ignore: missingTools(["setsid"]) !== undefined,
  fn: async () => {
    await withRig((dir) => {
      const script = join(dir, "events.ts");
      // reads GET /v1/events line by line and appends each message to a file
      Deno.writeTextFileSync(
        script,
        `const client = Deno.createHttpClient({
  proxy: { transport: "unix", path: Deno.env.get("KEEPWIRE_SDK_SOCKET") },
});
const r = await fetch("http://kw/v1/events", { client });
const out = ${JSON.stringify(join(dir, "events.ndjson"))};
Deno.writeTextFileSync(out, "", { append: true });
const dec = new TextDecoder();
let buf = "";
for await (const chunk of r.body) {
  buf += dec.decode(chunk, { stream: true });
  let i;
  while ((i = buf.indexOf("\\n")) >= 0) {
    Deno.writeTextFileSync(out, buf.slice(0, i + 1), { append: true });
    buf = buf.slice(i + 1);
  }
}
setInterval(() => {}, 1000);
`,
      );
      return [spec({
        name: "pev",
        kind: "process",
        module: undefined,
        command: Deno.execPath(),
        args: ["run", "-A", "--no-config", script],
      })];
    }, async ({ dir, host, setRole }) => {
      const seen = () => {
        try {
          return Deno.readTextFileSync(join(dir, "events.ndjson")).split("\n").filter(Boolean)
            .map((l) => JSON.parse(l) as { kw: string; node?: NodeInfo; handoff?: HandoffInfo });
        } catch {
          return [];
        }
      };
      const nodes = () => seen().filter((m) => m.kw === "node").map((m) => m.node!);
      const handoffs = () => seen().filter((m) => m.kw === "handoff").map((m) => m.handoff!);
      // at once: the node and the handoff state
      await waitFor(() => nodes().length === 1 && handoffs().length === 1, 30_000, "first push");
      assertEquals(nodes()[0].role, "active");
      assertEquals(handoffs()[0].target, "local");
      // a handoff change is pushed
      await host.setHandoff("pev", { enabled: true, onAt: 10, offAt: 2 }, "test");
      host.queue("pev", 50);
      await waitFor(() => handoffs().some((h) => h.target === "peer"), 30_000, "handoff push");
      assertEquals(handoffs().at(-1)!.to, "n2");
      // the node's role is pushed
      setRole("standby");
      await waitFor(() => nodes().at(-1)!.role === "standby", 30_000, "role push");
      assertEquals(nodes().at(-1)!.writable, false);
      assertEquals(nodes().at(-1)!.writableSets, []);
    });
  },
});
