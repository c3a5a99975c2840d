/**
 * The `alert` section of the configuration: channels (how to reach a server), recipients
 * (who hears what over which channel), routing rules, and the delivery policy (retries,
 * rate limits, flap suppression, the daily digest).
 *
 * Secrets (`password`, `secret`, `apiKey`) are marked `.meta({ writeOnly: true })`, and that
 * marking is the one mechanism that hides them: the config redaction (mod/web/ui/config_view.ts)
 * replaces every field so marked, in the settings page, `config show` and every alert API
 * answer (routes.ts); an edit that leaves one empty keeps the stored value.
 * @module
 */
import { z } from "zod";
import { SEVERITIES } from "../events/mod.ts";

const nameSchema = z.string().regex(
  /^[a-z0-9][a-z0-9_-]{0,39}$/,
  "a name: lower-case letters, digits, - and _, at most 40",
);

/** An http(s) URL (what the SMS and webhook channels call). */
export const httpUrlSchema = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}, "expected an http:// or https:// URL");

const timeoutSchema = z.number().int().min(100).max(120_000).default(15_000).describe(
  "give up on one attempt after this many ms",
);

/** An SMTP server reached with nodemailer. */
export const emailChannelSchema = z.strictObject({
  type: z.literal("email"),
  host: z.string().min(1).describe("SMTP server"),
  port: z.number().int().min(1).max(65535).default(25),
  security: z.enum(["none", "starttls", "tls"]).default("starttls").describe(
    "none: plain; starttls: upgrade when offered and required when user is set; tls: TLS from the first byte (port 465)",
  ),
  user: z.string().optional().describe("AUTH user"),
  password: z.string().optional().describe("AUTH password (secret)").meta({ writeOnly: true }),
  from: z.string().email().describe("envelope and header sender"),
  rejectUnauthorized: z.boolean().default(true).describe(
    "refuse a server certificate that does not verify",
  ),
  timeoutMs: timeoutSchema,
});

/** An SMS gateway spoken to over HTTP with a request template. */
export const smsChannelSchema = z.strictObject({
  type: z.literal("sms"),
  preset: z.enum(["ozeki", "json", "custom"]).default("custom").describe(
    "ozeki: Ozeki NG HTTP API (GET /api?action=sendmessage...); json: POST {to,text}; custom: the template below",
  ),
  url: httpUrlSchema.describe(
    "gateway URL; placeholders {to} {text} {username} {password} {apiKey} {id} are URL-encoded",
  ),
  method: z.enum(["GET", "POST", "PUT"]).optional(),
  headers: z.record(z.string(), z.string()).optional().describe(
    "request headers (placeholders allowed, e.g. Authorization: Bearer {apiKey})",
  ),
  body: z.string().optional().describe("request body template (JSON-escaped placeholders)"),
  username: z.string().optional(),
  password: z.string().optional().describe("gateway password (secret)").meta({ writeOnly: true }),
  apiKey: z.string().optional().describe("gateway API key (secret)").meta({ writeOnly: true }),
  successStatus: z.array(z.number().int().min(100).max(599)).optional().describe(
    "statuses that mean accepted (default 200..299)",
  ),
  successMatch: z.string().optional().describe(
    "a regular expression the answer body must match to count as accepted",
  ),
  timeoutMs: timeoutSchema,
});

/** A Standard Webhooks endpoint. */
export const webhookChannelSchema = z.strictObject({
  type: z.literal("webhook"),
  url: httpUrlSchema,
  secret: z.string().regex(
    /^whsec_[A-Za-z0-9+/]{32,}={0,2}$/,
    "expected whsec_ followed by the base64 of 24 to 64 random bytes",
  ).describe("signing secret (secret)").meta({ writeOnly: true }),
  timeoutMs: timeoutSchema,
});

/** One channel. */
export const channelSchema = z.discriminatedUnion("type", [
  emailChannelSchema,
  smsChannelSchema,
  webhookChannelSchema,
]);

/** Who hears alerts over which channel. */
export const recipientSchema = z.strictObject({
  name: nameSchema.describe("recipient name (rules name it)"),
  channel: nameSchema.describe("name of a channel in alert.channels"),
  to: z.string().max(254).optional().describe(
    "e-mail address or phone number (E.164, e.g. +3612345678); none for webhooks",
  ),
  digest: z.boolean().default(false).describe(
    "collect this recipient's alerts into the daily digest",
  ),
});

