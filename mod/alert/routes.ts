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
import { type Delivery, DELIVERY_STATES } from "./outbox.ts";
import { type AlertApi, alertStatusSchema, testSendResultSchema } from "./types.ts";
import { alertConfigSchema, channelSchema, recipientSchema, ruleSchema } from "./config.ts";
import { answer, apiDoc, sameType, statusDoc } from "../web/openapi.ts";
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
export const testBodySchema = z.lazy(() =>
  z.strictObject({
    channel: z.string().min(1).max(40),
    to: z.string().min(1).max(254).optional(),
  })
);

const listQuerySchema = z.lazy(() =>
  z.object({
    status: z.enum(DELIVERY_STATES).optional(),
    recipient: z.string().max(40).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
  })
);

/** One delivery of the outbox. */
export const deliverySchema = z.lazy(() =>
  z.object({
    id: z.string().describe("stable id (the receivers' dedupe key)"),
    seq: z.number(),
    created: z.number(),
    eventId: z.number().describe("journal id of the event (0: synthetic)"),
    kind: z.string(),
    severity: z.string(),
    thing: z.string().describe("what it is about (flap key)"),
    recipient: z.string(),
    channel: z.string(),
    address: z.string().nullable(),
    subject: z.string(),
    text: z.string(),
    html: z.string(),
    short: z.string(),
    eventTime: z.number(),
    status: z.enum(DELIVERY_STATES),
    attempts: z.number(),
    nextAt: z.number(),
    inflight: z.boolean(),
    lastError: z.string().nullable(),
    answer: z.string().nullable(),
    doneAt: z.number().nullable(),
    foldedInto: z.string().nullable(),
  })
);

const cfg = alertConfigSchema.shape;
/** GET /alert/config. */
export const alertConfigViewSchema = z.lazy(() =>
  z.object({
    enabled: z.boolean(),
    channels: z.record(z.string(), z.record(z.string(), z.unknown())).describe(
      "channels by name; secrets redacted (writeOnly in the config schema)",
    ),
    recipients: z.array(recipientSchema),
    defaultRules: z.boolean(),
    rules: z.array(ruleSchema),
    retry: cfg.retry.unwrap(),
    rateLimit: cfg.rateLimit.unwrap(),
    flap: cfg.flap.unwrap(),
    digestAt: z.string(),
    edited: z.array(z.enum(["channels", "recipients", "rules"])).readonly().describe(
      "parts that come from run-time edits (stored) rather than the config file",
    ),
  })
);
/** GET/PUT/DELETE /alert/recipients. */
export const alertRecipientsSchema = z.lazy(() =>
  z.object({
    source: z.enum(["config", "api"]),
    recipients: z.array(recipientSchema),
  })
);
const deliveriesSchema = z.lazy(() => z.object({ deliveries: z.array(deliverySchema) }));
const deliveryAnswerSchema = z.lazy(() => z.object({ delivery: deliverySchema }));
const idParam = z.lazy(() => z.object({ id: z.string() }));

