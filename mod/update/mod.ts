/**
 * The updater module: signed streaming `.kwb` bundles installed into the other
 * slot, activation with the bypass held, a health gate that commits or falls
 * back. Built with `createUpdateModule(ctx, deps)`; the bypass and supervisor
 * are injected through narrow interfaces.
 * @module
 */
import type { Hono } from "hono";
import type { MetricFamily } from "../web/metrics.ts";
import { VERSION } from "../version.ts";
import { updateMetrics } from "./metrics.ts";
import type { BootEnv } from "../../hw/boot/types.ts";
import type { ModuleContext, PartHealth } from "../module.ts";
import { UPDATE_PAGE } from "./page.tsx";
import { Activation, type BypassHolds, type HealthSource } from "./activation.ts";
import { errorMessage, UpdateError } from "./errors.ts";
import { updateRoutes } from "./routes.ts";
import { UpdateService, type UpdateStatusView } from "./service.ts";
import type { UpdateModuleStatus } from "./status.ts";
import type { DetectInputs } from "./slots.ts";
import type { PublicKey } from "./bundle.ts";

export { UPDATE_ERROR_STATUS, UpdateError, type UpdateErrorCode } from "./errors.ts";
export { UPDATE_EVENTS, type UpdateEventKind } from "./events.ts";
export {
  GATE_TRANSITIONS,
  TRANSITIONS as UPDATE_TRANSITIONS,
  UPDATE_STATES,
  type UpdateState,
} from "./state.ts";
export { UpdateService, type UpdateStatusView } from "./service.ts";
export { type BypassHolds, type HealthSource, UPDATE_HOLD } from "./activation.ts";
export type { UpdateModule } from "./types.ts";
import type { UpdateModule } from "./types.ts";

/** What the composition root (or a test) injects. */
export interface UpdateModuleDeps {
  /** Bypass holds (the bypass module; absent: no bypass hardware). */
  bypass?: BypassHolds;
  /** Health gate source (the supervisor; absent: the gate only waits `healthGateMs`). */
  health?: HealthSource;
  /** Boot env (default: from `update.bootloader`). */
  bootEnv?: BootEnv;
  /** Booted-slot detection inputs. */
  detect?: DetectInputs;
  /** Keyring (default: `update.keyring`). */
  keyring?: PublicKey[];
  /** Leave the process with this code (restart mode; default Deno.exit after a short delay). */
  exit?: (code: number) => void;
  /** Run the reboot command (reboot mode). */
  reboot?: (argv: string[]) => Promise<void>;
  /** Skip the health gate at start (tests driving it by hand). */
  noGate?: boolean;
}

async function runReboot(argv: string[]): Promise<void> {
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).output();
  if (!out.success) {
    throw new UpdateError(
      "io",
      `reboot command ${argv.join(" ")} failed (${out.code}): ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
}

/** Build the update module. */
export function createUpdateModule(ctx: ModuleContext, deps: UpdateModuleDeps = {}): UpdateModule {
  const config = ctx.config.update;
  const service = new UpdateService(config, ctx.store, ctx.bus, ctx.clock, {
    bootEnv: deps.bootEnv,
    detect: deps.detect,
    keyring: deps.keyring,
  });
  let activation: Activation | null = null;
  let startError: string | null = null;

  const switchTo = async (reason: string): Promise<void> => {
    const mode = config.activation.mode;
    ctx.bus.publish({
      module: "update",
      kind: "update.switching",
      severity: "notice",
      payload: { mode, reason },
    });
    if (mode === "reboot") {
      await (deps.reboot ?? runReboot)(config.activation.rebootCommand);
      return;
    }
    const exit = deps.exit ?? ((code: number) => {
      setTimeout(() => Deno.exit(code), 200);
    });
    exit(config.activation.restartExitCode);
  };

  const buildActivation = async (): Promise<Activation> => {
    if (activation) return activation;
    const booted = await service.booted();
    activation = new Activation({
      config,
      records: service.records,
      state: service.state,
      bus: ctx.bus,
      clock: ctx.clock,
      boot: service.boot,
      booted: booted.bootname,
      bypass: deps.bypass,
      health: deps.health,
      switchTo,
    });
    return activation;
  };

  // the last status read, for metrics (a scrape reads it and starts the next read)
  let snapshot: UpdateStatusView | null = null;
  let refreshing: Promise<void> | null = null;
  const refresh = (): Promise<void> =>
    refreshing ??= service.status().then((v) => void (snapshot = v), () => {}).finally(() => {
      refreshing = null;
    });

  const mod: UpdateModule = {
    name: "update",
    service,
    async start() {
      if (!Object.keys(config.slots).length) return; // no slots: nothing to gate
      try {
        const a = await buildActivation();
        if (!deps.noGate) await a.start();
        await refresh();
      } catch (e) {
        startError = errorMessage(e);
        ctx.bus.publish({
          module: "update",
          kind: "update.error",
          severity: "error",
          payload: { error: startError },
        });
      }
    },
    async stop() {
      activation?.stop();
      await refreshing;
    },
    metrics(): MetricFamily[] {
      if (!Object.keys(config.slots).length) {
        return updateMetrics(null, service.installing, VERSION);
      }
      void refresh();
      return updateMetrics(snapshot, service.installing, VERSION);
    },
    health(): PartHealth {
      const g = activation?.gate;
      if (startError) return { ok: false, essential: false, detail: startError };
      if (service.installing) {
        return {
          ok: true,
          essential: false,
          detail: `installing ${service.progress?.percent.toFixed(0)}%`,
        };
      }
      return {
        ok: g !== "failed",
        essential: false,
        detail: g ? `health gate ${g}` : "no slots configured",
      };
    },
    status(): UpdateModuleStatus {
      return {
        installing: service.installing,
        progress: service.progress,
        gate: activation?.gate ?? null,
        activation: service.state.current(),
      };
    },
    routes(): Hono {
      return updateRoutes(mod);
    },
    pages: () => [UPDATE_PAGE],
    activation: () => activation?.status() ?? null,
    installStream: (src, what, opts) => service.install(src, what, opts),
    installFrom: (f, opts) => service.installFrom(f, opts),
    async activate() {
      return await (await buildActivation()).activate();
    },
    async fullStatus() {
      return { ...(await service.status()), gate: activation?.status() ?? null };
    },
  };
  return mod;
}
