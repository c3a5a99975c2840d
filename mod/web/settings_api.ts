/** GET/PUT /api/settings: settings an administrator changes at run time (kept in the store). */
import { Hono } from "hono";
import { z } from "zod";
import type { EventBus } from "../events/mod.ts";
import type { Store } from "../store/mod.ts";
import { jsonBody, parseOr400 } from "./errors.ts";
import { answer, apiDoc } from "./openapi.ts";
import type {} from "./events.ts";

/** Run-time UI settings. */
export const uiSettingsSchema = z.lazy(() =>
  z.strictObject({
    refreshMs: z.number().int().min(250).max(60_000).default(1500).describe(
      "live refresh interval of UI pages (the governor slows it further under load)",
    ),
    banner: z.string().max(500).default("").describe("text shown on the sign-in page"),
  })
);
/** UI settings. */
export type UiSettings = z.infer<typeof uiSettingsSchema>;

const putBody = z.lazy(() => uiSettingsSchema.unwrap().partial());
/** GET and PUT /api/settings. */
export const settingsAnswerSchema = z.lazy(() => z.object({ ui: uiSettingsSchema }));
apiDoc("GET", "/api/settings", {
  operationId: "getSettings",
  summary: "run-time settings",
  response: settingsAnswerSchema,
});
apiDoc("PUT", "/api/settings", {
  operationId: "putSettings",
  summary: "change run-time settings (admin); answers them all",
  body: putBody,
  response: settingsAnswerSchema,
});

/** Read the UI settings (defaults for missing keys). */
export function readUiSettings(store: Store): UiSettings {
  const r = uiSettingsSchema.safeParse(store.getSetting("ui") ?? {});
  return r.success ? r.data : uiSettingsSchema.parse({});
}

/** The routes. */
export function settingsRoutes(store: Store, bus: EventBus): Hono {
  const app = new Hono();
  app.get("/settings", (c) => answer(c, settingsAnswerSchema, { ui: readUiSettings(store) }));
  app.put("/settings", async (c) => {
    const patch = parseOr400(putBody, await jsonBody(c), "settings");
    const next = { ...readUiSettings(store), ...patch };
    store.setSetting("ui", next);
    bus.publish({
      module: "web",
      kind: "web.settings_changed",
      severity: "notice",
      payload: patch,
    });
    return answer(c, settingsAnswerSchema, { ui: next });
  });
  return app;
}
