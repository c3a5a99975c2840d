/**
 * Silicom bypass adapters through the bpctl_mod procfs interface:
 * `/proc/net/bypass/bypass_<master>/` with one file per attribute. Booleans are
 * written `on`/`off` and read `on`/`off`/`fail` (fail = not capable). The card
 * watchdog is armed by writing ms to `bypass_wd` and petted by READING
 * `reset_bypass_wd`, so that file is read only in petWatchdog(), never elsewhere.
 * The root directory is injectable so tests run against a fake tree.
 * @module
 */
import { join } from "node:path";
import {
  type BypassCapabilities,
  type BypassDriver,
  BypassDriverError,
  type BypassMode,
  type BypassOpenReport,
  type BypassPolicies,
  type BypassPolicyCapability,
  type BypassWatchdogReading,
} from "./types.ts";

/** Options of the Silicom driver. */
export interface SilicomBypassOptions {
  /** The two ports; the first is the master unless `master` says otherwise. */
  ports: readonly [string, string];
  /** Directory holding `bypass_<if>/` (default /proc/net/bypass). */
  root?: string;
  /** Master port (default ports[0]). */
  master?: string;
}

/** Capability bits of `bypass_caps` (Silicom libbp_sd.h / bp_mod.h). */
export const SILICOM_CAPS = {
  BP_CAP: 0x01,
  BP_STATUS_CAP: 0x02,
  SW_CTL_CAP: 0x08,
  BP_DIS_CAP: 0x10,
  STD_NIC_CAP: 0x40,
  BP_PWOFF_ON_CAP: 0x80,
  BP_PWOFF_OFF_CAP: 0x100,
  BP_PWOFF_CTL_CAP: 0x200,
  BP_PWUP_ON_CAP: 0x400,
  BP_PWUP_OFF_CAP: 0x800,
  BP_PWUP_CTL_CAP: 0x1000,
  WD_CTL_CAP: 0x2000,
  WD_STATUS_CAP: 0x4000,
  WD_TIMEOUT_CAP: 0x8000,
  TAP_CAP: 0x40000,
  TAP_PWUP_CTL_CAP: 0x2000000,
  DISC_CAP: 0x10000000,
  DISC_PWUP_CTL_CAP: 0x40000000,
} as const;

const EXP_MODE_TO_MODE: Record<string, BypassMode> = {
  bypass: "bypass",
  tap: "tap",
  disc: "disconnect",
};

/** The Silicom procfs driver. */
export class SilicomBypassDriver implements BypassDriver {
  /** Driver kind. */
  readonly kind = "silicom" as const;
  /** The two ports. */
  readonly ports: readonly [string, string];
  /** Directory of the master port. */
  readonly dir: string;
  #caps: number | undefined;

  /** Build for a segment. */
  constructor(opts: SilicomBypassOptions) {
    this.ports = opts.ports;
    const master = opts.master ?? opts.ports[0];
    this.dir = join(opts.root ?? "/proc/net/bypass", `bypass_${master}`);
  }

