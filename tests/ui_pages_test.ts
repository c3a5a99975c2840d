// Module pages come from the module contract (Module.pages()): the web mounts each page a
// started module declares and lists it in the navigation by its order; nothing is listed
// by hand.
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { validateConfig } from "../mod/config/mod.ts";
import { Runtime } from "../mod/runtime.ts";
import { Users } from "../mod/web/users.ts";
import { navigation } from "../mod/web/ui/pages.tsx";
import type { Module, ModulePage } from "../mod/module.ts";
import { RESERVED_HOLD_REASONS, supervisorHoldReason } from "../mod/bypass/hold_reasons.ts";

function navOf(html: string): { href: string; label: string }[] {
  const nav = /<nav class="main">([\s\S]*?)<\/nav>/.exec(html)?.[1] ?? "";
  return [...nav.matchAll(/<a href="([^"]+)"[^>]*>([^<]*)<\/a>/g)].map((m) => ({
    href: m[1],
    label: m[2].replaceAll("&amp;", "&"),
  }));
}

Deno.test("ui pages: the navigation merges the web's pages and the modules' by order", () => {
  const page = (path: string, label: string, order: number): ModulePage => ({
    path,
    label,
    order,
    render: () => null,
  });
  assertEquals(
    navigation([page("/b", "B", 500), page("/a", "A", 100), page("/late", "Late", 5000)]).map((
      n,
    ) => n.label),
    ["Dashboard", "A", "B", "Events", "Users & tokens", "Settings", "Late"],
  );
  // a page that would be unreachable (its path taken) is refused at start, by name
  assertThrows(() => navigation([page("/settings", "Mine", 1)]), Error, "/settings");
  assertThrows(() => navigation([page("/x", "X", 1), page("/x", "Y", 2)]), Error, "/x");
  assertThrows(() => navigation([page("no-slash", "X", 1)]), Error, "no-slash");
});

Deno.test("ui pages: a module's declared page is mounted and in the nav; built-in pages come from their modules", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kw-pages-" });
  const widgets: Module = {
    name: "widgets",
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    pages: () => [{
      path: "/widgets",
      label: "Widgets",
      title: "All the widgets",
      order: 450,
      live: false,
      render: async (d, who) => {
        const st = await d.internal<{ name: string }>("/api/status");
        return `widgets of ${st?.name} for ${who?.role}`;
      },
    }],
  };
  const rt = new Runtime(
    validateConfig({
      identity: { name: "gw-pages" },
      dataDir: dir,
      governor: { enabled: false },
      web: { listen: "127.0.0.1:0" },
    }),
    { extraModules: () => [widgets] },
  );
  try {
    await rt.start();
    const { token } = new Users(rt.store).createToken("pages", "admin");
    const get = (p: string) =>
      fetch(`http://${rt.web!.address}${p}`, { headers: { authorization: `Bearer ${token}` } });
    const res = await get("/widgets");
    assertEquals(res.status, 200);
    const html = await res.text();
    assert(html.includes("widgets of gw-pages for admin"), "the page's render did not run");
    assert(html.includes("<title>All the widgets — gw-pages</title>"), "title not used");
    assert(html.includes('data-live="off"'), "live: false not honoured");
    const nav = navOf(html);
    assertEquals(nav.map((n) => n.label), [
      "Dashboard",
      "Subsystems",
      "Bypass",
      "Storage",
      "Charts",
      "HA",
      "Handoff",
      "Widgets",
      "Alerts",
      "Update",
      "Events",
      "Users & tokens",
      "Settings",
    ]);
    // every page the nav lists answers, and the module pages are the ones their modules declare
    for (const n of nav) assertEquals((await get(n.href)).status, 200, n.href);
    const declared = rt.modulePages().map((p) => p.path);
    for (
      const p of ["/subsystems", "/bypass", "/storage", "/charts", "/ha", "/alerts", "/update"]
    ) {
      assert(declared.includes(p), `${p} is not declared by a module`);
    }
    assertEquals((await get("/nowhere")).status, 404);
    // the bypass page names keepwire's own hold reasons from the one contract (hold_reasons.ts)
    const bypass = await (await get("/bypass")).text();
    for (const r of [...RESERVED_HOLD_REASONS, supervisorHoldReason("NAME")]) {
      assert(bypass.includes(r), `the bypass page does not name the hold reason ${r}`);
    }
  } finally {
    await rt.stop("test done");
    await Deno.remove(dir, { recursive: true });
  }
});
