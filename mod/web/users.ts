/**
 * Users, sessions, API tokens and login lockout, in the store. Passwords are
 * hashed with scrypt (node:crypto) and a per-user salt; session ids and API tokens
 * are random and stored only as SHA-256 hashes.
 * @module
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { isStorageFull, type Store } from "../store/mod.ts";
import { replicaRefusal } from "../repl/mod.ts";
import { HashGate } from "./hash_gate.ts";
import {
  AlreadySetUpError,
  ApiError,
  LastAdminError,
  TokenExistsError,
  UserExistsError,
} from "./errors.ts";

/** A token name: what `token create --name` and `POST /api/tokens` accept. */
const tokenNameSchema = z.lazy(() => z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/));

export { AlreadySetUpError, LastAdminError, TokenExistsError, UserExistsError };
import { LoginThrottle, type ThrottlePolicy } from "./login_throttle.ts";

/** Roles: admin may change things, viewer may only look. */
export type Role = "admin" | "viewer";
/** Zod schema of a role. */
export const roleSchema: z.ZodType<Role> = z.lazy(() => z.enum(["admin", "viewer"]));
/** Zod schema of a user name. */
export const usernameSchema: z.ZodString = z.string().regex(
  /^[a-z_][a-z0-9_.-]{0,31}$/,
  "1-32 characters: lowercase letters, digits, _ . -, starting with a letter or _",
);
/** Zod schema of a new password. */
export const passwordSchema: z.ZodString = z.string().min(10, "at least 10 characters").max(
  1024,
  "at most 1024 characters",
);

/** A user as listed (no secrets). */
export interface UserInfo {
  /** Name. */
  name: string;
  /** Role. */
  role: Role;
  /** Created (ms). */
  created: number;
  /** Password last changed (ms). */
  updated: number;
}

/** An API token as listed (no secret). */
export interface TokenInfo {
  /** Id (public part). */
  id: string;
  /** Name given at creation. */
  name: string;
  /** Role. */
  role: Role;
  /** Created (ms). */
  created: number;
  /** Last used (ms) or null. */
  lastUsed: number | null;
  /** Expiry (ms) or null for a token that never expires. */
  expires: number | null;
}

/** Who a request acts as. */
export interface Principal {
  /** User name, token name prefixed `token:`, or `local` for the control socket. */
  name: string;
  /** Role. */
  role: Role;
  /** How it authenticated. */
  via: "session" | "token" | "socket";
}

/** The `auth` store migrations (their count is the module's schema version; a bundle declares it: mod/update/bundle_schema.ts). */
export const AUTH_MIGRATIONS = [
  `CREATE TABLE users (
     name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
     created INTEGER NOT NULL, updated INTEGER NOT NULL);
   CREATE TABLE sessions (
     id_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     created INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires INTEGER NOT NULL);
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, hash TEXT NOT NULL,
     created INTEGER NOT NULL, last_used INTEGER);
   CREATE TABLE login_failures (
     key TEXT PRIMARY KEY, count INTEGER NOT NULL, first INTEGER NOT NULL,
     locked_until INTEGER NOT NULL DEFAULT 0);`,
  // Optional token expiry; a generation counter bumped by every revocation, read per
  // request so a token revoked by any process (CLI, API) stops working at once.
  `ALTER TABLE tokens ADD COLUMN expires INTEGER;
   CREATE TABLE auth_generation (id INTEGER PRIMARY KEY CHECK (id = 1), gen INTEGER NOT NULL);
   INSERT INTO auth_generation (id, gen) VALUES (1, 0);`,
];

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 64 };

function scryptAsync(pw: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      pw,
      salt,
      SCRYPT.keylen,
      { N: n, r, p, maxmem: 64 * 1024 * 1024 },
      (e, k) => e ? reject(e) : resolve(k),
    )
  );
}

