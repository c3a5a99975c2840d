/**
 * Storage module: polls the RAID driver (md arrays) and SMART on the injected
 * clock, computes health per array (`ok | degraded | rebuilding | failed |
 * inactive`) and per disk, and publishes an event (module `storage`) on every
 * transition: `storage.array_degraded`, `storage.rebuild_progress`, ... (kinds and
 * payloads in events.ts; the payload's `mdadm` names mdadm --monitor's event).
 * @module
 */
import type { MetricFamily } from "../web/metrics.ts";
import type { HistorySample } from "../history/types.ts";
import { storageMetrics } from "./metrics.ts";
import type { Hono } from "hono";
import type { Module, ModuleContext, ModulePage, PartHealth, TimerId } from "../module.ts";
import { STORAGE_PAGE } from "./page.tsx";
import type { EventBus } from "../events/mod.ts";
import type { Clock } from "../module.ts";
import type { RaidConfig } from "../../hw/raid/config.ts";
import { createRaidDriver } from "../../hw/raid/mod.ts";
import { describeUnknown } from "../../hw/raid/mdstat.ts";
import type { MdUnknownLine, RaidDriver } from "../../hw/raid/types.ts";
import {
  arrayStatus,
  diskErrorStatus,
  type DiskStatus,
  diskStatusOf,
  type RaidArrayStatus,
} from "./health.ts";
import { type StorageEvent, storageEvent, StorageMonitor } from "./monitor.ts";
import { StorageStartError } from "./errors.ts";
import "./events.ts";
import { storageRoutes } from "./routes.ts";
import type { StorageStatus, StorageView } from "./types.ts";

/** md events after which SMART is re-read at once. */
const MEMBER_FAULTS: ReadonlySet<string> = new Set([
  "storage.member_failed",
  "storage.spare_failed",
  "storage.array_degraded",
]);

export type { StorageView } from "./types.ts";
export { STORAGE_EVENTS, type StorageEventKind } from "./events.ts";
export { StorageStartError } from "./errors.ts";
export { arrayHealth, type DiskStatus, type RaidArrayStatus, type RaidHealth } from "./health.ts";

/** Options for tests: a ready driver instead of one built from the config. */
export interface StorageModuleOptions {
  /** Driver to use. */
  driver?: RaidDriver;
}

/** The storage module. */
export class StorageModule implements Module {
  /** Module name. */
  readonly name = "storage";
  readonly #cfg: RaidConfig;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #driver: RaidDriver;
  readonly #monitor: StorageMonitor;
  #arrays: RaidArrayStatus[] = [];
  #disks = new Map<string, DiskStatus>();
  #updatedAt: number | null = null;
  #error: string | null = null;
  #unknownKey = "";
  #timers: TimerId[] = [];
  #mdPoll: Promise<void> | null = null;
  #smartPoll: Promise<void> | null = null;
  #running = false;

  /** Build from the module context. */
  constructor(ctx: ModuleContext, opts: StorageModuleOptions = {}) {
    this.#cfg = ctx.config.hardware.raid;
    this.#bus = ctx.bus;
    this.#clock = ctx.clock;
    this.#driver = opts.driver ??
      createRaidDriver(this.#cfg, { now: () => ctx.clock.now() });
    this.#monitor = new StorageMonitor({
      expectSpares: this.#cfg.expectSpares,
      increment: this.#cfg.rebuildIncrement,
    });
    for (const d of this.#driver.disks) this.#disks.set(d, emptyDisk(d));
  }

  /** Driver in use. */
  get driver(): RaidDriver {
    return this.#driver;
  }

  /** First md read (throws a clear error when the driver cannot read), then poll on the clock. */
  async start(): Promise<void> {
    try {
      await this.#readMd(true);
    } catch (e) {
      throw new StorageStartError(this.#driver.name, e);
    }
    this.#running = true;
    this.#timers.push(this.#clock.setInterval(() => void this.pollMd(), this.#cfg.pollMs));
    if (this.#driver.disks.length) {
      this.#timers.push(
        this.#clock.setInterval(() => void this.pollSmart(), this.#cfg.smartPollMs),
      );
      void this.pollSmart();
    }
  }

