/** HTTP routes of the storage module, mounted under /api: GET /api/storage. */
import { Hono } from "hono";
import type { StorageView } from "./types.ts";

/** What the routes need from the module. */
export interface StorageViewSource {
  /** Current arrays, disks, last update and error. */
  view(): StorageView;
}

/** GET /storage → `{"arrays":[...],"disks":[...],"updatedAt","error"}`. */
export function storageRoutes(src: StorageViewSource): Hono {
  const app = new Hono();
  app.get("/storage", (c) => c.json(src.view()));
  return app;
}
