/**
 * Mock RAID driver: md arrays and SMART disks in memory, moved through scripted
 * scenarios on an injected clock. It renders the kernel's /proc/mdstat text and
 * parses it with the real parser, so everything above it sees what the kernel
 * would print. Fault injection: read errors, SMART errors, an mdstat override,
 * and direct operations (fail a member, add a spare, start a recovery, ...).
 *
 * Scenarios (times from the mock's creation):
 * - `clean`: md0 raid1 (sda1 sdb1, spare sdc1) and md1 raid5 (sdd1 sde1 sdf1), nothing happens.
 * - `fail-rebuild`: 5 s sdb SMART warning; 10 s sdb fails SMART and sdb1 fails (degraded);
 *   15 s spare sdc1 takes the slot, recovery runs 100 s (rebuilding, progress);
 *   115 s clean; 130 s sdb1 removed; 140 s new spare sdg1 added.
 * - `array-failure`: md1 raid5 (sdd1 sde1 sdf1, spare sdg1): 10 s the spare sdg1 fails;
 *   20 s sde1 fails (degraded, no spare); 30 s sdf1 fails (failed); 40 s stopped and
 *   re-assembled without enough members (inactive); 50 s stopped (gone).
 * @module
 */
import { parseMdstat } from "./mdstat.ts";
import { reportOf, type SmartctlJson } from "./smart.ts";
import type {
  MdSnapshot,
  MdSource,
  MdSyncAction,
  RaidDriver,
  SmartReader,
  SmartReport,
} from "./types.ts";

/** A scenario name. */
export type RaidMockScenario = "clean" | "fail-rebuild" | "array-failure";

interface MockMember {
  name: string;
  descNr: number;
  slot: number | null;
  inSync: boolean;
  faulty: boolean;
  writeMostly: boolean;
  replacement: boolean;
}

interface MockSync {
  action: MdSyncAction;
  startedAt: number;
  durationMs: number;
  /** Member that becomes in-sync when a recovery finishes. */
  target: string | null;
}

interface MockArray {
  name: string;
  level: "raid1" | "raid5" | "raid6" | "raid10" | "raid0" | "linear";
  raidDisks: number;
  memberKiB: number;
  members: MockMember[];
  active: boolean;
  sync: MockSync | null;
}

/** SMART state of a mock disk. */
export interface MockDiskState {
  /** Overall SMART status. */
  passed: boolean;
  /** Temperature °C. */
  temperatureC: number;
  /** Power-on hours. */
  powerOnHours: number;
  /** ATA 5. */
  reallocated: number;
  /** ATA 197. */
  pending: number;
  /** ATA 198. */
  uncorrectable: number;
}

interface Step {
  at: number;
  run: (m: RaidMock) => void;
}

const HEALTHY: MockDiskState = {
  passed: true,
  temperatureC: 34,
  powerOnHours: 12_000,
  reallocated: 0,
  pending: 0,
  uncorrectable: 0,
};

/** Options of the mock. */
export interface RaidMockOptions {
  /** Scenario (default `clean`). */
  scenario?: RaidMockScenario;
  /** The injected clock's `now`. */
  now: () => number;
  /** Temperature warning threshold for SMART classification. */
  temperatureWarnC?: number;
}

/** The mock: an MdSource, plus SMART reads of the same in-memory disks (see asDriver). */
export class RaidMock implements MdSource {
  /** Driver name. */
  readonly driver = "mock";
  readonly #now: () => number;
  readonly #start: number;
  readonly #warnC: number;
  #arrays: MockArray[] = [];
  #disks = new Map<string, MockDiskState>();
  #steps: Step[] = [];
  #readError: string | null = null;
  #smartErrors = new Map<string, string>();
  #override: string | null = null;
  /** While a scenario step runs: its scheduled time (a late poll must not shift it). */
  #stepTime: number | null = null;
  /** The scenario this mock runs. */
  readonly scenario: RaidMockScenario;

