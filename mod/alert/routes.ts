/**
 * Alert API routes (mounted under /api):
 * - GET  /alert                    → status: counts per state, oldest pending age, channels
 * - GET  /alert/config             → channels (secrets redacted), recipients, rules, policy, and
 *                                     `edited`: the parts set at run time
 * - POST /alert/test {channel, to?} → {ok, answer, ms}: the server's answer to a test message
 * - GET  /alert/outbox?status=&recipient=&limit= → {deliveries:[...]} newest first
 * - GET  /alert/outbox/:id         → {delivery}
 * - POST /alert/outbox/:id/retry   → {delivery} (409 unless failed)
 * - POST /alert/retry-failed       → {retried: n}
 * - GET  /alert/history?limit=     → sent and failed deliveries, newest first
 * - GET  /alert/recipients         → {source: config|api, recipients}
 * - PUT  /alert/recipients {recipients:[...]} → the same (stored; replaces the config's list)
 * - DELETE /alert/recipients       → back to the config's list
 * - POST /alert/channels {name, type, ...}   → {name} (add or replace; an empty secret keeps
 *                                     the stored one)
 * - DELETE /alert/channels/:name   → {name} (refused while a recipient uses it)
 * - POST /alert/recipients {name, channel, to?, digest?} → {name} (add or replace one)
 * - DELETE /alert/recipients/:name → {name} (refused while a rule names it)
 * - POST /alert/rules {kinds, modules?, minSeverity, recipients} → {index}
 * - DELETE /alert/rules/:index     → {index}
 *
 * Run-time edits are stored (they replace the config file's part and outlive restarts).
 * Every answer that carries channel settings goes through the config's schema-marked
 * redaction (`redactBySchema`): a field marked `writeOnly` is never answered.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { jsonBody } from "../web/errors.ts";
import { zodFields } from "../web/errors.ts";
import { AlertInputError } from "./errors.ts";
import { DELIVERY_STATES } from "./outbox.ts";
import type { AlertApi } from "./types.ts";
import { alertConfigSchema } from "./config.ts";
import { redactBySchema, type SchemaNode } from "../web/ui/config_view.ts";

let alertSchema: SchemaNode | undefined;
/** `v` (shaped like the alert section) with every writeOnly field redacted. */
export function redactAlert<T>(v: T): T {
  alertSchema ??= z.toJSONSchema(alertConfigSchema, {
    io: "output",
    unrepresentable: "any",
  }) as SchemaNode;
  return redactBySchema(v, alertSchema) as T;
}

/** Body of POST /alert/test. */
export const testBodySchema = z.strictObject({
  channel: z.string().min(1).max(40),
  to: z.string().min(1).max(254).optional(),
});

const listQuerySchema = z.object({
  status: z.enum(DELIVERY_STATES).optional(),
  recipient: z.string().max(40).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

function parse<T>(schema: z.ZodType<T>, v: unknown, what: string): T {
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const fields = zodFields(r.error.issues);
  throw new AlertInputError(
    `invalid ${what}: ${Object.entries(fields).map(([k, m]) => `${k}: ${m}`).join("; ")}`,
    fields,
  );
}

/** The routes over the module's API. */
export function alertRoutes(m: AlertApi): Hono {
  const app = new Hono();
  app.get("/alert", (c) => c.json(m.status()));
  app.get("/alert/config", (c) =>
    c.json(redactAlert({
      enabled: m.config.enabled,
      channels: m.channelsView(),
      recipients: m.recipients().recipients,
      defaultRules: m.config.defaultRules,
      rules: m.config.rules,
      retry: m.config.retry,
      rateLimit: m.config.rateLimit,
      flap: m.config.flap,
      digestAt: m.config.digestAt,
      edited: m.edited,
    })));
  app.post("/alert/test", async (c) => {
    const body = parse(testBodySchema, await jsonBody(c), "test request");
    return c.json(await m.testSend(body.channel, body.to));
  });
  app.get("/alert/outbox", (c) => {
    const q = parse(listQuerySchema, c.req.query(), "outbox query");
    return c.json({ deliveries: m.deliveries(q) });
  });
  app.get("/alert/outbox/:id", (c) => c.json({ delivery: m.delivery(c.req.param("id")) }));
  app.post("/alert/outbox/:id/retry", (c) => c.json({ delivery: m.retry(c.req.param("id")) }));
  app.post("/alert/retry-failed", (c) => c.json({ retried: m.retryAllFailed() }));
  app.get("/alert/history", (c) => {
    const q = parse(listQuerySchema, c.req.query(), "history query");
    const limit = q.limit ?? 100;
    const rows = [
      ...m.deliveries({ status: "sent", limit }),
      ...m.deliveries({ status: "failed", limit }),
    ].sort((a, b) => b.seq - a.seq).slice(0, limit);
    return c.json({ deliveries: rows });
  });
  app.get("/alert/recipients", (c) => c.json(m.recipients()));
  app.put("/alert/recipients", async (c) => {
    const body = await jsonBody(c);
    if (typeof body !== "object" || body === null || !("recipients" in body)) {
      throw new AlertInputError('expected {"recipients": [...]}', { recipients: "required" });
    }
    return c.json(m.setRecipients((body as { recipients: unknown }).recipients));
  });
  app.delete("/alert/recipients", (c) => c.json(m.setRecipients(null)));
  app.post("/alert/recipients", async (c) => c.json(m.putRecipient(await jsonBody(c))));
  app.delete("/alert/recipients/:name", (c) => c.json(m.deleteRecipient(c.req.param("name"))));
  app.post("/alert/channels", async (c) => c.json(m.putChannel(await jsonBody(c))));
  app.delete("/alert/channels/:name", (c) => c.json(m.deleteChannel(c.req.param("name"))));
  app.post("/alert/rules", async (c) => c.json(m.addRule(await jsonBody(c))));
  app.delete("/alert/rules/:index", (c) => c.json(m.deleteRule(Number(c.req.param("index")))));
  return app;
}
