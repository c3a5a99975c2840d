/**
 * `keepwire sub` commands: list the supervised subsystems, start, stop or restart
 * one, through the running daemon.
 * @module
 */
import type { Command } from "commander";
import { z } from "zod";
import { CliError, commandDataDir, type CommonOpts, EXIT, printJson } from "./common.ts";
import { DaemonError, daemonRequest } from "./client.ts";

const infoSchema = z.object({
  name: z.string(),
  kind: z.enum(["worker", "process", "probe"]),
  state: z.string(),
  criticality: z.string(),
  pid: z.number().nullable(),
  restarts: z.number(),
  lastHeartbeatMs: z.number().nullable(),
  lastFailure: z.string().nullable(),
  statusText: z.string().nullable().optional(),
});

/** Body of GET /api/subsystems. */
const listSchema = z.object({ subsystems: z.array(infoSchema) });
/** Body of POST /api/subsystems/:name/<action>. */
const oneSchema = z.object({ subsystem: infoSchema });

/** One row of `sub list --json`. */
export type SubRow = Pick<
  z.infer<typeof infoSchema>,
  "name" | "kind" | "state" | "criticality" | "pid" | "restarts" | "lastHeartbeatMs" | "lastFailure"
>;

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

function decode<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    throw new CliError(EXIT.FAILURE, `unexpected answer from the daemon: ${r.error.message}`);
  }
  return r.data;
}

function row(i: z.infer<typeof infoSchema>): SubRow {
  return {
    name: i.name,
    kind: i.kind,
    state: i.state,
    criticality: i.criticality,
    pid: i.pid,
    restarts: i.restarts,
    lastHeartbeatMs: i.lastHeartbeatMs,
    lastFailure: i.lastFailure,
  };
}

/** Render the list as a table. */
export function formatTable(rows: z.infer<typeof infoSchema>[]): string {
  if (!rows.length) return "no subsystems configured";
  const head = ["NAME", "KIND", "STATE", "CRITICALITY", "PID", "RESTARTS", "HEARTBEAT", "DETAIL"];
  const body = rows.map((r) => [
    r.name,
    r.kind,
    r.state,
    r.criticality,
    r.pid === null ? "-" : String(r.pid),
    String(r.restarts),
    r.lastHeartbeatMs === null ? "-" : `${(r.lastHeartbeatMs / 1000).toFixed(1)}s ago`,
    (r.state === "failed" || r.state === "restarting" || r.state === "unhealthy"
      ? r.lastFailure ?? ""
      : r.statusText ?? "").slice(0, 60),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  return [head, ...body].map((cells) =>
    cells.map((x, c) => c === cells.length - 1 ? x : x.padEnd(widths[c])).join("  ").trimEnd()
  ).join("\n");
}

/** Register the sub commands. */
export function registerSubCommands(program: Command): void {
  const sub = program.command("sub").description(
    "supervised subsystems: list, start, stop, restart",
  );
  sub.command("list")
    .description("list subsystems with state, pid, restarts, last heartbeat and last failure")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const body = decode(listSchema, await daemonRequest(dataDir, "GET", "/api/subsystems"));
      if (opts.json) printJson({ subsystems: body.subsystems.map(row) });
      else console.log(formatTable(body.subsystems));
    });
  for (const verb of ["start", "stop", "restart"] as const) {
    sub.command(verb)
      .description(`${verb} one subsystem`)
      .argument("<name>", "subsystem name")
      .option("--json", "print the subsystem as JSON afterwards")
      .option("-c, --config <file>", "config file")
      .option("-d, --data <dir>", "data directory")
      .action(async (name: string, opts: CommonOpts & { json?: boolean }) => {
        if (!NAME.test(name)) {
          throw new CliError(
            EXIT.USAGE,
            `invalid subsystem name ${JSON.stringify(name)}: lowercase letters, digits, - and _`,
          );
        }
        const dataDir = await commandDataDir(opts);
        let answer: unknown;
        try {
          answer = await daemonRequest(dataDir, "POST", `/api/subsystems/${name}/${verb}`);
        } catch (e) {
          const code = e instanceof DaemonError
            ? (e.body as { error?: { code?: string } } | null)?.error?.code
            : undefined;
          if (code === "subsystem_not_found") {
            throw new CliError(EXIT.USAGE, `no subsystem named "${name}"`);
          }
          throw e;
        }
        const { subsystem } = decode(oneSchema, answer);
        if (opts.json) printJson({ subsystem: row(subsystem) });
        else console.log(`${subsystem.name}: ${subsystem.state}`);
      });
  }
}
