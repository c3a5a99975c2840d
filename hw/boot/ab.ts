/**
 * THE A/B boot scheme, one object per bootloader convention, RAUC-shaped: the
 * same few operations on every scheme (state of the slots, primary, mark good,
 * mark bad, set primary, and `select` — the boot script's own pick), over any
 * {@link BootEnv} storage (grubenv, U-Boot env, JSON file, mock). The variables
 * are RAUC's, so RAUC's example boot scripts (contrib/grub.conf,
 * contrib/uboot.sh) work unchanged:
 *
 * - `grub`: `ORDER="A B"`, `<X>_OK` 0/1, `<X>_TRY` 0/1 (the script sets TRY=1
 *   on the slot it boots: one try per activation). Good = in ORDER, OK=1,
 *   TRY=0; trying = in ORDER, OK=1, TRY≠0.
 * - `uboot`: `BOOT_ORDER="A B"`, `BOOT_<X>_LEFT` (hex; the script decrements it
 *   per boot). Good = in BOOT_ORDER and LEFT>0; trying = good with fewer than
 *   `attempts` left (booted since its last mark-good).
 *
 * Primary = the first bootable slot of the order (the one the script picks). Mark-bad follows RAUC's backends
 * (src/bootloaders/grub.c, uboot.c): grub `<X>_OK=0 <X>_TRY=0` (order
 * untouched); uboot `BOOT_<X>_LEFT=0` AND the slot removed from BOOT_ORDER. The
 * removal matters: when no slot has tries left, uboot.sh resets every
 * `BOOT_<X>_LEFT` to 3 but keeps BOOT_ORDER, so a slot marked bad only by LEFT=0
 * (e.g. half-written by an interrupted install) would be booted again.
 *
 * Every operation is ONE atomic env write (RAUC's U-Boot backend uses two).
 * Mark-good also appends a slot missing from the order (a fresh env) at its
 * end, so that a slot marked good reads back as good (RAUC leaves it out).
 * @module
 */
import { type BootEnv, type BootEnvChanges, BootEnvError, type BootEnvVars } from "./types.ts";

/** The variable conventions (one per bootloader). */
export const BOOT_SCHEMES = ["grub", "uboot"] as const;
/** Which variable convention the boot script uses. */
export type BootSchemeName = typeof BOOT_SCHEMES[number];

/** Boot state of a slot: good (bootable), trying (booted on trial, not yet marked good), bad. */
export type SlotBootState = "good" | "trying" | "bad";

/** One slot as the boot env describes it. */
export interface SlotBootView {
  /** Bootname. */
  name: string;
  /** State per the scheme's rule. */
  state: SlotBootState;
  /** The boot script would pick it (grub: good; uboot: good or trying, tries left). */
  bootable: boolean;
  /** Listed in ORDER / BOOT_ORDER. */
  inOrder: boolean;
  /** The slot's raw variables (null when unset). */
  vars: Record<string, string | null>;
}

/** The A/B state read from the env in one read. */
export interface BootView {
  /** Scheme. */
  scheme: BootSchemeName;
  /** ORDER / BOOT_ORDER split into bootnames. */
  order: string[];
  /** The slot the bootloader boots next (first bootable slot in order), or null. */
  primary: string | null;
  /** Per configured slot, in configured order. */
  slots: SlotBootView[];
}

/** Options of a scheme. */
export interface BootSchemeOptions {
  /** Bootnames of the slots, e.g. `["A", "B"]` (letters, digits, `_`). */
  slots: string[];
  /** uboot: BOOT_<X>_LEFT written by markGood and by select's reset (default 3, RAUC boot-attempts). */
  attempts?: number;
  /** uboot: BOOT_<X>_LEFT written by setPrimary (default 3, RAUC boot-attempts-primary). */
  attemptsPrimary?: number;
}

