/**
 * Users, sessions, API tokens and login lockout, in the store. Passwords are
 * hashed with scrypt (node:crypto) and a per-user salt; session ids and API tokens
 * are random and stored only as SHA-256 hashes.
 * @module
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { isStorageFull, type Store } from "../store/mod.ts";

/** Roles: admin may change things, viewer may only look. */
export type Role = "admin" | "viewer";
/** Zod schema of a role. */
export const roleSchema: z.ZodType<Role> = z.enum(["admin", "viewer"]);
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

const MIGRATIONS = [
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

/** Lockout policy. */
export interface LockoutPolicy {
  /** Failures allowed in the window before lockout. */
  maxFailures: number;
  /** Window (ms). */
  windowMs: number;
  /** Lockout duration (ms). */
  lockMs: number;
}

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
  #tokenCache = new Map<string, { principal: Principal; until: number }>();
  /** Lockout policy. */
  readonly lockout: LockoutPolicy;
  /** Session policy. */
  readonly session: SessionPolicy;

  /** Open on a store (runs the auth migrations). */
  constructor(
    store: Store,
    opts: { now?: () => number; lockout?: LockoutPolicy; session?: SessionPolicy } = {},
  ) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.lockout = opts.lockout ?? { maxFailures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
    this.session = opts.session ?? { idleMs: 8 * 3600_000, maxMs: 7 * 86_400_000 };
    store.migrate("auth", MIGRATIONS);
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

  /** Delete a user (refuses to delete the last admin). */
  delete(name: string): boolean {
    const u = this.get(name);
    if (!u) return false;
    if (u.role === "admin") {
      const n = (this.#store.db.prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
        .get() as { n: number }).n;
      if (n <= 1) throw new Error("refusing to delete the last admin");
    }
    this.#store.db.prepare("DELETE FROM users WHERE name = ?").run(name);
    return true;
  }

  /** Is this login key (user@ip) locked out now? Returns ms left or 0. */
  lockedFor(key: string): number {
    const row = this.#store.db.prepare("SELECT locked_until FROM login_failures WHERE key = ?").get(
      key,
    ) as { locked_until: number } | undefined;
    return row ? Math.max(0, row.locked_until - this.#now()) : 0;
  }

  /** Record a failed login; returns true when this failure locked the key. */
  recordFailure(key: string): boolean {
    const now = this.#now();
    const row = this.#store.db.prepare("SELECT count, first FROM login_failures WHERE key = ?").get(
      key,
    ) as { count: number; first: number } | undefined;
    let count = 1, first = now;
    if (row && now - row.first < this.lockout.windowMs) {
      count = row.count + 1;
      first = row.first;
    }
    const locked = count >= this.lockout.maxFailures;
    this.#store.db.prepare(
      `INSERT INTO login_failures (key, count, first, locked_until) VALUES (?, ?, ?, ?)
       ON CONFLICT(key) DO UPDATE SET count = excluded.count, first = excluded.first,
       locked_until = excluded.locked_until`,
    ).run(key, locked ? 0 : count, locked ? now : first, locked ? now + this.lockout.lockMs : 0);
    return locked;
  }

  /** Forget failures after a good login. */
  clearFailures(key: string): void {
    this.#store.db.prepare("DELETE FROM login_failures WHERE key = ?").run(key);
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

  /** Create an API token; returns the secret (shown once) and its info. */
  createToken(name: string, role: Role): { token: string; info: TokenInfo } {
    z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 characters: letters, digits, _ . -").parse(
      name,
    );
    const id = randomBytes(6).toString("hex");
    const secret = randomBytes(24).toString("base64url");
    const now = this.#now();
    try {
      this.#store.db.prepare(
        "INSERT INTO tokens (id, name, role, hash, created) VALUES (?, ?, ?, ?, ?)",
      ).run(id, name, role, sha256(secret), now);
    } catch (e) {
      if (String(e).includes("UNIQUE")) throw new Error(`a token named "${name}" already exists`);
      throw e;
    }
    return { token: `kwt_${id}_${secret}`, info: { id, name, role, created: now, lastUsed: null } };
  }

  /** Resolve a bearer token (verified tokens are cached in memory for a few seconds). */
  tokenUser(token: string): Principal | null {
    const now = this.#now();
    const hit = this.#tokenCache.get(token);
    if (hit && hit.until > now) return hit.principal;
    const p = this.#tokenUserUncached(token);
    if (this.#tokenCache.size > 1000) this.#tokenCache.clear();
    if (p) this.#tokenCache.set(token, { principal: p, until: now + 5_000 });
    return p;
  }

  #tokenUserUncached(token: string): Principal | null {
    const m = /^kwt_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/.exec(token);
    if (!m) return null;
    const row = this.#store.db.prepare(
      "SELECT name, role, hash, last_used FROM tokens WHERE id = ?",
    )
      .get(m[1]) as
        | { name: string; role: Role; hash: string; last_used: number | null }
        | undefined;
    if (!row) return null;
    const a = Buffer.from(row.hash, "hex"), b = Buffer.from(sha256(m[2]), "hex");
    if (!timingSafeEqual(a, b)) return null;
    const now = this.#now();
    if (!row.last_used || now - row.last_used > 60_000) {
      try {
        this.#store.db.prepare("UPDATE tokens SET last_used = ? WHERE id = ?").run(now, m[1]);
      } catch (e) {
        if (!isStorageFull(e)) throw e; // bookkeeping: a full disk must not refuse a token
      }
    }
    return { name: `token:${row.name}`, role: row.role, via: "token" };
  }

  /** List tokens. */
  tokens(): TokenInfo[] {
    return (this.#store.db.prepare(
      "SELECT id, name, role, created, last_used AS lastUsed FROM tokens ORDER BY created",
    ).all() as unknown as TokenInfo[]).map((t) => ({ ...t }));
  }

  /** Revoke a token by id or name (effective at once, also for cached tokens). */
  revokeToken(idOrName: string): boolean {
    this.#tokenCache.clear();
    return Number(
      this.#store.db.prepare("DELETE FROM tokens WHERE id = ? OR name = ?").run(idOrName, idOrName)
        .changes,
    ) > 0;
  }
}
