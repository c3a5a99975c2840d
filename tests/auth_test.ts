import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startTestRuntime } from "./helpers/runtime.ts";
import { isPublic, PUBLIC_PATHS } from "../mod/web/auth.ts";
import { hashPassword, parseDuration, Users, verifyPassword } from "../mod/web/users.ts";
import { addressKey, LoginThrottle } from "../mod/web/login_throttle.ts";
import { Store } from "../mod/store/mod.ts";
import { kw } from "./helpers/cli.ts";
import { fmtTime } from "../mod/web/ui/layout.tsx";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { CSP } from "../mod/web/app.ts";
import { securityHeaderPairs } from "../mod/web/secure_headers.ts";

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
    const cookie = r.headers.getSetCookie().find((c) => c.startsWith("kw_session=")) ?? "";
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

Deno.test("auth: throttle: per-address backoff doubles, a user's soft lock is bounded and never extended", () => {
  let now = 1_000_000;
  const store = new Store({ path: ":memory:" });
  const t = new LoginThrottle(store, { now: () => now });
  const ok = (ip: string, user = "admin", exists = true) => {
    const d = t.begin(user, ip, { userExists: exists });
    return d.ok ? 0 : d.retryAfterMs;
  };
  // five failures cost nothing, then 1 s, 2 s, 4 s ... (refused attempts are not counted)
  for (let i = 0; i < 5; i++) assertEquals(ok("10.0.0.9"), 0, `attempt ${i + 1}`);
  assertEquals(ok("10.0.0.9"), 1_000);
  now += 1_000;
  assertEquals(ok("10.0.0.9"), 0);
  assertEquals(ok("10.0.0.9"), 2_000);
  now += 2_000;
  assertEquals(ok("10.0.0.9"), 0);
  assertEquals(ok("10.0.0.9"), 4_000);
  // another address is not held up by the first one's backoff
  assertEquals(ok("10.0.0.10"), 0);
  // a user's soft lock: 20 failures from anywhere, then userLockMs, and no longer
  for (let i = 0; i < 30; i++) now += 1, ok(`10.1.0.${i}`);
  const locked = ok("10.2.0.1");
  assert(locked > 0 && locked <= t.policy.userLockMs, `user lock ${locked}`);
  for (let i = 0; i < 50; i++) ok(`10.3.0.${i}`); // refused: must not extend the lock
  now += t.policy.userLockMs + 1;
  assertEquals(ok("10.4.0.1"), 0, "the soft lock must end after userLockMs");
  // unknown user names never make a per-user row; old rows are purged
  const before = t.rows();
  for (let i = 0; i < 100; i++) t.begin(`nobody${i}`, "10.9.9.9", { userExists: false });
  assertEquals(t.rows(), before + 1, "one address row, no row per unknown name");
  now += t.policy.windowMs + t.policy.maxBackoffMs + 1;
  t.purge();
  assertEquals(t.rows(), 0);
  store.close();
});

