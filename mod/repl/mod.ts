/**
 * Replication of the store from the primary to the standby (docs/ha.md, "Replication"):
 * the engine ({@link Replicator}, `engine.ts`), the registry of replicated tables
 * (`registry.ts`: `registerTables`), the HTTP transport over the HA peer link
 * (`http.ts`), and the module the runtime wires to the HA role (`module.ts`).
 * @module
 */
export * from "./engine.ts";
export * from "./errors.ts";
export { REPL_EVENTS } from "./events.ts";
export { decodeFrames, encodeFrame, type Frame, peekChannel } from "./frame.ts";
export * from "./transport.ts";
export * from "./registry.ts";
export * from "./channels.ts";
export { type ReplConfig, replConfigSchema } from "./config.ts";
export {
  createReplModule,
  type PeerLinkAccess,
  type ReplDeps,
  type ReplModule,
  type ReplModuleStatus,
} from "./module.ts";
export {
  listTails,
  readTail,
  ReplTailError,
  type TailChange,
  type TailContents,
  tailDirOf,
  type TailListEntry,
  type TailSummary,
} from "./tail.ts";
