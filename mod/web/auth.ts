/**
 * Authentication and authorisation for the web UI and API: sessions (cookie),
 * API tokens (Bearer), the control socket (trusted, root only), login with rate
 * limiting and lockout, first-admin setup, roles enforced server-side, CSRF.
 * @module
 */
import { Hono } from "hono";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { csrf } from "hono/csrf";
import { z } from "zod";
import type { EventBus } from "../events/mod.ts";
import type { Clock } from "../module.ts";
import { ApiError, jsonBody, parseOr400 } from "./errors.ts";
import { UNKNOWN_USER } from "./events.ts";
import { GateFullError } from "./hash_gate.ts";
import { LoginAudit } from "./login_audit.ts";
import { answer, apiDoc, sameType } from "./openapi.ts";
import { isPublic } from "./public_paths.ts";

export { isPublic, PUBLIC_PATHS } from "./public_paths.ts";
import {
  AlreadySetUpError,
  durationSchema,
  passwordSchema,
  type Principal,
  type Role,
  roleSchema,
  UserExistsError,
  type UserInfo,
  usernameSchema,
  type Users,
} from "./users.ts";

/** Context variables set by the auth middleware. */
export interface AuthVars {
  /** Who is calling, or null. */
  principal: Principal | null;
}

/** Hono env of an app that uses auth. */
export interface AuthEnv {
  /** Bindings passed to app.fetch. */
  Bindings: { trusted?: boolean; remote?: Deno.Addr };
  /** Variables. */
  Variables: AuthVars;
}

/** Options of the auth layer. */
export interface AuthOptions {
  /** Users store. */
  users: Users;
  /** Bus for audit events. */
  bus: EventBus;
  /** Serving over TLS (cookie gets Secure and the __Host- prefix). */
  tls: boolean;
}

/** Options of the auth routes. */
export interface AuthRouteOptions extends AuthOptions {
  /** Clock (the login audit's window). */
  clock: Clock;
  /** Aborted when the server stops (flushes the login audit). */
  closing?: AbortSignal;
}

/** Name of the session cookie as the browser sees it. */
export function cookieName(tls: boolean): string {
  return tls ? "__Host-kw_session" : "kw_session";
}

/** Name of the device cookie as the browser sees it (see login_throttle.ts). */
export function deviceCookieName(tls: boolean): string {
  return tls ? "__Host-kw_device" : "kw_device";
}

// hono adds the __Host- prefix itself when told `prefix: "host"`: give it the bare name
// (passing the prefixed name made the cookie `__Host-__Host-kw_session`, never read back).
const SESSION = "kw_session", DEVICE = "kw_device";
const readCookie = (c: Context, name: string, tls: boolean): string | undefined =>
  tls ? getCookie(c, name, "host") : getCookie(c, name);
const cookieFlags = (tls: boolean) => ({
  httpOnly: true,
  sameSite: "Strict" as const,
  secure: tls,
  path: "/",
  ...(tls ? { prefix: "host" as const } : {}),
});

/** A 503 for when password hashing is saturated: cheap to send, says when to retry. */
export class LoginBusyError extends ApiError {
  /** Build one. */
  constructor() {
    super(503, "busy", "too many sign-ins at once; try again in a second");
  }
}

/** Does `origin` name the same host and port as `url`? */
function sameHost(origin: string, url: string): boolean {
  try {
    return new URL(origin).host === new URL(url).host;
  } catch {
    return false;
  }
}

/** Seconds for Retry-After from milliseconds (at least 1). */
function retrySeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

function remoteIp(c: Context<AuthEnv>): string {
  const r = c.env?.remote;
  if (r && (r.transport === "tcp" || r.transport === "udp")) return r.hostname;
  return c.env?.trusted ? "local" : "unknown";
}

function isLoopback(c: Context<AuthEnv>): boolean {
  if (c.env?.trusted) return true;
  const ip = remoteIp(c);
  return ip === "127.0.0.1" || ip === "::1" || ip.startsWith("127.") || ip === "::ffff:127.0.0.1";
}

