/** `keepwire bypass` commands. (To be built.) */
import type { Command } from "commander";

/** Register the bypass commands. */
export function registerBypassCommands(_program: Command): void {
}
