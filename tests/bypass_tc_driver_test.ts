/**
 * tc driver with a recording tool runner that simulates the kernel's filter and
 * link state (the real thing runs in tests/e2e/bypass_tc_test.ts as root).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./helpers/assert.ts";
import { TC_BYPASS_HANDLE, TcBypassDriver } from "../hw/bypass/tc.ts";
import { BypassDriverError } from "../hw/bypass/types.ts";
import type { BypassToolRunner } from "../hw/bypass/exec.ts";

/** A tiny simulated kernel: links, ingress qdiscs, switch filters. */
function fakeKernel(links: string[]) {
  const up = new Map(links.map((l) => [l, true]));
  const ingress = new Set<string>();
  const redirect = new Map<string, string>();
  const calls: string[] = [];
  const filterJson = (dev: string) =>
    redirect.has(dev)
      ? JSON.stringify([
        { protocol: "all", pref: 1, kind: "u32", chain: 0 },
        { protocol: "all", pref: 1, kind: "u32", chain: 0, options: { fh: "800:", ht_divisor: 1 } },
        {
          protocol: "all",
          pref: 1,
          kind: "u32",
          chain: 0,
          options: {
            fh: TC_BYPASS_HANDLE,
            order: 2048,
            actions: [{
              order: 1,
              kind: "mirred",
              mirred_action: "redirect",
              direction: "egress",
              to_dev: redirect.get(dev),
            }],
          },
        },
      ])
      : "[]";
  const run: BypassToolRunner = (cmd, args, opts = {}) => {
    calls.push(
      `${cmd} ${args.join(" ")}${
        opts.stdin ? ` <<${opts.stdin.trim().split("\n").join(" | ")}` : ""
      }`,
    );
    const a = args.join(" ");
    if (cmd === "ip" && a.endsWith("-j link show")) {
      return Promise.resolve({
        code: 0,
        stdout: JSON.stringify(
          [...up].map(([n, u]) => ({ ifname: n, flags: u ? ["BROADCAST", "UP"] : ["BROADCAST"] })),
        ),
        stderr: "",
      });
    }
    const lines = (opts.stdin ?? "").trim().split("\n");
    if (cmd === "ip" && a.endsWith("-batch -")) {
      for (const l of lines) {
        const m = /^link set (\S+) (up|down)$/.exec(l);
        if (!m) return Promise.resolve({ code: 1, stdout: "", stderr: `bad: ${l}` });
        up.set(m[1], m[2] === "up");
      }
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    }
    if (cmd === "tc" && a.endsWith("-j -batch -")) {
      const out = lines.map((l) => {
        let m = /^filter show dev (\S+) ingress$/.exec(l);
        if (m) return filterJson(m[1]);
        m = /^qdisc show dev (\S+)$/.exec(l);
        if (m) {
          return JSON.stringify(ingress.has(m[1]) ? [{ kind: "ingress" }] : [{ kind: "noqueue" }]);
        }
        return "";
      });
      return Promise.resolve({ code: 0, stdout: out.join("\n") + "\n", stderr: "" });
    }
    if (cmd === "tc" && a.endsWith("-batch -")) {
      for (const l of lines) {
        let m = /^qdisc add dev (\S+) ingress$/.exec(l);
        if (m) {
          ingress.add(m[1]);
          continue;
        }
        m =
          /^filter (add|replace) dev (\S+) ingress prio 1 handle 800::800 protocol all u32 match u32 0 0 action mirred egress redirect dev (\S+)$/
            .exec(l);
        if (!m || !ingress.has(m[2])) {
          return Promise.resolve({ code: 2, stdout: "", stderr: `Command failed -:1 (${l})` });
        }
        redirect.set(m[2], m[3]);
      }
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    }
    return Promise.resolve({ code: 1, stdout: "", stderr: `unexpected ${cmd} ${a}` });
  };
  return { up, ingress, redirect, calls, run };
}

Deno.test("tc driver: open installs the switch point in bypass; a switch is ONE tc -batch of two replaces", async () => {
  const k = fakeKernel(["lo", "pa", "pb", "ia", "ib"]);
  const d = new TcBypassDriver({
    ports: ["pa", "pb"],
    engine: ["ia", "ib"],
    netns: "app",
    run: k.run,
  });
  const rep = await d.open();
  assertStringIncludes(rep.warnings[0], "in bypass (power-up state)");
  assertEquals([...k.redirect], [["pa", "pb"], ["pb", "pa"], ["ia", "pa"], ["ib", "pb"]]);
  assert(
    k.calls.every((c) =>
      c.includes(" -n app ") || c.startsWith("ip -n app") || c.startsWith("tc -n app")
    ),
  );
  assertEquals(await d.readMode(), "bypass");
  k.calls.length = 0;
  await d.setMode("inline");
  assertEquals(
    k.calls[0],
    `tc -n app -batch - <<${d.filterLine("replace", "pa", "ia")} | ${
      d.filterLine("replace", "pb", "ib")
    }`,
  );
  assertEquals(await d.readMode(), "inline");
  k.calls.length = 0;
  await d.setMode("bypass");
  assertEquals(k.calls.length, 1, "bypass ↔ inline needs a single exec");
  assertEquals(await d.readMode(), "bypass");
  // A restart of keepwire: open leaves a working setup alone.
  k.calls.length = 0;
  const d2 = new TcBypassDriver({
    ports: ["pa", "pb"],
    engine: ["ia", "ib"],
    netns: "app",
    run: k.run,
  });
  assertEquals((await d2.open()).warnings, []);
  assert(!k.calls.some((c) => c.includes("replace") || c.includes(" add ")), k.calls.join("\n"));
});

Deno.test("tc driver: disconnect = both ports down; back to inline brings them up", async () => {
  const k = fakeKernel(["pa", "pb", "ia", "ib"]);
  const d = new TcBypassDriver({ ports: ["pa", "pb"], engine: ["ia", "ib"], run: k.run });
  await d.open();
  await d.setMode("disconnect");
  assertEquals([k.up.get("pa"), k.up.get("pb")], [false, false]);
  assertEquals(await d.readMode(), "disconnect");
  await d.setMode("inline");
  assertEquals([k.up.get("pa"), k.up.get("pb")], [true, true]);
  assertEquals(await d.readMode(), "inline");
});

Deno.test("tc driver: half-switched filters, one port down and missing interfaces are errors", async () => {
  const k = fakeKernel(["pa", "pb", "ia", "ib"]);
  const d = new TcBypassDriver({ ports: ["pa", "pb"], engine: ["ia", "ib"], run: k.run });
  await d.open();
  k.redirect.set("pa", "ia");
  await assertRejects(() => d.readMode(), BypassDriverError, "switch filters point pa→ia, pb→pa");
  k.up.set("pb", false);
  await assertRejects(() => d.readMode(), BypassDriverError, "only one port is up");
  const missing = new TcBypassDriver({ ports: ["pa", "px"], engine: ["ia", "ib"], run: k.run });
  await assertRejects(() => missing.open(), BypassDriverError, "interface(s) px not found");
  await assertRejects(() => d.setMode("tap"), BypassDriverError, "tap is not supported");
  const caps = await d.capabilities();
  assertEquals(caps.readBack, "kernel");
  assertEquals(caps.watchdog, false);
});