Deno.test("auth: throttle: IPv6 clients are throttled by their /64", () => {
  assertEquals(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assertEquals(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
  assertEquals(addressKey("::ffff:10.0.0.1"), "10.0.0.1");
  assertEquals(addressKey("10.0.0.1"), "10.0.0.1");
});

Deno.test("auth: a browser that signed in before is not locked out by someone else's guessing", () => {
  let now = 5_000_000;
  const store = new Store({ path: ":memory:" });
  const t = new LoginThrottle(store, { now: () => now });
  const device = t.issueDevice("admin");
  // an attacker on the admin's own address guesses until address and user are blocked
  for (let i = 0; i < 40; i++) (now += 1, t.begin("admin", "192.0.2.7", { userExists: true }));
  assert(!t.begin("admin", "192.0.2.7", { userExists: true }).ok);
  // the admin's browser, same address, carries its device cookie: it gets its own budget
  const d = t.begin("admin", "192.0.2.7", { userExists: true, deviceCookie: device });
  assert(d.ok, "device cookie must bypass the address and user throttles");
  t.succeeded(d.attempt, "admin");
  // a device cookie of another user, or a forged one, counts for nothing
  assert(!t.begin("root", "192.0.2.7", { userExists: false, deviceCookie: device }).ok);
  assert(!t.begin("admin", "192.0.2.7", { userExists: true, deviceCookie: "x".repeat(32) }).ok);
  store.close();
});

Deno.test("auth: parallel logins cannot outrun the lockout: at most 5 of 41 guesses are checked, the right one among them", async () => {
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
    // 40 wrong passwords and the right one among them, all at once: at most
    // freeFailures of them may be checked at all (the rest are refused before hashing),
    // so the right one gets in only if it was among those few
    const rs = await Promise.all([
      ...Array.from({ length: 20 }, () => login("wrong password!")),
      login("a long enough secret"),
      ...Array.from({ length: 20 }, () => login("wrong password!")),
    ]);
    const statuses = rs.map((r) => r.status);
    await Promise.all(rs.map((r) => r.body?.cancel()));
    const hashed = statuses.filter((s) => s === 401 || s === 200).length;
    assert(
      hashed <= u.throttle.policy.freeFailures,
      `${hashed} of 41 parallel guesses were checked (at most ${u.throttle.policy.freeFailures}): ${statuses}`,
    );
    assert(statuses.every((s) => [200, 401, 429, 503].includes(s)), statuses.join(","));
    for (const r of rs.filter((r) => r.status === 429 || r.status === 503)) {
      assert(Number(r.headers.get("retry-after")) >= 1, "429/503 must say when to retry");
    }
    const kinds = t.rt.store.events({ module: "auth" }).map((e) => e.kind);
    assert(kinds.includes("auth.login_failed"));
    assert(kinds.includes("auth.login_refused"));
  } finally {
    await t.close();
  }
});

Deno.test("auth: a login flood writes a bounded number of journal rows and the audit trail survives it", async () => {
  const t = await startTestRuntime({ store: { retention: { maxEvents: 100, maxAgeDays: 90 } } });
  try {
    await new Users(t.rt.store).setPassword("admin", "a long enough secret");
    const audit = t.rt.store.events({ kind: "auth.user_created" });
    const first = t.rt.store.events({ order: "asc", limit: 1 })[0].id;
    const login = () =>
      fetch(`${t.base}/api/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: "admin", password: "wrong password!" }),
      }).then((r) => r.body?.cancel());
    for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 10 }, login));
    const rows = t.rt.store.events({ sinceId: first, kind: "auth.", limit: 1000 }).filter((e) =>
      e.kind !== "auth.user_created"
    );
    assert(rows.length <= 21, `300 refused logins wrote ${rows.length} journal rows`);
    // a flood of untrusted events far beyond every budget does not evict audit events
    for (let i = 0; i < 12_000; i++) {
      t.rt.bus.publishUntyped({ module: "auth", kind: "auth.login_refused", payload: { i } });
    }
    t.rt.store.trim();
    assertEquals(t.rt.store.events({ kind: "auth.user_created" }).length, audit.length);
    assert(t.rt.store.events({ kind: "runtime.started" }).length >= 1, "runtime.started evicted");
  } finally {
    await t.close();
  }
});

Deno.test("auth: a user name that matches no account is never journalled verbatim", async () => {
  const t = await startTestRuntime();
  try {
    await new Users(t.rt.store).setPassword("admin", "a long enough secret");
    const r = await fetch(`${t.base}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "Tr0ub4dor&3-typed-here", password: "x" }),
    });
    assertEquals(r.status, 401);
    await r.body?.cancel();
    const all = JSON.stringify(t.rt.store.events({ module: "auth", limit: 1000 }));
    assert(!all.includes("Tr0ub4dor"), "a password typed as user name reached the journal");
    const e = t.rt.store.events({ kind: "auth.login_failed" })[0];
    assertEquals(e.payload, { user: "(unknown)", known: false, ip: "127.0.0.1" });
  } finally {
    await t.close();
  }
});

