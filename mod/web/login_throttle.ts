/**
 * Login throttling: one synchronous, atomic decision per login attempt, taken BEFORE
 * the password is hashed. The attempt is reserved as a failure up front (so N parallel
 * attempts can never all slip past a check made before the slow hash) and given back
 * only when the password was right.
 *
 * Three kinds of keys (see docs/security.md, "Login"):
 * - `a:<address>` — per client address (IPv6 by its /64): the first `freeFailures`
 *   failures in the window cost nothing, then every further one blocks the address
 *   for an exponentially growing delay (1 s, 2 s, 4 s, ... capped at `maxBackoffMs`).
 * - `u:<user>` — per EXISTING user (an unknown name never makes a row): after
 *   `userMaxFailures` failures from anywhere the user is soft-locked for `userLockMs`,
 *   a bounded time; refused attempts are not counted, so a lock never extends itself.
 * - `d:<device>` — a browser that signed in as this user before carries a device
 *   cookie; it is throttled on its own key only, so nobody who shares the admin's
 *   address, or guesses from elsewhere, can lock the admin's own browser out.
 *
 * Rows are purged once their window and block have passed, and the table is capped.
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import type { Store } from "../store/mod.ts";

/** Throttle policy. */
export interface ThrottlePolicy {
  /** Failures per address (or device) in the window before backoff starts. */
  freeFailures: number;
  /** First backoff (ms); doubles with every further failure. */
  baseBackoffMs: number;
  /** Longest backoff (ms). */
  maxBackoffMs: number;
  /** Failures are forgotten this long after the last one (ms). */
  windowMs: number;
  /** Failures of one user (from anywhere but its devices) before its soft lock. */
  userMaxFailures: number;
  /** Length of a user's soft lock (ms); never extended by refused attempts. */
  userLockMs: number;
  /** Rows kept at most (oldest purged first). */
  maxRows: number;
  /** Device cookies live this long (ms). */
  deviceMaxMs: number;
  /** Devices remembered per user at most (oldest dropped). */
  devicesPerUser: number;
}

/** The default policy (documented in docs/security.md). */
export const DEFAULT_THROTTLE: ThrottlePolicy = {
  freeFailures: 5,
  baseBackoffMs: 1_000,
  maxBackoffMs: 15 * 60_000,
  windowMs: 15 * 60_000,
  userMaxFailures: 20,
  userLockMs: 5 * 60_000,
  maxRows: 10_000,
  deviceMaxMs: 90 * 86_400_000,
  devicesPerUser: 20,
};

/** Migrations of the throttle tables (run under the "auth_throttle" module name). */
export const THROTTLE_MIGRATIONS: string[] = [
  `CREATE TABLE login_throttle (
     key TEXT PRIMARY KEY, failures INTEGER NOT NULL, last INTEGER NOT NULL,
     blocked_until INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX login_throttle_last ON login_throttle(last);
   CREATE TABLE login_devices (
     id_hash TEXT PRIMARY KEY, user TEXT NOT NULL, created INTEGER NOT NULL,
     last_used INTEGER NOT NULL);
   CREATE INDEX login_devices_user ON login_devices(user, last_used);
   DROP TABLE IF EXISTS login_failures;`,
];

/** Outcome of {@link LoginThrottle.begin}. */
export type AttemptDecision =
  | { ok: true; attempt: Attempt }
  | { ok: false; retryAfterMs: number; reason: "address" | "user" | "device" };

/** A reserved attempt: call exactly one of `succeeded` / `failed`. */
export interface Attempt {
  /** Keys this attempt was counted on. */
  readonly keys: readonly string[];
  /** The device key when a valid device cookie came with it. */
  readonly device: string | null;
  /** True when this reservation locked the user (publish once). */
  readonly lockedUser: boolean;
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/** Throttle key of a client address: IPv4 as is, IPv6 by its /64 prefix. */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  if (!ip.includes(":")) return ip;
  const [head, tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const full = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return full.slice(0, 4).map((x) => x.toLowerCase().replace(/^0+(?=.)/, "")).join(":") + "::/64";
}

/** The login throttle and device cookies, kept in the store. */
export class LoginThrottle {
  readonly #store: Store;
  readonly #now: () => number;
  /** Policy. */
  readonly policy: ThrottlePolicy;
  #sincePurge = 0;

