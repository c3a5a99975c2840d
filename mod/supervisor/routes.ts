/**
 * HTTP API of the supervisor, mounted under /api:
 * GET /subsystems, GET /subsystems/:name, POST /subsystems/:name/{start,stop,restart,suspend,resume}.
 * Errors are the supervisor's own (errors.ts: 400 bad name, 404 unknown, 409 a command that
 * does not apply in the current state); anything else is a 500.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { type SubsystemInfo, subsystemInfoSchema, type SupervisorApi } from "./api.ts";
import { BadSubsystemNameError, UnknownSubsystemError } from "./errors.ts";
import { selfMonitorStatusSchema } from "./selfmon.ts";
import { answer, apiDoc, statusDoc } from "../web/openapi.ts";

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** GET /subsystems. */
export const subsystemListSchema = z.lazy(() =>
  z.object({ subsystems: z.array(subsystemInfoSchema) })
);
/** GET /subsystems. */
export type SubsystemList = z.infer<typeof subsystemListSchema>;
/** GET /subsystems/:name and the answer of every command. */
export const subsystemAnswerSchema = z.lazy(() => z.object({ subsystem: subsystemInfoSchema }));
/** The supervisor's part of /api/status. */
export const supervisorStatusSchema = z.lazy(() =>
  z.object({
    subsystems: z.array(subsystemInfoSchema),
    selfmon: selfMonitorStatusSchema,
  })
);
/** The supervisor's part of /api/status. */
export type SupervisorStatus = z.infer<typeof supervisorStatusSchema>;

statusDoc("supervisor", supervisorStatusSchema);
const nameParam = z.lazy(() => z.object({ name: z.string().regex(NAME).max(64) }));
const unknown = {
  400: "bad subsystem name",
  404: "no such subsystem",
};
apiDoc("GET", "/api/subsystems", {
  operationId: "listSubsystems",
  summary: "every subsystem: state, criticality, restarts, heartbeat age, last failure",
  response: subsystemListSchema,
});
apiDoc("GET", "/api/subsystems/:name", {
  operationId: "getSubsystem",
  summary: "one subsystem",
  params: nameParam,
  response: subsystemAnswerSchema,
  errors: unknown,
});
const VERBS = ["start", "stop", "restart", "suspend", "resume"] as const;
for (const verb of VERBS) {
  apiDoc("POST", `/api/subsystems/:name/${verb}`, {
    operationId: `${verb}Subsystem`,
    summary: `${verb} one subsystem (admin); answers its state after the command`,
    params: nameParam,
    response: subsystemAnswerSchema,
    errors: { ...unknown, 409: `${verb} does not apply in the subsystem's current state` },
  });
}

/** Routes of the supervisor over its API. */
export function supervisorRoutes(api: SupervisorApi): Hono {
  const app = new Hono();
  const find = (name: string): SubsystemInfo => {
    if (!NAME.test(name) || name.length > 64) throw new BadSubsystemNameError(name);
    const info = api.list().find((s) => s.name === name);
    if (!info) throw new UnknownSubsystemError(name);
    return info;
  };

  app.get("/subsystems", (c) => answer(c, subsystemListSchema, { subsystems: api.list() }));
  app.get(
    "/subsystems/:name",
    (c) => answer(c, subsystemAnswerSchema, { subsystem: find(c.req.param("name")) }),
  );

  const action = (
    verb: typeof VERBS[number],
    run: (name: string) => Promise<void>,
  ) =>
    app.post(`/subsystems/:name/${verb}`, async (c) => {
      const { name } = find(c.req.param("name"));
      await run(name);
      return answer(c, subsystemAnswerSchema, { subsystem: find(name) });
    });
  action("start", (n) => api.start(n));
  action("stop", (n) => api.stop(n));
  action("restart", (n) => api.restart(n));
  action("suspend", (n) => api.suspend(n, "manual suspend"));
  action("resume", (n) => api.resume(n, "manual resume"));
  return app;
}
