/** `keepwire sub` commands. (To be built.) */
import type { Command } from "commander";

/** Register the sub commands. */
export function registerSubCommands(_program: Command): void {
}
