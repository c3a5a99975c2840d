/** The update module's public shape, apart from its construction (routes and CLI use it). */
import type { Module } from "../module.ts";
import type { ActivationStatus } from "./activation.ts";
import type { InstallResult } from "./install.ts";
import type { UpdateService } from "./service.ts";
import type { UpdateFullStatus } from "./status.ts";
import type { ByteSource } from "./stream.ts";

/** The update module as other parts (routes, CLI, tests) use it. */
export interface UpdateModule extends Module {
  /** The service (install, status, marks). */
  readonly service: UpdateService;
  /** Activation state and gate. */
  activation(): ActivationStatus | null;
  /** Install from a stream (upload). */
  installStream(
    src: ByteSource,
    what: string,
    opts: { allowDowngrade?: boolean },
  ): Promise<InstallResult>;
  /** Install from a file or URL. */
  installFrom(fileOrUrl: string, opts: { allowDowngrade?: boolean }): Promise<InstallResult>;
  /** Activate the installed slot (bypass hold, then switch). */
  activate(): Promise<{ target: string; version: string | null }>;
  /** Status of slots, progress, history and gate. */
  fullStatus(): Promise<UpdateFullStatus>;
}