/** One A/B scheme over one boot env; every write is one atomic env write. */
export interface BootScheme {
  /** Scheme name. */
  readonly name: BootSchemeName;
  /** The env it reads and writes. */
  readonly env: BootEnv;
  /** Configured bootnames. */
  readonly slots: readonly string[];
  /** `<env description> (<scheme> scheme)`. */
  describe(): string;
  /** Compute the state from already-read variables (no I/O). */
  stateOf(vars: BootEnvVars): BootView;
  /** Read the state of every slot (one env read). */
  read(): Promise<BootView>;
  /** The state of one slot. */
  state(slot: string): Promise<SlotBootState>;
  /** The slot booted next, or null when none is bootable. */
  primary(): Promise<string | null>;
  /** Mark `slot` good (run on every healthy start). */
  markGood(slot: string): Promise<void>;
  /** Mark `slot` not bootable (before an install writes it, on fallback). */
  markBad(slot: string): Promise<void>;
  /** Make `slot` the one booted next: first in order and bootable again. */
  setPrimary(slot: string): Promise<void>;
  /** The changes {@link setPrimary} writes (dry runs, tests). */
  setPrimaryChanges(slot: string): Promise<BootEnvChanges>;
  /**
   * The boot script's side, as RAUC's example scripts do it: pick the slot to
   * boot and record the try in one write; when none qualifies, reset the tries
   * and return null (the script's rescue case). The `restart` mode launcher and
   * tests play the bootloader with it.
   */
  select(): Promise<string | null>;
  /** Variables of a fresh env: every slot good, order as configured. */
  initialVars(): Record<string, string>;
}

const SLOT_RE = /^[A-Za-z0-9_]+$/;

/**
 * C `strtoull` on a prefix, as RAUC reads these variables: base 0 (0x hex, 0
 * octal, else decimal) or 16; no digits gives 0; an unset variable gives null.
 */
export function parseBootInt(s: string | undefined, base: 0 | 16): number | null {
  if (s === undefined) return null;
  let t = s.trimStart();
  let radix = base === 0 ? 10 : 16;
  if (/^0[xX][0-9a-fA-F]/.test(t)) {
    radix = 16;
    t = t.slice(2);
  } else if (base === 0 && t.startsWith("0")) radix = 8;
  const digits = radix === 16 ? /^[0-9a-fA-F]+/ : radix === 8 ? /^[0-7]+/ : /^[0-9]+/;
  const m = digits.exec(t);
  return m ? parseInt(m[0], radix) : 0;
}

function splitOrder(v: string | undefined): string[] {
  return (v ?? "").split(" ").filter((x) => x !== "");
}

function getVar(vars: BootEnvVars, k: string): string | undefined {
  return Object.hasOwn(vars, k) ? vars[k] : undefined;
}

abstract class SchemeBase implements BootScheme {
  abstract readonly name: BootSchemeName;
  /** The ORDER variable's name. */
  protected abstract readonly orderVar: string;
  readonly env: BootEnv;
  readonly slots: readonly string[];
  protected readonly attempts: number;
  protected readonly attemptsPrimary: number;

  constructor(env: BootEnv, opts: BootSchemeOptions) {
    if (opts.slots.length < 1) throw new BootEnvError("invalid-config", "A/B: no slots");
    for (const s of opts.slots) {
      if (!SLOT_RE.test(s)) {
        throw new BootEnvError(
          "invalid-config",
          `A/B: bad bootname ${JSON.stringify(s)} (letters, digits, _)`,
        );
      }
    }
    if (new Set(opts.slots).size !== opts.slots.length) {
      throw new BootEnvError(
        "invalid-config",
        `A/B: duplicate bootname in ${opts.slots.join(" ")}`,
      );
    }
    const attempts = opts.attempts ?? 3;
    const attemptsPrimary = opts.attemptsPrimary ?? 3;
    for (const [k, v] of [["attempts", attempts], ["attemptsPrimary", attemptsPrimary]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 0xffff) {
        throw new BootEnvError("invalid-config", `A/B: ${k} must be an integer 1..65535`);
      }
    }
    this.env = env;
    this.slots = [...opts.slots];
    this.attempts = attempts;
    this.attemptsPrimary = attemptsPrimary;
  }

  describe(): string {
    return `${this.env.describe()} (${this.name} scheme)`;
  }

  protected check(slot: string): void {
    if (!this.slots.includes(slot)) {
      throw new BootEnvError(
        "invalid-name",
        `A/B: unknown slot ${JSON.stringify(slot)} (configured: ${this.slots.join(", ")})`,
      );
    }
  }

