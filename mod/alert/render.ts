/**
 * Alert rendering: an event becomes an e-mail/webhook/SMS text from THE words table in
 * `mod/events/words.ts` (event kind → which thing it is about, one sentence, what to do,
 * whether it raises an alert by default), shared with the web UI. Never JSON.
 * @module
 */
import type { KwEvent, Severity } from "../events/mod.ts";
import { DEFAULT_ALERT_KINDS, defaultRuleMatches, describe } from "../events/words.ts";

export { DEFAULT_ALERT_KINDS, defaultRuleMatches, describe };

/** A rendered alert. */
export interface Rendered {
  /** Flap key. */
  thing: string;
  /** Short subject line (e-mail subject, SMS start). */
  subject: string;
  /** Plain text body. */
  text: string;
  /** HTML body. */
  html: string;
  /** One line for an SMS. */
  short: string;
}

const SEV_WORD: Record<Severity, string> = {
  debug: "DEBUG",
  info: "INFO",
  notice: "NOTICE",
  warning: "WARNING",
  error: "ERROR",
  critical: "CRITICAL",
};

/** HTML-escape. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Render one event for an appliance. */
export function render(e: KwEvent, appliance: string): Rendered {
  const d = describe(e);
  const when = new Date(e.time).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  const subject = `[${appliance}] ${SEV_WORD[e.severity]}: ${firstWords(d.what, 90)}`;
  const text = `${d.what}\n\nAppliance: ${appliance}\nWhen: ${when}\nSeverity: ${e.severity}\n\n` +
    `What to do: ${d.advice}\n\n-- keepwire (event ${e.kind} #${e.id})\n`;
  const html = `<!doctype html><html><body><p><strong>${esc(d.what)}</strong></p>` +
    `<table><tr><td>Appliance</td><td>${esc(appliance)}</td></tr>` +
    `<tr><td>When</td><td>${esc(when)}</td></tr>` +
    `<tr><td>Severity</td><td>${esc(e.severity)}</td></tr></table>` +
    `<p>What to do: ${esc(d.advice)}</p>` +
    `<p style="color:#888">keepwire (event ${esc(e.kind)} #${e.id})</p></body></html>`;
  const short = `${appliance}: ${d.what} ${d.advice}`;
  return { thing: d.thing, subject, text, html, short };
}

/** A summary of suppressed alerts about one thing (flap suppression). */
export function renderSummary(
  appliance: string,
  thing: string,
  count: number,
  windowMs: number,
  last: { what: string; advice: string; time: number },
): Omit<Rendered, "thing"> {
  const mins = Math.max(1, Math.round(windowMs / 60_000));
  const when = new Date(last.time).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  const what =
    `${thing} changed ${count} more times within ${mins} minutes (flapping); the alerts were folded into this one.`;
  const text = `${what}\n\nLatest: ${last.what}\n\nAppliance: ${appliance}\nWhen: ${when}\n\n` +
    `What to do: ${last.advice} Something is going back and forth: look for an unstable cause (a loose cable, a failing disk, a service restarting).\n`;
  return {
    subject: `[${appliance}] FLAPPING: ${thing} (${count} alerts folded)`,
    text,
    html: `<!doctype html><html><body><p><strong>${esc(what)}</strong></p><p>Latest: ${
      esc(last.what)
    }</p><p>Appliance: ${esc(appliance)}<br>When: ${esc(when)}</p><p>What to do: ${
      esc(last.advice)
    }</p></body></html>`,
    short: `${appliance}: ${thing} flapping, ${count} alerts folded. Latest: ${last.what}`,
  };
}

function firstWords(s: string, max: number): string {
  return s.length <= max ? s.replace(/\.$/, "") : s.slice(0, max - 1).replace(/\s+\S*$/, "") + "…";
}
