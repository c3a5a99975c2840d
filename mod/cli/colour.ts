/**
 * Colour for the CLI: only when the stream is a terminal and `NO_COLOR` is unset or
 * empty (https://no-color.org); `FORCE_COLOR` (non-empty, not "0") forces it on.
 * @module
 */
import type { Severity } from "../events/mod.ts";

/** Should output to this stream be coloured? */
export function colourWanted(
  isTerminal: () => boolean = () => Deno.stdout.isTerminal(),
  env: Record<string, string | undefined> = Deno.env.toObject(),
): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== "0") return true;
  return isTerminal();
}

/** SGR codes by name. */
const SGR = {
  bold: "1",
  dim: "2",
  red: "31",
  green: "32",
  yellow: "33",
  cyan: "36",
  boldRed: "1;31",
} as const;

/** A painter: wraps text in SGR codes when colour is on, returns it unchanged otherwise. */
export type Paint = (style: keyof typeof SGR, text: string) => string;

/** Make a painter for stdout (or for the given decision). */
export function painter(on: boolean = colourWanted()): Paint {
  return (style, text) => on ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text;
}

/** Style of each severity. */
export const SEVERITY_STYLE: Record<Severity, keyof typeof SGR> = {
  critical: "boldRed",
  error: "red",
  warning: "yellow",
  notice: "cyan",
  info: "bold",
  debug: "dim",
};