/** A routing rule: events it matches go to its recipients. */
export const ruleSchema = z.strictObject({
  kinds: z.array(
    z.string().regex(
      /^(\*|[a-z_]+(\.[a-z_]*)?\*?)$/,
      "an event kind, or a prefix ending in *",
    ),
  )
    .default(["*"]).describe("event kinds (exact, or a prefix ending in *; * alone: all)"),
  modules: z.array(z.string().min(1)).optional().describe("only events of these modules"),
  minSeverity: z.enum(SEVERITIES).default("warning").describe("only events this severe or more"),
  recipients: z.array(nameSchema).min(1).describe("recipient names"),
});

/** Retry policy (per delivery). */
export const retrySchema = z.strictObject({
  initialMs: z.number().int().min(10).default(5_000).describe("first retry after this"),
  maxMs: z.number().int().min(10).default(3_600_000).describe("longest delay between retries"),
  factor: z.number().min(1).max(10).default(2).describe("each delay is the last one times this"),
  jitter: z.number().min(0).max(1).default(0.2).describe("± share of each delay chosen at random"),
  maxAttempts: z.number().int().min(1).default(100).describe("then the delivery is failed"),
  permanent: z.enum(["fail", "retry"]).default("fail").describe(
    "what a permanent refusal (SMTP 5xx, HTTP 4xx) does: fail at once, or retry like a transient one",
  ),
});

/** The alert section. */
export const alertConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("send alerts (false: none are sent or queued)"),
  channels: z.record(nameSchema, channelSchema).default({}).describe(
    "delivery channels by name: SMTP mail, SMS gateway, webhook",
  ),
  recipients: z.array(recipientSchema).default([]).describe("who hears alerts, over which channel"),
  defaultRules: z.boolean().default(true).describe(
    "send the built-in alerts (failover, RAID, SMART, ...) to every recipient",
  ),
  rules: z.array(ruleSchema).default([]).describe(
    "routing rules: matching events go to recipients",
  ),
  retry: retrySchema.default(() => retrySchema.parse({}, { jitless: true })).describe(
    "retries of a failed delivery",
  ),
  rateLimit: z.strictObject({
    count: z.number().int().min(1).default(30).describe("deliveries allowed per window"),
    perMs: z.number().int().min(1000).default(3_600_000).describe("the window (ms)"),
  }).default({ count: 30, perMs: 3_600_000 }).describe(
    "per channel: at most count deliveries per perMs; the rest wait (never dropped)",
  ),
  flap: z.strictObject({
    changes: z.number().int().min(2).default(4).describe(
      "alerts about one thing that count as flapping",
    ),
    windowMs: z.number().int().min(1000).default(600_000).describe("within this window (ms)"),
  }).default({ changes: 4, windowMs: 600_000 }).describe(
    "more than `changes` alerts about one thing within windowMs become one summary",
  ),
  digestAt: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "HH:MM").default("08:00").describe(
    "time of day (UTC) the daily digest goes out",
  ),
  bypassHeldMs: z.number().int().min(1000).default(600_000).describe(
    "alert when a bypass hold lasts longer than this",
  ),
  concurrency: z.number().int().min(1).max(64).default(8).describe("deliveries in flight at once"),
}).superRefine((c, ctx) => {
  const recipients = new Set<string>();
  c.recipients.forEach((r, i) => {
    if (recipients.has(r.name)) {
      ctx.addIssue({
        code: "custom",
        path: ["recipients", i, "name"],
        message: `duplicate recipient ${r.name}`,
      });
    }
    recipients.add(r.name);
    const ch = c.channels[r.channel];
    if (!ch) {
      ctx.addIssue({
        code: "custom",
        path: ["recipients", i, "channel"],
        message: `no channel named ${r.channel} in alert.channels`,
      });
      return;
    }
    const problem = checkAddress(ch.type, r.to);
    if (problem) ctx.addIssue({ code: "custom", path: ["recipients", i, "to"], message: problem });
  });
  c.rules.forEach((rule, i) =>
    rule.recipients.forEach((n, j) => {
      if (!recipients.has(n)) {
        ctx.addIssue({
          code: "custom",
          path: ["rules", i, "recipients", j],
          message: `no recipient named ${n}`,
        });
      }
    })
  );
  for (const [name, ch] of Object.entries(c.channels)) {
    if (ch.type === "sms" && ch.successMatch !== undefined) {
      try {
        new RegExp(ch.successMatch);
      } catch (e) {
        ctx.addIssue({
          code: "custom",
          path: ["channels", name, "successMatch"],
          message: `not a regular expression: ${(e as Error).message}`,
        });
      }
    }
    if (ch.type === "sms") {
      const problem = checkTemplate(ch);
      if (problem) {
        ctx.addIssue({
          code: "custom",
          path: ["channels", name, problem.field],
          message: problem.message,
        });
      }
    }
  }
});

/** Placeholders a template may use. */
export const PLACEHOLDERS = [
  "to",
  "text",
  "subject",
  "id",
  "username",
  "password",
  "apiKey",
] as const;

