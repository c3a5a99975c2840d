/**
 * GPIO-driven bypass relay through libgpiod's command-line tools. With the GPIO
 * character device a driven line keeps its value only while the process that
 * requested it lives, so the wiring must make the RELEASED line mean bypass:
 * inline = a long-lived `gpioset` holder drives the relay line active; bypass = no
 * holder; disconnect = a holder drives the disconnect line active. If keepwire (and
 * with it the holder) dies, the relay falls back to bypass.
 *
 * libgpiod v1 and v2 have different syntax; the version is detected from
 * `gpioset --version` (or forced by config):
 * - v1: `gpioset --mode=signal [--active-low] CHIP OFFSET=1`, `gpioget [--active-low] CHIP OFFSET`
 * - v2: `gpioset -c CHIP -C CONSUMER [--active-low] LINE=1` (stays running),
 *   `gpioget -c CHIP --numeric [--active-low] LINE`
 * @module
 */
import type { Clock } from "../../mod/module.ts";
import { systemClock } from "../../mod/module.ts";
import {
  BYPASS_NO_WATCHDOG,
  type BypassCapabilities,
  type BypassDriver,
  BypassDriverError,
  bypassFixedPolicy,
  type BypassMode,
  type BypassOpenReport,
  type BypassPolicies,
  type BypassWatchdogReading,
} from "./types.ts";
import {
  type BypassChild,
  type BypassSpawner,
  type BypassToolRunner,
  runBypassTool,
  spawnBypassChild,
} from "./exec.ts";

/** Options of the GPIO driver. */
export interface GpioBypassOptions {
  /** The two ports (for status only; the relay is wired to them). */
  ports: readonly [string, string];
  /** Chip: number, name or path. */
  chip: string;
  /** Relay line (offset or, with v2, name): active = inline. */
  line: string | number;
  /** Line that darkens both ports when active. */
  disconnectLine?: string | number;
  /** Input line reporting the relay (active = inline). */
  statusLine?: string | number;
  /** Driven lines are active-low. */
  activeLow?: boolean;
  /** Status line is active-low. */
  statusActiveLow?: boolean;
  /** Syntax: auto (detect), v1, v2. */
  tool?: "auto" | "v1" | "v2";
  /** gpioset executable. */
  gpioset?: string;
  /** gpioget executable. */
  gpioget?: string;
  /** Consumer label (v2). */
  consumer?: string;
  /** A holder that exits within this many ms failed to take the line. */
  settleMs?: number;
  /** Environment for the tools (tests put fake tools first on PATH). */
  env?: Record<string, string>;
  /** Runner for one-shot tools. */
  run?: BypassToolRunner;
  /** Spawner for holders. */
  spawn?: BypassSpawner;
  /** Clock for the settle wait. */
  clock?: Clock;
}

interface Holder {
  child: BypassChild;
  mode: BypassMode;
}

/** The GPIO driver. */
export class GpioBypassDriver implements BypassDriver {
  /** Driver kind. */
  readonly kind = "gpio" as const;
  /** The two ports. */
  readonly ports: readonly [string, string];
  #o: GpioBypassOptions;
  #run: BypassToolRunner;
  #spawn: BypassSpawner;
  #clock: Clock;
  #version: 1 | 2 | undefined;
  #holder: Holder | undefined;

  /** Build for a segment. */
  constructor(opts: GpioBypassOptions) {
    this.ports = opts.ports;
    this.#o = opts;
    this.#run = opts.run ?? runBypassTool;
    this.#spawn = opts.spawn ?? spawnBypassChild;
    this.#clock = opts.clock ?? systemClock;
    if (opts.tool === "v1") this.#version = 1;
    if (opts.tool === "v2") this.#version = 2;
  }

  /** The libgpiod major version in use (after open). */
  get version(): 1 | 2 | undefined {
    return this.#version;
  }

  /** Pid of the holder process, or null when the line is released. */
  get holderPid(): number | null {
    return this.#holder && !this.#holder.child.done ? this.#holder.child.pid : null;
  }