  #err(code: "io" | "parse" | "unsupported" | "inconsistent", msg: string): BypassDriverError {
    return new BypassDriverError("silicom", code, msg);
  }

  async #read(file: string): Promise<string> {
    if (file === "reset_bypass_wd") {
      throw this.#err("io", "reset_bypass_wd is read only to pet the watchdog");
    }
    return await this.#readRaw(file);
  }

  async #readRaw(file: string): Promise<string> {
    const p = join(this.dir, file);
    try {
      return (await Deno.readTextFile(p)).trim();
    } catch (e) {
      throw this.#err("io", `cannot read ${p}: ${(e as Error).message}`);
    }
  }

  async #write(file: string, value: string): Promise<void> {
    const p = join(this.dir, file);
    let f: Deno.FsFile | undefined;
    try {
      // Never create: a missing attribute file is an error, not a new file.
      f = await Deno.open(p, { write: true, truncate: true, create: false });
      await f.write(new TextEncoder().encode(`${value}\n`));
    } catch (e) {
      throw this.#err("io", `cannot write "${value}" to ${p}: ${(e as Error).message}`);
    } finally {
      f?.close();
    }
  }

  /** Read an on/off file: true, false, or null when the card answers `fail`. */
  async #bool(file: string): Promise<boolean | null> {
    const v = await this.#read(file);
    if (v === "on") return true;
    if (v === "off") return false;
    if (v === "fail") return null;
    throw this.#err("parse", `${join(this.dir, file)}: expected on, off or fail, got "${v}"`);
  }

  /** Like #bool, but a missing file or `fail` is "off". */
  async #boolOpt(file: string): Promise<boolean> {
    try {
      return (await this.#bool(file)) === true;
    } catch (e) {
      if (e instanceof BypassDriverError && e.code === "io") return false;
      throw e;
    }
  }

  async #capBits(): Promise<number> {
    if (this.#caps !== undefined) return this.#caps;
    const v = await this.#read("bypass_caps");
    if (v === "-1" || v === "fail") {
      throw this.#err("unsupported", `${this.dir}: the port is not a bypass master (caps ${v})`);
    }
    if (!/^(0x)?[0-9a-fA-F]+$/.test(v)) {
      throw this.#err(
        "parse",
        `${join(this.dir, "bypass_caps")}: expected a hex bitmap, got "${v}"`,
      );
    }
    this.#caps = parseInt(v.replace(/^0x/, ""), 16);
    return this.#caps;
  }

  /** Check the directory and report settings that defeat the bypass. */
  async open(): Promise<BypassOpenReport> {
    try {
      const st = await Deno.stat(this.dir);
      if (!st.isDirectory) throw new Error("not a directory");
    } catch (e) {
      throw this.#err(
        "io",
        `${this.dir} missing (${(e as Error).message}); is bpctl_mod loaded and ${
          this.ports[0]
        } the master port?`,
      );
    }
    this.#caps = undefined;
    await this.#capBits();
    const warnings: string[] = [];
    const slave = await this.#read("bypass_slave").catch(() => null);
    if (slave && slave !== "fail" && slave !== this.ports[1]) {
      warnings.push(`bypass_slave is ${slave}, but the segment's second port is ${this.ports[1]}`);
    }
    const auto = await this.#read("wd_autoreset").catch(() => null);
    if (auto && /^\d+$/.test(auto) && Number(auto) > 0) {
      warnings.push(
        `wd_autoreset is ${auto} ms: the driver pets the card watchdog itself, so a hung keepwire would not fail open`,
      );
    }
    if ((await this.#bool("std_nic").catch(() => null)) === true) {
      warnings.push("std_nic is on: the card works as a plain NIC and will not bypass");
    }
    if ((await this.#bool("dis_bypass").catch(() => null)) === true) {
      warnings.push("dis_bypass is on: bypass is disabled on this card");
    }
    return { warnings };
  }

  /** From bypass_caps and wd_set_caps. */
  async capabilities(): Promise<BypassCapabilities> {
    const c = await this.#capBits();
    const has = (bit: number) => (c & bit) !== 0;
    const modes: BypassMode[] = ["inline"];
    if (has(SILICOM_CAPS.BP_CAP)) modes.push("bypass");
    if (has(SILICOM_CAPS.DISC_CAP)) modes.push("disconnect");
    if (has(SILICOM_CAPS.TAP_CAP)) modes.push("tap");
    const powerOff: BypassPolicyCapability = has(SILICOM_CAPS.BP_PWOFF_CTL_CAP)
      ? { settable: ["bypass", "inline"], fixed: null }
      : { settable: [], fixed: has(SILICOM_CAPS.BP_PWOFF_ON_CAP) ? "bypass" : null };
    const upModes: BypassMode[] = [];
    if (has(SILICOM_CAPS.BP_PWUP_CTL_CAP)) upModes.push("bypass", "inline");
    if (has(SILICOM_CAPS.TAP_PWUP_CTL_CAP)) upModes.push("tap");
    if (has(SILICOM_CAPS.DISC_PWUP_CTL_CAP)) upModes.push("disconnect");
    const powerUp: BypassPolicyCapability = upModes.length
      ? { settable: upModes, fixed: null }
      : { settable: [], fixed: has(SILICOM_CAPS.BP_PWUP_ON_CAP) ? "bypass" : null };
    const wd = has(SILICOM_CAPS.WD_CTL_CAP);
    const expModes: BypassMode[] = wd ? ["bypass"] : [];
    if (wd && has(SILICOM_CAPS.TAP_CAP)) expModes.push("tap");
    if (wd && has(SILICOM_CAPS.DISC_CAP)) expModes.push("disconnect");
    let range: { min: number; max: number } | undefined;
    if (wd) {
      const v = await this.#read("wd_set_caps").catch(() => "");
      if (/^(0x)?[0-9a-fA-F]+$/.test(v)) {
        const bits = parseInt(v.replace(/^0x/, ""), 16);
        const min = (bits & 0xf) * 100;
        if (min > 0) range = { min, max: 3_600_000 };
      }
    }
    return {
      modes,
      policies: {
        powerOff,
        powerUp,
        watchdogExpiry: { settable: expModes, fixed: null },
      },
      watchdog: wd,
      ...(range ? { watchdogRangeMs: range } : {}),
      readBack: "hardware",
    };
  }

  /** disc on → disconnect; tap on → tap; bypass on → bypass; bypass off → inline. */
  async readMode(): Promise<BypassMode> {
    const bp = await this.#bool("bypass");
    if (bp === null) throw this.#err("unsupported", `${this.dir}/bypass answers "fail"`);
    if (await this.#boolOpt("disc")) return "disconnect";
    if (await this.#boolOpt("tap")) return "tap";
    return bp ? "bypass" : "inline";
  }

  /** Turn the wanted mode on first, then the others off, so the wire never goes through inline by accident. */
  async setMode(mode: BypassMode): Promise<void> {
    const caps = await this.capabilities();
    if (!caps.modes.includes(mode)) {
      throw this.#err("unsupported", `mode ${mode} (this card: ${caps.modes.join(", ")})`);
    }
    const fileOf: Partial<Record<BypassMode, string>> = {
      bypass: "bypass",
      tap: "tap",
      disconnect: "disc",
    };
    const target = fileOf[mode];
    if (target) await this.#write(target, "on");
    for (const [m, f] of Object.entries(fileOf)) {
      if (m === mode) continue;
      if (f === "bypass") {
        if ((await this.#bool("bypass")) !== false) await this.#write("bypass", "off");
      } else if (await this.#boolOpt(f)) {
        await this.#write(f, "off");
      }
    }
  }

  /** bypass_pwoff, bypass_pwup / tap_pwup / disc_pwup, wd_exp_mode. */
  async readPolicies(): Promise<Partial<BypassPolicies>> {
    const out: Partial<BypassPolicies> = {};
    const off = await this.#bool("bypass_pwoff").catch(() => null);
    if (off !== null) out.powerOff = off ? "bypass" : "inline";
    const up = await this.#bool("bypass_pwup").catch(() => null);
    if (await this.#boolOpt("disc_pwup")) out.powerUp = "disconnect";
    else if (await this.#boolOpt("tap_pwup")) out.powerUp = "tap";
    else if (up !== null) out.powerUp = up ? "bypass" : "inline";
    const exp = await this.#read("wd_exp_mode").catch(() => "fail");
    if (EXP_MODE_TO_MODE[exp]) out.watchdogExpiry = EXP_MODE_TO_MODE[exp];
    return out;
  }

  /** Write only the given policies (the caller writes only what differs). */
  async writePolicies(p: Partial<BypassPolicies>): Promise<void> {
    if (p.powerOff !== undefined) {
      if (p.powerOff !== "bypass" && p.powerOff !== "inline") {
        throw this.#err("unsupported", `power-off mode ${p.powerOff} (bypass or inline only)`);
      }
      await this.#write("bypass_pwoff", p.powerOff === "bypass" ? "on" : "off");
    }
    if (p.powerUp !== undefined) {
      const files: Record<string, string> = {
        bypass: "bypass_pwup",
        tap: "tap_pwup",
        disconnect: "disc_pwup",
      };
      if (p.powerUp !== "inline") await this.#write(files[p.powerUp], "on");
      for (const [m, f] of Object.entries(files)) {
        if (m === p.powerUp) continue;
        if (f === "bypass_pwup") await this.#write(f, "off");
        else if (await this.#boolOpt(f)) await this.#write(f, "off");
      }
    }
    if (p.watchdogExpiry !== undefined) {
      const v = { bypass: "bypass", tap: "tap", disconnect: "disc" }[
        p.watchdogExpiry as "bypass"
      ];
      if (!v) throw this.#err("unsupported", `watchdog expiry mode ${p.watchdogExpiry}`);
      await this.#write("wd_exp_mode", v);
    }
  }

  /** bypass_wd (timeout) and wd_expire_time (time left / expire / disable). */
  async readWatchdog(): Promise<BypassWatchdogReading> {
    const wd = await this.#read("bypass_wd");
    if (wd === "fail") throw this.#err("unsupported", "the card has no watchdog (bypass_wd: fail)");
    const timeoutMs = /^\d+$/.test(wd) ? Number(wd) : 0;
    if (!/^\d+$/.test(wd) && wd !== "disable" && wd !== "unknown") {
      throw this.#err(
        "parse",
        `${this.dir}/bypass_wd: expected ms, disable or unknown, got "${wd}"`,
      );
    }
    const left = await this.#read("wd_expire_time").catch(() => "fail");
    const expired = left === "expire" || left === "-1";
    let remainingMs: number | null = null;
    if (/^\d+$/.test(left)) remainingMs = Number(left);
    return {
      armed: timeoutMs > 0 && !expired && left !== "disable",
      timeoutMs,
      remainingMs,
      expired,
    };
  }

  /** Write the timeout; returns what the card reads back (it rounds to what it supports). */
  async armWatchdog(timeoutMs: number): Promise<number> {
    await this.#write("bypass_wd", String(Math.round(timeoutMs)));
    const back = await this.#read("bypass_wd");
    if (!/^\d+$/.test(back) || Number(back) <= 0) {
      throw this.#err("inconsistent", `armed ${timeoutMs} ms but bypass_wd reads "${back}"`);
    }
    return Number(back);
  }

  /** The pet is a read of reset_bypass_wd: `success`, else an error. */
  async petWatchdog(): Promise<void> {
    const v = await this.#readRaw("reset_bypass_wd");
    if (v === "success") return;
    if (v === "disable") throw this.#err("inconsistent", "pet refused: the watchdog is not armed");
    throw this.#err("io", `pet failed: reset_bypass_wd answered "${v}"`);
  }

  /** Write 0 to bypass_wd. */
  async disarmWatchdog(): Promise<void> {
    await this.#write("bypass_wd", "0");
  }

  /** Nothing held open. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
