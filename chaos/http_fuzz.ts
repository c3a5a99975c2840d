/**
 * Chaos: HTTP fuzz of every route of a running keepwire, by class.
 *
 * - auth matrix: every route without credentials (401 for the API, 303 to sign-in for
 *   pages), with a garbage or malformed bearer (401), with a viewer token on anything
 *   that changes state (403);
 * - CSRF: every state-changing API route with a valid session cookie from a cross-site
 *   form (403);
 * - malformed JSON: broken, wrongly typed, deeply nested, prototype-polluting bodies to
 *   every route that takes a body, as admin (a 4xx naming the problem);
 * - path tricks: traversal, encoded dots and slashes, NUL, overlong paths, bad
 *   percent-encoding, odd query values (never a file outside static/, never a 5xx);
 * - huge bodies: declared and chunked bodies past the bounds (413, read no further);
 * - host tricks: foreign Host headers (421).
 *
 * Each request is one injection: survived when the answer is the expected class, not a
 * 5xx other than the documented ones (503 busy, 507 storage full), and carries no
 * internal text (stack frames, source paths, SQLite messages). After the run the daemon
 * must still answer /api/health 200 (one more injection).
 */
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import { Users } from "../mod/web/users.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";
import { rawStatus } from "../tests/helpers/raw_http.ts";

