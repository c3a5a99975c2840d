// A real Prometheus (Debian package `prometheus`) scrapes a running keepwire with a viewer
// token and sees a series of every part: subsystems, bypass, RAID, disks, update slots,
// and the process itself. Queried through Prometheus's HTTP API, as a dashboard would.
import { assert, assertEquals } from "../helpers/assert.ts";
import { missingTools, which } from "../helpers/tools.ts";
import { startTestRuntime } from "../helpers/runtime.ts";
import { Users } from "../../mod/web/users.ts";

const missing = missingTools(["prometheus"]);
const WORKER = new URL("../../examples/heartbeat_worker.ts", import.meta.url).pathname;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: "prometheus scrapes keepwire with a viewer token and sees every part",
  ignore: missing !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kw-prom-" });
    await Deno.writeTextFile(
      `${dir}/bootenv.json`,
      JSON.stringify({ ORDER: "A B", A_OK: "1", A_TRY: "1", B_OK: "0", B_TRY: "0" }),
    );
    await Deno.writeTextFile(`${dir}/A.img`, "factory\n");
    const t = await startTestRuntime({
      subsystems: [{ name: "engine", kind: "worker", module: WORKER }],
      update: {
        compatible: "acme-gw",
        bootedSlot: "A",
        cmdline: `${dir}/no-cmdline`,
        bootloader: { backend: "file", file: `${dir}/bootenv.json` },
        slots: {
          rootfs: {
            a: { device: `${dir}/A.img`, bootname: "A" },
            b: { device: `${dir}/B.img`, bootname: "B" },
          },
        },
        activation: { mode: "restart", healthGateMs: 0 },
      },
    });
    let prom: Deno.ChildProcess | undefined;
    let log = "";
    try {
      const { token } = new Users(t.rt.store).createToken("prometheus", "viewer");
      const anon = await fetch(`${t.base}/metrics`);
      await anon.body?.cancel();
      assert(
        anon.status === 401 || anon.status === 403,
        `/metrics without a token: ${anon.status}`,
      );
      // one restart, so the last-restart time is set
      const r = await t.api("/api/subsystems/engine/restart", { method: "POST" });
      await r.body?.cancel();
      assert(r.ok, `restart: ${r.status}`);

      const target = new URL(t.base).host;
      await Deno.writeTextFile(
        `${dir}/prometheus.yml`,
        [
          "global:",
          "  scrape_interval: 1s",
          "  scrape_timeout: 1s",
          "scrape_configs:",
          "  - job_name: keepwire",
          "    authorization:",
          "      type: Bearer",
          `      credentials: ${token}`,
          "    static_configs:",
          `      - targets: ["${target}"]`,
          "",
        ].join("\n"),
      );
      const port = freePort();
      prom = new Deno.Command(which("prometheus")!, {
        args: [
          `--config.file=${dir}/prometheus.yml`,
          `--storage.tsdb.path=${dir}/tsdb`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const dec = new TextDecoder();
      const pump = async (s: ReadableStream<Uint8Array>) => {
        for await (const c of s) log += dec.decode(c);
      };
      pump(prom.stdout);
      pump(prom.stderr);
      const api = `http://127.0.0.1:${port}/api/v1`;
      const query = async (q: string): Promise<Sample[]> => {
        const res = await fetch(`${api}/query?query=${encodeURIComponent(q)}`);
        const body = await res.json();
        assertEquals(body.status, "success", JSON.stringify(body));
        return body.data.result as Sample[];
      };

      // wait, with a deadline, for the first successful scrape
      const deadline = Date.now() + 120_000;
      for (;;) {
        const up = await query('up{job="keepwire"}').catch(() => [] as Sample[]);
        if (up.length && up[0].value[1] === "1") {
          const n = await query("count(keepwire_subsystem_state)").catch(() => [] as Sample[]);
          if (n.length) break;
        }
        assert(
          Date.now() < deadline,
          `no successful scrape within 120 s; prometheus said:\n${log}`,
        );
        await new Promise((r) => setTimeout(r, 250));
      }

      const one = async (q: string): Promise<Sample[]> => {
        const res = await query(q);
        assert(res.length > 0, `no series for ${q}`);
        return res;
      };
      const value = (s: Sample[]) => Number(s[0].value[1]);
      // subsystems: state, restarts, last restart
      assertEquals(
        value(await one('keepwire_subsystem_state{subsystem="engine",state="ready"}')) +
          value(await one('keepwire_subsystem_state{subsystem="engine",state="restarting"}')) +
          value(await one('keepwire_subsystem_state{subsystem="engine",state="starting"}')),
        1,
      );
      // (an operator's restart is not counted as a failure restart, but it is the last restart)
      assert(value(await one('keepwire_subsystem_restarts_total{subsystem="engine"}')) >= 0);
      const last = value(
        await one('keepwire_subsystem_last_restart_timestamp_seconds{subsystem="engine"}'),
      );
      assert(Math.abs(last - Date.now() / 1000) < 600, `last restart at ${last}`);
      // bypass: exactly one mode per segment, holds
      assertEquals(
        value(await one('sum by (segment) (keepwire_bypass_segment_mode{segment="seg0"})')),
        1,
      );
      await one('keepwire_bypass_holds{segment="seg0"}');
      // RAID and disks
      assertEquals(value(await one('keepwire_raid_array_health{array="md1",health="ok"}')), 1);
      await one("keepwire_raid_array_degraded_members");
      await one("keepwire_raid_array_sync_progress_ratio");
      await one('keepwire_disk_smart_health{health="ok"} == 1');
      assert(value(await one("keepwire_disk_temperature_celsius")) > 0);
      // update slots and the booted version
      assertEquals(value(await one('keepwire_update_slot_state{slot="A",state="good"}')), 1);
      assertEquals(value(await one('keepwire_update_slot_state{slot="B",state="bad"}')), 1);
      assertEquals((await one("keepwire_update_booted_info"))[0].metric.slot, "A");
      // the process itself
      assert(value(await one("keepwire_process_cpu_seconds_total")) > 0);
      assert(value(await one("keepwire_process_resident_memory_bytes")) > 1e6);
      assert(value(await one("keepwire_process_event_loop_lag_seconds")) >= 0);
    } finally {
      if (prom) {
        prom.kill("SIGTERM");
        await prom.status;
      }
      await t.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