  #err(code: "tool" | "parse" | "unsupported", msg: string): BypassDriverError {
    return new BypassDriverError("gpio", code, msg);
  }

  async #detect(): Promise<1 | 2> {
    if (this.#version) return this.#version;
    const cmd = this.#o.gpioset ?? "gpioset";
    const r = await this.#run(cmd, ["--version"], { env: this.#o.env });
    if (r.code !== 0) {
      throw this.#err(
        "tool",
        `"${cmd} --version" failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
      );
    }
    const m = /\bv(\d+)\.\d+/.exec(r.stdout + r.stderr);
    if (!m || (m[1] !== "1" && m[1] !== "2")) {
      throw this.#err(
        "parse",
        `cannot tell the libgpiod version from "${r.stdout.trim().split("\n")[0]}"`,
      );
    }
    this.#version = m[1] === "1" ? 1 : 2;
    return this.#version;
  }

  #checkLines(v: 1 | 2): void {
    if (v !== 1) return;
    for (
      const [k, l] of Object.entries({
        line: this.#o.line,
        disconnectLine: this.#o.disconnectLine,
        statusLine: this.#o.statusLine,
      })
    ) {
      if (l !== undefined && !/^\d+$/.test(String(l))) {
        throw this.#err(
          "unsupported",
          `${k} "${l}" is a name; libgpiod v1 needs line offsets (find it with gpiofind)`,
        );
      }
    }
  }

  /** Detect the tool version. The line is not touched. */
  async open(): Promise<BypassOpenReport> {
    const v = await this.#detect();
    this.#checkLines(v);
    const warnings: string[] = [];
    if (this.#o.statusLine === undefined) {
      warnings.push(
        "no statusLine: read-back is whether the gpioset holder process is alive, not the relay itself",
      );
    }
    return { warnings };
  }

  /** inline, bypass (released), disconnect with a disconnect line; no card watchdog. */
  capabilities(): Promise<BypassCapabilities> {
    const modes: BypassMode[] = ["inline", "bypass"];
    if (this.#o.disconnectLine !== undefined) modes.push("disconnect");
    return Promise.resolve({
      modes,
      policies: {
        powerOff: bypassFixedPolicy("bypass"),
        powerUp: bypassFixedPolicy("bypass"),
        watchdogExpiry: bypassFixedPolicy(null),
      },
      watchdog: false,
      readBack: this.#o.statusLine !== undefined ? "hardware" : "process",
    });
  }

  #holderMode(): BypassMode {
    const h = this.#holder;
    return h && !h.child.done ? h.mode : "bypass";
  }

  /** The status line when configured, else the holder process. */
  async readMode(): Promise<BypassMode> {
    const held = this.#holderMode();
    if (this.#o.statusLine === undefined || held === "disconnect") return held;
    const v = await this.#detect();
    const chip = this.#o.chip;
    const line = String(this.#o.statusLine);
    const low = this.#o.statusActiveLow ? ["--active-low"] : [];
    const args = v === 1 ? [...low, chip, line] : ["-c", chip, "--numeric", ...low, line];
    const cmd = this.#o.gpioget ?? "gpioget";
    const r = await this.#run(cmd, args, { env: this.#o.env });
    if (r.code !== 0) {
      throw this.#err(
        "tool",
        `${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`,
      );
    }
    const out = r.stdout.trim();
    if (out !== "0" && out !== "1") {
      throw this.#err("parse", `${cmd} ${args.join(" ")}: expected 0 or 1, got "${out}"`);
    }
    return out === "1" ? "inline" : "bypass";
  }

  async #release(): Promise<void> {
    const h = this.#holder;
    this.#holder = undefined;
    if (!h || h.child.done) return;
    h.child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      h.child.exited.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 3000)),
    ]);
    clearTimeout(timer);
    if (!done) {
      h.child.kill("SIGKILL");
      await h.child.exited;
    }
  }

  async #hold(mode: BypassMode, line: string | number): Promise<void> {
    const v = await this.#detect();
    this.#checkLines(v);
    const chip = this.#o.chip;
    const low = this.#o.activeLow ? ["--active-low"] : [];
    const args = v === 1
      ? ["--mode=signal", ...low, chip, `${line}=1`]
      : ["-c", chip, "-C", this.#o.consumer ?? "keepwire", ...low, `${line}=1`];
    const cmd = this.#o.gpioset ?? "gpioset";
    let child: BypassChild;
    try {
      child = this.#spawn(cmd, args, { env: this.#o.env });
    } catch (e) {
      throw this.#err("tool", `cannot start ${cmd}: ${(e as Error).message}`);
    }
    const settle = this.#o.settleMs ?? 100;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      child.exited.then((s) => s),
      new Promise<null>((r) => timer = this.#clock.setTimeout(() => r(null), settle)),
    ]);
    this.#clock.clearTimeout(timer!);
    if (exited) {
      throw this.#err(
        "tool",
        `${cmd} ${args.join(" ")} exited at once (code ${exited.code}${
          exited.signal ? `, ${exited.signal}` : ""
        }): ${child.stderr().trim() || "no message"}`,
      );
    }
    this.#holder = { child, mode };
  }

  /** Release the current holder, then start the one the mode needs (none for bypass). */
  async setMode(mode: BypassMode): Promise<void> {
    if (mode === "tap" || (mode === "disconnect" && this.#o.disconnectLine === undefined)) {
      throw this.#err(
        "unsupported",
        `mode ${mode} needs ${mode === "tap" ? "a tap card" : "gpio.disconnectLine"}`,
      );
    }
    if (this.#holderMode() === mode) return;
    await this.#release();
    if (mode === "inline") await this.#hold(mode, this.#o.line);
    if (mode === "disconnect") await this.#hold(mode, this.#o.disconnectLine!);
  }

  /** Fixed by the wiring: bypass on power-off and power-up. */
  readPolicies(): Promise<Partial<BypassPolicies>> {
    return Promise.resolve({ powerOff: "bypass", powerUp: "bypass" });
  }

  /** Nothing to write; anything but bypass is refused. */
  writePolicies(p: Partial<BypassPolicies>): Promise<void> {
    for (const [k, v] of Object.entries(p)) {
      if (v !== "bypass") {
        return Promise.reject(this.#err("unsupported", `${k} is fixed to bypass by the wiring`));
      }
    }
    return Promise.resolve();
  }

  /** No card watchdog. */
  readWatchdog(): Promise<BypassWatchdogReading> {
    return Promise.resolve(BYPASS_NO_WATCHDOG);
  }

  /** No card watchdog. */
  armWatchdog(): Promise<number> {
    return Promise.reject(this.#err("unsupported", "a GPIO relay has no card watchdog"));
  }

  /** No card watchdog. */
  petWatchdog(): Promise<void> {
    return Promise.reject(this.#err("unsupported", "a GPIO relay has no card watchdog"));
  }

  /** No card watchdog: nothing to disarm. */
  disarmWatchdog(): Promise<void> {
    return Promise.resolve();
  }

  /** Release the line: the relay falls back to bypass. */
  async close(): Promise<void> {
    await this.#release();
  }
}
