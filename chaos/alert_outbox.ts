/**
 * Chaos: kill -9 of `keepwire run` while alerts are queued or being sent.
 *
 * A real `keepwire run` (a child process) sends an alert for each of its starts
 * (`runtime.started`, routed by a rule) to aiosmtpd. Each injection starts it with the SMTP
 * server down, slow (DATA held 2 s, so the kill often lands during a send) or up, and kills it
 * with SIGKILL at a random moment 0.2–2.5 s after it runs. Finally it runs once more with the
 * server up until its outbox is empty and stops in order. Invariants: every `runtime.started`
 * in the journal has its outbox row, every row is sent, every sent id arrived at the server;
 * duplicates (the same id received twice) are counted and at most one per kill.
 */
import { join } from "node:path";
import { kwDaemon } from "../tests/helpers/cli.ts";
import { daemonRequest } from "../mod/cli/client.ts";
import { Store } from "../mod/store/mod.ts";
import { haveAiosmtpd, type SmtpServer, startSmtp, waitFor } from "../tests/alert_servers.ts";
import type { Delivery } from "../mod/alert/outbox.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";

async function run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult> {
  if (!haveAiosmtpd()) {
    throw new Error("python3-aiosmtpd is needed (apt-get install python3-aiosmtpd)");
  }
  const kills = opts.bounded ? 6 : 40;
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-alert-" });
  const mailDir = join(dir, "mail");
  await Deno.mkdir(mailDir);
  const data = join(dir, "data");
  const cfg = join(dir, "keepwire.json");
  let smtp: SmtpServer | undefined = await startSmtp({ dir: mailDir });
  const port = smtp.port;
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      identity: { name: "chaos" },
      governor: { enabled: false },
      web: { listen: "127.0.0.1:0" },
      alert: {
        channels: {
          mail: {
            type: "email",
            host: "127.0.0.1",
            port,
            security: "none",
            from: "kw@chaos.example.org",
            timeoutMs: 10_000,
          },
        },
        recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
        rules: [{ kinds: ["runtime.started"], minSeverity: "info", recipients: ["ops"] }],
        retry: { initialMs: 200, maxMs: 1000 },
        // every start is an alert about the same thing: no flap folding here
        flap: { changes: 1000, windowMs: 60_000 },
        // nor the default 30 per hour (it holds across restarts)
        rateLimit: { count: 1000, perMs: 60_000 },
      },
    }),
  );
  const args = ["--config", cfg, "--data", data];
  const modes: string[] = [];
  try {
    for (let i = 0; i < kills; i++) {
      const mode = ["down", "slow", "up"][Math.floor(Math.random() * 3)];
      modes.push(mode);
      if (mode === "down" && smtp) {
        await smtp.stop();
        smtp = undefined;
      } else if (mode !== "down" && !smtp) smtp = await startSmtp({ dir: mailDir, port });
      await smtp?.delay(mode === "slow" ? 2 : null);
      const d = await kwDaemon(args);
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 2300));
      d.child.kill("SIGKILL");
      await d.child.status;
      opts.log(`kill ${i + 1}/${kills}: smtp ${mode}`);
    }
    smtp ??= await startSmtp({ dir: mailDir, port });
    await smtp.delay(null);
    const last = await kwDaemon(args);
    await waitFor("the outbox drained", async () => {
      const r = await daemonRequest<{ deliveries: Delivery[] }>(
        data,
        "GET",
        "/api/alert/outbox?limit=1000",
      );
      return r.deliveries.length === kills + 1 && r.deliveries.every((x) => x.status === "sent");
    }, 120_000).catch((e) => opts.log(String(e)));
    last.child.kill("SIGTERM");
    await last.child.status;
    // slow DATA held by killed runs may still land
    await new Promise((r) => setTimeout(r, 2500));
    const store = new Store({ path: join(data, "keepwire.db") });
    const started = store.events({ kind: "runtime.started", limit: 10_000 });
    const rows = store.db.prepare("SELECT id, event_id, status FROM alert_outbox").all() as {
      id: string;
      event_id: number;
      status: string;
    }[];
    store.close();
    const got = smtp.mails().map((m) => m.alertId);
    const unique = new Set(got);
    const lostEvents = started.filter((e) => !rows.some((r) => Number(r.event_id) === e.id)).length;
    const lostRows = rows.filter((r) => r.status !== "sent" || !unique.has(String(r.id))).length;
    const duplicates = got.length - unique.size;
    const lost = lostEvents + lostRows + (duplicates > kills ? 1 : 0);
    return {
      injected: kills,
      survived: lost === 0 ? kills : Math.max(0, kills - lost),
      lost,
      notes: `${started.length} alerts (smtp ${modes.filter((m) => m === "down").length} down / ${
        modes.filter((m) => m === "slow").length
      } slow / ${
        modes.filter((m) => m === "up").length
      } up at the kills), ${unique.size} delivered, ${duplicates} duplicate(s) (bound ${kills})`,
    };
  } finally {
    await smtp?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "alert_outbox",
  description:
    "kill -9 of keepwire run with alerts queued (SMTP down) or being sent (SMTP slow): every alert delivered after restart, duplicates at most one per kill",
  run,
};
