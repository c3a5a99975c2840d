/** `keepwire bootenv` commands. (To be built.) */
import type { Command } from "commander";

/** Register the bootenv commands. */
export function registerBootenvCommands(_program: Command): void {
}
