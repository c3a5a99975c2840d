/**
 * The alert module: turns events into alerts and delivers them through a durable outbox.
 *
 * An event goes through the routing rules (the built-in ones of render.ts and the
 * configured ones) to recipients; each (event, recipient) becomes one outbox row with a
 * stable id, written before anything is sent. A recipient's queue is delivered in order
 * (its oldest pending row first), one attempt at a time, with exponential backoff and
 * jitter between attempts, at most `rateLimit.count` per channel per `rateLimit.perMs`.
 * More than `flap.changes` alerts about one thing within `flap.windowMs` are kept as
 * `suppressed` and folded into one summary at the end of the window. Recipients with
 * `digest: true` get one message a day instead.
 *
 * At start, rows left in flight by a killed keepwire are sent again (the receiver sees
 * the same id twice at most once per kill) and journal events after the cursor are routed
 * (an event journalled just before a kill -9 is not lost).
 * @module
 */
import type { Module, ModuleContext, ModulePage, PartHealth, TimerId } from "../module.ts";
import { ALERT_PAGE } from "./page.tsx";
import type { Hono } from "hono";
import type { KwEvent } from "../events/mod.ts";
import { severityRank } from "../events/mod.ts";
import type { MetricFamily } from "../web/metrics.ts";
import { z } from "zod";
import {
  ALERT_EDIT_KEYS,
  type AlertConfig,
  alertConfigSchema,
  type AlertEditPart,
  applyAlertEdits,
  type ChannelConfig,
  checkAddress,
  defaultAlertConfig,
  type Recipient,
  recipientSchema,
  secretFields,
} from "./config.ts";
import { type Channel, createChannel, DeliveryError, type Message } from "./channels.ts";
import { type Delivery, type DeliveryState, Outbox } from "./outbox.ts";
import { defaultRuleMatches, describe, esc, render, renderSummary } from "./render.ts";
import { AlertInputError, AlertNotFoundError, AlertStateError } from "./errors.ts";
import { zodFields } from "../web/errors.ts";
import { alertRoutes } from "./routes.ts";
import {
  type AlertEdit,
  channelDelete,
  channelPut,
  inputError,
  recipientDelete,
  recipientPut,
  ruleAdd,
  ruleDelete,
} from "./edits.ts";
import "./events.ts";
import type { AlertApi, AlertStatus, TestSendResult } from "./types.ts";
export type { AlertApi, AlertStatus, TestSendResult } from "./types.ts";

export { type AlertConfig, alertConfigSchema } from "./config.ts";
export { ALERT_EVENTS } from "./events.ts";

/** Kinds of the alert module itself that never raise alerts (no loops). */
const SELF_KINDS = new Set([
  "alert.delivered",
  "alert.failed",
  "alert.suppressed",
  "alert.endpoint_stopped",
  "alert.resent_after_restart",
]);

/** Settings key of the journal cursor (last event id routed). */
const CURSOR_KEY = "alert.cursor";
/** Settings key of the recipients set through the API (they replace the config's). */
const RECIPIENTS_KEY = ALERT_EDIT_KEYS.recipients;
/** Settings key prefix of stopped webhook endpoints. */
const STOPPED_KEY = "alert.stopped.";
/** Journal events routed at start at most. */
const CATCH_UP_MAX = 50_000;
/** At the first start, journal events this recent are routed (this boot's). */
const FIRST_START_LOOKBACK_MS = 10 * 60_000;
/** Finished rows are kept this long. */
const KEEP_MS = 30 * 86_400_000;

/** What the module can be built with besides the context (tests). */
export interface AlertOptions {
  /** Random in [0,1) for jitter. */
  random?: () => number;
  /** Channel factory (tests wrap the real ones). */
  channel?: (cfg: ChannelConfig) => Channel;
}

/** The alert module's typed API. */
export class AlertModule implements Module, AlertApi {
  /** Module name. */
  readonly name = "alert";
  readonly #ctx: ModuleContext;
  /** The config file's section. */
  readonly #file: AlertConfig;
  /** The section in force: the file's with the stored edits applied. */
  #cfg: AlertConfig;
  /** Parts that come from stored edits. */
  #edited: AlertEditPart[] = [];
  #started = false;
  readonly #random: () => number;
  readonly #factory: (cfg: ChannelConfig) => Channel;
  #outbox: Outbox | undefined;
  #channels = new Map<string, Channel>();
  #recipients = new Map<string, Recipient>();
  #unsub: (() => void) | undefined;
  #timer: TimerId | undefined;
  #timerAt = Infinity;
  #digestTimer: TimerId | undefined;
  #inflight = new Map<string, Promise<void>>();
  #sendLog = new Map<string, number[]>();
  #cursor = 0;
  #cursorDirty = 0;
  #stopping = false;
  #abort = new AbortController();
  #held = new Map<string, { since: number; timer: TimerId }>();
  #sent = 0;
  #failedAttempts = 0;
  #failed = 0;
  #resent = 0;
  #pumping = false;
  #pumpAgain = false;

