/**
 * sd_notify received on the hub thread (mod/supervisor/notify.ts NotifyHub): bare
 * WATCHDOG=1 only stamps shared memory, everything else reaches the main thread, and a
 * real process subsystem on the hub is still restarted within its heartbeat timeout.
 * Needs: util-linux (setsid), systemd (systemd-notify).
 */
import { join } from "node:path";
import { systemClock } from "../mod/module.ts";
import type { EventInput } from "../mod/events/mod.ts";
import { Supervisor } from "../mod/supervisor/supervisor.ts";
import { defaultRunners } from "../mod/supervisor/mod.ts";
import { WorkerPool } from "../mod/supervisor/worker.ts";
import { NotifyClient, NotifyHub } from "../mod/supervisor/notify.ts";
import { missingTools } from "./helpers/tools.ts";
import {
  assert,
  assertEquals,
  MockEscalation,
  type RecordedEvent,
  spec,
  supConfig,
} from "./supervisor_fakes.ts";

const procOk = missingTools(["systemd-notify", "setsid"]) === undefined;

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("NotifyHub: WATCHDOG=1 stamps the slot, other datagrams reach the handler", async () => {
  const hub = new NotifyHub();
  const client: NotifyClient[] = [];
  try {
    const a = await hub.open("a");
    const b = await hub.open("b");
    const got: string[] = [];
    a.serve((m, raw) => got.push(`a:${raw}|${m.ready ?? false}`));
    b.serve((_m, raw) => got.push(`b:${raw}`));
    assertEquals(a.lastBeat(), null);
    const ca = new NotifyClient(a.address), cb = new NotifyClient(b.address);
    client.push(ca, cb);
    const before = Date.now();
    assert(await ca.send("WATCHDOG=1"));
    await until("a's beat", () => a.lastBeat() !== null, 10_000);
    assert(a.lastBeat()! >= before, "the beat is stamped with the time it arrived");
    assertEquals(b.lastBeat(), null, "a beat on one socket stamps only its own slot");
    assert(await ca.send("READY=1\nSTATUS=hi"));
    assert(await cb.send("WATCHDOG=1\nSTATUS=both"));
    await until("both messages", () => got.length === 2, 10_000);
    assertEquals(got.sort(), ["a:READY=1\nSTATUS=hi|true", "b:WATCHDOG=1\nSTATUS=both"]);
    assertEquals(b.lastBeat(), null, "WATCHDOG=1 with other keys goes to the handler instead");
    // a closed socket's slot is reused without its old beat or handler
    a.close();
    assertEquals(a.lastBeat(), null);
    const c = await hub.open("c");
    c.serve((_m, raw) => got.push(`c:${raw}`));
    assertEquals(c.lastBeat(), null, "a reused slot starts without a beat");
    const cc = new NotifyClient(c.address);
    client.push(cc);
    assert(await cc.send("STATUS=new"));
    await until("c's message", () => got.includes("c:STATUS=new"), 10_000);
    assertEquals(got.filter((g) => g.startsWith("a:")).length, 1);
  } finally {
    for (const c of client) c.close();
    hub.close();
  }
});

Deno.test({
  name: "process on the notify thread: real systemd-notify; restarted when the pings stop",
  ignore: !procOk,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-hub-" });
    const hub = new NotifyHub();
    const pool = new WorkerPool(0);
    const events: RecordedEvent[] = [];
    const sup = new Supervisor({
      specs: [
        spec({
          name: "wd",
          kind: "process",
          module: undefined,
          command: "/bin/sh",
          args: [join(dir, "wd.sh")],
          heartbeat: { intervalMs: 100, timeoutMs: 800 },
          backoff: { initialMs: 20, maxMs: 200, multiplier: 2, jitter: 0, resetAfterMs: 60_000 },
        }),
      ],
      config: supConfig(),
      clock: systemClock,
      publish: (e: EventInput) =>
        void events.push({
          kind: e.kind,
          severity: e.severity ?? "info",
          payload: (e.payload ?? {}) as Record<string, unknown>,
        }),
      runners: defaultRunners(pool, undefined, undefined, hub),
      escalation: new MockEscalation(),
    });
    try {
      // pings for ~1.5 s (twice the timeout: only the hub's stamps keep it ready), then
      // a status, then silence
      await Deno.writeTextFile(
        join(dir, "wd.sh"),
        [
          `systemd-notify --ready`,
          `for i in $(seq 15); do systemd-notify WATCHDOG=1; sleep 0.1; done`,
          `systemd-notify STATUS=silent`,
          `while :; do sleep 1; done`,
        ].join("\n") + "\n",
      );
      await sup.startAll();
      const s = sup.get("wd");
      await until("ready", () => s.state === "ready");
      await until("status over the hub", () => s.info().statusText === "silent");
      assertEquals(s.restarts, 0, "the pings on the hub kept it alive past its timeout");
      await until("heartbeat timeout and restart", () => s.restarts >= 1);
      const t = events.filter((e) => e.kind === "supervisor.transition")
        .map((e) => `${e.payload.from}->${e.payload.to}:${e.payload.cause}`);
      assertEquals(t.slice(0, 4), [
        "stopped->starting:boot",
        "starting->ready:ready",
        "ready->unhealthy:heartbeat-timeout",
        "unhealthy->restarting:heartbeat-timeout",
      ]);
      const hb = events.find((e) => e.payload.cause === "heartbeat-timeout")!;
      const silent = Number(/no heartbeat for (\d+) ms/.exec(String(hb.payload.reason))![1]);
      assert(silent >= 800 && silent < 800 + 1000, `detected after ${silent} ms`);
    } finally {
      await sup.stopAll();
      pool.close();
      hub.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
