/**
 * Run-time edits of the alert section (the Alerts page, the API) as pure functions: each
 * takes the section in force and the input, checks it (each bad field named in an
 * {@link AlertInputError}) and returns the part to store. The module validates the result
 * with the whole section, stores it and applies it (mod.ts).
 * @module
 */
import { z } from "zod";
import {
  type AlertConfig,
  type AlertEditPart,
  channelSchema,
  checkAddress,
  recipientSchema,
  ruleSchema,
  secretFields,
} from "./config.ts";
import { AlertInputError, AlertNotFoundError } from "./errors.ts";
import { zodFields } from "../web/errors.ts";

/** One edit: the part of the section, its new value, and what changed (for the journal). */
export interface AlertEdit {
  /** channels, recipients or rules. */
  part: AlertEditPart;
  /** The part's new value (validated again with the whole section before it is stored). */
  value: unknown;
  /** What was set or removed. */
  change: { name: string; action: "set" | "removed" };
}

/**
 * Add or replace one channel (`{name, type, ...}`). A secret field (writeOnly in its
 * schema) left out or empty keeps the channel's stored secret: secrets are never shown,
 * so a form cannot send them back.
 */
export function channelPut(cfg: AlertConfig, input: unknown): AlertEdit {
  const body = asObject(input, "channel");
  const name = parseField(nameField, body.name, "name");
  const rest: Record<string, unknown> = { ...body };
  delete rest.name;
  const old = cfg.channels[name];
  if (old && old.type === rest.type) {
    for (const k of secretFields(old.type)) {
      const kept = (old as Record<string, unknown>)[k];
      if ((rest[k] === undefined || rest[k] === "") && kept !== undefined) rest[k] = kept;
    }
  }
  for (const [k, v] of Object.entries(rest)) if (v === "") delete rest[k];
  const r = channelSchema.safeParse(rest);
  if (!r.success) throw inputError(`channel ${name}`, r.error.issues);
  return {
    part: "channels",
    value: { ...cfg.channels, [name]: r.data },
    change: { name, action: "set" },
  };
}

/** Remove a channel (refused while a recipient uses it, naming them). */
export function channelDelete(cfg: AlertConfig, name: string): AlertEdit {
  if (!cfg.channels[name]) throw new AlertNotFoundError("channel", name);
  const users = cfg.recipients.filter((r) => r.channel === name).map((r) => r.name);
  if (users.length) {
    throw new AlertInputError(
      `channel ${name} is used by recipient(s) ${users.join(", ")}: remove them first`,
      { channel: `used by ${users.join(", ")}` },
    );
  }
  const rest = { ...cfg.channels };
  delete rest[name];
  return { part: "channels", value: rest, change: { name, action: "removed" } };
}

/** Add or replace one recipient (`{name, channel, to?, digest?}`), by name, in place. */
export function recipientPut(cfg: AlertConfig, input: unknown): AlertEdit {
  const r = recipientSchema.safeParse(asObject(input, "recipient"));
  if (!r.success) throw inputError("recipient", r.error.issues);
  const ch = cfg.channels[r.data.channel];
  if (!ch) {
    throw new AlertInputError(`invalid recipient: channel: no channel named ${r.data.channel}`, {
      channel: `no channel named ${r.data.channel}`,
    });
  }
  const problem = checkAddress(ch.type, r.data.to);
  if (problem) throw new AlertInputError(`invalid recipient: to: ${problem}`, { to: problem });
  const list = cfg.recipients.filter((x) => x.name !== r.data.name);
  const at = cfg.recipients.findIndex((x) => x.name === r.data.name);
  list.splice(at < 0 ? list.length : at, 0, r.data);
  return { part: "recipients", value: list, change: { name: r.data.name, action: "set" } };
}

/** Remove a recipient (refused while a rule names it, naming the rules). */
export function recipientDelete(cfg: AlertConfig, name: string): AlertEdit {
  if (!cfg.recipients.some((r) => r.name === name)) {
    throw new AlertNotFoundError("recipient", name);
  }
  const rules = cfg.rules.flatMap((r, i) => r.recipients.includes(name) ? [`#${i + 1}`] : []);
  if (rules.length) {
    throw new AlertInputError(
      `recipient ${name} is named by rule(s) ${rules.join(", ")}: remove them first`,
      { name: `named by rule(s) ${rules.join(", ")}` },
    );
  }
  return {
    part: "recipients",
    value: cfg.recipients.filter((x) => x.name !== name),
    change: { name, action: "removed" },
  };
}

/**
 * Add a routing rule at the end. Lists (`kinds`, `modules`, `recipients`) may come as
 * arrays or as text separated by commas or spaces (what a form sends).
 */
export function ruleAdd(cfg: AlertConfig, input: unknown): AlertEdit {
  const r = ruleInputSchema.safeParse(asObject(input, "rule"));
  if (!r.success) throw inputError("rule", r.error.issues);
  const rule = ruleSchema.safeParse(r.data);
  if (!rule.success) throw inputError("rule", rule.error.issues);
  const names = new Set(cfg.recipients.map((x) => x.name));
  const missing = rule.data.recipients.filter((n) => !names.has(n));
  if (missing.length) {
    throw new AlertInputError(`invalid rule: recipients: no recipient ${missing.join(", ")}`, {
      recipients: `no recipient ${missing.join(", ")}`,
    });
  }
  const rules = [...cfg.rules, rule.data];
  return { part: "rules", value: rules, change: { name: `#${rules.length}`, action: "set" } };
}

/** Remove the rule at `index` (0-based, as listed). */
export function ruleDelete(cfg: AlertConfig, index: number): AlertEdit {
  if (!Number.isInteger(index) || index < 0 || index >= cfg.rules.length) {
    throw new AlertNotFoundError("rule", String(index));
  }
  return {
    part: "rules",
    value: cfg.rules.filter((_, i) => i !== index),
    change: { name: `#${index + 1}`, action: "removed" },
  };
}

const nameField = recipientSchema.shape.name;

/** A list field from a form: an array, or text separated by commas or spaces. */
const listField = z.union([
  z.array(z.string()),
  z.string().transform((s) => s.split(/[\s,]+/).filter(Boolean)),
]);

/** A rule as a form or the API sends it (lists as arrays or text). */
const ruleInputSchema = z.lazy(() =>
  z.strictObject({
    kinds: listField.optional(),
    modules: listField.optional().transform((v) => v?.length ? v : undefined),
    minSeverity: z.string().optional(),
    recipients: listField,
  })
);

function asObject(input: unknown, what: string): Record<string, unknown> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new AlertInputError(`expected a JSON object (a ${what})`);
  }
  return input as Record<string, unknown>;
}

function parseField<T>(schema: z.ZodType<T>, v: unknown, field: string): T {
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const m = r.error.issues.map((i) => i.message).join("; ");
  throw new AlertInputError(`invalid ${field}: ${m}`, { [field]: m });
}

/** An input error naming each bad field (`url`, `recipients[0].to`). */
export function inputError(what: string, issues: readonly z.core.$ZodIssue[]): AlertInputError {
  const fields = zodFields(issues);
  return new AlertInputError(
    `invalid ${what}: ${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join("; ")}`,
    fields,
  );
}