/** Resolve who is calling: control socket, Bearer token, or session cookie. */
export function resolvePrincipal(c: Context<AuthEnv>, opts: AuthOptions): Principal | null {
  if (c.env?.trusted) return { name: "local", role: "admin", via: "socket" };
  const authz = c.req.header("authorization");
  if (authz) {
    const m = /^Bearer\s+(\S+)$/i.exec(authz);
    return m ? opts.users.tokenUser(m[1]) : null;
  }
  const sid = readCookie(c, SESSION, opts.tls);
  return sid ? opts.users.sessionUser(sid) : null;
}

/** Middleware: CSRF check for browser requests (not for Bearer or socket callers). */
export function csrfGuard(): MiddlewareHandler<AuthEnv> {
  const check = csrf();
  return async (c, next) => {
    if (c.env?.trusted || c.req.header("authorization")) return await next();
    return await check(c, next);
  };
}

/** Methods a viewer may use. */
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
/** Non-GET routes any signed-in user may call (about their own session). */
/** Writes any signed-in role may make (its own session). */
export const SELF_SERVICE: ReadonlySet<string> = new Set(["/api/logout"]);

/**
 * Middleware: sets `principal`; answers 401 for API routes without one, redirects
 * pages to /setup (no admin yet) or /login; answers 403 when a viewer changes state.
 */
export function authMiddleware(opts: AuthOptions): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const path = c.req.path;
    const principal = resolvePrincipal(c, opts);
    c.set("principal", principal);
    if (isPublic(path)) return await next();
    const isApi = path.startsWith("/api/") || path === "/metrics";
    if (!principal) {
      if (isApi) {
        throw new ApiError(
          401,
          "unauthorized",
          opts.users.hasAdmin()
            ? "sign in (POST /api/login) or send an API token (Authorization: Bearer)"
            : "no admin password is set yet: run `keepwire user passwd admin` on the box, or use the setup page",
        );
      }
      const to = opts.users.hasAdmin()
        ? `/login?next=${encodeURIComponent(path + (new URL(c.req.url).search || ""))}`
        : "/setup";
      return c.redirect(to, 303);
    }
    if (!SAFE.has(c.req.method) && principal.role !== "admin" && !SELF_SERVICE.has(path)) {
      throw new ApiError(403, "forbidden", `role ${principal.role} may not change anything`);
    }
    await next();
  };
}

const loginBody = z.lazy(() =>
  z.strictObject({
    username: z.string().min(1).max(64),
    password: z.string().max(1024),
  })
);
const setupBody = z.lazy(() =>
  z.strictObject({ username: usernameSchema, password: passwordSchema })
);
const userBody = z.lazy(() =>
  z.strictObject({
    username: usernameSchema,
    password: passwordSchema,
    role: roleSchema.default("viewer"),
  })
);
const passwordBody = z.lazy(() => z.strictObject({ password: passwordSchema }));
const tokenBody = z.lazy(() =>
  z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 characters: letters, digits, _ . -"),
    role: roleSchema.default("viewer"),
    expires: durationSchema.optional().describe("lifetime, e.g. 30d, 12h, 45m (default: none)"),
  })
);

const roleOut = z.lazy(() => z.enum(["admin", "viewer"]));
/** Who signed in (answer of login and setup). */
export const signedInSchema = z.lazy(() => z.object({ user: z.string(), role: roleOut }));
/** The caller (GET /api/me). */
export const principalSchema = z.lazy(() =>
  z.object({
    name: z.string().describe("user name, `token:NAME`, or `local` (control socket)"),
    role: roleOut,
    via: z.enum(["session", "token", "socket"]),
  })
);
/** A user as listed (no secrets). */
export const userInfoSchema = z.lazy(() =>
  z.object({
    name: z.string(),
    role: roleOut,
    created: z.number().describe("ms since the epoch"),
    updated: z.number().describe("password last changed (ms)"),
  })
);
/** An API token as listed (no secret). */
export const tokenInfoSchema = z.lazy(() =>
  z.object({
    id: z.string().describe("public part"),
    name: z.string(),
    role: roleOut,
    created: z.number(),
    lastUsed: z.number().nullable(),
    expires: z.number().nullable().describe("ms since the epoch; null: never"),
  })
);
/** A new token: the secret is in this answer only. */
export const newTokenSchema = z.lazy(() =>
  tokenInfoSchema.unwrap().extend({
    token: z.string().describe("the bearer secret, shown once"),
  })
);
/** `{"ok": true}`. */
export const okSchema = z.lazy(() => z.object({ ok: z.literal(true) }));
const nameParam = z.lazy(() => z.object({ name: z.string() }));
const notFound = { 404: "no such user" };

