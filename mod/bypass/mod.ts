/** Bypass module: segments, named holds (persisted), mode read-back. (To be built: issue 3.) */
import type { Module, ModuleContext } from "../module.ts";

/** Build the bypass module from the config. */
export function createBypassModule(_ctx: ModuleContext): Module {
  return { name: "bypass", start: () => Promise.resolve(), stop: () => Promise.resolve() };
}