/** Text that must never reach a client. */
const INTERNAL =
  /at (file|ext):|\.tsx?:\d+|sqlite|SQLITE|TypeError|ReferenceError|RangeError|SyntaxError: |Maximum call stack|root:x:0|import \{/;

/** Statuses a client may see other than 2xx-4xx: documented in docs/security.md. */
const DOCUMENTED_5XX = new Set([503, 507]);

interface Check {
  cls: string;
  what: string;
  ok: boolean;
  detail: string;
}

/** Send one raw HTTP/1.1 request (any Host); returns the status, 0 when none came within 15 s. */
function raw(addr: string, head: string): Promise<number> {
  return rawStatus(addr, head, 15_000);
}

function malformedBodies(rounds: number): string[] {
  const fixed = [
    "",
    "{",
    "}",
    "[]",
    "null",
    "true",
    '"x"',
    "1e999999",
    '{"a":',
    "{'single': 1}",
    '{"__proto__": {"admin": true}}',
    '{"constructor": {"prototype": {"x": 1}}}',
    '{"username": 1, "password": []}',
    '{"password": null}',
    '{"name": "a\\u0000b"}',
    '{"name": "\uD800"}',
    "[".repeat(20_000) + "]".repeat(20_000),
    '{"a":'.repeat(5_000) + "1" + "}".repeat(5_000),
    JSON.stringify({ x: "y".repeat(100_000) }),
  ];
  const out = [...fixed];
  for (let r = 0; r < rounds; r++) {
    const bytes = crypto.getRandomValues(new Uint8Array(1 + Math.floor(Math.random() * 200)));
    out.push(new TextDecoder().decode(bytes));
    const base = fixed[Math.floor(Math.random() * fixed.length)];
    const cut = Math.floor(Math.random() * (base.length + 1));
    out.push(base.slice(0, cut));
  }
  return out;
}

const PATH_TRICKS = [
  "/static/../mod.ts",
  "/static/..%2f..%2fmod.ts",
  "/static/%2e%2e/%2e%2e/deno.json",
  "/static/app.js%00.png",
  "/static/%252e%252e%252fdeno.json",
  "//api/status",
  "/api//status",
  "/api/./status",
  "/api/status/",
  "/api/status%00",
  "/api/users/..%2f..%2fetc%2fpasswd",
  "/api/users/%2e%2e",
  "/api/bypass/%ff%fe",
  "/api/bypass/" + "a".repeat(5000),
  "/" + "a/".repeat(2000),
  "/api/events?limit=-1",
  "/api/events?limit=99999999999999999999",
  "/api/events?kind=%00",
  "/api/events?since=1e9999",
  "/api/events?from=not-a-date",
  "/api/events?severity=__proto__",
  "/api/events?constructor=1",
  "/api/tokens/%00",
  "/api/subsystems/constructor",
  "/api/subsystems/__proto__",
  "/api/alert/outbox/%27%20OR%201%3D1",
  "/login?next=%2F%5Cevil.example",
  "/events?kind=%3Cscript%3E",
];

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "http_fuzz",
  description:
    "auth matrix, CSRF, malformed JSON, path tricks, huge bodies and foreign Hosts against every route: expected class, no undocumented 5xx, no internal text, daemon up",
  async run({ bounded, log }): Promise<ChaosResult> {
    const dataDir = await Deno.makeTempDir({ prefix: "kw-chaos-fuzz-" });
    await Deno.writeTextFile(
      `${dataDir}/bootenv.json`,
      JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "0" }),
    );
    const rt = new Runtime(
      validateConfig({
        dataDir,
        web: { listen: "127.0.0.1:0" },
        governor: { enabled: false },
        update: {
          bootloader: { backend: "file", file: `${dataDir}/bootenv.json` },
          activation: { rebootCommand: ["true"] },
        },
      }),
    );
    await rt.start();
    const addr = rt.web!.address;
    const base = `http://${addr}`;
    const checks: Check[] = [];
    const check = (cls: string, what: string, ok: boolean, detail = "") =>
      checks.push({ cls, what, ok, detail });
    const send = async (
      cls: string,
      what: string,
      init: RequestInit & { path: string },
      expect: (status: number) => boolean,
    ) => {
      try {
        const r = await fetch(`${base}${init.path}`, { redirect: "manual", ...init });
        const text = await r.text();
        const leak = INTERNAL.exec(text);
        const fiveXX = r.status >= 500 && !DOCUMENTED_5XX.has(r.status);
        check(
          cls,
          what,
          expect(r.status) && !fiveXX && !leak,
          `${r.status}${leak ? ` leaked "${leak[0]}"` : ""}`,
        );
      } catch (e) {
        check(cls, what, false, `no answer: ${e}`);
      }
    };
    try {
      const users = new Users(rt.store);
      await users.createUser("admin", "fuzzing admin secret", "admin");
      const admin = users.createToken("fuzz-admin", "admin").token;
      const viewer = users.createToken("fuzz-viewer", "viewer").token;
      const sid = users.createSession("admin");
      const routes: { method: string; path: string }[] = [];
      const seen = new Set<string>();
      for (const r of rt.web!.app!.routes) {
        if (r.method === "ALL") continue;
        const path = r.path.replace(/:([A-Za-z0-9_]+)/g, "x").replace(/\*$/, "x");
        const key = `${r.method} ${path}`;
        if (!seen.has(key)) (seen.add(key), routes.push({ method: r.method, path }));
      }
      const isPublic = (p: string) =>
        ["/api/health", "/api/ha", "/api/login", "/api/setup", "/login", "/setup", "/favicon.ico"]
          .includes(p) || p.startsWith("/static/");
      const isApi = (p: string) => p.startsWith("/api/") || p === "/metrics";
      const changes = (m: string) => !["GET", "HEAD", "OPTIONS"].includes(m);
      // acting without a body would really act: these get only the auth and CSRF classes
      const acts = new Set(["/api/update/activate", "/api/ha/failover", "/api/logout"]);

      // 1. auth matrix
      for (const r of routes.filter((r) => !isPublic(r.path))) {
        const body = changes(r.method) ? "{}" : undefined;
        const headers = { "content-type": "application/json", origin: base };
        const anon = (s: number) => isApi(r.path) ? s === 401 : s === 303;
        await send("auth", `${r.method} ${r.path} anonymous`, {
          path: r.path,
          method: r.method,
          headers,
          body,
        }, anon);
        for (const bad of ["Bearer x", "Bearer kwt_000000000000_" + "A".repeat(32), "Basic YTpi"]) {
          await send("auth", `${r.method} ${r.path} ${bad.slice(0, 12)}`, {
            path: r.path,
            method: r.method,
            headers: { ...headers, authorization: bad },
            body,
          }, anon);
        }
        if (changes(r.method) && r.path !== "/api/logout") {
          await send("auth", `${r.method} ${r.path} viewer`, {
            path: r.path,
            method: r.method,
            headers: { ...headers, authorization: `Bearer ${viewer}` },
            body,
          }, (s) => s === 403);
        }
      }
      // 2. CSRF: a cross-site form with the admin's session cookie
      for (const r of routes.filter((r) => changes(r.method) && isApi(r.path))) {
        for (
          const type of ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]
        ) {
          await send("csrf", `${r.method} ${r.path} ${type}`, {
            path: r.path,
            method: r.method,
            headers: {
              cookie: `kw_session=${sid}`,
              "content-type": type,
              origin: "https://evil.example",
              "sec-fetch-site": "cross-site",
            },
            body: "a=1",
          }, (s) => s === 403);
        }
      }
      // 3. malformed JSON, as admin, to every route that takes a body
      const bodies = malformedBodies(bounded ? 4 : 60);
      for (
        const r of routes.filter((r) => changes(r.method) && isApi(r.path) && !acts.has(r.path))
      ) {
        for (const b of bodies) {
          await send("json", `${r.method} ${r.path} ${JSON.stringify(b.slice(0, 20))}`, {
            path: r.path,
            method: r.method,
            headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
            body: b,
          }, (s) => s >= 400 && s < 500 || s === 200 || s === 201);
        }
      }
      // 4. path tricks (as admin, and anonymous)
      for (const p of PATH_TRICKS) {
        const asAdmin: Record<string, string> = { authorization: `Bearer ${admin}` };
        for (const auth of [asAdmin, {} as Record<string, string>]) {
          await send("path", `GET ${p.slice(0, 40)}${"authorization" in auth ? " admin" : ""}`, {
            path: p,
            headers: auth,
          }, (s) => s < 500);
        }
      }
      // 5. huge bodies: declared, and chunked without a length
      const port = addr.slice(addr.lastIndexOf(":") + 1);
      for (const path of ["/api/login", "/api/setup", "/api/settings", "/api/tokens"]) {
        const s = await raw(
          addr,
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${admin}\r\n` +
            `Content-Type: application/json\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\n{`,
        );
        check("huge", `POST ${path} declared 1 GiB`, s === 413, String(s));
        let sent = 0;
        const chunk = new Uint8Array(256 * 1024).fill(0x20);
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent >= 256 << 20) return c.close();
            sent += chunk.length;
            c.enqueue(chunk);
          },
        });
        await send("huge", `POST ${path} chunked`, {
          path,
          method: path === "/api/settings" ? "PUT" : "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: stream,
        }, (s) => s === 413);
        // the client may have pushed a few MiB into socket buffers before the answer
        check("huge", `POST ${path} chunked: stopped early`, sent <= 16 << 20, `${sent} bytes`);
      }
      // 6. foreign Host headers
      for (
        const host of ["evil.example", "rebind.attacker.example:80", "127.0.0.1.nip.io", "[::2]"]
      ) {
        const s = await raw(
          addr,
          `GET /api/health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        );
        check("host", `Host: ${host}`, s === 421, String(s));
      }
      // the daemon is still up and healthy
      const h = await fetch(`${base}/api/health`);
      await h.body?.cancel();
      check("alive", "GET /api/health after the fuzz", h.status === 200, String(h.status));

      const byClass = new Map<string, [number, number]>();
      for (const c of checks) {
        const v = byClass.get(c.cls) ?? [0, 0];
        v[c.ok ? 0 : 1]++;
        byClass.set(c.cls, v);
      }
      log(
        [...byClass].map(([k, [ok, bad]]) => `${k} ${ok + bad}${bad ? ` (${bad} BAD)` : ""}`)
          .join(", "),
      );
      for (const c of checks.filter((c) => !c.ok).slice(0, 20)) {
        log(`BAD ${c.cls}: ${c.what} -> ${c.detail}`);
      }
      const lost = checks.filter((c) => !c.ok).length;
      return {
        injected: checks.length,
        survived: checks.length - lost,
        lost,
        notes: `requests; ${[...byClass].map(([k, [ok, bad]]) => `${k} ${ok + bad}`).join(", ")}`,
      };
    } finally {
      await rt.stop("chaos done");
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
};
