/**
 * No import circles in mod/ and hw/: the module graph (as `deno info` resolves it,
 * type-only imports included) restricted to those folders has no strongly connected
 * component larger than one file.
 */
import { assertEquals } from "./helpers/assert.ts";

const root = new URL("../", import.meta.url);

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(new URL(rel, root))) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory && e.name !== "static") await walk(p);
      else if (e.isFile && /\.tsx?$/.test(e.name)) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

interface InfoDep {
  code?: { specifier?: string };
  type?: { specifier?: string };
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDep[];
}

/** The local import graph of mod/ and hw/ (file URL → file URLs it imports). */
export async function importGraph(): Promise<Map<string, Set<string>>> {
  const files = [...await sourceFiles("mod"), ...await sourceFiles("hw")];
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import "${new URL(f, root).href}";`).join("\n") + "\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root.pathname,
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`deno info failed (exit ${out.code})`);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
    const inScope = (s: string) =>
      s.startsWith(new URL("mod/", root).href) ||
      s.startsWith(new URL("hw/", root).href);
    const g = new Map<string, Set<string>>();
    for (const m of info.modules) {
      if (!inScope(m.specifier)) continue;
      const deps = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          if (s && inScope(s)) deps.add(s);
        }
      }
      g.set(m.specifier, deps);
    }
    return g;
  } finally {
    await Deno.remove(entry);
  }
}

/** Strongly connected components with more than one node (Tarjan). */
export function cycles(g: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || g.get(v)?.has(v)) out.push(comp.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) strong(v);
  return out;
}

Deno.test("architecture: no import circles in mod/ and hw/", async () => {
  const g = await importGraph();
  if (g.size < 50) throw new Error(`the graph looks too small (${g.size} files)`);
  const found = cycles(g).map((c) => c.map((s) => s.slice(root.href.length)));
  assertEquals(found, [], `import circles:\n${found.map((c) => c.join(" <-> ")).join("\n")}`);
});

Deno.test("architecture: the cycle finder finds a planted circle", () => {
  const g = new Map([
    ["a", new Set(["b"])],
    ["b", new Set(["c"])],
    ["c", new Set(["a"])],
    ["d", new Set(["a"])],
  ]);
  assertEquals(cycles(g), [["a", "b", "c"]]);
});
