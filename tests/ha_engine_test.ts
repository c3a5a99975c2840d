/**
 * The HA module with the real keepalived, one node alone in a throw-away network
 * namespace (root and keepalived needed): it becomes active and holds the virtual
 * address; a handover and maintenance take it away (FAULT through the track file);
 * keepalived killed with SIGKILL is a fault and restarted; stop removes the address
 * and leaves no keepalived behind. Real time with generous deadlines.
 */
import { validateConfig } from "../mod/config/mod.ts";
import { EventBus } from "../mod/events/mod.ts";
import { systemClock } from "../mod/module.ts";
import { Store } from "../mod/store/mod.ts";
import { setInterfaceCheck } from "../mod/ha/config.ts";
import { createHaModule } from "../mod/ha/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { missingTools } from "./helpers/tools.ts";

const missing = missingTools(["ip", "keepalived", "setpriv"], { root: true });

async function sh(...args: string[]): Promise<string> {
  const o = await new Deno.Command(args[0], {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!o.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
  return new TextDecoder().decode(o.stdout);
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

Deno.test({
  name: "ha engine: real keepalived alone in a netns: active, handover, maintenance, SIGKILL, stop",
  ignore: missing !== undefined,
  fn: async () => {
    const ns = `kwhae_${crypto.randomUUID().slice(0, 6)}`;
    const dataDir = await Deno.makeTempDir({ prefix: "kw-ha-eng-" });
    const store = new Store({ path: ":memory:" });
    const bus = new EventBus({ journal: store });
    const hasVip = async () =>
      (await sh("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", "kt0")).includes("10.231.0.50/");
    let mod: ReturnType<typeof createHaModule> | undefined;
    try {
      await sh("ip", "netns", "add", ns);
      await sh("ip", "-n", ns, "link", "add", "kt0", "type", "veth", "peer", "name", "kt1");
      await sh("ip", "-n", ns, "link", "set", "kt0", "up");
      await sh("ip", "-n", ns, "link", "set", "kt1", "up");
      await sh("ip", "-n", ns, "addr", "add", "10.231.0.11/24", "dev", "kt0");
      const prev = setInterfaceCheck(() => true);
      const config = validateConfig({
        dataDir,
        ha: {
          enabled: true,
          node: { id: "n1", priority: 150, address: "10.231.0.11/24" },
          interface: "kt0",
          virtualAddresses: ["10.231.0.50/24"],
          peers: [{ address: "10.231.0.12" }],
          advertMs: 100,
          failoverHoldMs: 1000,
        },
      });
      setInterfaceCheck(prev);
      mod = createHaModule({ config, store, bus, clock: systemClock }, {
        engineOptions: { wrap: ["ip", "netns", "exec", ns] },
      });
      const m = mod;
      await m.start();
      const pid1 = m.status().engine.pid!;
      assert(pid1 > 0);
      await until("active", () => m.status().role === "active");
      await until("the address on n1", hasVip);

      m.failover("test");
      await until("fault after the handover", () => m.status().role === "fault");
      await until("the address removed", async () => !(await hasVip()));
      // alone, it takes the address back once the handover hold ends
      await until("active again", () => m.status().role === "active");

      m.setMaintenance(true, "test");
      assertEquals(m.status().role, "maintenance");
      await until("the address removed in maintenance", async () => !(await hasVip()));
      await new Promise((r) => setTimeout(r, 600)); // longer than a master-down interval
      assertEquals(m.status().role, "maintenance");
      assert(!(await hasVip()), "a node in maintenance never holds the address");
      m.setMaintenance(false, "test");
      await until("active after maintenance", () => m.status().role === "active");

      // open descriptors on the FIFO (a pending read holds a duplicate of the handle)
      const fifoFds = () =>
        [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
          try {
            return Deno.readLinkSync(`/proc/self/fd/${e.name}`).includes(
              `${dataDir}/ha/notify.fifo`,
            );
          } catch {
            return false;
          }
        }).length;
      const fifoFdsBefore = fifoFds();
      assert(fifoFdsBefore >= 1);
      Deno.kill(pid1, "SIGKILL");
      await until("fault when keepalived died", () => m.status().role === "fault");
      assertEquals(m.status().engine.running, false);
      await until("keepalived restarted", () => m.status().engine.running, 10_000);
      assert(m.status().engine.pid !== pid1);
      await until("active after the restart", () => m.status().role === "active");
      // the notify FIFO is opened once per engine, not once per keepalived start
      const fifoFdsAfter = fifoFds();
      assert(
        fifoFdsAfter <= fifoFdsBefore,
        `no FIFO handle leaked by a keepalived restart (${fifoFdsBefore} -> ${fifoFdsAfter})`,
      );
      await until("the address back", hasVip);
      const kinds = store.events({ module: "ha", limit: 1000 }).map((e) => e.kind);
      for (
        const k of [
          "ha.engine_started",
          "ha.engine_failed",
          "ha.failover_manual",
          "ha.maintenance_changed",
        ]
      ) {
        assert(kinds.includes(k), `${k} in ${kinds.join(",")}`);
      }
      const pid2 = m.status().engine.pid!;
      await m.stop();
      mod = undefined;
      assert(!(await hasVip()), "stop removes the address");
      let alive = true;
      try {
        Deno.kill(pid2, "SIGCONT");
      } catch {
        alive = false;
      }
      assert(!alive, "keepalived is gone after stop");
    } finally {
      await mod?.stop();
      store.close();
      await new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).output();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
