/**
 * HTTP API of the supervisor, mounted under /api:
 * GET /subsystems, GET /subsystems/:name, POST /subsystems/:name/{start,stop,restart,suspend,resume}.
 * Errors are the supervisor's own (errors.ts: 400 bad name, 404 unknown, 409 a command that
 * does not apply in the current state); anything else is a 500.
 * @module
 */
import { Hono } from "hono";
import type { SubsystemInfo, SupervisorApi } from "./api.ts";
import { BadSubsystemNameError, UnknownSubsystemError } from "./errors.ts";

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** Routes of the supervisor over its API. */
export function supervisorRoutes(api: SupervisorApi): Hono {
  const app = new Hono();
  const find = (name: string): SubsystemInfo => {
    if (!NAME.test(name) || name.length > 64) throw new BadSubsystemNameError(name);
    const info = api.list().find((s) => s.name === name);
    if (!info) throw new UnknownSubsystemError(name);
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
      await run(name);
      return c.json({ subsystem: find(name) });
    });
  action("start", (n) => api.start(n));
  action("stop", (n) => api.stop(n));
  action("restart", (n) => api.restart(n));
  action("suspend", (n) => api.suspend(n, "manual suspend"));
  action("resume", (n) => api.resume(n, "manual resume"));
  return app;
}
