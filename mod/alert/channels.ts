/**
 * The channels: e-mail over SMTP (nodemailer), SMS over an HTTP request template (with
 * presets for the Ozeki NG HTTP API and a generic JSON POST), and Standard Webhooks.
 * A channel sends one message and answers with the server's reply, or throws a
 * {@link DeliveryError} saying whether a retry can help.
 * @module
 */
// @ts-types="@types/nodemailer"
import type nodemailer from "nodemailer";
import type { ChannelConfig } from "./config.ts";

/** One message to deliver. */
export interface Message {
  /** Stable id (receivers deduplicate on it): e-mail header, webhook-id, SMS {id}. */
  id: string;
  /** Recipient address or phone number (none for webhooks). */
  to?: string;
  /** Subject line. */
  subject: string;
  /** Plain text. */
  text: string;
  /** HTML. */
  html: string;
  /** One line (SMS). */
  short: string;
  /** Event kind (webhook payload). */
  kind: string;
  /** Severity (webhook payload). */
  severity: string;
  /** Time of the event (ms). */
  time: number;
  /** Appliance name. */
  appliance: string;
}

/** What the server answered when it accepted the message. */
export interface SendResult {
  /** The server's answer, for the outbox and the test-send button. */
  answer: string;
}

/** A failed attempt. */
export class DeliveryError extends Error {
  /** A retry cannot help (SMTP 5xx, HTTP 4xx): the retry policy decides. */
  readonly permanent: boolean;
  /** The endpoint asked never to be called again (HTTP 410 on a webhook). */
  readonly gone: boolean;
  /** Build. */
  constructor(message: string, opts: { permanent?: boolean; gone?: boolean } = {}) {
    super(message);
    this.name = "DeliveryError";
    this.permanent = opts.permanent ?? false;
    this.gone = opts.gone ?? false;
  }
}

/** A way to deliver. */
export interface Channel {
  /** Send one message (throws DeliveryError). */
  send(msg: Message, signal?: AbortSignal): Promise<SendResult>;
  /** Release connections. */
  close(): void;
}

/** Build the channel for a configuration. */
export function createChannel(cfg: ChannelConfig): Channel {
  switch (cfg.type) {
    case "email":
      return emailChannel(cfg);
    case "sms":
      return smsChannel(cfg);
    case "webhook":
      return webhookChannel(cfg);
  }
}

type EmailCfg = Extract<ChannelConfig, { type: "email" }>;
type SmsCfg = Extract<ChannelConfig, { type: "sms" }>;
type WebhookCfg = Extract<ChannelConfig, { type: "webhook" }>;

/** Header carrying the alert id in e-mails. */
export const ID_HEADER = "X-Keepwire-Alert-Id";

function emailChannel(cfg: EmailCfg): Channel {
  // a pool keeps one connection open between mails (a backlog drains without a TCP and
  // SMTP handshake per mail); it reconnects by itself when the server closed it.
  // nodemailer (and the node:net/tls/zlib it pulls in, ~10 MB) loads with the first mail,
  // not at start-up.
  const make = (nm: typeof nodemailer) =>
    nm.createTransport({
      pool: true,
      maxConnections: 1,
      maxMessages: 100,
      host: cfg.host,
      port: cfg.port,
      secure: cfg.security === "tls",
      ignoreTLS: cfg.security === "none",
      requireTLS: cfg.security === "starttls" && cfg.user !== undefined,
      auth: cfg.user !== undefined ? { user: cfg.user, pass: cfg.password ?? "" } : undefined,
      tls: { rejectUnauthorized: cfg.rejectUnauthorized },
      connectionTimeout: cfg.timeoutMs,
      greetingTimeout: cfg.timeoutMs,
      socketTimeout: cfg.timeoutMs,
    });
  let transport: Promise<ReturnType<typeof make>> | undefined;
  const open = () =>
    transport ??= import("nodemailer").then((m) => make(m.default as typeof nodemailer));
  return {
    async send(msg) {
      const host = cfg.from.slice(cfg.from.indexOf("@") + 1);
      try {
        const info = await (await open()).sendMail({
          from: cfg.from,
          to: msg.to,
          subject: msg.subject,
          text: msg.text,
          html: msg.html,
          messageId: `<${msg.id}@${host}>`,
          headers: { [ID_HEADER]: msg.id },
        });
        if (info.rejected.length) {
          throw new DeliveryError(`refused recipient(s) ${info.rejected.join(", ")}`, {
            permanent: true,
          });
        }
        return { answer: String(info.response ?? "accepted") };
      } catch (e) {
        if (e instanceof DeliveryError) throw e;
        const err = e as Error & { responseCode?: number; response?: string; code?: string };
        const code = err.responseCode;
        const text = err.response ?? err.message;
        if (typeof code === "number") {
          throw new DeliveryError(`SMTP ${code}: ${oneLine(text)}`, { permanent: code >= 500 });
        }
        throw new DeliveryError(`${err.code ? err.code + ": " : ""}${oneLine(err.message)}`);
      }
    },
    close: () => void transport?.then((t) => t.close()),
  };
}

/** The Ozeki NG HTTP API's query (appended to the configured URL). */
const OZEKI_QUERY =
  "action=sendmessage&username={username}&password={password}&recipient={to}&messagetype=SMS:TEXT&messagedata={text}";

