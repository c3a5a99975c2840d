/**
 * The storage state machine: compares each poll with the previous one and yields
 * the events of every transition: the ones `mdadm --monitor` has (member_failed =
 * Fail, spare_failed = FailSpare, array_degraded = DegradedArray, rebuild_started,
 * rebuild_progress = RebuildNN, rebuild_finished, spare_active, spares_missing,
 * array_appeared = NewArray, array_disappeared = DeviceDisappeared; the payload's
 * `mdadm` names mdadm's event), plus `array_health_changed` on every change of an
 * array's health and `disk_health_changed` on every change of a disk's SMART health.
 * Pure: no clock, no bus. Kinds and payloads: events.ts.
 * @module
 */
import type { EventMap, Severity } from "../events/mod.ts";
import type { MdArray, SmartDiskHealth } from "../../hw/raid/types.ts";
import { arrayStatus, type DiskStatus, type RaidArrayStatus, type RaidHealth } from "./health.ts";
import type { ArrayEventBase, StorageEventKind } from "./events.ts";

/** An event the monitor wants published (module `storage`), typed by its kind. */
export type StorageEvent = {
  [K in StorageEventKind]: {
    /** Event kind. */
    kind: K;
    /** Severity. */
    severity: Severity;
    /** Details. */
    payload: EventMap[K];
  };
}[StorageEventKind];

/** Build one typed storage event. */
export function storageEvent<K extends StorageEventKind>(
  kind: K,
  severity: Severity,
  payload: EventMap[K],
): StorageEvent {
  return { kind, severity, payload } as StorageEvent;
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
      const base: ArrayEventBase = { array: a.name, health: s.health, level: s.level };
      const ev = <K extends StorageEventKind>(
        kind: K,
        severity: Severity,
        payload: EventMap[K],
      ) => events.push(storageEvent(kind, severity, payload));
      const mem: ArrayMemory = {
        status: s,
        running,
        lastIncrement: 0,
        sparesMissing,
        wereSpares: new Set(prev?.wereSpares ?? []),
      };
      for (const n of s.spares) mem.wereSpares.add(n);

      if (!prev) {
        if (!this.#first) ev("storage.array_appeared", "info", { ...base, mdadm: "NewArray" });
        if (s.degradedDisks > 0) {
          ev("storage.array_degraded", "critical", {
            ...base,
            degradedDisks: s.degradedDisks,
            mdadm: "DegradedArray",
          });
        }
        if (running) {
          ev("storage.rebuild_started", "warning", {
            ...base,
            action: running,
            progress,
            mdadm: "RebuildStarted",
          });
          mem.lastIncrement = this.#increment(progress);
        }
        if (sparesMissing) {
          ev("storage.spares_missing", "warning", {
            ...base,
            expected: expect,
            present: s.spares.length,
            mdadm: "SparesMissing",
          });
        }
        if (s.health !== "ok") {
          ev("storage.array_health_changed", HEALTH_SEVERITY[s.health], {
            ...base,
            from: null,
            to: s.health,
          });
        }
        this.#arrays.set(a.name, mem);
        continue;
      }

      const p = prev.status;
      for (const name of s.failed) {
        if (p.failed.includes(name)) continue;
        const wasSpare = p.spares.includes(name) || !p.members.some((m) => m.name === name);
        if (wasSpare) {
          ev("storage.spare_failed", "critical", { ...base, device: name, mdadm: "FailSpare" });
        } else ev("storage.member_failed", "critical", { ...base, device: name, mdadm: "Fail" });
        mem.wereSpares.delete(name);
      }
      if (s.degradedDisks > 0 && p.degradedDisks === 0) {
        ev("storage.array_degraded", "critical", {
          ...base,
          degradedDisks: s.degradedDisks,
          mdadm: "DegradedArray",
        });
      }
      if (prev.running && prev.running !== running) {
        ev("storage.rebuild_finished", "warning", {
          ...base,
          action: prev.running,
          completed: running === null && s.degradedDisks <= p.degradedDisks &&
            s.failed.length === p.failed.length,
          mdadm: "RebuildFinished",
        });
      }
      if (a.active && s.activeDisks > p.activeDisks) {
        const became = [...mem.wereSpares].filter((n) =>
          s.members.some((m) => m.name === n && !m.flags.includes("S") && !m.flags.includes("F"))
        );
        if (became.length === 0) {
          ev("storage.spare_active", "info", { ...base, device: null, mdadm: "SpareActive" });
        }
        for (const n of became) {
          ev("storage.spare_active", "info", { ...base, device: n, mdadm: "SpareActive" });
          mem.wereSpares.delete(n);
        }
      }
      if (running && prev.running !== running) {
        ev("storage.rebuild_started", "warning", {
          ...base,
          action: running,
          progress,
          mdadm: "RebuildStarted",
        });
        mem.lastIncrement = this.#increment(progress);
      } else if (running) {
        mem.lastIncrement = prev.lastIncrement;
        const step = this.#increment(progress);
        if (step > prev.lastIncrement) {
          ev("storage.rebuild_progress", "warning", {
            ...base,
            action: running,
            progress,
            step,
            mdadm: `Rebuild${step}`,
          });
          mem.lastIncrement = step;
        }
      }
      if (sparesMissing && !prev.sparesMissing) {
        ev("storage.spares_missing", "warning", {
          ...base,
          expected: expect,
          present: s.spares.length,
          mdadm: "SparesMissing",
        });
      }
      if (s.health !== p.health) {
        ev("storage.array_health_changed", HEALTH_SEVERITY[s.health], {
          ...base,
          from: p.health,
          to: s.health,
        });
      }
      this.#arrays.set(a.name, mem);
    }
    for (const [name, mem] of [...this.#arrays]) {
      if (seen.has(name)) continue;
      events.push(storageEvent("storage.array_disappeared", "critical", {
        array: name,
        health: null,
        level: mem.status.level,
        from: mem.status.health,
        to: null,
        mdadm: "DeviceDisappeared",
      }));
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

  /** Feed one disk's status; returns a `disk_health_changed` event when its health changed. */
  observeDisk(d: DiskStatus): StorageEvent[] {
    const prev = this.#disks.get(d.device);
    this.#disks.set(d.device, d.health);
    if (prev === d.health) return [];
    if (prev === undefined && (d.health === "ok" || d.health === "unknown")) return [];
    return [
      storageEvent("storage.disk_health_changed", DISK_SEVERITY[d.health], {
        disk: d.device,
        from: prev ?? null,
        to: d.health,
        reasons: d.reasons,
      }),
    ];
  }

  /** Current status of every array, in the order last seen. */
  arrays(): RaidArrayStatus[] {
    return [...this.#arrays.values()].map((m) => m.status);
  }
}