  /** Build; the scenario's clock starts now. */
  constructor(opts: RaidMockOptions) {
    this.#now = opts.now;
    this.#start = opts.now();
    this.#warnC = opts.temperatureWarnC ?? 60;
    this.scenario = opts.scenario ?? "clean";
    for (const d of ["sda", "sdb", "sdc", "sdd", "sde", "sdf", "sdg"]) {
      this.#disks.set(`/dev/${d}`, { ...HEALTHY, powerOnHours: HEALTHY.powerOnHours + d.length });
    }
    this.#setup(this.scenario);
  }

  /** The disks this mock knows (for SMART polling). */
  get disks(): string[] {
    return [...this.#disks.keys()];
  }

  #setup(s: RaidMockScenario): void {
    const mem = (name: string, descNr: number, slot: number | null): MockMember => ({
      name,
      descNr,
      slot,
      inSync: slot !== null,
      faulty: false,
      writeMostly: false,
      replacement: false,
    });
    const md0 = (): MockArray => ({
      name: "md0",
      level: "raid1",
      raidDisks: 2,
      memberKiB: 10_485_760,
      members: [mem("sda1", 0, 0), mem("sdb1", 1, 1), mem("sdc1", 2, null)],
      active: true,
      sync: null,
    });
    const md1 = (spare: boolean): MockArray => ({
      name: "md1",
      level: "raid5",
      raidDisks: 3,
      memberKiB: 1_953_382_400,
      members: [
        mem("sdd1", 0, 0),
        mem("sde1", 1, 1),
        mem("sdf1", 2, 2),
        ...(spare ? [mem("sdg1", 3, null)] : []),
      ],
      active: true,
      sync: null,
    });
    if (s === "clean") {
      this.#arrays = [md0(), md1(false)];
    } else if (s === "fail-rebuild") {
      this.#arrays = [md0(), md1(false)];
      this.#steps = [
        { at: 5_000, run: (m) => m.setDisk("/dev/sdb", { reallocated: 8, pending: 2 }) },
        {
          at: 10_000,
          run: (m) => {
            m.setDisk("/dev/sdb", { passed: false, reallocated: 1_200, pending: 40 });
            m.failMember("md0", "sdb1");
          },
        },
        { at: 15_000, run: (m) => m.startRecovery("md0", "sdc1", 100_000) },
        { at: 130_000, run: (m) => m.removeMember("md0", "sdb1") },
        { at: 140_000, run: (m) => m.addSpare("md0", "sdg1") },
      ];
    } else {
      this.#arrays = [md0(), md1(true)];
      this.#steps = [
        {
          at: 10_000,
          run: (m) => {
            m.setDisk("/dev/sdg", { passed: false });
            m.failMember("md1", "sdg1");
          },
        },
        {
          at: 20_000,
          run: (m) => {
            m.setDisk("/dev/sde", { passed: false, uncorrectable: 16 });
            m.failMember("md1", "sde1");
          },
        },
        {
          at: 30_000,
          run: (m) => {
            m.setDisk("/dev/sdf", { pending: 3 });
            m.failMember("md1", "sdf1");
          },
        },
        { at: 40_000, run: (m) => m.stopArray("md1", true) },
        { at: 50_000, run: (m) => m.stopArray("md1", false) },
      ];
    }
  }

  /** Apply every scenario step that is due, and finish syncs that are done. */
  #advance(): void {
    const t = this.#now() - this.#start;
    while (this.#steps.length && this.#steps[0].at <= t) {
      const step = this.#steps.shift()!;
      this.#finishSyncs(this.#start + step.at);
      this.#stepTime = this.#start + step.at;
      try {
        step.run(this);
      } finally {
        this.#stepTime = null;
      }
    }
    this.#finishSyncs(this.#now());
  }

  #finishSyncs(now: number): void {
    for (const a of this.#arrays) {
      const s = a.sync;
      if (!s || now < s.startedAt + s.durationMs) continue;
      if (s.target) {
        const m = a.members.find((x) => x.name === s.target);
        if (m && !m.faulty) m.inSync = true;
      }
      a.sync = null;
    }
  }

  #array(name: string): MockArray {
    const a = this.#arrays.find((x) => x.name === name);
    if (!a) throw new Error(`mock: no array ${name}`);
    return a;
  }

  /** Mark a member faulty (as `mdadm --fail` or an I/O error would). */
  failMember(array: string, member: string): void {
    const a = this.#array(array);
    const m = a.members.find((x) => x.name === member);
    if (!m) throw new Error(`mock: ${array} has no member ${member}`);
    m.faulty = true;
    m.inSync = false;
    if (a.sync?.target === member) a.sync = null;
  }

  /** Remove a member (`mdadm --remove`). */
  removeMember(array: string, member: string): void {
    const a = this.#array(array);
    a.members = a.members.filter((x) => x.name !== member);
  }

  /** Add a spare (`mdadm --add`). */
  addSpare(array: string, member: string): void {
    const a = this.#array(array);
    const descNr = Math.max(-1, ...a.members.map((m) => m.descNr)) + 1;
    a.members.push({
      name: member,
      descNr,
      slot: null,
      inSync: false,
      faulty: false,
      writeMostly: false,
      replacement: false,
    });
  }

  /** A spare takes the first empty slot and a recovery of `durationMs` starts. */
  startRecovery(array: string, spare: string, durationMs: number): void {
    const a = this.#array(array);
    const m = a.members.find((x) => x.name === spare);
    if (!m || m.faulty) throw new Error(`mock: ${array} has no usable spare ${spare}`);
    const used = new Set(
      a.members.filter((x) => !x.faulty && x.slot !== null).map((x) => x.slot as number),
    );
    let slot = 0;
    while (used.has(slot)) slot++;
    if (slot >= a.raidDisks) throw new Error(`mock: ${array} has no empty slot`);
    m.slot = slot;
    m.inSync = false;
    a.sync = { action: "recovery", startedAt: this.#time(), durationMs, target: spare };
  }

  /** Start a check/resync/repair of `durationMs`. */
  startSync(array: string, action: MdSyncAction, durationMs: number): void {
    this.#array(array).sync = { action, startedAt: this.#time(), durationMs, target: null };
  }

  #time(): number {
    return this.#stepTime ?? this.#now();
  }

  /** Stop an array; with `reassemble`, it comes back inactive with its surviving members as spares. */
  stopArray(array: string, reassemble: boolean): void {
    const a = this.#array(array);
    if (!reassemble) {
      this.#arrays = this.#arrays.filter((x) => x !== a);
      return;
    }
    a.active = false;
    a.sync = null;
    a.members = a.members.filter((m) => !m.faulty).map((m) => ({
      ...m,
      faulty: false,
      inSync: false,
      slot: null,
    }));
  }

  /** Change a disk's SMART state. */
  setDisk(device: string, change: Partial<MockDiskState>): void {
    const d = this.#disks.get(device) ?? { ...HEALTHY };
    this.#disks.set(device, { ...d, ...change });
  }

  /** Make read() throw (null clears). */
  injectReadError(message: string | null): void {
    this.#readError = message;
  }

  /** Make SMART reads of a device throw (null clears). */
  injectSmartError(device: string, message: string | null): void {
    if (message === null) this.#smartErrors.delete(device);
    else this.#smartErrors.set(device, message);
  }

  /** Serve this mdstat text instead of the model (null returns to the model). */
  setMdstat(text: string | null): void {
    this.#override = text;
  }

  /** The mdstat text the kernel would print for the current model. */
  renderMdstat(): string {
    this.#advance();
    const now = this.#now();
    let out = "Personalities : [raid1] [raid6] [raid5] [raid4] \n";
    for (const a of this.#arrays) out += renderArray(a, now);
    return out + "unused devices: <none>\n";
  }

  /** Read the current md state. */
  read(): Promise<MdSnapshot> {
    if (this.#readError !== null) {
      return Promise.reject(new Error(`mock md driver: ${this.#readError}`));
    }
    const text = this.#override ?? this.renderMdstat();
    return Promise.resolve({
      mdstat: parseMdstat(text, { source: "mock mdstat" }),
      time: this.#now(),
    });
  }

  /** Read SMART of one mock disk: a made-up smartctl JSON through the real classifier. */
  smartRead(device: string): Promise<SmartReport> {
    this.#advance();
    const err = this.#smartErrors.get(device);
    if (err !== undefined) return Promise.reject(new Error(`mock smartctl: ${err}`));
    const d = this.#disks.get(device);
    if (!d) {
      return Promise.resolve(reportOf(device, {
        smartctl: {
          exit_status: 1,
          messages: [{ string: `${device}: Unable to detect device type`, severity: "error" }],
        },
      }, { temperatureWarnC: this.#warnC }));
    }
    return Promise.resolve(
      reportOf(device, smartJson(device, d), { temperatureWarnC: this.#warnC }),
    );
  }

  /** This mock as a RaidDriver (md source + SMART reader). */
  asDriver(disks?: string[]): RaidDriver {
    const smart: SmartReader = { read: (dev) => this.smartRead(dev) };
    return { name: "mock", md: this, smart, disks: disks?.length ? disks : this.disks };
  }
}

function smartJson(device: string, d: MockDiskState): SmartctlJson {
  const attr = (id: number, name: string, raw: number, failed: boolean) => ({
    id,
    name,
    value: failed ? 1 : 100,
    worst: failed ? 1 : 100,
    thresh: 10,
    when_failed: failed ? "now" : "",
    raw: { value: raw, string: String(raw) },
  });
  return {
    smartctl: { exit_status: d.passed ? 0 : 8 },
    device: { name: device, protocol: "ATA", type: "sat" },
    model_name: "KEEPWIRE MOCK DISK 2TB",
    serial_number: `MOCK${device.slice(-1).toUpperCase()}0001`,
    smart_status: { passed: d.passed },
    temperature: { current: d.temperatureC },
    power_on_time: { hours: d.powerOnHours },
    ata_smart_attributes: {
      table: [
        attr(5, "Reallocated_Sector_Ct", d.reallocated, !d.passed && d.reallocated > 1000),
        attr(9, "Power_On_Hours", d.powerOnHours, false),
        attr(194, "Temperature_Celsius", d.temperatureC, false),
        attr(197, "Current_Pending_Sector", d.pending, false),
        attr(198, "Offline_Uncorrectable", d.uncorrectable, false),
      ],
    },
  };
}

function renderArray(a: MockArray, now: number): string {
  const flags = (m: MockMember): string => {
    let f = m.writeMostly ? "(W)" : "";
    if (m.faulty) return f + "(F)";
    if (m.slot === null) f += "(S)";
    if (m.replacement) f += "(R)";
    return f;
  };
  const members = a.members.map((m) => ` ${m.name}[${m.descNr}]${flags(m)}`).join("");
  if (!a.active) {
    const kib = a.members.length * a.memberKiB;
    return `${a.name} : inactive${members}\n      ${kib} blocks super 1.2\n       \n\n`;
  }
  let pattern = "";
  for (let slot = 0; slot < a.raidDisks; slot++) {
    const ok = a.members.some((m) => m.slot === slot && m.inSync && !m.faulty);
    pattern += ok ? "U" : "_";
  }
  const working = [...pattern].filter((c) => c === "U").length;
  const dataDisks = a.level === "raid5"
    ? a.raidDisks - 1
    : a.level === "raid6"
    ? a.raidDisks - 2
    : 1;
  const blocks = a.memberKiB * dataDisks;
  const geometry = a.level === "raid5" ? " level 5, 512k chunk, algorithm 2" : "";
  let out =
    `${a.name} : active ${a.level}${members}\n      ${blocks} blocks super 1.2${geometry} ` +
    `[${a.raidDisks}/${working}] [${pattern}]\n`;
  if (a.sync) {
    const s = a.sync;
    const total = a.memberKiB;
    const frac = Math.min(1, Math.max(0, (now - s.startedAt) / s.durationMs));
    const perMilli = Math.floor(frac * 1000);
    const done = Math.floor(total * frac);
    const x = Math.floor(perMilli / 50);
    const bar = `[${"=".repeat(x)}>${".".repeat(20 - x)}]`;
    const speed = Math.max(1, Math.round(total / (s.durationMs / 1000)));
    const finish = ((total - done) / speed / 60).toFixed(1);
    const word = s.action === "repair" ? "resync" : s.action;
    out += `      ${bar}  ${word} =${String(Math.floor(perMilli / 10)).padStart(3)}.${
      perMilli % 10
    }% (${done}/${total}) finish=${finish}min speed=${speed}K/sec\n`;
  }
  out += "      bitmap: 0/8 pages [0KB], 65536KB chunk\n\n";
  return out;
}
