/**
 * The `restart` mode launcher: plays the bootloader for application slots. It
 * picks the slot the way RAUC's boot scripts do (recording a try in the boot
 * env), starts that slot's entry with `KEEPWIRE_SLOT=<bootname>`, and when the
 * child exits — asking for a switch (exit code `restartExitCode`) or crashing —
 * picks again. A slot that crashes before it is marked good has used its try, so
 * the next pick falls back to the other slot. SIGTERM/SIGINT stop the child
 * (SIGKILL after `stopTimeoutMs`) and the launcher.
 *
 * Run: `keepwire update launch --config CFG` or `deno run -A mod/update/launcher.ts CFG`.
 * @module
 */
import type { BootScheme } from "../../hw/boot/ab.ts";
import type { BootEnv } from "../../hw/boot/types.ts";
import type { UpdateConfig } from "./config.ts";
import { errorMessage } from "./errors.ts";
import { bootSchemeFor, slotOf } from "./slots.ts";

/** One start of a slot, for logs and tests. */
export interface LaunchRecord {
  /** Bootname started. */
  slot: string;
  /** Child pid. */
  pid: number;
  /** When started (ms). */
  startedAt: number;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal, when killed by one. */
  signal: string | null;
}

/** Options of {@link Launcher}. */
export interface LauncherOptions {
  /** The `update` section. */
  config: UpdateConfig;
  /** Boot env (default from config). */
  bootEnv?: BootEnv;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
  /** Delay after a crash before the next pick (default 200 ms). */
  crashDelayMs?: number;
}

/** Replace `{device}`, `{bootname}`, `{slotClass}` in an argv. */
export function expandCommand(argv: string[], vars: Record<string, string>): string[] {
  return argv.map((a) => a.replace(/\{(device|bootname|slotClass)\}/g, (_, k: string) => vars[k]));
}

/** The launcher. */
export class Launcher {
  readonly #o: LauncherOptions;
  readonly #boot: BootScheme;
  readonly #log: (line: string) => void;
  #stopping = false;
  #child: Deno.ChildProcess | null = null;
  #wake: (() => void) | null = null;
  /** Every start so far. */
  readonly launches: LaunchRecord[] = [];

  /** Build. */
  constructor(opts: LauncherOptions) {
    this.#o = opts;
    this.#log = opts.log ?? ((l) => console.error(`keepwire-launcher: ${l}`));
    this.#boot = bootSchemeFor(opts.config, opts.bootEnv);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => (this.#wake = null, resolve()), ms);
      this.#wake = () => (clearTimeout(t), this.#wake = null, resolve());
    });
  }

  /** Run until {@link stop}; returns when the last child has exited. */
  async run(): Promise<void> {
    const cfg = this.#o.config;
    const cls = cfg.launcher.slotClass ?? Object.keys(cfg.slots)[0];
    while (!this.#stopping) {
      let slot: string | null;
      try {
        slot = await this.#boot.select();
      } catch (e) {
        this.#log(`cannot read the boot env: ${errorMessage(e)}; retrying`);
        await this.#sleep(cfg.launcher.rescueDelayMs);
        continue;
      }
      if (!slot) {
        this.#log(`no bootable slot; tries reset, retrying in ${cfg.launcher.rescueDelayMs} ms`);
        await this.#sleep(cfg.launcher.rescueDelayMs);
        continue;
      }
      const s = slotOf(cfg, cls, slot);
      const argv = expandCommand(cfg.launcher.command, {
        device: s.device,
        bootname: slot,
        slotClass: cls,
      });
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(argv[0], {
          args: argv.slice(1),
          env: { ...cfg.launcher.env, KEEPWIRE_SLOT: slot },
          stdin: "null",
          stdout: "inherit",
          stderr: "inherit",
        }).spawn();
      } catch (e) {
        this.#log(`cannot start slot ${slot} (${argv.join(" ")}): ${errorMessage(e)}`);
        await this.#sleep(this.#o.crashDelayMs ?? 200);
        continue;
      }
      this.#child = child;
      const rec: LaunchRecord = {
        slot,
        pid: child.pid,
        startedAt: Date.now(),
        code: null,
        signal: null,
      };
      this.launches.push(rec);
      this.#log(`started slot ${slot} (pid ${child.pid}): ${argv.join(" ")}`);
      const st = await child.status;
      this.#child = null;
      rec.code = st.signal ? null : st.code;
      rec.signal = st.signal ?? null;
      if (this.#stopping) break;
      if (st.code === cfg.activation.restartExitCode && !st.signal) {
        this.#log(`slot ${slot} asked for a switch; picking the primary slot`);
        continue;
      }
      this.#log(`slot ${slot} exited (${st.signal ?? `code ${st.code}`}); picking again`);
      await this.#sleep(this.#o.crashDelayMs ?? 200);
    }
  }

  /** Stop the child (SIGTERM, SIGKILL after the timeout) and end {@link run}. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, this.#o.config.launcher.stopTimeoutMs);
    await child.status;
    clearTimeout(t);
  }
}

/** Run a launcher until SIGTERM/SIGINT. */
export async function runLauncher(config: UpdateConfig): Promise<void> {
  const l = new Launcher({ config });
  const onSig = () => void l.stop();
  Deno.addSignalListener("SIGTERM", onSig);
  Deno.addSignalListener("SIGINT", onSig);
  try {
    await l.run();
  } finally {
    Deno.removeSignalListener("SIGTERM", onSig);
    Deno.removeSignalListener("SIGINT", onSig);
  }
}

if (import.meta.main) {
  const { loadConfig } = await import("../config/mod.ts");
  const file = Deno.args[0];
  if (!file) {
    console.error("usage: launcher.ts CONFIG");
    Deno.exit(2);
  }
  const c = await loadConfig({ file });
  await runLauncher(c.update);
}
