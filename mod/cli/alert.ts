/**
 * `keepwire alert status|list|test|retry`: the alert outbox of the running daemon
 * (exit 3 when none runs). `test` sends a test message over a channel and prints the
 * server's answer (exit 1 when the server refused it).
 * @module
 */
import type { Command } from "commander";
import { CliError, commandDataDir, type CommonOpts, EXIT, printJson } from "./common.ts";
import { daemonRequest } from "./client.ts";
import type { AlertStatus, TestSendResult } from "../alert/mod.ts";
import { type Delivery, DELIVERY_STATES } from "../alert/outbox.ts";

/** Register the `alert` command group. */
export function registerAlertCommands(program: Command): void {
  const alert = program.command("alert").description(
    "alerts: outbox status, deliveries, test-send a channel, retry failed deliveries",
  );

  alert.command("status")
    .description("deliveries per state, the age of the oldest pending one, channels")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const s = await daemonRequest<AlertStatus>(dataDir, "GET", "/api/alert");
      if (opts.json) return printJson(s);
      console.log(`alerts: ${s.enabled ? "enabled" : "DISABLED"}`);
      console.log(
        Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(", ") +
          (s.oldestPendingMs !== null
            ? `; oldest pending ${Math.round(s.oldestPendingMs / 1000)} s`
            : ""),
      );
      console.log(
        `since start: sent ${s.sent}, failed ${s.failed}, failed attempts ${s.failedAttempts}, resent after restart ${s.resent}`,
      );
      for (const c of s.channels) {
        console.log(
          `  ${c.name.padEnd(16)} ${c.type.padEnd(8)} ${c.target}${
            s.stopped.includes(c.name) ? "  STOPPED (410 Gone)" : ""
          }`,
        );
      }
    });

  alert.command("list")
    .description("deliveries, newest first: id, state, attempts, recipient, subject, last error")
    .option("--status <state>", `only this state (${DELIVERY_STATES.join(", ")})`)
    .option("--recipient <name>", "only this recipient")
    .option("-n, --limit <n>", "at most n", "50")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(
      async (
        opts: CommonOpts & { status?: string; recipient?: string; limit: string; json?: boolean },
      ) => {
        if (opts.status && !(DELIVERY_STATES as readonly string[]).includes(opts.status)) {
          throw new CliError(
            EXIT.USAGE,
            `--status: expected one of ${DELIVERY_STATES.join(", ")}, got ${opts.status}`,
          );
        }
        if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1) {
          throw new CliError(EXIT.USAGE, `--limit: expected a positive number, got ${opts.limit}`);
        }
        const dataDir = await commandDataDir(opts);
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.status) q.set("status", opts.status);
        if (opts.recipient) q.set("recipient", opts.recipient);
        const r = await daemonRequest<{ deliveries: Delivery[] }>(
          dataDir,
          "GET",
          `/api/alert/outbox?${q}`,
        );
        if (opts.json) return printJson(r.deliveries);
        if (!r.deliveries.length) return console.log("no deliveries");
        for (const d of r.deliveries) {
          console.log(
            `${d.id}  ${d.status.padEnd(10)} ${String(d.attempts).padStart(3)}x  ${
              d.recipient.padEnd(12)
            } ${new Date(d.created).toISOString()}  ${d.subject}`,
          );
          if (d.lastError && d.status !== "sent") console.log(`    last error: ${d.lastError}`);
        }
      },
    );

  alert.command("test")
    .description("send a test message over a channel now; prints the server's answer")
    .argument("<channel>", "channel name (alert.channels)")
    .option("--to <address>", "address or phone number (default: the channel's first recipient)")
    .option("--json", "print JSON")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (channel: string, opts: CommonOpts & { to?: string; json?: boolean }) => {
      const dataDir = await commandDataDir(opts);
      const r = await daemonRequest<TestSendResult>(dataDir, "POST", "/api/alert/test", {
        channel,
        ...(opts.to ? { to: opts.to } : {}),
      });
      if (opts.json) printJson(r);
      else {
        console.log(
          `${r.ok ? "accepted" : "REFUSED"} by ${channel}${
            r.to ? ` for ${r.to}` : ""
          } in ${r.ms} ms: ${r.answer}`,
        );
      }
      if (!r.ok) throw new CliError(EXIT.FAILURE, `test over ${channel} failed`);
    });

  alert.command("retry")
    .description("put a failed delivery back in its queue (or every failed one with --all)")
    .argument("[id]", "delivery id (from alert list)")
    .option("--all", "every failed delivery")
    .option("-c, --config <file>", "config file")
    .option("-d, --data <dir>", "data directory")
    .action(async (id: string | undefined, opts: CommonOpts & { all?: boolean }) => {
      if (!id && !opts.all) throw new CliError(EXIT.USAGE, "give a delivery id or --all");
      const dataDir = await commandDataDir(opts);
      if (opts.all) {
        const r = await daemonRequest<{ retried: number }>(
          dataDir,
          "POST",
          "/api/alert/retry-failed",
        );
        return console.log(`${r.retried} failed deliveries queued again`);
      }
      const r = await daemonRequest<{ delivery: Delivery }>(
        dataDir,
        "POST",
        `/api/alert/outbox/${encodeURIComponent(id!)}/retry`,
      );
      console.log(`${r.delivery.id} queued again (${r.delivery.recipient})`);
    });
}
