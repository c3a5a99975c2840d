/** Storage module: RAID arrays and disk health monitoring. (To be built: issue 3.) */
import type { Module, ModuleContext } from "../module.ts";

/** Build the storage module from the config. */
export function createStorageModule(_ctx: ModuleContext): Module {
  return { name: "storage", start: () => Promise.resolve(), stop: () => Promise.resolve() };
}
