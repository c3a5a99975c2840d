/**
 * RAID and disk-health drivers: the factory that builds the configured driver
 * (`mock` or `md`) and the md driver itself (/proc/mdstat, corrected by
 * /sys/block/mdX/md where present).
 * @module
 */
import { READ_LIMITS, readTextFileBounded } from "../../mod/fs.ts";
import type { RaidConfig } from "./config.ts";
import { parseMdstat } from "./mdstat.ts";
import { mergeSysfs, readMdSysfs } from "./md_sysfs.ts";
import { RaidMock } from "./mock.ts";
import { type CommandRunner, SmartctlReader } from "./smart.ts";
import type { MdSnapshot, MdSource, RaidDriver } from "./types.ts";

export * from "./types.ts";
export { type RaidConfig, raidConfigSchema } from "./config.ts";
export { describeUnknown, MdstatParseError, parseMdstat } from "./mdstat.ts";
export { mergeSysfs, parseSyncCompleted, readMdSysfs } from "./md_sysfs.ts";
export {
  decodeExitStatus,
  parseSmartctlJson,
  SmartctlOutputError,
  SmartctlReader,
  SmartctlRunError,
} from "./smart.ts";
export { RaidMock, type RaidMockScenario } from "./mock.ts";

/** The md driver could not read its inputs; the message names the config field. */
export class RaidDriverError extends Error {
  /** Build one. */
  constructor(message: string) {
    super(message);
    this.name = "RaidDriverError";
  }
}

/** Options of {@link MdKernelSource}. */
export interface MdKernelSourceOptions {
  /** Path of mdstat (default /proc/mdstat). */
  mdstat?: string;
  /** sysfs block root (default /sys/block); null to read mdstat only. */
  sysfsRoot?: string | null;
  /** Clock. */
  now?: () => number;
}

/** The real md driver: /proc/mdstat parsed, then sysfs applied per array. */
export class MdKernelSource implements MdSource {
  /** Driver name. */
  readonly driver = "md";
  readonly #mdstat: string;
  readonly #sysfs: string | null;
  readonly #now: () => number;

  /** Build one. */
  constructor(opts: MdKernelSourceOptions = {}) {
    this.#mdstat = opts.mdstat ?? "/proc/mdstat";
    this.#sysfs = opts.sysfsRoot === undefined ? "/sys/block" : opts.sysfsRoot;
    this.#now = opts.now ?? Date.now;
  }

  /** Read mdstat and sysfs. Throws RaidDriverError (unreadable) or MdstatParseError (malformed). */
  async read(): Promise<MdSnapshot> {
    let text: string;
    try {
      text = await readTextFileBounded(this.#mdstat, READ_LIMITS.mdstat, "mdstat");
    } catch (e) {
      const hint = e instanceof Deno.errors.NotFound && this.#mdstat === "/proc/mdstat"
        ? " (the kernel has no md driver loaded: CONFIG_MD / md_mod)"
        : "";
      throw new RaidDriverError(
        `raid driver "md": cannot read hardware.raid.mdstat "${this.#mdstat}": ${
          (e as Error).message
        }${hint}`,
      );
    }
    const mdstat = parseMdstat(text, { source: this.#mdstat });
    if (this.#sysfs !== null) {
      for (const a of mdstat.arrays) {
        const s = await readMdSysfs(a.name, this.#sysfs);
        if (s) mergeSysfs(a, s);
      }
    }
    return { mdstat, time: this.#now() };
  }
}

/** Options of {@link createRaidDriver}. */
export interface CreateRaidDriverOptions {
  /** Clock (`now`) for the mock's scenario and snapshot times. */
  now?: () => number;
  /** Command runner for smartctl (tests). */
  runner?: CommandRunner;
}

/** Build the configured RAID driver. */
export function createRaidDriver(
  cfg: RaidConfig,
  opts: CreateRaidDriverOptions = {},
): RaidDriver {
  const now = opts.now ?? Date.now;
  if (cfg.driver === "mock") {
    const mock = new RaidMock({
      scenario: cfg.scenario,
      now,
      temperatureWarnC: cfg.temperatureWarnC,
    });
    return mock.asDriver(cfg.disks);
  }
  return {
    name: "md",
    md: new MdKernelSource({
      mdstat: cfg.mdstat,
      sysfsRoot: cfg.useSysfs ? cfg.sysfsRoot : null,
      now,
    }),
    smart: new SmartctlReader({
      smartctl: cfg.smartctl,
      timeoutMs: cfg.smartTimeoutMs,
      temperatureWarnC: cfg.temperatureWarnC,
      runner: opts.runner,
    }),
    disks: cfg.disks,
  };
}
