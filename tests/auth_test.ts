import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { isPublic, PUBLIC_PATHS } from "../mod/web/auth.ts";
import { hashPassword, Users, verifyPassword } from "../mod/web/users.ts";
import { Store } from "../mod/store/mod.ts";
import { kw } from "./helpers/cli.ts";

Deno.test("auth: scrypt hashes are salted per user and verify only the right password", async () => {
  const a = await hashPassword("correct horse battery");
  const b = await hashPassword("correct horse battery");
  assert(a !== b, "same password, same hash: no per-user salt");
  assert(a.startsWith("scrypt$16384$8$1$"));
  assert(await verifyPassword("correct horse battery", a));
  assert(!(await verifyPassword("correct horse batterY", a)));
});

Deno.test("auth: every registered route outside the public list refuses a request without auth", async () => {
  const t = await startTestRuntime();
  try {
    const app = t.rt.web!.app!;
    const seen = new Set<string>();
    let checked = 0;
    for (const r of app.routes) {
      if (r.method === "ALL") continue; // middleware
      const path = r.path.replace(/:([A-Za-z0-9_]+)/g, "x").replace(/\*$/, "x");
      const key = `${r.method} ${path}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (isPublic(path)) continue;
      const res = await fetch(`${t.base}${path}`, {
        method: r.method,
        redirect: "manual",
        headers: { "content-type": "application/json", origin: t.base },
        body: r.method === "GET" || r.method === "HEAD" ? undefined : "{}",
      });
      await res.body?.cancel();
      const isApi = path.startsWith("/api/") || path === "/metrics";
      if (isApi) assertEquals(res.status, 401, `${key} answered ${res.status} without auth`);
      else {
        assertEquals(res.status, 303, `${key} answered ${res.status} without auth`);
        assert(/^\/(login|setup)/.test(res.headers.get("location") ?? ""), key);
      }
      checked++;
    }
    assert(checked >= 5, `only ${checked} protected routes found`);
    console.log(
      `auth: ${checked} protected routes refuse anonymous requests; public: ${
        PUBLIC_PATHS.join(", ")
      }`,
    );
  } finally {
    await t.close();
  }
});

Deno.test("auth: setup, login, session cookie flags, roles, logout", async () => {
  const t = await startTestRuntime();
  try {
    // anonymous API call before any admin: tells how to set one up
    let r = await fetch(`${t.base}/api/status`);
    assertEquals(r.status, 401);
    assertStringIncludes((await r.json()).error.message, "keepwire user passwd");
    // first admin through the setup route (loopback only)
    r = await fetch(`${t.base}/api/setup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "short" }),
    });
    assertEquals(r.status, 400);
    assert((await r.json()).error.fields.password);
    r = await fetch(`${t.base}/api/setup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "a long enough secret" }),
    });
    assertEquals(r.status, 201);
    await r.body?.cancel();
    r = await fetch(`${t.base}/api/setup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "evil", password: "a long enough secret" }),
    });
    assertEquals(r.status, 409);
    await r.body?.cancel();
    // login
    r = await fetch(`${t.base}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "a long enough secret" }),
    });
    assertEquals(r.status, 200);
    const cookie = r.headers.get("set-cookie") ?? "";
    await r.body?.cancel();
    assertStringIncludes(cookie, "kw_session=");
    assertStringIncludes(cookie, "HttpOnly");
    assertStringIncludes(cookie, "SameSite=Strict");
    const session = cookie.split(";")[0];
    r = await fetch(`${t.base}/api/status`, { headers: { cookie: session } });
    assertEquals(r.status, 200);
    await r.body?.cancel();
    // a viewer token may read but not change
    r = await t.api("/api/tokens", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "grafana", role: "viewer" }),
    });
    assertEquals(r.status, 201);
    const viewer = (await r.json()).token as string;
    r = await fetch(`${t.base}/api/status`, { headers: { authorization: `Bearer ${viewer}` } });
    assertEquals(r.status, 200);
    await r.body?.cancel();
    r = await fetch(`${t.base}/api/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${viewer}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "x" }),
    });
    assertEquals(r.status, 403);
    await r.body?.cancel();
    r = await fetch(`${t.base}/api/status`, { headers: { authorization: "Bearer kwt_nope" } });
    assertEquals(r.status, 401);
    await r.body?.cancel();
    // logout ends the session
    r = await fetch(`${t.base}/api/logout`, {
      method: "POST",
      headers: { cookie: session, "content-type": "application/json", origin: t.base },
      body: "{}",
    });
    assertEquals(r.status, 200);
    await r.body?.cancel();
    r = await fetch(`${t.base}/api/status`, { headers: { cookie: session } });
    assertEquals(r.status, 401);
    await r.body?.cancel();
    const kinds = t.rt.store.events({ module: "auth", order: "asc" }).map((e) => e.kind);
    assertEquals(kinds.slice(0, 4), [
      "auth.user_created",
      "auth.login",
      "auth.token_created",
      "auth.logout",
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("auth: repeated bad logins lock the user out with audit events", async () => {
  let now = 1_000_000;
  const store = new Store({ path: ":memory:" });
  const users = new Users(store, { now: () => now });
  await users.setPassword("admin", "a long enough secret");
  const key = "admin@10.0.0.9";
  for (let i = 0; i < 4; i++) assertEquals(users.recordFailure(key), false);
  assertEquals(users.recordFailure(key), true);
  assert(users.lockedFor(key) > 0);
  now += users.lockout.lockMs + 1;
  assertEquals(users.lockedFor(key), 0);
  store.close();

  const t = await startTestRuntime();
  try {
    const u = new Users(t.rt.store);
    await u.setPassword("admin", "a long enough secret");
    const login = (pw: string) =>
      fetch(`${t.base}/api/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: "admin", password: pw }),
      });
    for (let i = 0; i < 5; i++) {
      const r = await login("wrong password!");
      assertEquals(r.status, 401);
      await r.body?.cancel();
    }
    const r = await login("a long enough secret");
    assertEquals(r.status, 429, "the right password must not get in while locked");
    assert(Number(r.headers.get("retry-after")) > 0);
    await r.body?.cancel();
    const kinds = t.rt.store.events({ module: "auth" }).map((e) => e.kind);
    assert(kinds.includes("auth.locked"));
    assert(kinds.includes("auth.login_refused"));
  } finally {
    await t.close();
  }
});

Deno.test("auth: a cross-site form POST is refused (CSRF); same-origin is not", async () => {
  const t = await startTestRuntime();
  try {
    const u = new Users(t.rt.store);
    await u.setPassword("admin", "a long enough secret");
    const sid = u.createSession("admin");
    const post = (headers: Record<string, string>) =>
      fetch(`${t.base}/api/logout`, {
        method: "POST",
        headers: {
          cookie: `kw_session=${sid}`,
          "content-type": "application/x-www-form-urlencoded",
          ...headers,
        },
        body: "a=1",
      });
    let r = await post({ origin: "https://evil.example", "sec-fetch-site": "cross-site" });
    assertEquals(r.status, 403);
    assertStringIncludes((await r.json()).error.message, "CSRF");
    r = await post({ origin: t.base, "sec-fetch-site": "same-origin" });
    assertEquals(r.status, 200);
    await r.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("auth: security headers: CSP without inline scripts, no framing, nosniff", async () => {
  const t = await startTestRuntime();
  try {
    const r = await fetch(`${t.base}/api/health`);
    await r.body?.cancel();
    const csp = r.headers.get("content-security-policy") ?? "";
    assertStringIncludes(csp, "script-src 'self'");
    assert(!csp.includes("unsafe-inline"));
    assertStringIncludes(csp, "frame-ancestors 'none'");
    assertEquals(r.headers.get("x-content-type-options"), "nosniff");
    assertEquals(r.headers.get("x-frame-options"), "DENY");
  } finally {
    await t.close();
  }
});

Deno.test("auth: CLI sets a password from stdin and creates a token that works once printed", async () => {
  const t = await startTestRuntime();
  try {
    let r = await kw(["user", "passwd", "admin", "--password-stdin", "--data", t.dataDir], {
      stdin: "console secret 123\n",
    });
    assertEquals(r.code, 0, r.stderr);
    r = await kw(["user", "passwd", "admin", "--password-stdin", "--data", t.dataDir], {
      stdin: "short\n",
    });
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "at least 10 characters");
    r = await kw(["token", "create", "--name", "ci", "--role", "admin", "--data", t.dataDir]);
    assertEquals(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    const res = await fetch(`${t.base}/api/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    r = await kw(["token", "list", "--json", "--data", t.dataDir]);
    assert(!r.stdout.includes(token.split("_")[2]), "token list leaks the secret");
    const login = await fetch(`${t.base}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: "console secret 123" }),
    });
    assertEquals(login.status, 200);
    await login.body?.cancel();
  } finally {
    await t.close();
  }
});
