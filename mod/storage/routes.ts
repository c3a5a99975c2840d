/** HTTP routes of the storage module, mounted under /api: GET /api/storage. */
import { Hono } from "hono";
import { storageStatusSchema, type StorageView, storageViewSchema } from "./types.ts";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";

/** What the routes need from the module. */
export interface StorageViewSource {
  /** Current arrays, disks, last update and error. */
  view(): StorageView;
}

statusDoc("storage", storageStatusSchema);
apiDoc("GET", "/api/storage", {
  operationId: "getStorage",
  summary: "RAID arrays (health, members, sync) and SMART health of each watched disk",
  response: storageViewSchema,
});

/** GET /storage → `{"arrays":[...],"disks":[...],"updatedAt","error"}`. */
export function storageRoutes(src: StorageViewSource): Hono {
  const app = new Hono();
  app.get("/storage", (c) => answer(c, storageViewSchema, src.view()));
  return app;
}
