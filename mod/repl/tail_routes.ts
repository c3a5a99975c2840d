/**
 * Set-aside tails on the API: `GET /api/repl/tails` (the files with what each holds),
 * `GET /api/repl/tails/:tail` (one read row by row, credential columns redacted),
 * `GET /api/repl/tails/:tail/file` (the file itself, admins only: it holds the
 * replicated user and token rows with their hashes). Nothing here applies a tail. See
 * tail.ts.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { answer, apiDoc } from "../web/openapi.ts";
import { ApiError } from "../web/errors.ts";
import { listTails, readTail, type TailChange, tailPath, type TailValue } from "./tail.ts";

/**
 * Columns a tail read over the API never shows: the password hashes of `users` and the
 * token hashes of `tokens` (group `config` replicates both). Any signed-in role may read
 * a tail; a viewer must not get a hash to crack offline.
 */
export const TAIL_CREDENTIAL_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  users: ["hash"],
  tokens: ["hash"],
};

/** What a redacted value reads as. */
const REDACTED = "(redacted)";

/** `changes` with the {@link TAIL_CREDENTIAL_COLUMNS} values replaced. */
export function redactTailChanges(changes: TailChange[]): TailChange[] {
  const hide = (cols: readonly string[], row?: Record<string, TailValue>) => {
    if (!row) return row;
    const out = { ...row };
    for (const c of cols) if (c in out) out[c] = REDACTED;
    return out;
  };
  return changes.map((ch) => {
    const cols = TAIL_CREDENTIAL_COLUMNS[ch.table];
    if (!cols) return ch;
    const out: TailChange = { ...ch, key: hide(cols, ch.key)! };
    if (ch.old) out.old = hide(cols, ch.old);
    if (ch.new) out.new = hide(cols, ch.new);
    return out;
  });
}

const valueSchema = z.lazy(() =>
  z.union([
    z.null(),
    z.number(),
    z.string(),
    z.object({ int: z.string().describe("an integer beyond 2^53, in decimal") }),
    z.object({ blob: z.string().describe("hex") }),
  ])
);
const rowSchema = z.lazy(() => z.record(z.string(), valueSchema));

/** What a tail holds (its rows aside). */
export const tailSummarySchema = z.lazy(() =>
  z.object({
    name: z.string(),
    bytes: z.number().int(),
    pairId: z.string(),
    schemaVersion: z.string(),
    epochs: z.array(z.number().int()).describe("epoch(s) of the frames: the ex-primary's"),
    channel: z.string().nullable().describe("replication channel (client set) of the frames"),
    frames: z.number().int(),
    fromSeq: z.number().int(),
    toSeq: z.number().int(),
    changes: z.number().int(),
    tables: z.record(
      z.string(),
      z.object({
        insert: z.number().int(),
        update: z.number().int(),
        delete: z.number().int(),
        rows: z.number().int().describe("distinct rows (primary keys) touched"),
      }),
    ),
  })
);

/** GET /api/repl/tails. */
export const tailListSchema = z.lazy(() =>
  z.object({
    dir: z.string().describe("the tail directory on this node"),
    tails: z.array(z.object({
      name: z.string(),
      bytes: z.number().int(),
      savedAt: z.string().nullable(),
      summary: tailSummarySchema.nullable().describe("null when the file cannot be read"),
      error: z.string().nullable().describe("why the file cannot be read"),
    })),
  })
);

/** GET /api/repl/tails/:name. */
export const tailContentsSchema = z.lazy(() =>
  z.object({
    summary: tailSummarySchema,
    changes: z.array(z.object({
      seq: z.number().int(),
      epoch: z.number().int(),
      table: z.string(),
      op: z.enum(["insert", "update", "delete"]),
      key: rowSchema.describe("primary key columns"),
      old: rowSchema.optional().describe("the row before (delete; update: changed columns)"),
      new: rowSchema.optional().describe("the row after (insert; update: changed columns)"),
    })),
  })
);

const tailParams = z.object({ tail: z.string().describe("file name, e.g. tail-….kwtail") });

apiDoc("GET", "/api/repl/tails", {
  operationId: "listReplTails",
  summary: "tails a returning ex-primary set aside: epoch, seq range, tables and row counts",
  response: tailListSchema,
});
apiDoc("GET", "/api/repl/tails/:tail", {
  operationId: "getReplTail",
  summary: "one set-aside tail row by row (nothing is applied; password and token hashes redacted)",
  params: tailParams,
  response: tailContentsSchema,
  errors: {
    400: "not a tail file name",
    404: "no such tail",
    422: "the file is corrupt or truncated (the message says where)",
  },
});
apiDoc("GET", "/api/repl/tails/:tail/file", {
  operationId: "downloadReplTail",
  summary: "download a set-aside tail file as it is (admin only)",
  params: tailParams,
  responses: {
    200: {
      description: "the file",
      media: "application/octet-stream",
      schemaText: "replication frames back to back (docs/ha.md, Set-aside tails)",
    },
  },
  errors: { 400: "not a tail file name", 403: "not an admin", 404: "no such tail" },
});

/** The routes, reading `dir`; `columns` names a table's columns from the local schema. */
export function tailRoutes(
  dir: string,
  columns: () => ((table: string) => string[] | null) | undefined,
): Hono {
  const app = new Hono();
  app.get(
    "/repl/tails",
    (c) => answer(c, tailListSchema, { dir, tails: listTails(dir, columns()) }),
  );
  app.get("/repl/tails/:tail", (c) => {
    const name = c.req.param("tail");
    const bytes = Deno.readFileSync(tailPath(dir, name));
    const t = readTail(bytes, { name, columns: columns() });
    return answer(c, tailContentsSchema, { ...t, changes: redactTailChanges(t.changes) });
  });
  app.get("/repl/tails/:tail/file", (c) => {
    // the raw file cannot be redacted (see TAIL_CREDENTIAL_COLUMNS)
    const who = (c.get as (k: string) => { role?: string } | undefined)("principal");
    if (who?.role !== "admin") {
      throw new ApiError(403, "forbidden", "downloading a tail file needs the admin role");
    }
    const name = c.req.param("tail");
    const bytes = Deno.readFileSync(tailPath(dir, name));
    return c.body(bytes, 200, {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${name}"`,
    });
  });
  return app;
}