apiDoc("POST", "/api/login", {
  tag: "auth",
  operationId: "login",
  summary: "sign in; sets the session cookie",
  body: loginBody,
  response: signedInSchema,
  errors: { 401: "wrong user name or password", 429: "too many failed logins (Retry-After)" },
});
apiDoc("POST", "/api/logout", {
  tag: "auth",
  operationId: "logout",
  summary: "end the session",
  response: okSchema,
});
apiDoc("POST", "/api/setup", {
  tag: "auth",
  operationId: "setup",
  summary: "set the first admin password (only while none exists, from loopback)",
  body: setupBody,
  responses: { 201: { description: "the admin is created and signed in", schema: signedInSchema } },
  errors: { 403: "not from loopback, or from another site", 409: "an admin exists already" },
});
apiDoc("GET", "/api/me", {
  tag: "auth",
  operationId: "whoAmI",
  summary: "who am I",
  response: principalSchema,
});
const userListSchema = z.lazy(() => z.object({ users: z.array(userInfoSchema) }));
apiDoc("GET", "/api/users", {
  tag: "auth",
  operationId: "listUsers",
  summary: "list users",
  response: userListSchema,
});
apiDoc("POST", "/api/users", {
  tag: "auth",
  operationId: "createUser",
  summary: "create a user (admin)",
  body: userBody,
  responses: { 201: { description: "created", schema: userInfoSchema } },
  errors: { 409: "the user exists" },
});
apiDoc("POST", "/api/users/:name/password", {
  tag: "auth",
  operationId: "setUserPassword",
  summary: "set a user's password",
  params: nameParam,
  body: passwordBody,
  response: okSchema,
  errors: notFound,
});
apiDoc("DELETE", "/api/users/:name", {
  tag: "auth",
  operationId: "deleteUser",
  summary: "delete a user (never the last admin)",
  params: nameParam,
  response: okSchema,
  errors: { ...notFound, 409: "the last admin" },
});
const tokenListSchema = z.lazy(() => z.object({ tokens: z.array(tokenInfoSchema) }));
apiDoc("GET", "/api/tokens", {
  tag: "auth",
  operationId: "listTokens",
  summary: "list API tokens (no secrets)",
  response: tokenListSchema,
});
apiDoc("POST", "/api/tokens", {
  tag: "auth",
  operationId: "createToken",
  summary: "create an API token (its secret is shown once)",
  body: tokenBody,
  responses: { 201: { description: "created; `token` is the secret", schema: newTokenSchema } },
  errors: { 409: "a token of that name exists" },
});
apiDoc("DELETE", "/api/tokens/:id", {
  tag: "auth",
  operationId: "revokeToken",
  summary: "revoke an API token (by id or name)",
  params: z.object({ id: z.string() }),
  response: okSchema,
  errors: { 404: "no such token" },
});

