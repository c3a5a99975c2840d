/**
 * Journalling of failed and refused sign-ins, bounded: a client that has not signed in
 * must not be able to write journal rows at will (each row would cost disk and push
 * other events out). Per window (one minute) at most `perWindow` failed and
 * `perWindow` refused attempts are journalled one by one (two budgets, so a burst of
 * refusals cannot hide the failures); the rest are only counted and written as ONE
 * `auth.login_failures` summary when the window closes. So unauthenticated clients
 * write at most `2 × perWindow + 1` rows a minute, whatever they send.
 * @module
 */
import type { EventBus } from "../events/mod.ts";
import type { Clock } from "../module.ts";
import type { LoginRefusal } from "./events.ts";

/** Options of the audit. */
export interface LoginAuditOptions {
  /** Bus to publish on. */
  bus: EventBus;
  /** Clock (window timer). */
  clock: Clock;
  /** Window length (ms). */
  windowMs?: number;
  /** Failed, and separately refused, attempts journalled one by one per window. */
  perWindow?: number;
}

/** Rate-limited journal of failed and refused logins. */
export class LoginAudit {
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #perWindow: number;
  #written = { failed: 0, refused: 0 };
  #failed = 0;
  #refused = 0;
  #suppressed = 0;
  #byIp = new Map<string, number>();
  #timer: ReturnType<Clock["setTimeout"]> | undefined;

  /** Build one. */
  constructor(opts: LoginAuditOptions) {
    this.#bus = opts.bus;
    this.#clock = opts.clock;
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#perWindow = opts.perWindow ?? 10;
  }

  #open(budget: "failed" | "refused"): boolean {
    this.#timer ??= this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, this.#windowMs);
    return this.#written[budget]++ < this.#perWindow;
  }

  #count(ip: string): void {
    if (this.#byIp.size < 10_000 || this.#byIp.has(ip)) {
      this.#byIp.set(ip, (this.#byIp.get(ip) ?? 0) + 1);
    }
  }

  /** A wrong password (or unknown name); `user` is already redacted when unknown. */
  failed(user: string, known: boolean, ip: string): void {
    this.#failed++;
    this.#count(ip);
    if (this.#open("failed")) {
      this.#bus.publish({
        module: "auth",
        kind: "auth.login_failed",
        severity: "warning",
        payload: { user, known, ip },
      });
    } else this.#suppressed++;
  }

  /** An attempt refused before hashing (throttled, locked, or hashing busy). */
  refused(
    user: string,
    known: boolean,
    ip: string,
    reason: LoginRefusal,
    retryAfterMs: number,
  ): void {
    this.#refused++;
    this.#count(ip);
    if (this.#open("refused")) {
      this.#bus.publish({
        module: "auth",
        kind: "auth.login_refused",
        severity: "warning",
        payload: { user, known, ip, reason, retryAfterMs },
      });
    } else this.#suppressed++;
  }

  /** Write the summary of the window now (when anything was suppressed) and reset it. */
  flush(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#suppressed > 0) {
      const top = [...this.#byIp].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([ip, n]) => ({
        ip,
        n,
      }));
      this.#bus.publish({
        module: "auth",
        kind: "auth.login_failures",
        severity: "warning",
        payload: {
          windowMs: this.#windowMs,
          failed: this.#failed,
          refused: this.#refused,
          addresses: this.#byIp.size,
          top,
          suppressed: this.#suppressed,
        },
      });
    }
    this.#written = { failed: 0, refused: 0 };
    this.#failed = this.#refused = this.#suppressed = 0;
    this.#byIp.clear();
  }
}