/** A template problem: the first unknown placeholder, with its field. */
export function checkTemplate(
  ch: { url: string; body?: string; headers?: Record<string, string> },
): { field: string; message: string } | null {
  const parts: [string, string][] = [["url", ch.url], ["body", ch.body ?? ""]];
  for (const [k, v] of Object.entries(ch.headers ?? {})) parts.push([`headers.${k}`, v]);
  for (const [field, text] of parts) {
    for (const m of text.matchAll(/\{([^{}]*)\}/g)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(m[1])) {
        return {
          field,
          message: `unknown placeholder {${m[1]}} (known: ${
            PLACEHOLDERS.map((p) => `{${p}}`).join(" ")
          })`,
        };
      }
    }
  }
  return null;
}

const EMAIL_RE = /^[^\s@<>()",;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;
const PHONE_RE = /^\+?[0-9]{3,15}$/;

/** What is wrong with a recipient address for a channel type, or null. */
export function checkAddress(
  type: "email" | "sms" | "webhook",
  to: string | undefined,
): string | null {
  if (type === "webhook") {
    return to ? "a webhook recipient has no address (the channel's url is the endpoint)" : null;
  }
  if (!to) return `an ${type === "email" ? "e-mail address" : "phone number"} is needed`;
  if (type === "email" && !EMAIL_RE.test(to)) return `not an e-mail address: ${JSON.stringify(to)}`;
  if (type === "sms" && !PHONE_RE.test(to.replace(/[\s-]/g, ""))) {
    return `not a phone number (digits, optionally a leading +): ${JSON.stringify(to)}`;
  }
  return null;
}

/** The alert configuration. */
export type AlertConfig = z.infer<typeof alertConfigSchema>;
/** One channel's configuration. */
export type ChannelConfig = z.infer<typeof channelSchema>;
/** One recipient. */
export type Recipient = z.infer<typeof recipientSchema>;
/** One routing rule. */
export type Rule = z.infer<typeof ruleSchema>;
/** The retry policy. */
export type RetryPolicy = z.infer<typeof retrySchema>;

/** The defaults (no channels, no recipients). */
export function defaultAlertConfig(): AlertConfig {
  return alertConfigSchema.parse({});
}

/**
 * The secret fields of a channel type: the ones its schema marks `.meta({ writeOnly: true })`
 * (never a list of names kept here). The API and pages never answer them; an edit that
 * leaves one empty keeps the stored value.
 */
export function secretFields(type: ChannelConfig["type"]): string[] {
  const schema =
    { email: emailChannelSchema, sms: smsChannelSchema, webhook: webhookChannelSchema }[
      type
    ];
  return Object.entries(schema.shape as Record<string, z.ZodType>)
    .filter(([, s]) => s.meta()?.writeOnly === true).map(([k]) => k);
}

/**
 * Store keys (settings) of the parts of the alert section edited at run time (the Alerts
 * page, the API). A part stored there replaces the config file's part as a whole, survives
 * restarts, and is what `keepwire config show` prints (secrets redacted).
 */
export const ALERT_EDIT_KEYS = {
  channels: "alert.channels",
  recipients: "alert.recipients",
  rules: "alert.rules",
} as const;

/** A part of the alert section that can be edited at run time. */
export type AlertEditPart = keyof typeof ALERT_EDIT_KEYS;

/** The alert section with the stored edits applied, and what was applied. */
export interface EditedAlertConfig {
  /** The section in force. */
  config: AlertConfig;
  /** Parts that come from stored edits. */
  edited: AlertEditPart[];
  /** Why the stored edits were not used (they no longer fit the config file), or null. */
  problem: string | null;
}

/**
 * `file` with the stored edits (`read(key)` of {@link ALERT_EDIT_KEYS}) applied. When the
 * combination does not validate (a channel the stored recipients use was removed from the
 * file), the file's section is used and `problem` says why; the stored edits are kept.
 */
export function applyAlertEdits(
  file: AlertConfig,
  read: (key: string) => unknown,
): EditedAlertConfig {
  const input: Record<string, unknown> = { ...file };
  const edited: AlertEditPart[] = [];
  for (const [part, key] of Object.entries(ALERT_EDIT_KEYS) as [AlertEditPart, string][]) {
    const v = read(key);
    if (v !== undefined) {
      input[part] = v;
      edited.push(part);
    }
  }
  if (!edited.length) return { config: file, edited, problem: null };
  const r = alertConfigSchema.safeParse(input);
  if (r.success) return { config: r.data, edited, problem: null };
  const problem = r.error.issues.map((i) => `alert.${i.path.join(".")}: ${i.message}`).join("; ");
  return { config: file, edited: [], problem };
}
