/**
 * The page contract: what a module's UI page is (`Module.pages()` in mod/module.ts) and
 * what a page is rendered with. This file imports no module of ours (only hono's JSX
 * types), so mod/module.ts can name it and a module's `page.tsx` can implement it without
 * an import circle.
 * @module
 */
import type { Child } from "hono/jsx";

/** Calls the app's own JSON API in-process (as the trusted local caller); null on an error. */
export type Internal = <T = Record<string, unknown>>(path: string) => Promise<T | null>;

/** What every page is rendered with. */
export interface PageDeps {
  /** Appliance name. */
  appliance: string;
  /** In-process API calls. */
  internal: Internal;
  /** UI refresh interval now (the governor slows it under load). */
  refreshMs: () => number;
  /** Is an admin set up yet? */
  hasAdmin: () => boolean;
  /** Effective config (for the settings page; secrets never included). */
  config: () => unknown;
  /** keepwire version. */
  version: string;
}

/** Who is looking at a page (the signed-in principal), or null. */
export interface PageViewer {
  /** User name, `token:NAME`, or `local`. */
  readonly name: string;
  /** `admin` may act; `viewer` only reads (pages show no buttons a viewer may not use). */
  readonly role: string;
}

/**
 * One page a module contributes to the web UI. The web module mounts `render` at `path`
 * and lists `label` in the navigation, ordered by `order` together with its own pages
 * (dashboard 0, events 800, users 900, settings 1000).
 */
export interface ModulePage {
  /** URL path, e.g. `/bypass`; must not collide with another page's. */
  readonly path: string;
  /** Navigation label, e.g. `Bypass`. */
  readonly label: string;
  /** Page title (the browser tab), e.g. `High availability`; default: the label. */
  readonly title?: string;
  /** Place in the navigation (lower first). */
  readonly order: number;
  /** Refresh live from the event stream (morph `<main>`); default true. */
  readonly live?: boolean;
  /** The page body (what goes inside `<main>`). */
  render(d: PageDeps, who: PageViewer | null): Promise<Child> | Child;
}