  /** Open on a store (runs its migrations). */
  constructor(store: Store, opts: { now?: () => number; policy?: Partial<ThrottlePolicy> } = {}) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.policy = { ...DEFAULT_THROTTLE, ...opts.policy };
    store.migrate("auth_throttle", THROTTLE_MIGRATIONS);
  }

  #row(key: string): { failures: number; last: number; blocked_until: number } | undefined {
    const r = this.#store.db.prepare(
      "SELECT failures, last, blocked_until FROM login_throttle WHERE key = ?",
    ).get(key) as { failures: number; last: number; blocked_until: number } | undefined;
    return r ? { ...r } : undefined;
  }

  #backoff(failures: number): number {
    const over = failures - this.policy.freeFailures;
    if (over < 0) return 0;
    return Math.min(this.policy.baseBackoffMs * 2 ** Math.min(over, 40), this.policy.maxBackoffMs);
  }

  /**
   * Decide about one attempt, atomically, before any hashing: refuse it (with the time
   * to wait) or reserve it as a failure on every key it counts against.
   * `userExists` decides whether a per-user row may be made (unknown names never do).
   */
  begin(
    user: string,
    ip: string,
    opts: { userExists: boolean; deviceCookie?: string },
  ): AttemptDecision {
    const now = this.#now();
    const device = opts.deviceCookie ? this.#deviceKey(opts.deviceCookie, user, now) : null;
    const keys = device ? [device] : [
      `a:${addressKey(ip)}`,
      ...(opts.userExists ? [`u:${user}`] : []),
    ];
    // A refusal only reads (cheap under a flood); the reservation writes in one
    // transaction that re-reads, so the decision stays atomic across processes too.
    const refusal = this.#refusal(keys, now);
    if (refusal) return refusal;
    return this.#store.transaction(() => {
      if (++this.#sincePurge >= 200) {
        this.#sincePurge = 0;
        this.purge();
      }
      const again = this.#refusal(keys, now);
      if (again) return again;
      let lockedUser = false;
      for (const k of keys) {
        const r = this.#row(k);
        const fresh = !r || now - r.last > this.policy.windowMs;
        let failures = (fresh ? 0 : r.failures) + 1;
        let blocked = 0;
        if (k.startsWith("u:")) {
          if (failures >= this.policy.userMaxFailures) {
            blocked = now + this.policy.userLockMs;
            failures = 0; // the lock is the whole penalty: it ends, then counting restarts
            lockedUser = true;
          }
        } else {
          const b = this.#backoff(failures);
          if (b > 0) blocked = now + b;
        }
        this.#store.db.prepare(
          `INSERT INTO login_throttle (key, failures, last, blocked_until) VALUES (?, ?, ?, ?)
           ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, last = excluded.last,
           blocked_until = excluded.blocked_until`,
        ).run(k, failures, now, blocked);
      }
      return { ok: true as const, attempt: { keys, device, lockedUser } };
    });
  }

  /**
   * Milliseconds an address must still wait (0 when it may try). A cheap read the login
   * route makes before it reads the body, for clients without a device cookie.
   */
  addressWait(ip: string): number {
    const r = this.#row(`a:${addressKey(ip)}`);
    return r ? Math.max(0, r.blocked_until - this.#now()) : 0;
  }

  #refusal(keys: readonly string[], now: number): AttemptDecision | null {
    let wait = 0;
    let reason: "address" | "user" | "device" = "address";
    for (const k of keys) {
      const r = this.#row(k);
      if (r && r.blocked_until > now && r.blocked_until - now > wait) {
        wait = r.blocked_until - now;
        reason = k.startsWith("u:") ? "user" : k.startsWith("d:") ? "device" : "address";
      }
    }
    return wait > 0 ? { ok: false, retryAfterMs: wait, reason } : null;
  }

  /** The password was right: give the reservation back and forget the user's failures. */
  succeeded(a: Attempt, user: string): void {
    this.#store.transaction(() => {
      for (const k of a.keys) {
        if (k.startsWith("u:") || k.startsWith("d:")) {
          this.#store.db.prepare("DELETE FROM login_throttle WHERE key = ?").run(k);
        } else {
          // An address keeps the failures of other names: a valid account of one's own
          // must not reset the backoff earned by guessing at someone else's.
          const r = this.#row(k);
          if (!r) continue;
          const failures = Math.max(0, r.failures - 1);
          const blocked = this.#backoff(failures) > 0 ? r.blocked_until : 0;
          this.#store.db.prepare(
            "UPDATE login_throttle SET failures = ?, blocked_until = ? WHERE key = ?",
          ).run(failures, blocked, k);
        }
      }
      this.#store.db.prepare("DELETE FROM login_throttle WHERE key = ?").run(`u:${user}`);
    });
  }

  /** Delete rows whose window and block have both passed, then cap the table. */
  purge(): number {
    const now = this.#now();
    let n = Number(
      this.#store.db.prepare("DELETE FROM login_throttle WHERE last < ? AND blocked_until < ?")
        .run(now - this.policy.windowMs, now).changes,
    );
    const count = (this.#store.db.prepare("SELECT COUNT(*) AS n FROM login_throttle").get() as {
      n: number;
    }).n;
    if (count > this.policy.maxRows) {
      n += Number(
        this.#store.db.prepare(
          `DELETE FROM login_throttle WHERE key IN (
             SELECT key FROM login_throttle WHERE key NOT LIKE 'u:%' ORDER BY last LIMIT ?)`,
        ).run(count - this.policy.maxRows).changes,
      );
    }
    n += Number(
      this.#store.db.prepare("DELETE FROM login_devices WHERE last_used < ?").run(
        now - this.policy.deviceMaxMs,
      ).changes,
    );
    return n;
  }

  /** Rows in the throttle table (tests, status). */
  rows(): number {
    return Number(
      (this.#store.db.prepare("SELECT COUNT(*) AS n FROM login_throttle").get() as { n: number })
        .n,
    );
  }

  /** Remember this browser for `user`; returns the cookie value. */
  issueDevice(user: string): string {
    const id = randomBytes(24).toString("base64url");
    const now = this.#now();
    this.#store.transaction(() => {
      this.#store.db.prepare(
        "INSERT INTO login_devices (id_hash, user, created, last_used) VALUES (?, ?, ?, ?)",
      ).run(sha256(id), user, now, now);
      this.#store.db.prepare(
        `DELETE FROM login_devices WHERE user = ? AND id_hash NOT IN (
           SELECT id_hash FROM login_devices WHERE user = ? ORDER BY last_used DESC LIMIT ?)`,
      ).run(user, user, this.policy.devicesPerUser);
    });
    return id;
  }

  /** Is `cookie` a live device cookie of `user`? (Refreshes its last use.) */
  isDevice(cookie: string, user: string): boolean {
    return this.#deviceKey(cookie, user, this.#now()) !== null;
  }

  #deviceKey(cookie: string, user: string, now: number): string | null {
    if (!/^[A-Za-z0-9_-]{32}$/.test(cookie)) return null;
    const h = sha256(cookie);
    const row = this.#store.db.prepare(
      "SELECT user, last_used FROM login_devices WHERE id_hash = ?",
    ).get(h) as { user: string; last_used: number } | undefined;
    if (!row || row.user !== user || now - row.last_used > this.policy.deviceMaxMs) return null;
    if (now - row.last_used > 60_000) {
      this.#store.db.prepare("UPDATE login_devices SET last_used = ? WHERE id_hash = ?").run(
        now,
        h,
      );
    }
    return `d:${h.slice(0, 32)}`;
  }
}