  /** State and raw variables of one slot. */
  protected abstract slotOf(vars: BootEnvVars, name: string, inOrder: boolean): SlotBootView;
  protected abstract goodChanges(slot: string): BootEnvChanges;
  protected abstract badChanges(slot: string, vars: BootEnvVars): BootEnvChanges;
  protected abstract primaryChanges(slot: string): BootEnvChanges;
  abstract select(): Promise<string | null>;
  abstract initialVars(): Record<string, string>;

  stateOf(vars: BootEnvVars): BootView {
    const order = splitOrder(getVar(vars, this.orderVar));
    const slots = this.slots.map((name) => this.slotOf(vars, name, order.includes(name)));
    const primary = order.find((n) => slots.find((s) => s.name === n)?.bootable) ?? null;
    return { scheme: this.name, order, primary, slots };
  }

  async read(): Promise<BootView> {
    return this.stateOf(await this.env.list());
  }

  async state(slot: string): Promise<SlotBootState> {
    this.check(slot);
    return (await this.read()).slots.find((s) => s.name === slot)!.state;
  }

  async primary(): Promise<string | null> {
    return (await this.read()).primary;
  }

  async markGood(slot: string): Promise<void> {
    this.check(slot);
    const changes = this.goodChanges(slot);
    const order = splitOrder(await this.env.get(this.orderVar));
    if (!order.includes(slot)) changes[this.orderVar] = [...order, slot].join(" ");
    await this.env.set(changes);
  }

  async markBad(slot: string): Promise<void> {
    this.check(slot);
    await this.env.set(this.badChanges(slot, await this.env.list()));
  }

  async setPrimaryChanges(slot: string): Promise<BootEnvChanges> {
    this.check(slot);
    const current = splitOrder(await this.env.get(this.orderVar));
    const rest = [...current, ...this.slots].filter((n, i, a) => n !== slot && a.indexOf(n) === i);
    return { ...this.primaryChanges(slot), [this.orderVar]: [slot, ...rest].join(" ") };
  }

  async setPrimary(slot: string): Promise<void> {
    await this.env.set(await this.setPrimaryChanges(slot));
  }
}

/** RAUC's GRUB scheme (contrib/grub.conf): ORDER, `<X>_OK`, `<X>_TRY`. */
export class GrubScheme extends SchemeBase {
  /** Scheme name. */
  readonly name = "grub" as const;
  protected readonly orderVar = "ORDER";

  protected slotOf(vars: BootEnvVars, name: string, inOrder: boolean): SlotBootView {
    const rawOk = getVar(vars, `${name}_OK`);
    const rawTry = getVar(vars, `${name}_TRY`);
    const ok = parseBootInt(rawOk, 0);
    const tried = parseBootInt(rawTry, 0);
    const state: SlotBootState = !inOrder || ok !== 1
      ? "bad"
      : tried === 0
      ? "good"
      : tried === null
      ? "bad"
      : "trying";
    return {
      name,
      state,
      bootable: state === "good",
      inOrder,
      vars: { [`${name}_OK`]: rawOk ?? null, [`${name}_TRY`]: rawTry ?? null },
    };
  }

  protected goodChanges(slot: string): BootEnvChanges {
    return { [`${slot}_OK`]: "1", [`${slot}_TRY`]: "0" };
  }

  protected badChanges(slot: string): BootEnvChanges {
    return { [`${slot}_OK`]: "0", [`${slot}_TRY`]: "0" };
  }

  protected primaryChanges(slot: string): BootEnvChanges {
    return { [`${slot}_OK`]: "1", [`${slot}_TRY`]: "0" };
  }

  /**
   * grub.conf: ORDER unset means the configured order, OK and TRY unset mean 0;
   * the first slot of ORDER with OK=1 TRY=0 gets TRY=1. None: TRY=0 on every OK
   * slot (no write when nothing changes), null.
   */
  async select(): Promise<string | null> {
    const vars = await this.env.list();
    const raw = getVar(vars, "ORDER");
    const order = raw === undefined ? [...this.slots] : splitOrder(raw);
    const num = (k: string) => parseBootInt(getVar(vars, k), 0) ?? 0;
    for (const name of order) {
      if (!this.slots.includes(name)) continue;
      if (num(`${name}_OK`) === 1 && num(`${name}_TRY`) === 0) {
        await this.env.set({ [`${name}_TRY`]: "1" });
        return name;
      }
    }
    const reset: BootEnvChanges = {};
    for (const s of this.slots) {
      if (num(`${s}_OK`) === 1 && num(`${s}_TRY`) !== 0) reset[`${s}_TRY`] = "0";
    }
    if (Object.keys(reset).length) await this.env.set(reset);
    return null;
  }

