/**
 * The alert benchmark in CI (bounded: 40 alerts timed, a backlog of 200): time from an
 * event to the SMTP server's receipt through the durable outbox stays within issue 14's
 * target (p99 ≤ 1 s with the server up), and the backlog drains. `deno task bench alert`
 * runs the full form (200 timed, 1,000 in the backlog) for the README's figures.
 */
import { assert } from "./helpers/assert.ts";
import { haveAiosmtpd } from "./alert_servers.ts";
import { ignored } from "./helpers/tools.ts";
import { bench } from "../bench/alert.ts";

const noSmtp = haveAiosmtpd() ? undefined : ignored("missing aiosmtpd (package python3-aiosmtpd)");

Deno.test({
  name: "alert bench (bounded): event → SMTP receipt p99 ≤ 1 s, a backlog of 200 drained",
  ignore: noSmtp !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rows = await bench({ latency: 40, backlog: 200 });
    for (const r of rows) console.log(`${r.name}: ${r.ours} (baseline ${r.baseline})`);
    const p99 = rows.find((r) => r.name.startsWith("event → SMTP receipt p99"));
    assert(p99, "no p99 row");
    const ms = Number.parseFloat(p99.ours);
    assert(Number.isFinite(ms) && ms > 0, `p99 not a figure: ${p99.ours}`);
    assert(ms <= 1000, `p99 ${p99.ours} above the 1 s target`);
    const drained = rows.find((r) => r.name.startsWith("backlog of 200 delivered"));
    assert(drained && Number.parseFloat(drained.ours) > 0, "backlog not drained");
  },
});
