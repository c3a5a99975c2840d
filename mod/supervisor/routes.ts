/**
 * HTTP API of the supervisor, mounted under /api:
 * GET /subsystems, GET /subsystems/:name, POST /subsystems/:name/{start,stop,restart,suspend,resume}.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { ApiError, parseOr400 } from "../web/mod.ts";
import type { SubsystemInfo, SupervisorApi } from "./api.ts";

const nameParam = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "lowercase letters, digits, - and _");

/** Routes of the supervisor over its API. */
export function supervisorRoutes(api: SupervisorApi): Hono {
  const app = new Hono();
  const find = (name: string): SubsystemInfo => {
    const n = parseOr400(nameParam, name, "subsystem name");
    const info = api.list().find((s) => s.name === n);
    if (!info) throw new ApiError(404, "not_found", `no subsystem named "${n}"`);
    return info;
  };

  app.get("/subsystems", (c) => c.json({ subsystems: api.list() }));
  app.get("/subsystems/:name", (c) => c.json({ subsystem: find(c.req.param("name")) }));

  const action = (
    verb: "start" | "stop" | "restart" | "suspend" | "resume",
    run: (name: string) => Promise<void>,
  ) =>
    app.post(`/subsystems/:name/${verb}`, async (c) => {
      const { name } = find(c.req.param("name"));
      try {
        await run(name);
      } catch (e) {
        throw new ApiError(409, "conflict", `cannot ${verb} ${name}: ${(e as Error).message}`);
      }
      return c.json({ subsystem: find(name) });
    });
  action("start", (n) => api.start(n));
  action("stop", (n) => api.stop(n));
  action("restart", (n) => api.restart(n));
  action("suspend", (n) => api.suspend(n, "manual suspend"));
  action("resume", (n) => api.resume(n, "manual resume"));
  return app;
}
