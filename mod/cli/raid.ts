/** `keepwire raid` commands. (To be built.) */
import type { Command } from "commander";

/** Register the raid commands. */
export function registerRaidCommands(_program: Command): void {
}