/** Hash a password: `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(pw: string): Promise<string> {
  const salt = randomBytes(16);
  const k = await scryptAsync(pw, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${
    k.toString("base64")
  }`;
}

/** Check a password against a stored hash in constant time. */
export async function verifyPassword(pw: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split("$");
  if (alg !== "scrypt" || !hash) return false;
  const want = Buffer.from(hash, "base64");
  const got = await scryptAsync(pw, Buffer.from(salt, "base64"), Number(n), Number(r), Number(p));
  return got.length === want.length && timingSafeEqual(got, want);
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/** Milliseconds of a duration written `30d`, `12h` or `45m` (token expiry). */
export function parseDuration(s: string): number {
  const m = /^([1-9][0-9]{0,5})([dhm])$/.exec(s.trim());
  if (!m) throw new Error(`"${s}" is not a duration: write e.g. 30d, 12h or 45m`);
  return Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as "d" | "h" | "m"];
}

/** Zod schema of a duration written `30d`, `12h` or `45m`, as milliseconds. */
export const durationSchema: z.ZodType<number, string> = z.lazy(() =>
  z.string().regex(
    /^[1-9][0-9]{0,5}[dhm]$/,
    "a duration such as 30d, 12h or 45m",
  ).transform(parseDuration)
);

/** Session policy. */
export interface SessionPolicy {
  /** Idle timeout (ms). */
  idleMs: number;
  /** Absolute lifetime (ms). */
  maxMs: number;
}

/** The users/sessions/tokens store. */
export class Users {
  readonly #store: Store;
  readonly #now: () => number;
  #tokenCache = new Map<
    string,
    { principal: Principal; until: number; expires: number | null; gen: number }
  >();
  #genStmt;
  #gen: number | undefined;
  #committed: () => boolean;
  /** Login throttle (per address, per user, per device). */
  readonly throttle: LoginThrottle;
  /** Bound on concurrent password hashing (logins, setup, password changes). */
  readonly hashGate: HashGate;
  /** Session policy. */
  readonly session: SessionPolicy;

  /** Open on a store (runs the auth migrations). */
  constructor(
    store: Store,
    opts: {
      now?: () => number;
      throttle?: Partial<ThrottlePolicy>;
      session?: SessionPolicy;
      hashGate?: HashGate;
    } = {},
  ) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.session = opts.session ?? { idleMs: 8 * 3600_000, maxMs: 7 * 86_400_000 };
    store.migrate("auth", AUTH_MIGRATIONS);
    this.throttle = new LoginThrottle(store, { now: this.#now, policy: opts.throttle });
    this.hashGate = opts.hashGate ?? new HashGate(2, 6);
    this.#genStmt = store.db.prepare("SELECT gen FROM auth_generation WHERE id = 1");
    // read per token request: a row as an array skips building an object (~5 of ~16 µs);
    // the method is in the runtime's node:sqlite but not yet in its type declarations
    (this.#genStmt as unknown as { setReturnArrays?(on: boolean): void }).setReturnArrays?.(true);
    this.#committed = store.commitProbe();
  }

  /** Revocation generation: bumped by every token revocation, in any process. */
  generation(): number {
    // read again only when some connection may have committed since the last read
    if (this.#gen === undefined || this.#committed()) {
      const row = this.#genStmt.get() as unknown;
      this.#gen = Number(Array.isArray(row) ? row[0] : (row as { gen: number }).gen);
    }
    return this.#gen;
  }

  #bumpGeneration(): void {
    this.#gen = undefined;
    this.#store.db.prepare("UPDATE auth_generation SET gen = gen + 1 WHERE id = 1").run();
  }

  /** Does a user of this name exist? */
  exists(name: string): boolean {
    return !!this.#store.db.prepare("SELECT 1 FROM users WHERE name = ?").get(name);
  }

  /** True once any admin exists (until then only the setup page is served). */
  hasAdmin(): boolean {
    return !!this.#store.db.prepare("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").get();
  }

  /** List users. */
  list(): UserInfo[] {
    return (this.#store.db.prepare("SELECT name, role, created, updated FROM users ORDER BY name")
      .all() as unknown as UserInfo[]).map((u) => ({ ...u }));
  }

  /** Get one user. */
  get(name: string): UserInfo | undefined {
    const u = this.#store.db.prepare(
      "SELECT name, role, created, updated FROM users WHERE name = ?",
    )
      .get(name) as UserInfo | undefined;
    return u ? { ...u } : undefined;
  }