  /** Build from the context (nothing is opened until start). */
  constructor(ctx: ModuleContext, opts: AlertOptions = {}) {
    this.#ctx = ctx;
    this.#file = ctx.config.alert ?? defaultAlertConfig();
    this.#cfg = this.#file;
    this.#random = opts.random ?? Math.random;
    this.#factory = opts.channel ?? createChannel;
    for (const r of this.#cfg.recipients) this.#recipients.set(r.name, r);
  }

  get #ob(): Outbox {
    if (!this.#outbox) throw new Error("alert module not started");
    return this.#outbox;
  }

  /** The configuration in force. */
  get config(): AlertConfig {
    return this.#cfg;
  }

  /** Open the outbox, resend what a killed run left in flight, route missed events, start. */
  start(): Promise<void> {
    const { store, bus, clock } = this.#ctx;
    this.#outbox = new Outbox(store, () => clock.now());
    // run-time edits (Alerts page, API) replace the file's channels / recipients / rules;
    // edits the file no longer fits (a channel removed) are not used, but kept for the
    // operator to fix
    const eff = applyAlertEdits(this.#file, (k) => store.getSetting(k));
    if (eff.problem) console.error(`alert: stored edits not used: ${eff.problem}`);
    this.#setConfig(eff.config, eff.edited);
    if (!this.#cfg.enabled) return Promise.resolve();
    this.#started = true;
    this.#syncChannels();
    const resent = this.#ob.recoverInflight();
    if (resent.length) {
      this.#resent += resent.length;
      bus.publish({
        module: "alert",
        kind: "alert.resent_after_restart",
        severity: "notice",
        payload: { count: resent.length, ids: resent.slice(0, 100) },
      });
    }
    const now = clock.now();
    for (const s of this.#ob.sentSince(now - this.#cfg.rateLimit.perMs)) {
      this.#log(s.channel).push(s.t);
    }
    this.#ob.trim(now - KEEP_MS);
    // route what the journal holds after the cursor (journalled, then killed before routing);
    // at the very first start, what this boot journalled before the module started (a
    // watchdog reset found at start, a degraded array), not the older history
    const cursor = store.getSetting<number>(CURSOR_KEY);
    this.#cursor = cursor ??
      store.events({ untilTime: now - FIRST_START_LOOKBACK_MS, limit: 1 })[0]?.id ?? 0;
    let seen = 0;
    while (seen < CATCH_UP_MAX) {
      const batch = store.events({ sinceId: this.#cursor, order: "asc", limit: 1000 });
      if (!batch.length) break;
      for (const e of batch) if (!this.#ob.hasEvent(e.id)) this.#route(e);
      this.#cursor = batch[batch.length - 1].id;
      seen += batch.length;
    }
    store.setSetting(CURSOR_KEY, this.#cursor);
    this.#unsub = bus.subscribe((e) => this.#onEvent(e));
    this.#scheduleDigest();
    this.#wake(now);
    return Promise.resolve();
  }

  /** Use `cfg` as the section in force (recipients at once; channels when started). */
  #setConfig(cfg: AlertConfig, edited: AlertEditPart[]): void {
    this.#cfg = cfg;
    this.#edited = edited;
    this.#useRecipients(cfg.recipients);
    if (this.#started) this.#syncChannels();
  }

  /** Channel objects for the channels in force: new or changed ones built, others closed. */
  #syncChannels(): void {
    const store = this.#ctx.store;
    const built = this.#built;
    for (const [name, c] of Object.entries(this.#cfg.channels)) {
      const json = JSON.stringify(c);
      if (built.get(name) === json && this.#channels.has(name)) continue;
      const old = this.#channels.get(name);
      this.#channels.set(name, this.#scrubbing(this.#factory(c), c));
      built.set(name, json);
      if (old) this.#closeLater(old);
      const stopped = store.getSetting<{ url: string }>(STOPPED_KEY + name);
      if (stopped && (c.type !== "webhook" || c.url !== stopped.url)) {
        store.deleteSetting(STOPPED_KEY + name);
      }
    }
    for (const [name, ch] of [...this.#channels]) {
      if (this.#cfg.channels[name]) continue;
      this.#channels.delete(name);
      built.delete(name);
      this.#closeLater(ch);
    }
  }
  #built = new Map<string, string>();

  /** Close a replaced channel once the attempts under way are over. */
  #closeLater(ch: Channel): void {
    void Promise.allSettled([...this.#inflight.values()]).then(() => ch.close());
  }

  /**
   * The channel with its secrets' values cut out of every answer and error it reports
   * (a gateway that echoes the request, a URL template with the key in its path).
   */
  #scrubbing(ch: Channel, cfg: ChannelConfig): Channel {
    const secrets = secretFields(cfg.type)
      .map((k) => (cfg as Record<string, unknown>)[k])
      .filter((v): v is string => typeof v === "string" && v.length >= 4);
    if (!secrets.length) return ch;
    const scrub = (s: string) => secrets.reduce((t, v) => t.replaceAll(v, "(redacted)"), s);
    return {
      async send(msg, signal) {
        try {
          const r = await ch.send(msg, signal);
          return { ...r, answer: scrub(r.answer) };
        } catch (e) {
          if (e instanceof DeliveryError) {
            throw new DeliveryError(scrub(e.message), { permanent: e.permanent, gone: e.gone });
          }
          throw new DeliveryError(scrub(String((e as Error)?.message ?? e)));
        }
      },
      close: () => ch.close(),
    };
  }

  /** Stop sending (attempts under way are abandoned and stay pending), save the cursor. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#unsub?.();
    if (this.#timer !== undefined) this.#ctx.clock.clearTimeout(this.#timer);
    if (this.#digestTimer !== undefined) this.#ctx.clock.clearTimeout(this.#digestTimer);
    for (const h of this.#held.values()) this.#ctx.clock.clearTimeout(h.timer);
    this.#abort.abort();
    // nodemailer takes no abort signal: wait a little for attempts under way, then leave
    // them (their rows stay pending and are sent again at the next start)
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inflight.values()]),
      new Promise((r) => t = setTimeout(r, 1000)),
    ]);
    clearTimeout(t);
    if (this.#outbox && this.#cfg.enabled && this.#ctx.store.db.isOpen) {
      this.#ctx.store.setSetting(CURSOR_KEY, this.#cursor);
    }
    for (const c of this.#channels.values()) c.close();
  }

  // ---- routing ----

  #onEvent(e: KwEvent): void {
    if (this.#stopping) return;
    // edits made on the peer arrive by replication (settings replicate): a node that
    // becomes the writer, or was resynced, reads them before it routes anything more
    if (
      e.kind === "repl.promoted" || e.kind === "repl.resync_finished" ||
      (e.kind === "ha.role_changed" && e.payload.to === "active")
    ) this.reloadEdits();
    this.#trackBypass(e);
    const queued = this.#route(e);
    if (e.id > 0) {
      this.#cursor = Math.max(this.#cursor, e.id);
      if (queued) this.#cursorDirty = 0;
      else if (++this.#cursorDirty >= 500) {
        this.#cursorDirty = 0;
        this.#ctx.store.setSetting(CURSOR_KEY, this.#cursor);
      }
    }
    if (queued) this.#wake(this.#ctx.clock.now());
  }

  /** Recipients of an event under the rules. */
  recipientsFor(e: KwEvent): string[] {
    if (SELF_KINDS.has(e.kind)) return [];
    const out = new Set<string>();
    if (this.#cfg.defaultRules && defaultRuleMatches(e)) {
      for (const r of this.#recipients.keys()) out.add(r);
    }
    for (const rule of this.#cfg.rules) {
      if (severityRank(e.severity) < severityRank(rule.minSeverity)) continue;
      if (rule.modules && !rule.modules.includes(e.module)) continue;
      const hit = rule.kinds.some((k) =>
        k === "*" || k === e.kind || (k.endsWith("*") && e.kind.startsWith(k.slice(0, -1)))
      );
      if (hit) { for (const r of rule.recipients) out.add(r); }
    }
    return [...out];
  }

  /** Queue an event's alerts (one transaction with the cursor); true when any was queued. */
  #route(e: KwEvent): boolean {
    const names = this.recipientsFor(e);
    if (!names.length) return false;
    const appliance = this.#ctx.config.identity.name;
    const r = render(e, appliance);
    const now = this.#ctx.clock.now();
    this.#ob.tx(() => {
      for (const name of names) {
        const rec = this.#recipients.get(name);
        if (!rec) continue;
        let status: DeliveryState = rec.digest ? "digest" : "pending";
        if (status === "pending") {
          const log = this.#flapLog(name, r.thing, now);
          if (log.length >= this.#cfg.flap.changes) status = "suppressed";
          else log.push(now);
        }
        this.#ob.insert({
          eventId: e.id,
          kind: e.kind,
          severity: e.severity,
          thing: r.thing,
          recipient: name,
          channel: rec.channel,
          address: rec.to ?? null,
          subject: r.subject,
          text: r.text,
          html: r.html,
          short: r.short,
          eventTime: e.time,
          status,
        });
      }
      if (e.id > 0) this.#ctx.store.setSetting(CURSOR_KEY, Math.max(this.#cursor, e.id));
    });
    return true;
  }

  /** Bypass held longer than `bypassHeldMs` → `alert.bypass_held` (once per held period). */
  #trackBypass(e: KwEvent): void {
    if (e.kind !== "bypass.hold_added" && e.kind !== "bypass.hold_released") return;
    const p = e.payload as { segment?: unknown; holds?: unknown };
    if (typeof p.segment !== "string" || !Array.isArray(p.holds)) return;
    const seg = p.segment;
    const held = p.holds.length > 0;
    const cur = this.#held.get(seg);
    if (held && !cur) {
      const since = e.time;
      const timer = this.#ctx.clock.setTimeout(() => {
        const holds = (this.#lastHolds.get(seg) ?? []).map(String);
        this.#ctx.bus.publish({
          module: "alert",
          kind: "alert.bypass_held",
          severity: "warning",
          payload: { segment: seg, holds, heldMs: this.#ctx.clock.now() - since },
        });
      }, this.#cfg.bypassHeldMs);
      this.#held.set(seg, { since, timer });
    } else if (!held && cur) {
      this.#ctx.clock.clearTimeout(cur.timer);
      this.#held.delete(seg);
    }
    this.#lastHolds.set(seg, p.holds as unknown[]);
  }
  #lastHolds = new Map<string, unknown[]>();

  /** Times of the alerts about one thing to one recipient within the flap window. */
  #flapLog(recipient: string, thing: string, now: number): number[] {
    const key = `${recipient}\u0000${thing}`;
    const since = now - this.#cfg.flap.windowMs;
    let log = this.#flaps.get(key);
    if (!log) {
      log = this.#ob.recentAbout(recipient, thing, since);
      this.#flaps.set(key, log);
      if (this.#flaps.size > 10_000) {
        for (const [k, v] of this.#flaps) {
          if (!v.length || v[v.length - 1] < since) this.#flaps.delete(k);
        }
      }
    }
    while (log.length && log[0] < since) log.shift();
    return log;
  }
  #flaps = new Map<string, number[]>();

  // ---- delivery ----

  #log(channel: string): number[] {
    let l = this.#sendLog.get(channel);
    if (!l) this.#sendLog.set(channel, l = []);
    return l;
  }

  /** Run the pump at `at` (or earlier if already due earlier). */
  #wake(at: number): void {
    if (this.#stopping || !this.#cfg.enabled) return;
    if (at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.#ctx.clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    const delay = Math.max(0, at - this.#ctx.clock.now());
    this.#timer = this.#ctx.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      try {
        this.#pump();
      } catch (e) {
        // a failing store must not crash the daemon from a timer: retry later
        console.error("alert: pump failed:", e);
        this.#wake(this.#ctx.clock.now() + 5_000);
      }
    }, delay);
  }

  /** Send every head that is due, within concurrency and rate limits; schedule the next run. */
  #pump(): void {
    if (this.#stopping) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      const now = this.#ctx.clock.now();
      let next = this.#flushSummaries(now);
      const { count, perMs } = this.#cfg.rateLimit;
      for (const d of this.#ob.heads()) {
        if (this.#inflight.has(d.recipient)) continue;
        if (this.#inflight.size >= this.#cfg.concurrency) break;
        if (d.nextAt > now) {
          next = Math.min(next, d.nextAt);
          continue;
        }
        const channel = this.#channels.get(d.channel);
        if (!channel || this.#ctx.store.getSetting(STOPPED_KEY + d.channel)) {
          this.#ob.markFailed(
            d.id,
            channel
              ? `endpoint of channel ${d.channel} is stopped (it answered 410 Gone)`
              : `no channel ${d.channel} in the configuration`,
            null,
          );
          this.#failed++;
          next = now;
          continue;
        }
        const log = this.#log(d.channel);
        while (log.length && log[0] <= now - perMs) log.shift();
        if (log.length >= count) {
          next = Math.min(next, log[0] + perMs);
          continue;
        }
        log.push(now);
        this.#ob.startAttempt(d.id);
        const p = this.#attempt(d, channel).finally(() => {
          this.#inflight.delete(d.recipient);
          this.#wake(this.#ctx.clock.now());
        });
        this.#inflight.set(d.recipient, p);
      }
      if (next < Infinity) this.#wake(next);
    } finally {
      this.#pumping = false;
      if (this.#pumpAgain) {
        this.#pumpAgain = false;
        this.#wake(this.#ctx.clock.now());
      }
    }
  }

  async #attempt(d: Delivery, channel: Channel): Promise<void> {
    const t0 = this.#ctx.clock.now();
    const attempts = d.attempts + 1;
    try {
      const res = await channel.send(this.#message(d), this.#abort.signal);
      if (this.#stopping && this.#abort.signal.aborted && !this.#ctx.store.db.isOpen) return;
      this.#ob.markSent(d.id, res.answer);
      this.#sent++;
      this.#ctx.bus.publish({
        module: "alert",
        kind: "alert.delivered",
        severity: "debug",
        payload: {
          id: d.id,
          recipient: d.recipient,
          channel: d.channel,
          attempts,
          answer: res.answer.slice(0, 200),
          afterMs: this.#ctx.clock.now() - d.created,
        },
      });
    } catch (e) {
      if (!this.#ctx.store.db.isOpen) return;
      const err = e instanceof DeliveryError
        ? e
        : new DeliveryError(String((e as Error)?.message ?? e));
      if (this.#abort.signal.aborted) {
        // stopping: the attempt stays pending for the next start
        this.#ob.markFailed(
          d.id,
          `stopped during the attempt: ${err.message}`,
          this.#ctx.clock.now(),
        );
        return;
      }
      this.#failedAttempts++;
      const policy = this.#cfg.retry;
      let retryAt: number | null = null;
      if (err.gone) {
        const cfg = this.#cfg.channels[d.channel];
        this.#ctx.store.setSetting(STOPPED_KEY + d.channel, {
          url: cfg?.type === "webhook" ? cfg.url : "",
          at: this.#ctx.clock.now(),
        });
        this.#ctx.bus.publish({
          module: "alert",
          kind: "alert.endpoint_stopped",
          severity: "error",
          payload: { channel: d.channel, url: cfg?.type === "webhook" ? cfg.url : "" },
        });
      } else if (
        (!err.permanent || policy.permanent === "retry") && attempts < policy.maxAttempts
      ) {
        retryAt = this.#ctx.clock.now() + this.backoff(attempts);
      }
      this.#ob.markFailed(d.id, err.message, retryAt);
      if (retryAt === null) this.#failed++;
      if (err.gone) {
        this.#failed += this.#ob.failChannel(d.channel, `endpoint gone: ${err.message}`);
      }
      this.#ctx.bus.publish({
        module: "alert",
        kind: "alert.failed",
        severity: "warning",
        payload: {
          id: d.id,
          recipient: d.recipient,
          channel: d.channel,
          attempts,
          error: err.message.slice(0, 300),
          final: retryAt === null,
          retryInMs: retryAt === null ? null : retryAt - t0,
        },
      });
      if (retryAt !== null) this.#wake(retryAt);
    }
  }

  /** Delay before attempt `attempts + 1`: exponential, capped, with jitter. */
  backoff(attempts: number): number {
    const p = this.#cfg.retry;
    const base = Math.min(p.maxMs, p.initialMs * p.factor ** Math.max(0, attempts - 1));
    return Math.max(1, Math.round(base * (1 + p.jitter * (2 * this.#random() - 1))));
  }

  #message(d: Delivery): Message {
    return {
      id: d.id,
      to: d.address ?? undefined,
      subject: d.subject,
      text: d.text,
      html: d.html,
      short: d.short,
      kind: d.kind,
      severity: d.severity,
      time: d.eventTime,
      appliance: this.#ctx.config.identity.name,
    };
  }

  /** Fold suppressed groups whose window ended into summaries; returns the next check time. */
  #flushSummaries(now: number): number {
    let next = Infinity;
    const win = this.#cfg.flap.windowMs;
    for (const g of this.#ob.suppressedGroups()) {
      if (g.first + win > now) {
        next = Math.min(next, g.first + win);
        continue;
      }
      const rec = this.#recipients.get(g.recipient);
      const rows = this.#ob.unfolded("suppressed", g.recipient, g.thing);
      const last = rows[rows.length - 1];
      if (!last) continue;
      const lastEvent = this.#ob.get(g.lastId) ?? last;
      const d = describe({
        id: lastEvent.eventId,
        time: lastEvent.eventTime,
        module: lastEvent.kind.split(".")[0],
        kind: lastEvent.kind,
        severity: "warning",
        payload: {},
      });
      const s = renderSummary(
        this.#ctx.config.identity.name,
        g.thing,
        rows.length,
        win,
        {
          what: lastEvent.text.split("\n")[0] || d.what,
          advice: d.advice,
          time: lastEvent.eventTime,
        },
      );
      this.#ob.tx(() => {
        const id = this.#ob.insert({
          eventId: 0,
          kind: "alert.summary",
          severity: last.severity,
          thing: g.thing,
          recipient: g.recipient,
          channel: rec?.channel ?? last.channel,
          address: rec?.to ?? last.address,
          subject: s.subject,
          text: s.text,
          html: s.html,
          short: s.short,
          eventTime: last.eventTime,
          status: "pending",
        });
        this.#ob.fold(rows.map((r) => r.id), id);
      });
      this.#flapLog(g.recipient, g.thing, now).push(now);
      this.#ctx.bus.publish({
        module: "alert",
        kind: "alert.suppressed",
        severity: "notice",
        payload: { thing: g.thing, recipient: g.recipient, suppressed: rows.length, windowMs: win },
      });
      next = Math.min(next, now);
    }
    return next;
  }

  // ---- digest ----

  /** Next digest time after `now` (UTC HH:MM). */
  nextDigestAt(now: number): number {
    const [h, m] = this.#cfg.digestAt.split(":").map(Number);
    const d = new Date(now);
    let t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), h, m);
    if (t <= now) t += 86_400_000;
    return t;
  }

  #scheduleDigest(): void {
    if (![...this.#recipients.values()].some((r) => r.digest)) return;
    const now = this.#ctx.clock.now();
    this.#digestTimer = this.#ctx.clock.setTimeout(() => {
      this.sendDigests();
      this.#scheduleDigest();
    }, this.nextDigestAt(now) - now);
  }

  /** Fold every recipient's waiting digest rows into one message each; returns the ids. */
  sendDigests(): string[] {
    const ids: string[] = [];
    const appliance = this.#ctx.config.identity.name;
    for (const name of this.#ob.digestRecipients()) {
      const rec = this.#recipients.get(name);
      const rows = this.#ob.unfolded("digest", name);
      if (!rows.length || !rec) continue;
      const lines = rows.map((r) =>
        `${new Date(r.eventTime).toISOString().slice(0, 16).replace("T", " ")}  ${
          r.text.split("\n")[0]
        }`
      );
      const subject = `[${appliance}] daily digest: ${rows.length} alert${
        rows.length === 1 ? "" : "s"
      }`;
      const text = `${rows.length} alert(s) on ${appliance} since the last digest:\n\n${
        lines.join("\n")
      }\n`;
      const html = `<!doctype html><html><body><p>${rows.length} alert(s) on ${
        esc(appliance)
      } since the last digest:</p><ul>${
        lines.map((l) => `<li>${esc(l)}</li>`).join("")
      }</ul></body></html>`;
      this.#ob.tx(() => {
        const id = this.#ob.insert({
          eventId: 0,
          kind: "alert.digest",
          severity: "info",
          thing: "digest",
          recipient: name,
          channel: rec.channel,
          address: rec.to ?? null,
          subject,
          text,
          html,
          short: `${appliance}: ${rows.length} alert(s) today. Latest: ${
            rows[rows.length - 1].short
          }`,
          eventTime: this.#ctx.clock.now(),
          status: "pending",
        });
        this.#ob.fold(rows.map((r) => r.id), id);
        ids.push(id);
      });
    }
    if (ids.length) this.#wake(this.#ctx.clock.now());
    return ids;
  }

  // ---- operate ----

  #useRecipients(list: Recipient[]): void {
    this.#recipients = new Map(list.map((r) => [r.name, r]));
  }

  /** The recipients in force, and where they come from. */
  recipients(): { source: "config" | "api"; recipients: Recipient[] } {
    return {
      source: this.#edited.includes("recipients") ? "api" : "config",
      recipients: [...this.#recipients.values()],
    };
  }

  /**
   * Read the stored edits again (they may have arrived by replication); applied when they
   * differ from the section in force. True when something changed.
   */
  reloadEdits(): boolean {
    const eff = applyAlertEdits(this.#file, (k) => this.#ctx.store.getSetting(k));
    if (JSON.stringify(eff.config) === JSON.stringify(this.#cfg)) return false;
    if (eff.problem) console.error(`alert: stored edits not used: ${eff.problem}`);
    this.#setConfig(eff.config, eff.edited);
    return true;
  }

  /** Parts of the section that come from run-time edits (the rest from the config file). */
  get edited(): readonly AlertEditPart[] {
    return this.#edited;
  }

  /**
   * Replace one part of the section (validated with the whole section: a recipient's
   * channel must exist, a rule's recipients too); stored, so it outlives restarts.
   * Throws {@link AlertInputError} naming each bad field (`recipients[0].to`, ...).
   */
  #edit({ part, value, change }: AlertEdit): string {
    const r = alertConfigSchema.safeParse({ ...this.#cfg, [part]: value });
    if (!r.success) throw inputError(`alert ${part}`, r.error.issues);
    this.#ctx.store.setSetting(ALERT_EDIT_KEYS[part], r.data[part]);
    this.#setConfig(r.data, [...new Set([...this.#edited, part])]);
    if (this.#digestTimer === undefined && this.#outbox && this.#cfg.enabled) {
      this.#scheduleDigest();
    }
    this.#ctx.bus.publish({
      module: "alert",
      kind: "alert.config_changed",
      severity: "notice",
      payload: { part, ...change },
    });
    return change.name;
  }

  /**
   * Add or replace one channel (`{name, type, ...}`); a secret field left out or empty
   * keeps the stored secret (edits.ts).
   */
  putChannel(input: unknown): { name: string } {
    return { name: this.#edit(channelPut(this.#cfg, input)) };
  }

  /** Remove a channel (refused while a recipient uses it). */
  deleteChannel(name: string): { name: string } {
    return { name: this.#edit(channelDelete(this.#cfg, name)) };
  }

  /** Add or replace one recipient (`{name, channel, to?, digest?}`), by name. */
  putRecipient(input: unknown): { name: string } {
    return { name: this.#edit(recipientPut(this.#cfg, input)) };
  }

  /** Remove a recipient (refused while a rule names it). */
  deleteRecipient(name: string): { name: string } {
    return { name: this.#edit(recipientDelete(this.#cfg, name)) };
  }

  /** Add a routing rule (lists as arrays or comma-separated text). */
  addRule(input: unknown): { index: number } {
    this.#edit(ruleAdd(this.#cfg, input));
    return { index: this.#cfg.rules.length - 1 };
  }

  /** Remove the rule at `index` (0-based, as listed). */
  deleteRule(index: number): { index: number } {
    this.#edit(ruleDelete(this.#cfg, index));
    return { index };
  }

  /**
   * Validate a recipient list against the channels and rules in force; throws
   * {@link AlertInputError} naming each bad field (`recipients[1].to`, ...).
   */
  checkRecipients(input: unknown): Recipient[] {
    const r = z.array(recipientSchema).max(200).safeParse(input);
    if (!r.success) {
      const fields = Object.fromEntries(
        Object.entries(zodFields(r.error.issues)).map((
          [k, v],
        ) => [`recipients${k.startsWith("[") ? "" : "."}${k}`, v]),
      );
      throw new AlertInputError(
        `invalid recipients: ${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ")}`,
        fields,
      );
    }
    const fields: Record<string, string> = {};
    const names = new Set<string>();
    r.data.forEach((rec, i) => {
      if (names.has(rec.name)) fields[`recipients[${i}].name`] = `duplicate recipient ${rec.name}`;
      names.add(rec.name);
      const ch = this.#cfg.channels[rec.channel];
      if (!ch) {
        fields[`recipients[${i}].channel`] = `no channel named ${rec.channel} in alert.channels`;
        return;
      }
      const problem = checkAddress(ch.type, rec.to);
      if (problem) fields[`recipients[${i}].to`] = problem;
    });
    this.#cfg.rules.forEach((rule, i) =>
      rule.recipients.forEach((n, j) => {
        if (!names.has(n)) {
          fields[`rules[${i}].recipients[${j}]`] =
            `rule names recipient ${n}, which the list drops`;
        }
      })
    );
    if (Object.keys(fields).length) {
      throw new AlertInputError(
        `invalid recipients: ${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ")}`,
        fields,
      );
    }
    return r.data;
  }

  /**
   * Replace the recipients (stored; they outlive restarts and replace the config's list).
   * Deliveries already queued keep their address: nothing queued is lost. `null` goes back
   * to the config's list.
   */
  setRecipients(input: unknown | null): { source: "config" | "api"; recipients: Recipient[] } {
    if (input === null) {
      this.#ctx.store.deleteSetting(RECIPIENTS_KEY);
      const eff = applyAlertEdits(this.#file, (k) => this.#ctx.store.getSetting(k));
      this.#setConfig(eff.config, eff.edited);
      this.#ctx.bus.publish({
        module: "alert",
        kind: "alert.config_changed",
        severity: "notice",
        payload: { part: "recipients", name: "*", action: "removed" },
      });
    } else {
      const list = this.checkRecipients(input);
      this.#edit({ part: "recipients", value: list, change: { name: "*", action: "set" } });
    }
    if (this.#digestTimer === undefined && this.#outbox && this.#cfg.enabled) {
      this.#scheduleDigest();
    }
    return this.recipients();
  }

  /** Send a test message over a channel now (not through the outbox); the server's answer. */
  async testSend(channelName: string, to?: string): Promise<TestSendResult> {
    const cfg = this.#cfg.channels[channelName];
    if (!cfg) throw new AlertNotFoundError("channel", channelName);
    const addr = to ?? [...this.#recipients.values()].find((r) => r.channel === channelName)?.to;
    const channel = this.#channels.get(channelName) ?? this.#scrubbing(this.#factory(cfg), cfg);
    const appliance = this.#ctx.config.identity.name;
    const now = this.#ctx.clock.now();
    const t0 = performance.now();
    const what = `This is a test alert from ${appliance} over channel ${channelName}.`;
    try {
      const res = await channel.send({
        id: `kwt_${crypto.randomUUID().replaceAll("-", "")}`,
        to: addr,
        subject: `[${appliance}] test alert`,
        text: `${what}\n\nIf you read this, alerts reach you.\n`,
        html: `<!doctype html><html><body><p>${
          esc(what)
        }</p><p>If you read this, alerts reach you.</p></body></html>`,
        short: `${appliance}: test alert over ${channelName}.`,
        kind: "alert.test",
        severity: "info",
        time: now,
        appliance,
      });
      return {
        ok: true,
        channel: channelName,
        to: addr ?? null,
        answer: res.answer,
        ms: Math.round(performance.now() - t0),
      };
    } catch (e) {
      return {
        ok: false,
        channel: channelName,
        to: addr ?? null,
        answer: (e as Error).message,
        ms: Math.round(performance.now() - t0),
      };
    }
  }

  /** Deliveries, newest first. */
  deliveries(q: { status?: DeliveryState; recipient?: string; limit?: number } = {}): Delivery[] {
    return this.#ob.list(q);
  }

  /** One delivery. */
  delivery(id: string): Delivery {
    const d = this.#ob.get(id);
    if (!d) throw new AlertNotFoundError("delivery", id);
    return d;
  }

  /** Put a failed delivery back in its queue (a stopped endpoint is started again). */
  retry(id: string): Delivery {
    const d = this.delivery(id);
    if (d.status !== "failed") {
      throw new AlertStateError(
        `delivery ${id} is ${d.status}; only failed deliveries are retried`,
      );
    }
    this.#ctx.store.deleteSetting(STOPPED_KEY + d.channel);
    this.#ob.retry(id);
    this.#wake(this.#ctx.clock.now());
    return this.delivery(id);
  }

  /** Retry every failed delivery; returns how many. */
  retryAllFailed(): number {
    const failed = this.#ob.list({ status: "failed", limit: 10_000 });
    for (const d of failed) {
      this.#ctx.store.deleteSetting(STOPPED_KEY + d.channel);
      this.#ob.retry(d.id);
    }
    if (failed.length) this.#wake(this.#ctx.clock.now());
    return failed.length;
  }

  /**
   * Channels with whether each is stopped. Secrets are in it: the routes answer it only
   * through the schema-marked redaction (routes.ts), like every config answer.
   */
  channelsView(): Record<string, ChannelConfig & { stopped: boolean }> {
    const out: Record<string, ChannelConfig & { stopped: boolean }> = {};
    for (const [name, c] of Object.entries(this.#cfg.channels)) {
      out[name] = { ...c, stopped: !!this.#ctx.store.getSetting(STOPPED_KEY + name) };
    }
    return out;
  }

  /** Status snapshot. */
  status(): AlertStatus {
    const now = this.#ctx.clock.now();
    const oldest = this.#outbox ? this.#ob.oldestPending() : null;
    const perMs = this.#cfg.rateLimit.perMs;
    return {
      enabled: this.#cfg.enabled,
      counts: this.#outbox
        ? this.#ob.counts()
        : { pending: 0, sent: 0, failed: 0, suppressed: 0, digest: 0 },
      oldestPendingMs: oldest === null ? null : now - oldest,
      sent: this.#sent,
      failedAttempts: this.#failedAttempts,
      failed: this.#failed,
      resent: this.#resent,
      stopped: Object.keys(this.#cfg.channels).filter((n) =>
        this.#outbox && !!this.#ctx.store.getSetting(STOPPED_KEY + n)
      ),
      channels: Object.entries(this.#cfg.channels).map(([name, c]) => ({
        name,
        type: c.type,
        target: c.type === "email" ? `${c.host}:${c.port}` : new URL(c.url).host,
        inWindow: (this.#sendLog.get(name) ?? []).filter((t) => t > now - perMs).length,
      })),
    };
  }

  /** Healthy while nothing pending is older than a day (a channel down for long shows here). */
  health(): PartHealth {
    const s = this.status();
    const stale = s.oldestPendingMs !== null && s.oldestPendingMs > 86_400_000;
    return {
      ok: !stale,
      essential: false,
      detail: stale
        ? `alerts waiting for ${Math.round(s.oldestPendingMs! / 3_600_000)} h`
        : `${s.counts.pending} pending, ${s.counts.failed} failed`,
    };
  }

  /** Metric families. */
  metrics(): MetricFamily[] {
    const s = this.status();
    return [
      {
        name: "alert_sent_total",
        help: "alert deliveries accepted by their server since start",
        type: "counter",
        samples: [{ value: s.sent }],
      },
      {
        name: "alert_failed_total",
        help: "alert deliveries given up since start",
        type: "counter",
        samples: [{ value: s.failed }],
      },
      {
        name: "alert_attempts_failed_total",
        help: "alert delivery attempts that failed since start (retried or not)",
        type: "counter",
        samples: [{ value: s.failedAttempts }],
      },
      {
        name: "alert_resent_total",
        help:
          "deliveries sent again after a restart because an attempt was under way (possible duplicates)",
        type: "counter",
        samples: [{ value: s.resent }],
      },
      {
        name: "alert_outbox",
        help: "alert deliveries in the outbox by state",
        type: "gauge",
        samples: Object.entries(s.counts).map(([state, n]) => ({ labels: { state }, value: n })),
      },
      {
        name: "alert_queued",
        help: "alert deliveries waiting to be sent",
        type: "gauge",
        samples: [{ value: s.counts.pending }],
      },
      {
        name: "alert_oldest_pending_seconds",
        help: "age of the oldest alert waiting to be sent (0 when none)",
        type: "gauge",
        samples: [{ value: (s.oldestPendingMs ?? 0) / 1000 }],
      },
    ];
  }

  /** Routes under /api/alert. */
  routes(): Hono {
    return alertRoutes(this);
  }

  /** The Alerts page. */
  pages(): ModulePage[] {
    return [ALERT_PAGE];
  }

  /** The alert section as in force (the file's with the stored edits). */
  configInForce(): Record<string, unknown> {
    return { alert: this.#cfg };
  }

  /** Wait until nothing is pending and nothing in flight (tests, bench); false on timeout. */
  async idle(timeoutMs = 30_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (!this.#inflight.size && this.#ob.counts().pending === 0) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  /** Route and queue one event as if published (tests, bench). */
  enqueue(e: KwEvent): void {
    if (this.#route(e)) this.#wake(this.#ctx.clock.now());
  }
}

/** Build the alert module. */
export function createAlertModule(ctx: ModuleContext, opts: AlertOptions = {}): AlertModule {
  return new AlertModule(ctx, opts);
}