Deno.test("auth: 8 parallel first-time setups create exactly one admin", async () => {
  const t = await startTestRuntime();
  try {
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      fetch(`${t.base}/api/setup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: `admin${i}`, password: "a long enough secret" }),
      })));
    const statuses = rs.map((r) => r.status).sort();
    await Promise.all(rs.map((r) => r.body?.cancel()));
    assertEquals(statuses.filter((s) => s === 201).length, 1, statuses.join(","));
    assert(statuses.every((s) => s === 201 || s === 409 || s === 503), statuses.join(","));
    const admins = new Users(t.rt.store).list().filter((u) => u.role === "admin");
    assertEquals(admins.length, 1, admins.map((a) => a.name).join(","));
  } finally {
    await t.close();
  }
});

Deno.test("auth: a token revoked from the CLI stops working on the very next request", async () => {
  const t = await startTestRuntime();
  try {
    let r = await kw(["token", "create", "--name", "soon-gone", "--data", t.dataDir]);
    assertEquals(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    const use = () =>
      fetch(`${t.base}/api/status`, { headers: { authorization: `Bearer ${token}` } }).then(
        async (res) => (await res.body?.cancel(), res.status),
      );
    assertEquals(await use(), 200);
    assertEquals(await use(), 200); // now in the verification cache
    r = await kw(["token", "revoke", "soon-gone", "--data", t.dataDir]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await use(), 401, "a revoked token still worked from the cache");
  } finally {
    await t.close();
  }
});

Deno.test("auth: a token revoked through another connection is refused on the next check; the generation is read only after a commit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-perfweb-gen-" });
  const a = new Store({ path: `${dir}/kw.db` }), b = new Store({ path: `${dir}/kw.db` });
  try {
    const ua = new Users(a), ub = new Users(b);
    const { token } = ua.createToken("gone", "viewer");
    const keep = ua.createToken("kept", "viewer").token;
    assertEquals(ua.tokenUser(token)?.name, "token:gone");
    assertEquals(ua.tokenUser(token)?.name, "token:gone", "from the verification cache");
    assert(ub.revokeToken("gone"));
    assertEquals(ua.tokenUser(token), null, "revoked by another connection, still accepted");
    assertEquals(ua.tokenUser(keep)?.name, "token:kept");
    // the probe behind it: false while nobody commits, true after a commit by either side
    const probe = a.commitProbe();
    probe();
    assertEquals(probe(), false);
    b.setSetting("perfweb.probe", 1);
    assertEquals(probe(), true, "a commit by another connection went unseen");
    assertEquals(probe(), false);
    a.setSetting("perfweb.probe", 2);
    assertEquals(probe(), true, "a commit by this connection went unseen");
    const mem = new Store({ path: ":memory:" });
    assertEquals([mem.commitProbe()(), mem.commitProbe()()], [true, true], "no WAL index: unsure");
    mem.close();
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: a revocation that rolls back leaves the generation where the store has it: a later real revocation elsewhere still ends the cached token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-gen-rollback-" });
  const a = new Store({ path: `${dir}/kw.db` }), b = new Store({ path: `${dir}/kw.db` });
  try {
    const ua = new Users(a), ub = new Users(b);
    const { token } = ua.createToken("t1", "viewer");
    const g0 = ua.generation();
    assertEquals(ua.tokenUser(token)?.name, "token:t1");
    // the revocation's transaction fails after the generation was bumped in it: rolled back
    a.db.exec(
      `CREATE TEMP TRIGGER kw_fail_gen AFTER UPDATE ON auth_generation
       BEGIN SELECT RAISE(ABORT, 'injected'); END`,
    );
    let failed: unknown;
    try {
      ua.revokeToken("t1");
    } catch (e) {
      failed = e;
    }
    assert(String(failed).includes("injected"), `the revocation did not fail: ${failed}`);
    a.db.exec("DROP TRIGGER kw_fail_gen");
    assertEquals(a.db.isTransaction, false);
    assertEquals(ua.generation(), g0, "the cached generation is ahead of the store's");
    assertEquals(ub.generation(), g0);
    // the token still works, and is cached again at the store's generation
    assertEquals(ua.tokenUser(token)?.name, "token:t1");
    assertEquals(ua.tokenUser(token)?.name, "token:t1");
    // a real revocation by another connection (g0 + 1) must end it on the next request
    assert(ub.revokeToken("t1"));
    assertEquals(ub.generation(), g0 + 1);
    assertEquals(ua.tokenUser(token), null, "a revoked token accepted from the cache");
    assertEquals(ua.generation(), g0 + 1);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: API tokens may expire: CLI --expires, API expires, refused after expiry", async () => {
  let now = 10_000_000;
  const store = new Store({ path: ":memory:" });
  const users = new Users(store, { now: () => now });
  const { token, info } = users.createToken("short", "viewer", { expiresInMs: 60_000 });
  assertEquals(info.expires, now + 60_000);
  assertEquals(users.tokenUser(token)?.name, "token:short");
  now += 59_999;
  assertEquals(users.tokenUser(token)?.name, "token:short", "cached and still valid");
  now += 1;
  assertEquals(users.tokenUser(token), null, "an expired token must be refused, cache or not");
  assertEquals(users.tokens()[0].expires, info.expires);
  assertEquals(parseDuration("30d"), 30 * 86_400_000);
  store.close();

  const t = await startTestRuntime();
  try {
    let r = await kw([
      "token",
      "create",
      "--name",
      "month",
      "--expires",
      "30d",
      "--json",
      "--data",
      t.dataDir,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const made = JSON.parse(r.stdout);
    assert(Math.abs(made.expires - (Date.now() + 30 * 86_400_000)) < 120_000, r.stdout);
    r = await kw(["token", "create", "--name", "bad", "--expires", "soon", "--data", t.dataDir]);
    assertEquals(r.code, 2);
    assertStringIncludes(r.stderr, "--expires");
    const res = await t.api("/api/tokens", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "api-day", expires: "1d" }),
    });
    assertEquals(res.status, 201);
    const apiDay = await res.json();
    assert(apiDay.expires > Date.now());
    // the users page shows each token's expiry (never, or when)
    const page = await (await t.api("/users")).text();
    assertStringIncludes(page, "<th>expires</th>");
    assertStringIncludes(page, "never");
    assertStringIncludes(page, fmtTime(apiDay.expires));
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

Deno.test("auth: security headers are the set hono's secureHeaders sends for our options, prebuilt answers included", async () => {
  // the values are built once in secure_headers.ts: they must not drift from hono's
  for (const tls of [false, true]) {
    const probe = new Hono();
    probe.use(
      "*",
      secureHeaders({
        contentSecurityPolicy: CSP,
        xFrameOptions: "DENY",
        referrerPolicy: "same-origin",
        strictTransportSecurity: tls ? "max-age=31536000" : false,
      }),
    );
    probe.get("/", (c) => c.text("x"));
    const want = [...(await probe.request("/")).headers].filter(([k]) => k !== "content-type");
    const ours = new Headers(securityHeaderPairs(CSP, tls));
    assertEquals([...ours], want, `tls ${tls}`);
  }
  const t = await startTestRuntime();
  try {
    // /api/status is prebuilt and copied per request; /api/health gets the headers set
    const health = await t.api("/api/health");
    await health.body?.cancel();
    const sec = (r: Response) =>
      [...r.headers].filter(([k]) =>
        k !== "content-type" && k !== "date" && k !== "content-length" && k !== "vary"
      );
    for (let i = 0; i < 3; i++) {
      const status = await t.api("/api/status");
      assertEquals((await status.json()).running, true);
      assertEquals(sec(status), sec(health));
      assertEquals(status.headers.get("content-type"), "application/json");
    }
    assertEquals(sec(health), [...new Headers(securityHeaderPairs(CSP, false))]);
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
    // kwt_<12 hex id>_<secret>: the secret may itself contain or start with "_"
    const secret = token.slice("kwt_".length + 12 + 1);
    assertEquals(secret.length, 32);
    assert(!r.stdout.includes(secret), "token list leaks the secret");
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

Deno.test("auth: a bad token name from the CLI is a usage error naming the field, not raw validator output", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kw-tokname-" });
  try {
    for (const name of ["x\ny", "a".repeat(65), "sp ace"]) {
      const r = await kw(["token", "create", "--name", name, "--data", dataDir]);
      assertEquals(r.code, 2, r.stderr);
      assertStringIncludes(r.stderr, "token name");
      assert(!r.stderr.includes('"code"'), `raw validator output leaked: ${r.stderr}`);
      assert(!r.stderr.includes("\n  {"), `raw validator output leaked: ${r.stderr}`);
    }
    const ok = await kw(["token", "create", "--name", "fine-name", "--data", dataDir]);
    assertEquals(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