/** Routes: login, logout, setup, me, users, tokens. */
export function authRoutes(opts: AuthRouteOptions): Hono<AuthEnv> {
  const { users, bus } = opts;
  const app = new Hono<AuthEnv>();
  const loginAudit = new LoginAudit({ bus, clock: opts.clock });
  opts.closing?.addEventListener("abort", () => loginAudit.flush(), { once: true });
  /** Run a hash inside the bounded gate; a full gate is a fast 503. */
  const gated = async <T>(c: Context<AuthEnv>, fn: () => Promise<T>): Promise<T> => {
    try {
      return await users.hashGate.run(fn);
    } catch (e) {
      if (e instanceof GateFullError) {
        c.header("Retry-After", "1");
        throw new LoginBusyError();
      }
      throw e;
    }
  };

  const startSession = (c: Context<AuthEnv>, user: string) => {
    const sid = users.createSession(user);
    setCookie(c, SESSION, sid, {
      ...cookieFlags(opts.tls),
      maxAge: Math.floor(users.session.maxMs / 1000),
    });
  };

  app.post("/login", async (c) => {
    const ip = remoteIp(c);
    // A throttled address without a device cookie is answered before its body is read:
    // a flood of refused attempts costs a row read each, nothing more.
    if (!readCookie(c, DEVICE, opts.tls)) {
      const wait = users.throttle.addressWait(ip);
      if (wait > 0) {
        loginAudit.refused(UNKNOWN_USER, false, ip, "address", wait);
        c.header("Retry-After", retrySeconds(wait));
        throw new ApiError(
          429,
          "locked",
          `too many failed logins; try again in ${retrySeconds(wait)} s`,
        );
      }
    }
    const body = parseOr400(loginBody, await jsonBody(c), "login");
    const known = users.exists(body.username);
    // never journal a name that matches no account: it may be a mistyped password
    const shown = known ? body.username : UNKNOWN_USER;
    // One synchronous step: a hashing slot, then the throttle's reservation. Nothing is
    // hashed for an attempt the throttle refuses, and parallel attempts cannot all pass
    // a check made before the slow hash.
    const ticket = users.hashGate.tryEnter();
    if (!ticket) {
      loginAudit.refused(shown, known, ip, "busy", 1000);
      c.header("Retry-After", "1");
      throw new LoginBusyError();
    }
    try {
      const decision = users.throttle.begin(body.username, ip, {
        userExists: known,
        deviceCookie: readCookie(c, DEVICE, opts.tls),
      });
      if (!decision.ok) {
        loginAudit.refused(shown, known, ip, decision.reason, decision.retryAfterMs);
        c.header("Retry-After", retrySeconds(decision.retryAfterMs));
        throw new ApiError(
          429,
          "locked",
          `too many failed logins; try again in ${retrySeconds(decision.retryAfterMs)} s`,
        );
      }
      const attempt = decision.attempt;
      if (attempt.lockedUser) {
        bus.publish({
          module: "auth",
          kind: "auth.locked",
          severity: "warning",
          payload: { user: body.username, forMs: users.throttle.policy.userLockMs },
        });
      }
      await ticket.ready;
      const user = await users.authenticate(body.username, body.password);
      if (!user) {
        loginAudit.failed(shown, known, ip);
        throw new ApiError(401, "bad_credentials", "wrong user name or password");
      }
      users.throttle.succeeded(attempt, user.name);
      if (!attempt.device) {
        setCookie(c, DEVICE, users.throttle.issueDevice(user.name), {
          ...cookieFlags(opts.tls),
          maxAge: Math.floor(users.throttle.policy.deviceMaxMs / 1000),
        });
      }
      startSession(c, user.name);
      bus.publish({ module: "auth", kind: "auth.login", payload: { user: user.name, ip } });
      return answer(c, signedInSchema, { user: user.name, role: user.role });
    } finally {
      ticket.release();
    }
  });

  app.post("/logout", (c) => {
    const sid = readCookie(c, SESSION, opts.tls);
    if (sid) users.deleteSession(sid);
    deleteCookie(c, SESSION, {
      path: "/",
      secure: opts.tls,
      ...(opts.tls ? { prefix: "host" as const } : {}),
    });
    const p = c.get("principal");
    if (p) bus.publish({ module: "auth", kind: "auth.logout", payload: { user: p.name } });
    return c.json({ ok: true });
  });

  app.post("/setup", async (c) => {
    if (users.hasAdmin()) throw new AlreadySetUpError();
    if (!isLoopback(c)) {
      throw new ApiError(
        403,
        "setup_local_only",
        "the first admin password can be set only from the box itself (loopback) or with `keepwire user passwd NAME` on its console",
      );
    }
    // The Host was checked against our own names first (host_check.ts), so an Origin
    // that matches it is ours; one that does not is another site's page.
    const origin = c.req.header("origin");
    if (origin !== undefined && !sameHost(origin, c.req.url)) {
      throw new ApiError(403, "cross_site", "setup refused: the request came from another site");
    }
    const body = parseOr400(setupBody, await jsonBody(c), "setup");
    // check-and-insert is one transaction: N parallel setups make exactly one admin
    try {
      await gated(c, () =>
        users.createUser(body.username, body.password, "admin", {
          firstAdmin: true,
        }));
    } catch (e) {
      // a parallel setup won: its admin may have the same name
      if (e instanceof UserExistsError) throw new AlreadySetUpError();
      throw e;
    }
    bus.publish({
      module: "auth",
      kind: "auth.user_created",
      severity: "notice",
      payload: { user: body.username, role: "admin", by: "setup" },
    });
    startSession(c, body.username);
    return answer(c, signedInSchema, { user: body.username, role: "admin" }, 201);
  });

  app.get("/me", (c) => {
    const p = c.get("principal");
    if (!p) throw new ApiError(401, "unauthorized", "sign in or send a token");
    return answer(c, principalSchema, p);
  });

  app.get("/users", (c) => answer(c, userListSchema, { users: users.list() }));
  app.post("/users", async (c) => {
    const body = parseOr400(userBody, await jsonBody(c), "user");
    if (users.exists(body.username)) throw new UserExistsError(body.username);
    const u = await gated(
      c,
      () => users.createUser(body.username, body.password, body.role as Role),
    );
    bus.publish({
      module: "auth",
      kind: "auth.user_created",
      severity: "notice",
      payload: { user: u.name, role: u.role, by: c.get("principal")?.name },
    });
    return answer(c, userInfoSchema, u, 201);
  });
  app.post("/users/:name/password", async (c) => {
    const name = c.req.param("name");
    if (!users.get(name)) throw new ApiError(404, "not_found", `no user ${name}`);
    const body = parseOr400(passwordBody, await jsonBody(c), "password");
    await gated(c, () => users.setPassword(name, body.password));
    bus.publish({
      module: "auth",
      kind: "auth.password_changed",
      severity: "notice",
      payload: { user: name, by: c.get("principal")?.name },
    });
    return c.json({ ok: true });
  });
  app.delete("/users/:name", (c) => {
    const name = c.req.param("name");
    const ok = users.delete(name); // LastAdminError: 409
    if (!ok) throw new ApiError(404, "not_found", `no user ${name}`);
    bus.publish({
      module: "auth",
      kind: "auth.user_deleted",
      severity: "notice",
      payload: { user: name, by: c.get("principal")?.name },
    });
    return c.json({ ok: true });
  });

  app.get("/tokens", (c) => answer(c, tokenListSchema, { tokens: users.tokens() }));
  app.post("/tokens", async (c) => {
    const body = parseOr400(tokenBody, await jsonBody(c), "token");
    // TokenExistsError: 409
    const r = users.createToken(body.name, body.role as Role, { expiresInMs: body.expires });
    bus.publish({
      module: "auth",
      kind: "auth.token_created",
      severity: "notice",
      payload: {
        token: body.name,
        role: body.role,
        by: c.get("principal")?.name,
        expires: r.info.expires,
      },
    });
    return answer(c, newTokenSchema, { token: r.token, ...r.info }, 201);
  });
  app.delete("/tokens/:id", (c) => {
    const id = c.req.param("id");
    if (!users.revokeToken(id)) throw new ApiError(404, "not_found", `no token ${id}`);
    bus.publish({
      module: "auth",
      kind: "auth.token_revoked",
      severity: "notice",
      payload: { token: id, by: c.get("principal")?.name },
    });
    return c.json({ ok: true });
  });
  return app;
}

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<Principal, z.output<typeof principalSchema>>((v) => v, (v) => v);
sameType<UserInfo, z.output<typeof userInfoSchema>>((v) => v, (v) => v);
