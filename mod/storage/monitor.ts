/**
 * The storage state machine: compares each poll with the previous one and yields
 * the events of every transition, named as `mdadm --monitor` names them where a
 * name exists (Fail, FailSpare, DegradedArray, RebuildStarted, RebuildNN,
 * RebuildFinished, SpareActive, SparesMissing, NewArray, DeviceDisappeared), plus
 * `HealthChanged` on every change of an array's health and `DiskHealthChanged`
 * on every change of a disk's SMART health. Pure: no clock, no bus.
 * @module
 */
import type { Severity } from "../events/mod.ts";
import type { MdArray, SmartDiskHealth } from "../../hw/raid/types.ts";
import { arrayStatus, type DiskStatus, type RaidArrayStatus, type RaidHealth } from "./health.ts";

/** An event the monitor wants published (module `storage`, kind `storage.<name>`). */
export interface StorageEvent {
  /** mdadm-style name: `DegradedArray`, `Rebuild40`, `HealthChanged`, ... */
  name: string;
  /** Severity. */
  severity: Severity;
  /** Details: always `array` or `disk`. */
  payload: Record<string, unknown>;
}

interface ArrayMemory {
  status: RaidArrayStatus;
  running: string | null;
  lastIncrement: number;
  sparesMissing: boolean;
  /** Members seen as spares that may become active. */
  wereSpares: Set<string>;
}

/** Options of the monitor. */
export interface StorageMonitorOptions {
  /** Spares expected per array (SparesMissing). */
  expectSpares?: Record<string, number>;
  /** RebuildNN step in percent (default 20). */
  increment?: number;
}

const HEALTH_SEVERITY: Record<RaidHealth, Severity> = {
  ok: "notice",
  rebuilding: "warning",
  degraded: "error",
  inactive: "warning",
  failed: "critical",
};

const DISK_SEVERITY: Record<SmartDiskHealth, Severity> = {
  ok: "notice",
  unknown: "info",
  warning: "warning",
  failing: "critical",
};

/** Tracks arrays and disks between polls and yields transition events. */
export class StorageMonitor {
  #arrays = new Map<string, ArrayMemory>();
  #disks = new Map<string, SmartDiskHealth>();
  #first = true;
  #expect: Record<string, number>;
  #inc: number;

  /** Build one. */
  constructor(opts: StorageMonitorOptions = {}) {
    this.#expect = opts.expectSpares ?? {};
    this.#inc = opts.increment ?? 20;
  }

  /** Feed one md poll; returns the events of what changed since the previous poll. */
  observeArrays(arrays: readonly MdArray[]): StorageEvent[] {
    const events: StorageEvent[] = [];
    const seen = new Set<string>();
    for (const a of arrays) {
      seen.add(a.name);
      const s = arrayStatus(a);
      const running = a.sync?.status === "running" ? a.sync.action : null;
      const progress = running ? s.sync!.progress : 0;
      const expect = this.#expect[a.name] ?? 0;
      const sparesMissing = a.active && s.spares.length < expect;
      const prev = this.#arrays.get(a.name);
      const base = { array: a.name, health: s.health, level: s.level };
      const ev = (name: string, severity: Severity, extra: Record<string, unknown> = {}) =>
        events.push({ name, severity, payload: { ...base, ...extra } });
      const mem: ArrayMemory = {
        status: s,
        running,
        lastIncrement: 0,
        sparesMissing,
        wereSpares: new Set(prev?.wereSpares ?? []),
      };
      for (const n of s.spares) mem.wereSpares.add(n);

      if (!prev) {
        if (!this.#first) ev("NewArray", "info");
        if (s.degradedDisks > 0) {
          ev("DegradedArray", "critical", { degradedDisks: s.degradedDisks });
        }
        if (running) {
          ev("RebuildStarted", "warning", { action: running, progress });
          mem.lastIncrement = this.#increment(progress);
        }
        if (sparesMissing) {
          ev("SparesMissing", "warning", { expected: expect, present: s.spares.length });
        }
        if (s.health !== "ok") {
          ev("HealthChanged", HEALTH_SEVERITY[s.health], { from: null, to: s.health });
        }
        this.#arrays.set(a.name, mem);
        continue;
      }

      const p = prev.status;
      for (const name of s.failed) {
        if (p.failed.includes(name)) continue;
        const wasSpare = p.spares.includes(name) || !p.members.some((m) => m.name === name);
        ev(wasSpare ? "FailSpare" : "Fail", "critical", { device: name });
        mem.wereSpares.delete(name);
      }
      if (s.degradedDisks > 0 && p.degradedDisks === 0) {
        ev("DegradedArray", "critical", { degradedDisks: s.degradedDisks });
      }
      if (prev.running && prev.running !== running) {
        ev("RebuildFinished", "warning", {
          action: prev.running,
          completed: running === null && s.degradedDisks <= p.degradedDisks &&
            s.failed.length === p.failed.length,
        });
      }
      if (a.active && s.activeDisks > p.activeDisks) {
        const became = [...mem.wereSpares].filter((n) =>
          s.members.some((m) => m.name === n && !m.flags.includes("S") && !m.flags.includes("F"))
        );
        if (became.length === 0) ev("SpareActive", "info", { device: null });
        for (const n of became) {
          ev("SpareActive", "info", { device: n });
          mem.wereSpares.delete(n);
        }
      }
      if (running && prev.running !== running) {
        ev("RebuildStarted", "warning", { action: running, progress });
        mem.lastIncrement = this.#increment(progress);
      } else if (running) {
        mem.lastIncrement = prev.lastIncrement;
        const step = this.#increment(progress);
        if (step > prev.lastIncrement) {
          ev(`Rebuild${step}`, "warning", { action: running, progress });
          mem.lastIncrement = step;
        }
      }
      if (sparesMissing && !prev.sparesMissing) {
        ev("SparesMissing", "warning", { expected: expect, present: s.spares.length });
      }
      if (s.health !== p.health) {
        ev("HealthChanged", HEALTH_SEVERITY[s.health], { from: p.health, to: s.health });
      }
      this.#arrays.set(a.name, mem);
    }
    for (const [name, mem] of [...this.#arrays]) {
      if (seen.has(name)) continue;
      events.push({
        name: "DeviceDisappeared",
        severity: "critical",
        payload: {
          array: name,
          health: null,
          level: mem.status.level,
          from: mem.status.health,
          to: null,
        },
      });
      this.#arrays.delete(name);
    }
    this.#first = false;
    return events;
  }

  /** Highest multiple of the increment reached, below 100. */
  #increment(progress: number): number {
    const pct = Math.floor(progress * 100 + 1e-9);
    const step = Math.floor(pct / this.#inc) * this.#inc;
    return step >= 100 ? 100 - this.#inc : step;
  }

  /** Feed one disk's status; returns a DiskHealthChanged event when its health changed. */
  observeDisk(d: DiskStatus): StorageEvent[] {
    const prev = this.#disks.get(d.device);
    this.#disks.set(d.device, d.health);
    if (prev === d.health) return [];
    if (prev === undefined && (d.health === "ok" || d.health === "unknown")) return [];
    return [{
      name: "DiskHealthChanged",
      severity: DISK_SEVERITY[d.health],
      payload: { disk: d.device, from: prev ?? null, to: d.health, reasons: d.reasons },
    }];
  }

  /** Current status of every array, in the order last seen. */
  arrays(): RaidArrayStatus[] {
    return [...this.#arrays.values()].map((m) => m.status);
  }
}