/** The request template of an SMS channel after its preset is applied. */
export function smsTemplate(cfg: SmsCfg): {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  successMatch: string | undefined;
} {
  if (cfg.preset === "ozeki") {
    const sep = cfg.url.includes("?") ? "&" : "?";
    return {
      method: cfg.method ?? "GET",
      url: cfg.url + sep + OZEKI_QUERY,
      headers: cfg.headers ?? {},
      body: undefined,
      successMatch: cfg.successMatch ?? "<statuscode>0</statuscode>",
    };
  }
  if (cfg.preset === "json") {
    return {
      method: cfg.method ?? "POST",
      url: cfg.url,
      headers: { "content-type": "application/json", ...cfg.headers },
      body: cfg.body ?? '{"to":"{to}","text":"{text}","id":"{id}"}',
      successMatch: cfg.successMatch,
    };
  }
  return {
    method: cfg.method ?? (cfg.body !== undefined ? "POST" : "GET"),
    url: cfg.url,
    headers: cfg.headers ?? {},
    body: cfg.body,
    successMatch: cfg.successMatch,
  };
}

/** Fill `{name}` placeholders with `enc(value)`. */
export function fill(
  template: string,
  values: Record<string, string>,
  enc: (s: string) => string,
): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (m, k: string) => k in values ? enc(values[k]) : m);
}

function smsChannel(cfg: SmsCfg): Channel {
  const t = smsTemplate(cfg);
  const match = t.successMatch !== undefined ? new RegExp(t.successMatch) : undefined;
  const ok = (s: number) => cfg.successStatus ? cfg.successStatus.includes(s) : s >= 200 && s < 300;
  return {
    async send(msg, signal) {
      const values: Record<string, string> = {
        to: (msg.to ?? "").replace(/[\s-]/g, ""),
        text: msg.short,
        subject: msg.subject,
        id: msg.id,
        username: cfg.username ?? "",
        password: cfg.password ?? "",
        apiKey: cfg.apiKey ?? "",
      };
      const ctype = Object.entries(t.headers).find(([k]) => k.toLowerCase() === "content-type")
        ?.[1] ?? "";
      const bodyEnc = /json/i.test(ctype)
        ? (s: string) => JSON.stringify(s).slice(1, -1)
        : /x-www-form-urlencoded/i.test(ctype)
        ? encodeURIComponent
        : (s: string) => s;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(t.headers)) headers[k] = fill(v, values, (s) => s);
      const res = await httpCall(
        fill(t.url, values, encodeURIComponent),
        {
          method: t.method,
          headers,
          body: t.body !== undefined ? fill(t.body, values, bodyEnc) : undefined,
        },
        cfg.timeoutMs,
        signal,
      );
      const answer = `HTTP ${res.status}: ${oneLine(res.body).slice(0, 300)}`;
      if (!ok(res.status)) {
        throw new DeliveryError(answer, { permanent: permanentStatus(res.status) });
      }
      if (match && !match.test(res.body)) {
        throw new DeliveryError(`answer does not match ${t.successMatch}: ${answer}`);
      }
      return { answer };
    },
    close() {},
  };
}

/** Statuses a retry cannot fix (4xx but timeouts and throttling). */
function permanentStatus(s: number): boolean {
  return s >= 400 && s < 500 && s !== 408 && s !== 429 && s !== 425;
}

/** Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`. */
export async function signWebhook(
  secret: string,
  id: string,
  timestampSec: number,
  body: string,
): Promise<string> {
  const key = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const sig = await crypto.subtle.sign(
    "HMAC",
    k,
    new TextEncoder().encode(`${id}.${timestampSec}.${body}`),
  );
  return `v1,${btoa(String.fromCharCode(...new Uint8Array(sig)))}`;
}

function webhookChannel(cfg: WebhookCfg): Channel {
  return {
    async send(msg, signal) {
      const body = JSON.stringify({
        type: `keepwire.${msg.kind}`,
        timestamp: new Date(msg.time).toISOString(),
        data: {
          id: msg.id,
          appliance: msg.appliance,
          kind: msg.kind,
          severity: msg.severity,
          subject: msg.subject,
          text: msg.text,
        },
      });
      const ts = Math.floor(Date.now() / 1000);
      const res = await httpCall(
        cfg.url,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "webhook-id": msg.id,
            "webhook-timestamp": String(ts),
            "webhook-signature": await signWebhook(cfg.secret, msg.id, ts, body),
          },
          body,
        },
        cfg.timeoutMs,
        signal,
      );
      const answer = `HTTP ${res.status}: ${oneLine(res.body).slice(0, 300)}`;
      if (res.status === 410) {
        throw new DeliveryError(`endpoint gone: ${answer}`, { permanent: true, gone: true });
      }
      if (res.status < 200 || res.status >= 300) {
        throw new DeliveryError(answer, { permanent: permanentStatus(res.status) });
      }
      return { answer };
    },
    close() {},
  };
}

async function httpCall(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ status: number; body: string }> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const res = await fetch(url, { ...init, signal: sig, redirect: "manual" });
    const reader = res.body?.getReader();
    let text = "";
    if (reader) {
      const dec = new TextDecoder();
      while (text.length < 16_384) {
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      await reader.cancel().catch(() => {});
    }
    return { status: res.status, body: text };
  } catch (e) {
    const what = timeout.aborted
      ? `no answer within ${timeoutMs} ms`
      : oneLine((e as Error).message).replaceAll(url, redactUrl(url));
    throw new DeliveryError(`${redactUrl(url)}: ${what}`);
  }
}

/** A URL without its query (where gateway passwords live). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(bad url)";
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
