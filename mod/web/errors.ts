/** The one error shape of the API: `{"error":{"code","message","fields"?}}`. */
import type { Context } from "hono";
import type { z } from "zod";
import { formatPath } from "../config/mod.ts";
import { type ErrorStatus, KeepwireError } from "../errors.ts";

/** Body of every API error. */
export interface ApiErrorBody {
  /** The error. */
  error: {
    /** Machine-readable code: bad_request, not_found, unauthorized, ... */
    code: string;
    /** Sentence for a person. */
    message: string;
    /** Per-field problems for validation errors (path → reason). */
    fields?: Record<string, string>;
  };
}

/** An error the web layer itself throws (auth, CSRF, validation); modules throw their own. */
export class ApiError extends KeepwireError {
  /** Build one. */
  constructor(
    status: ErrorStatus,
    code: string,
    message: string,
    fields?: Record<string, string>,
  ) {
    super(status, code, message, { fields });
  }
}

/** Field map from zod issues. */
export function zodFields(issues: readonly z.core.$ZodIssue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of issues) {
    const k = formatPath(i.path);
    if (i.code === "unrecognized_keys") {
      for (const key of i.keys) out[formatPath([...i.path, key])] = "unknown field";
    } else out[k] = out[k] ? `${out[k]}; ${i.message}` : i.message;
  }
  return out;
}

/** A 400 ApiError from zod issues. */
export function validationError(
  what: string,
  issues: readonly z.core.$ZodIssue[],
): ApiError {
  const fields = zodFields(issues);
  return new ApiError(
    400,
    "bad_request",
    `invalid ${what}: ${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ")}`,
    fields,
  );
}

/** Answer with the error shape (any module's KeepwireError). */
export function errorResponse(c: Context, err: KeepwireError): Response {
  const body: ApiErrorBody = { error: { code: err.code, message: err.message } };
  if (err.fields) body.error.fields = err.fields;
  return c.json(body, err.status);
}

/** Parse with zod or throw a 400 ApiError naming the fields. */
export function parseOr400<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(what, r.error.issues);
  return r.data;
}

/** Read a JSON body or throw a 400. */
export async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new ApiError(400, "bad_request", "request body must be JSON");
  }
}

/** The first admin exists already (setup is over). */
export class AlreadySetUpError extends KeepwireError {
  /** Build one. */
  constructor() {
    super(409, "already_set_up", "an admin password is already set; sign in instead");
  }
}

/** A user of that name exists already. */
export class UserExistsError extends KeepwireError {
  /** Build one. */
  constructor(name: string) {
    super(409, "exists", `user ${name} exists`);
  }
}

/** A token of that name exists already. */
export class TokenExistsError extends KeepwireError {
  /** Build one. */
  constructor(name: string) {
    super(409, "exists", `a token named "${name}" already exists`);
  }
}

/** Deleting this user would leave no admin. */
export class LastAdminError extends KeepwireError {
  /** Build one. */
  constructor() {
    super(409, "last_admin", "refusing to delete the last admin");
  }
}