  /** Create or update a user's password (and role). Existing sessions of the user end. */
  async setPassword(name: string, password: string, role?: Role): Promise<UserInfo> {
    usernameSchema.parse(name);
    passwordSchema.parse(password);
    const hash = await hashPassword(password);
    const now = this.#now();
    const existing = this.get(name);
    this.#store.transaction(() => {
      if (existing) {
        this.#store.db.prepare("UPDATE users SET hash = ?, role = ?, updated = ? WHERE name = ?")
          .run(hash, role ?? existing.role, now, name);
        this.#store.db.prepare("DELETE FROM sessions WHERE user = ?").run(name);
      } else {
        this.#store.db.prepare(
          "INSERT INTO users (name, role, hash, created, updated) VALUES (?, ?, ?, ?, ?)",
        ).run(name, role ?? "admin", hash, now, now);
      }
    });
    return this.get(name)!;
  }

  /**
   * Create a NEW user: hashes first, then checks and inserts in one transaction, so
   * two parallel creations of one name give one user and one {@link UserExistsError}.
   * With `firstAdmin`, refuses ({@link AlreadySetUpError}) when any admin exists: N
   * parallel setups create exactly one admin.
   */
  async createUser(
    name: string,
    password: string,
    role: Role,
    opts: { firstAdmin?: boolean } = {},
  ): Promise<UserInfo> {
    usernameSchema.parse(name);
    passwordSchema.parse(password);
    const hash = await hashPassword(password);
    const now = this.#now();
    this.#store.transaction(() => {
      if (opts.firstAdmin && this.hasAdmin()) throw new AlreadySetUpError();
      if (this.exists(name)) throw new UserExistsError(name);
      this.#store.db.prepare(
        "INSERT INTO users (name, role, hash, created, updated) VALUES (?, ?, ?, ?, ?)",
      ).run(name, role, hash, now, now);
    });
    return this.get(name)!;
  }

  /** Delete a user (refuses to delete the last admin). */
  delete(name: string): boolean {
    const u = this.get(name);
    if (!u) return false;
    if (u.role === "admin") {
      const n = (this.#store.db.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
        .get() as { n: number }).n;
      if (n <= 1) throw new LastAdminError();
    }
    this.#store.db.prepare("DELETE FROM users WHERE name = ?").run(name);
    return true;
  }

  /** Check credentials; returns the user or null. Constant work for unknown users. */
  async authenticate(name: string, password: string): Promise<UserInfo | null> {
    const row = this.#store.db.prepare("SELECT hash FROM users WHERE name = ?").get(name) as
      | { hash: string }
      | undefined;
    const ok = await verifyPassword(
      password,
      row?.hash ?? "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    );
    return ok && row ? this.get(name)! : null;
  }

  /** Create a session; returns the secret id for the cookie. */
  createSession(user: string): string {
    const id = randomBytes(32).toString("base64url");
    const now = this.#now();
    this.#store.db.prepare(
      "INSERT INTO sessions (id_hash, user, created, last_seen, expires) VALUES (?, ?, ?, ?, ?)",
    ).run(sha256(id), user, now, now, now + this.session.maxMs);
    return id;
  }

  /** Resolve a session id (sliding idle timeout). */
  sessionUser(id: string): Principal | null {
    const now = this.#now();
    const row = this.#store.db.prepare(
      `SELECT s.user, s.last_seen, s.expires, u.role FROM sessions s JOIN users u ON u.name = s.user
       WHERE s.id_hash = ?`,
    ).get(sha256(id)) as
      | { user: string; last_seen: number; expires: number; role: Role }
      | undefined;
    if (!row) return null;
    if (now > row.expires || now - row.last_seen > this.session.idleMs) {
      this.#store.db.prepare("DELETE FROM sessions WHERE id_hash = ?").run(sha256(id));
      return null;
    }
    if (now - row.last_seen > 60_000) {
      try {
        this.#store.db.prepare("UPDATE sessions SET last_seen = ? WHERE id_hash = ?").run(
          now,
          sha256(id),
        );
      } catch (e) {
        if (!isStorageFull(e)) throw e; // bookkeeping: a full disk must not sign anyone out
      }
    }
    return { name: row.user, role: row.role, via: "session" };
  }

  /** End a session. */
  deleteSession(id: string): void {
    this.#store.db.prepare("DELETE FROM sessions WHERE id_hash = ?").run(sha256(id));
  }

  /**
   * Create an API token; returns the secret (shown once) and its info. `expiresInMs`
   * makes it stop working that long from now (default: never).
   */
  createToken(
    name: string,
    role: Role,
    opts: { expiresInMs?: number } = {},
  ): { token: string; info: TokenInfo } {
    if (!tokenNameSchema.safeParse(name).success) {
      throw new ApiError(
        400,
        "bad_request",
        `token name ${JSON.stringify(name.slice(0, 80))}: 1-64 characters: letters, digits, _ . -`,
        { name: "1-64 characters: letters, digits, _ . -" },
      );
    }
    const id = randomBytes(6).toString("hex");
    const secret = randomBytes(24).toString("base64url");
    const now = this.#now();
    const expires = opts.expiresInMs === undefined ? null : now + opts.expiresInMs;
    try {
      this.#store.db.prepare(
        "INSERT INTO tokens (id, name, role, hash, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(id, name, role, sha256(secret), now, expires);
    } catch (e) {
      if (String(e).includes("UNIQUE")) throw new TokenExistsError(name);
      throw e;
    }
    return {
      token: `kwt_${id}_${secret}`,
      info: { id, name, role, created: now, lastUsed: null, expires },
    };
  }

  /**
   * Resolve a bearer token. Verified tokens are cached for a few seconds, but every
   * hit first compares the revocation generation in the store (one indexed row read),
   * so a revocation by any process (CLI or API) takes effect on the next request.
   */
  tokenUser(token: string): Principal | null {
    const now = this.#now();
    const gen = this.generation();
    const hit = this.#tokenCache.get(token);
    if (hit && hit.until > now && hit.gen === gen && (hit.expires ?? Infinity) > now) {
      return hit.principal;
    }
    const r = this.#tokenUserUncached(token, now);
    if (this.#tokenCache.size > 1000) this.#tokenCache.clear();
    if (r) this.#tokenCache.set(token, { ...r, until: now + 5_000, gen });
    else this.#tokenCache.delete(token);
    return r?.principal ?? null;
  }

  #tokenUserUncached(
    token: string,
    now: number,
  ): { principal: Principal; expires: number | null } | null {
    const m = /^kwt_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(token);
    if (!m) return null;
    const row = this.#store.db.prepare(
      "SELECT name, role, hash, last_used, expires FROM tokens WHERE id = ?",
    )
      .get(m[1]) as
        | {
          name: string;
          role: Role;
          hash: string;
          last_used: number | null;
          expires: number | null;
        }
        | undefined;
    if (!row) return null;
    if (row.expires !== null && row.expires <= now) return null;
    const a = Buffer.from(row.hash, "hex"), b = Buffer.from(sha256(m[2]), "hex");
    if (!timingSafeEqual(a, b)) return null;
    if (!row.last_used || now - row.last_used > 60_000) {
      try {
        this.#store.db.prepare("UPDATE tokens SET last_used = ? WHERE id = ?").run(now, m[1]);
      } catch (e) {
        // bookkeeping: a full disk, or a standby (tokens are replicated, written on the
        // active only), must not refuse a token
        if (!isStorageFull(e) && !replicaRefusal(e)) throw e;
      }
    }
    return {
      principal: { name: `token:${row.name}`, role: row.role, via: "token" },
      expires: row.expires === null ? null : Number(row.expires),
    };
  }

  /** List tokens. */
  tokens(): TokenInfo[] {
    return (this.#store.db.prepare(
      "SELECT id, name, role, created, last_used AS lastUsed, expires FROM tokens ORDER BY created",
    ).all() as unknown as TokenInfo[]).map((t) => ({ ...t }));
  }

  /**
   * Revoke a token by id or name: effective at once in every process using this store
   * (the revocation generation is bumped in the same transaction).
   */
  revokeToken(idOrName: string): boolean {
    this.#tokenCache.clear();
    return this.#store.transaction(() => {
      const n = Number(
        this.#store.db.prepare("DELETE FROM tokens WHERE id = ? OR name = ?").run(
          idOrName,
          idOrName,
        ).changes,
      );
      if (n > 0) this.#bumpGeneration();
      return n > 0;
    });
  }
}
