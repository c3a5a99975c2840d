/**
 * Event kinds of the web layer: sign-in and account audit (`auth.*`) and the web
 * server itself (`web.*`). User names typed at the sign-in form that match no account
 * are never journalled verbatim (a password typed into the name field would otherwise
 * be readable by every viewer): they appear as {@link UNKNOWN_USER}.
 * @module
 */
import type {} from "../events/mod.ts";
// The failed/refused login kinds here are the store's untrusted retention class
// (UNTRUSTED_KINDS in mod/store/mod.ts): rate-limited by login_audit.ts and kept apart.

/** What the journal shows instead of a user name that matches no account. */
export const UNKNOWN_USER = "(unknown)";

/** Why a login attempt was refused before its password was checked. */
export type LoginRefusal = "address" | "user" | "device" | "busy";

declare module "../events/mod.ts" {
  interface EventMap {
    "auth.login": { user: string; ip: string };
    "auth.logout": { user: string };
    "auth.login_failed": { user: string; known: boolean; ip: string };
    "auth.login_refused": {
      user: string;
      known: boolean;
      ip: string;
      reason: LoginRefusal;
      retryAfterMs: number;
    };
    "auth.locked": { user: string; forMs: number };
    "auth.login_failures": {
      windowMs: number;
      failed: number;
      refused: number;
      addresses: number;
      top: { ip: string; n: number }[];
      suppressed: number;
    };
    "auth.user_created": { user: string; role: string; by?: string };
    "auth.password_changed": { user: string; role?: string; by?: string };
    "auth.user_deleted": { user: string; by?: string };
    "auth.token_created": { token: string; role: string; by?: string; expires: number | null };
    "auth.token_revoked": { token: string; by?: string };
    "web.tls_generated": { dir: string };
    "web.settings_changed": { refreshMs?: number; banner?: string };
  }
}

/** Every event kind the web layer publishes. */
export const WEB_EVENTS = [
  "auth.login",
  "auth.logout",
  "auth.login_failed",
  "auth.login_refused",
  "auth.locked",
  "auth.login_failures",
  "auth.user_created",
  "auth.password_changed",
  "auth.user_deleted",
  "auth.token_created",
  "auth.token_revoked",
  "web.tls_generated",
  "web.settings_changed",
] as const;