  initialVars(): Record<string, string> {
    return Object.fromEntries([
      ["ORDER", this.slots.join(" ")],
      ...this.slots.flatMap((s) => [[`${s}_OK`, "1"], [`${s}_TRY`, "0"]]),
    ]);
  }
}

/** RAUC's U-Boot scheme (contrib/uboot.sh): BOOT_ORDER, `BOOT_<X>_LEFT` (hex). */
export class UBootScheme extends SchemeBase {
  /** Scheme name. */
  readonly name = "uboot" as const;
  protected readonly orderVar = "BOOT_ORDER";

  protected slotOf(vars: BootEnvVars, name: string, inOrder: boolean): SlotBootView {
    const raw = getVar(vars, `BOOT_${name}_LEFT`);
    const left = parseBootInt(raw, 16);
    const state: SlotBootState = !inOrder || left === null || left <= 0
      ? "bad"
      : left < this.attempts
      ? "trying"
      : "good";
    return {
      name,
      state,
      bootable: state !== "bad",
      inOrder,
      vars: { [`BOOT_${name}_LEFT`]: raw ?? null },
    };
  }

  protected goodChanges(slot: string): BootEnvChanges {
    return { [`BOOT_${slot}_LEFT`]: this.attempts.toString(16) };
  }

  protected badChanges(slot: string, vars: BootEnvVars): BootEnvChanges {
    const changes: BootEnvChanges = { [`BOOT_${slot}_LEFT`]: "0" };
    const raw = getVar(vars, "BOOT_ORDER");
    if (raw !== undefined) {
      changes.BOOT_ORDER = splitOrder(raw).filter((n) => n !== slot).join(" ");
    }
    return changes;
  }

  protected primaryChanges(slot: string): BootEnvChanges {
    return { [`BOOT_${slot}_LEFT`]: this.attemptsPrimary.toString(16) };
  }

  /**
   * uboot.sh: an empty BOOT_ORDER becomes the configured order and an unset
   * BOOT_<X>_LEFT becomes `attempts`; the first slot of BOOT_ORDER with LEFT>0
   * gets LEFT-1 (defaults written in the same write). None: every configured
   * slot gets LEFT=attempts, BOOT_ORDER stays (a slot removed by mark-bad stays
   * out), null.
   */
  async select(): Promise<string | null> {
    const vars = await this.env.list();
    const defaults: BootEnvChanges = {};
    let order = splitOrder(getVar(vars, "BOOT_ORDER"));
    if (!order.length) {
      order = [...this.slots];
      defaults.BOOT_ORDER = order.join(" ");
    }
    const left = (s: string): number => {
      const v = getVar(vars, `BOOT_${s}_LEFT`);
      if (v === undefined || v === "") {
        defaults[`BOOT_${s}_LEFT`] = this.attempts.toString(16);
        return this.attempts;
      }
      return parseBootInt(v, 16) ?? 0;
    };
    for (const s of this.slots) left(s);
    for (const name of order) {
      if (!this.slots.includes(name)) continue;
      const n = left(name);
      if (n > 0) {
        await this.env.set({ ...defaults, [`BOOT_${name}_LEFT`]: (n - 1).toString(16) });
        return name;
      }
    }
    const reset: BootEnvChanges = { ...defaults };
    for (const s of this.slots) reset[`BOOT_${s}_LEFT`] = this.attempts.toString(16);
    await this.env.set(reset);
    return null;
  }

  initialVars(): Record<string, string> {
    return Object.fromEntries([
      ["BOOT_ORDER", this.slots.join(" ")],
      ...this.slots.map((s) => [`BOOT_${s}_LEFT`, this.attempts.toString(16)]),
    ]);
  }
}

/** Build the scheme object `name` over `env`; throws `invalid-config` for bad slots/attempts. */
export function createBootScheme(
  name: BootSchemeName,
  env: BootEnv,
  opts: BootSchemeOptions,
): BootScheme {
  return name === "grub" ? new GrubScheme(env, opts) : new UBootScheme(env, opts);
}