statusDoc("alert", alertStatusSchema);
apiDoc("GET", "/api/alert", {
  operationId: "getAlertStatus",
  summary: "alerts: deliveries per state, oldest pending age, channels",
  response: alertStatusSchema,
});
apiDoc("GET", "/api/alert/config", {
  operationId: "getAlertConfig",
  summary: "channels (secrets redacted), recipients, rules and policy in force",
  response: alertConfigViewSchema,
});
apiDoc("POST", "/api/alert/test", {
  operationId: "testAlertChannel",
  summary: "send a test message through one channel; answers the server's reply",
  body: testBodySchema,
  response: testSendResultSchema,
  errors: { 404: "no such channel" },
});
apiDoc("GET", "/api/alert/outbox", {
  operationId: "listAlertDeliveries",
  summary: "deliveries of the outbox, newest first",
  query: listQuerySchema,
  response: deliveriesSchema,
});
apiDoc("GET", "/api/alert/outbox/:id", {
  operationId: "getAlertDelivery",
  summary: "one delivery",
  params: idParam,
  response: deliveryAnswerSchema,
  errors: { 404: "no such delivery" },
});
apiDoc("POST", "/api/alert/outbox/:id/retry", {
  operationId: "retryAlertDelivery",
  summary: "send a failed delivery again",
  params: idParam,
  response: deliveryAnswerSchema,
  errors: { 404: "no such delivery", 409: "the delivery has not failed" },
});
apiDoc("POST", "/api/alert/retry-failed", {
  operationId: "retryFailedAlerts",
  summary: "send every failed delivery again",
  response: z.object({ retried: z.number() }),
});
apiDoc("GET", "/api/alert/history", {
  operationId: "getAlertHistory",
  summary: "sent and failed deliveries, newest first",
  query: listQuerySchema,
  response: deliveriesSchema,
});
apiDoc("GET", "/api/alert/recipients", {
  operationId: "getAlertRecipients",
  summary: "recipients in force and where they come from (config or api)",
  response: alertRecipientsSchema,
});
apiDoc("PUT", "/api/alert/recipients", {
  operationId: "setAlertRecipients",
  summary: "replace the recipients (stored; overrides the config's list)",
  body: z.object({ recipients: z.array(recipientSchema) }),
  response: alertRecipientsSchema,
});
const namedSchema = z.lazy(() => z.object({ name: z.string() }));
const indexSchema = z.lazy(() => z.object({ index: z.number().describe("the rule's index") }));
apiDoc("POST", "/api/alert/recipients", {
  operationId: "putAlertRecipient",
  summary: "add or replace one recipient (stored; applied at once)",
  body: recipientSchema,
  response: namedSchema,
});
apiDoc("DELETE", "/api/alert/recipients/:name", {
  operationId: "deleteAlertRecipient",
  summary: "remove a recipient (refused while a rule names it)",
  params: z.object({ name: z.string() }),
  response: namedSchema,
  errors: { 404: "no such recipient" },
});
apiDoc("POST", "/api/alert/channels", {
  operationId: "putAlertChannel",
  summary: "add or replace a channel (an empty secret keeps the stored one)",
  body: z.object({ name: z.string() }).and(channelSchema),
  response: namedSchema,
});
apiDoc("DELETE", "/api/alert/channels/:name", {
  operationId: "deleteAlertChannel",
  summary: "remove a channel (refused while a recipient uses it)",
  params: z.object({ name: z.string() }),
  response: namedSchema,
  errors: { 404: "no such channel" },
});
apiDoc("POST", "/api/alert/rules", {
  operationId: "addAlertRule",
  summary: "add a routing rule",
  body: ruleSchema,
  response: indexSchema,
});
apiDoc("DELETE", "/api/alert/rules/:index", {
  operationId: "deleteAlertRule",
  summary: "remove a routing rule by its index",
  params: z.object({ index: z.string().regex(/^\d+$/) }),
  response: indexSchema,
  errors: { 404: "no such rule" },
});
apiDoc("DELETE", "/api/alert/recipients", {
  operationId: "resetAlertRecipients",
  summary: "back to the config's recipients",
  response: alertRecipientsSchema,
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
  app.get("/alert", (c) => answer(c, alertStatusSchema, m.status()));
  app.get("/alert/config", (c) =>
    answer(
      c,
      alertConfigViewSchema,
      redactAlert({
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
      }),
    ));
  app.post("/alert/test", async (c) => {
    const body = parse(testBodySchema, await jsonBody(c), "test request");
    return answer(c, testSendResultSchema, await m.testSend(body.channel, body.to));
  });
  app.get("/alert/outbox", (c) => {
    const q = parse(listQuerySchema, c.req.query(), "outbox query");
    return answer(c, deliveriesSchema, { deliveries: m.deliveries(q) });
  });
  app.get(
    "/alert/outbox/:id",
    (c) => answer(c, deliveryAnswerSchema, { delivery: m.delivery(c.req.param("id")) }),
  );
  app.post(
    "/alert/outbox/:id/retry",
    (c) => answer(c, deliveryAnswerSchema, { delivery: m.retry(c.req.param("id")) }),
  );
  app.post("/alert/retry-failed", (c) => c.json({ retried: m.retryAllFailed() }));
  app.get("/alert/history", (c) => {
    const q = parse(listQuerySchema, c.req.query(), "history query");
    const limit = q.limit ?? 100;
    const rows = [
      ...m.deliveries({ status: "sent", limit }),
      ...m.deliveries({ status: "failed", limit }),
    ].sort((a, b) => b.seq - a.seq).slice(0, limit);
    return answer(c, deliveriesSchema, { deliveries: rows });
  });
  app.get("/alert/recipients", (c) => answer(c, alertRecipientsSchema, m.recipients()));
  app.put("/alert/recipients", async (c) => {
    const body = await jsonBody(c);
    if (typeof body !== "object" || body === null || !("recipients" in body)) {
      throw new AlertInputError('expected {"recipients": [...]}', { recipients: "required" });
    }
    return answer(
      c,
      alertRecipientsSchema,
      m.setRecipients((body as { recipients: unknown }).recipients),
    );
  });
  app.delete(
    "/alert/recipients",
    (c) => answer(c, alertRecipientsSchema, m.setRecipients(null)),
  );
  app.post(
    "/alert/recipients",
    async (c) => answer(c, namedSchema, m.putRecipient(await jsonBody(c))),
  );
  app.delete(
    "/alert/recipients/:name",
    (c) => answer(c, namedSchema, m.deleteRecipient(c.req.param("name"))),
  );
  app.post(
    "/alert/channels",
    async (c) => answer(c, namedSchema, m.putChannel(await jsonBody(c))),
  );
  app.delete(
    "/alert/channels/:name",
    (c) => answer(c, namedSchema, m.deleteChannel(c.req.param("name"))),
  );
  app.post("/alert/rules", async (c) => answer(c, indexSchema, m.addRule(await jsonBody(c))));
  app.delete(
    "/alert/rules/:index",
    (c) => answer(c, indexSchema, m.deleteRule(Number(c.req.param("index")))),
  );
  return app;
}

// A type error on a line below means a hand-written type and its schema differ in a field:
// make the schema match (tests/openapi_test.ts checks the real answers against it).
sameType<Delivery, z.output<typeof deliverySchema>>((v) => v, (v) => v);