  /** Stop polling and wait for a poll in flight. */
  async stop(): Promise<void> {
    this.#running = false;
    for (const t of this.#timers) this.#clock.clearInterval(t);
    this.#timers = [];
    await Promise.allSettled([this.#mdPoll, this.#smartPoll].filter((p) => p !== null));
  }

  /** Poll md once (skipped when a poll is still running); never throws. */
  pollMd(): Promise<void> {
    if (this.#mdPoll) return this.#mdPoll;
    this.#mdPoll = this.#readMd(false).catch(() => {}).finally(() => {
      this.#mdPoll = null;
    });
    return this.#mdPoll;
  }

  /** Poll SMART of every watched disk once (skipped when one is running); never throws. */
  pollSmart(): Promise<void> {
    if (this.#smartPoll) return this.#smartPoll;
    this.#smartPoll = this.#readSmart().finally(() => {
      this.#smartPoll = null;
    });
    return this.#smartPoll;
  }

  async #readMd(first: boolean): Promise<void> {
    let snap;
    try {
      snap = await this.#driver.md.read();
    } catch (e) {
      const msg = (e as Error).message;
      if (first) throw e;
      if (this.#error === null) {
        this.#publish(storageEvent("storage.read_failed", "error", {
          driver: this.#driver.name,
          error: msg,
        }));
      }
      this.#error = msg;
      throw e;
    }
    if (this.#error !== null) {
      this.#publish(storageEvent("storage.read_recovered", "notice", {
        driver: this.#driver.name,
        error: this.#error,
      }));
      this.#error = null;
    }
    this.#reportUnknown(snap.mdstat.unknown);
    const events = this.#monitor.observeArrays(snap.mdstat.arrays);
    for (const e of events) this.#publish(e);
    this.#arrays = snap.mdstat.arrays.map(arrayStatus);
    this.#updatedAt = snap.time;
    // md saw a member fail: read SMART now rather than at the next SMART poll (minutes
    // away), so the disk behind the failed member does not read "ok" meanwhile
    if (!first && events.some((e) => MEMBER_FAULTS.has(e.kind))) this.#rereadSmart();
  }

  #rereadSmart(): void {
    if (!this.#running || !this.#driver.disks.length) return;
    // a SMART read in flight started before the fault: read again after it
    void (this.#smartPoll ?? Promise.resolve()).then(() => {
      if (this.#running) return this.pollSmart();
    });
  }

  #reportUnknown(lines: MdUnknownLine[]): void {
    const key = lines.map((l) => l.text).join("\n");
    if (key === this.#unknownKey) return;
    this.#unknownKey = key;
    if (!lines.length) return;
    this.#publish(storageEvent("storage.mdstat_unknown_lines", "notice", {
      array: null,
      lines: describeUnknown(lines),
    }));
  }

  async #readSmart(): Promise<void> {
    for (const dev of this.#driver.disks) {
      let st: DiskStatus;
      try {
        st = diskStatusOf(await this.#driver.smart.read(dev), this.#clock.now());
      } catch (e) {
        st = diskErrorStatus(dev, (e as Error).message, this.#clock.now());
      }
      this.#disks.set(dev, st);
      for (const ev of this.#monitor.observeDisk(st)) this.#publish(ev);
    }
  }

  #publish(e: StorageEvent): void {
    this.#bus.publish({ module: "storage", ...e });
  }

  /** Arrays as last read. */
  arrays(): RaidArrayStatus[] {
    return this.#arrays;
  }

  /** Disks as last read. */
  disks(): DiskStatus[] {
    return [...this.#disks.values()];
  }

  /** Everything the API shows. */
  view(): StorageView {
    return {
      arrays: this.#arrays,
      disks: this.disks(),
      updatedAt: this.#updatedAt,
      error: this.#error,
    };
  }

  /** Not ok when an array failed or md cannot be read; essential only when configured. */
  health(): PartHealth {
    const essential = this.#cfg.essential;
    if (this.#error !== null) {
      return { ok: false, essential, detail: `cannot read md state: ${this.#error}` };
    }
    const bad = this.#arrays.filter((a) => a.health !== "ok");
    const failed = bad.filter((a) => a.health === "failed");
    const disks = this.disks().filter((d) => d.health === "failing" || d.health === "warning");
    const parts = bad.map((a) => `${a.name} ${a.health}`)
      .concat(disks.map((d) => `${d.device} ${d.health}`));
    const detail = parts.length
      ? parts.join(", ")
      : `${this.#arrays.length} array${this.#arrays.length === 1 ? "" : "s"} ok`;
    return { ok: failed.length === 0, essential, detail };
  }

  /** Status summary for /api/status. */
  status(): StorageStatus {
    return {
      driver: this.#driver.name,
      running: this.#running,
      updatedAt: this.#updatedAt,
      error: this.#error,
      arrays: this.#arrays.map((a) => ({ name: a.name, health: a.health })),
      disks: this.disks().map((d) => ({ device: d.device, health: d.health })),
    };
  }

  /** `raid_*` and `disk_*` metric families. */
  metrics(): MetricFamily[] {
    return storageMetrics(this.#arrays, this.disks());
  }

  /**
   * Series for the metric history, per disk, at the time of its last SMART read (a read is
   * kept once): temperature and the SMART counters that tell a disk is wearing out.
   */
  history(): HistorySample[] {
    const out: HistorySample[] = [];
    for (const d of this.disks()) {
      if (d.updatedAt === null || d.error !== null) continue;
      const disk = d.device.replace(/^\/dev\//, "");
      const add = (what: string, value: number | null, unit: string, words: string) => {
        if (value !== null) {
          out.push({
            series: `storage.${what}.${disk}`,
            value,
            unit,
            label: `${disk} ${words}`,
            t: d.updatedAt!,
          });
        }
      };
      add("temperature", d.temperatureC, "°C", "temperature");
      add("smart.reallocated", d.reallocatedSectors, "sectors", "reallocated");
      add("smart.pending", d.pendingSectors, "sectors", "pending");
      add("smart.uncorrectable", d.uncorrectableSectors, "sectors", "uncorrectable");
      add("smart.media_errors", d.nvmeMediaErrors, "errors", "media errors");
    }
    return out;
  }

  /** GET /storage. */
  routes(): Hono {
    return storageRoutes(this);
  }

  /** The Storage page. */
  pages(): ModulePage[] {
    return [STORAGE_PAGE];
  }
}

function emptyDisk(device: string): DiskStatus {
  return {
    ...diskErrorStatus(device, "not read yet", 0),
    reasons: ["not read yet"],
    updatedAt: null,
    error: null,
  };
}

/** Build the storage module from the config. */
export function createStorageModule(ctx: ModuleContext): StorageModule {
  return new StorageModule(ctx);
}
