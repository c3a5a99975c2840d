/**
 * Alert bench (`deno task bench alert`): time from an event's publish to the SMTP server's
 * receipt (its 250 answer, after it stored the mail) through the durable outbox, p50/p99,
 * next to a direct nodemailer send to the same server in the same run (no outbox, no
 * store); and outbox throughput: events routed into the store per second, and mails
 * delivered per second from a backlog, next to direct sequential sends.
 * The SMTP server is aiosmtpd (python3-aiosmtpd), as in the tests.
 * @module
 */
// @ts-types="@types/nodemailer"
import nodemailer from "nodemailer";
import { validateConfig } from "../mod/config/mod.ts";
import type { ConfigInput } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { Store } from "../mod/store/mod.ts";
import { systemClock } from "../mod/module.ts";
import { AlertModule } from "../mod/alert/mod.ts";
import { haveAiosmtpd, startSmtp, waitFor } from "../tests/alert_servers.ts";
import { type BenchRow, percentile } from "./types.ts";

const ms = (x: number) => `${x.toFixed(1)} ms`;

/**
 * Run the bench; rows for the table. `latency` alerts are timed one by one, a backlog of
 * `backlog` is drained (the CI's bounded form, tests/alert_bench_test.ts, runs fewer).
 */
export async function bench(
  opts: { latency?: number; backlog?: number } = {},
): Promise<BenchRow[]> {
  const N_LATENCY = opts.latency ?? 200;
  const N_BACKLOG = opts.backlog ?? 1000;
  if (!haveAiosmtpd()) {
    throw new Error("python3-aiosmtpd is needed (apt-get install python3-aiosmtpd)");
  }
  const smtp = await startSmtp();
  const dir = await Deno.makeTempDir({ prefix: "kw_alert_bench_" });
  const store = new Store({ path: `${dir}/keepwire.db` });
  const bus = new EventBus({ journal: store });
  const config = validateConfig({
    identity: { name: "bench" },
    alert: {
      channels: {
        mail: {
          type: "email",
          host: "127.0.0.1",
          port: smtp.port,
          security: "none",
          from: "kw@bench.example.org",
        },
      },
      recipients: [{ name: "ops", channel: "mail", to: "ops@example.org" }],
      rateLimit: { count: 1_000_000, perMs: 60_000 },
      flap: { changes: 1_000_000, windowMs: 60_000 },
    },
  } as unknown as ConfigInput);
  const mod = new AlertModule({ config, store, bus, clock: systemClock });
  await mod.start();
  const delivered = new Map<string, number>();
  bus.subscribe((e) => {
    if (e.kind === "alert.delivered") delivered.set(String(e.payload.id), performance.now());
  });
  const publish = (i: number) =>
    bus.publish({
      module: "storage",
      kind: "storage.array_degraded",
      severity: "warning",
      payload: {
        array: `md${i}`,
        health: "degraded",
        level: "raid1",
        degradedDisks: 1,
        mdadm: "DegradedArray",
      },
    });
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: smtp.port,
    ignoreTLS: true,
  });
  try {
    // warm up both paths
    publish(-1);
    await mod.idle(30_000);
    await transport.sendMail({
      from: "kw@bench.example.org",
      to: "ops@example.org",
      subject: "w",
      text: "w",
    });

    // latency: one event at a time, publish → 250 from the server, interleaved with a
    // direct send so both see the same machine load
    const ours: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < N_LATENCY; i++) {
      const t0 = performance.now();
      publish(i);
      const id = mod.deliveries({ limit: 1 })[0].id;
      await waitFor("delivered", () => delivered.has(id), 30_000);
      ours.push(delivered.get(id)! - t0);
      const t1 = performance.now();
      await transport.sendMail({
        from: "kw@bench.example.org",
        to: "ops@example.org",
        subject: `direct ${i}`,
        text: "direct send",
        html: "<p>direct send</p>",
      });
      base.push(performance.now() - t1);
    }

    // throughput: route a burst into the outbox, then drain it
    const sentBefore = mod.status().sent;
    const t0 = performance.now();
    for (let i = 0; i < N_BACKLOG; i++) publish(100_000 + i);
    const enqMs = performance.now() - t0;
    await waitFor("backlog drained", () => mod.status().sent - sentBefore >= N_BACKLOG, 600_000);
    const drainMs = performance.now() - t0;
    const t1 = performance.now();
    for (let i = 0; i < 200; i++) {
      await transport.sendMail({
        from: "kw@bench.example.org",
        to: "ops@example.org",
        subject: `d${i}`,
        text: "x",
      });
    }
    const directRate = 200 / ((performance.now() - t1) / 1000);
    const drainRate = N_BACKLOG / (drainMs / 1000);
    const p = (xs: number[], q: number) => percentile(xs, q);
    return [
      {
        name: `event → SMTP receipt p50 (${N_LATENCY} alerts)`,
        ours: ms(p(ours, 50)),
        baseline: `${ms(p(base, 50))} (direct nodemailer send)`,
        ratio: (p(ours, 50) / p(base, 50)).toFixed(2),
      },
      {
        name: "event → SMTP receipt p99",
        ours: ms(p(ours, 99)),
        baseline: `${ms(p(base, 99))} (direct nodemailer send)`,
        ratio: (p(ours, 99) / p(base, 99)).toFixed(2),
        target: "≤ 1000 ms",
      },
      {
        name: `events routed into the durable outbox (${N_BACKLOG})`,
        ours: `${Math.round(N_BACKLOG / (enqMs / 1000))} /s`,
        baseline: "-",
        ratio: "-",
      },
      {
        name: `backlog of ${N_BACKLOG} delivered`,
        ours: `${drainRate.toFixed(0)} mails/s`,
        baseline: `${directRate.toFixed(0)} mails/s (direct sequential sends)`,
        ratio: (drainRate / directRate).toFixed(2),
      },
    ];
  } finally {
    transport.close();
    await mod.stop();
    store.close();
    await smtp.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { printTable } = await import("./types.ts");
  printTable("alert", await bench());
}
