/**
 * Browser libraries the UI loads, served from their installed npm packages (the version
 * pinned in deno.json / deno.lock), never from a copy kept in this repository.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** Files under /static/ that come from npm packages: name → package path. */
export const VENDOR: Record<string, string> = {
  // idiomorph's classic-script build: defines the global `Idiomorph` used by app.js
  "idiomorph.js": "idiomorph/dist/idiomorph.js",
  // uPlot's classic-script build (global `uPlot`) and its stylesheet: charts.js loads both
  // on pages that hold a chart
  "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
  "uPlot.min.css": "uplot/dist/uPlot.min.css",
};

/** Content type of a file under /static/ by its name. */
export function staticType(name: string): string {
  return name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
}

/**
 * The vendored browser files as `[name, source]`, read once from the npm package. A
 * package that cannot be read becomes a script that says so in the browser console (app.js
 * then falls back to replacing <main> whole), rather than a UI that does not start.
 */
export function vendorFiles(): [string, string][] {
  return Object.entries(VENDOR).map(([name, spec]) => {
    try {
      return [name, Deno.readTextFileSync(require.resolve(spec))];
    } catch (e) {
      // the bundled executable (image/bundle.ts) carries a copy in static/ beside keepwire.js
      try {
        return [name, Deno.readTextFileSync(new URL(`./static/${name}`, import.meta.url))];
      } catch { /* neither */ }
      const why = `keepwire: cannot read npm:${spec} (${e instanceof Error ? e.message : e})`;
      return [
        name,
        name.endsWith(".css") ? `/* ${why} */\n` : `console.warn(${JSON.stringify(why)});\n`,
      ];
    }
  });
}
