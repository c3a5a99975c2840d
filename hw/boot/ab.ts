/**
 * A/B slot selection on top of any {@link BootEnv}, with RAUC's variable schemes
 * so that RAUC's example boot scripts work unchanged:
 *
 * - `grub` (rauc contrib/grub.conf): `ORDER="A B"`, `<X>_OK` 0/1, `<X>_TRY` 0/1
 *   (GRUB sets TRY=1 when it boots X; one try per activation). Good = in ORDER,
 *   OK=1, TRY=0. Primary = first good slot of ORDER.
 * - `uboot` (rauc contrib/uboot.sh): `BOOT_ORDER="A B"`, `BOOT_<X>_LEFT` (hex,
 *   U-Boot decrements it per boot). Good = in BOOT_ORDER and LEFT > 0. Primary =
 *   first slot of BOOT_ORDER with LEFT > 0.
 *
 * Every operation is ONE atomic env write (RAUC's U-Boot backend uses two).
 * @module
 */
import { type BootEnv, type BootEnvChanges, BootEnvError, type BootEnvVars } from "./types.ts";

/** Which variable scheme the boot script uses. */
export type BootScheme = "grub" | "uboot";

/** Options of {@link BootAb}. */
export interface BootAbOptions {
  /** Variable scheme. */
  scheme: BootScheme;
  /** Bootnames of the slots, e.g. `["A", "B"]` (letters, digits, `_`). */
  slots: string[];
  /** uboot: BOOT_<X>_LEFT written by markGood (default 3, RAUC boot-attempts). */
  attempts?: number;
  /** uboot: BOOT_<X>_LEFT written by setPrimary (default 3, RAUC boot-attempts-primary). */
  attemptsPrimary?: number;
}

/** State of one slot as the boot env describes it. */
export interface BootAbSlot {
  /** Bootname. */
  name: string;
  /** Bootable: good per the scheme's rule. */
  good: boolean;
  /** Listed in ORDER / BOOT_ORDER. */
  inOrder: boolean;
  /** grub: `<X>_OK` parsed (null when unset). */
  ok?: number | null;
  /** grub: `<X>_TRY` parsed (null when unset). */
  tried?: number | null;
  /** uboot: `BOOT_<X>_LEFT` parsed (null when unset). */
  left?: number | null;
}

/** The A/B state read from the env in one read. */
export interface BootAbState {
  /** Scheme. */
  scheme: BootScheme;
  /** ORDER / BOOT_ORDER split into bootnames. */
  order: string[];
  /** The slot the bootloader boots next (first good slot in order), or null. */
  primary: string | null;
  /** Per configured slot. */
  slots: BootAbSlot[];
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

/** A/B boot selection (primary, good/bad marks) over a boot env. */
export class BootAb {
  readonly #env: BootEnv;
  readonly #o: Required<BootAbOptions>;

  /** Build; throws `invalid-config` for bad slot names or attempt counts. */
  constructor(env: BootEnv, opts: BootAbOptions) {
    if (opts.slots.length < 1) throw new BootEnvError("invalid-config", "A/B: no slots");
    for (const s of opts.slots) {
      if (!SLOT_RE.test(s)) {
        throw new BootEnvError(
          "invalid-config",
          `A/B: bad bootname ${JSON.stringify(s)} (letters, digits, _)`,
        );
      }
    }
    const attempts = opts.attempts ?? 3;
    const attemptsPrimary = opts.attemptsPrimary ?? 3;
    for (const [k, v] of [["attempts", attempts], ["attemptsPrimary", attemptsPrimary]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 0xffff) {
        throw new BootEnvError("invalid-config", `A/B: ${k} must be an integer 1..65535`);
      }
    }
    this.#env = env;
    this.#o = { scheme: opts.scheme, slots: [...opts.slots], attempts, attemptsPrimary };
  }

  #slot(name: string): string {
    if (!this.#o.slots.includes(name)) {
      throw new BootEnvError(
        "invalid-name",
        `A/B: unknown slot ${JSON.stringify(name)} (configured: ${this.#o.slots.join(", ")})`,
      );
    }
    return name;
  }

  #orderVar(): string {
    return this.#o.scheme === "grub" ? "ORDER" : "BOOT_ORDER";
  }

  /** Compute the state from already-read variables. */
  stateOf(vars: BootEnvVars): BootAbState {
    const get = (k: string) => (Object.hasOwn(vars, k) ? vars[k] : undefined);
    const order = splitOrder(get(this.#orderVar()));
    const slots: BootAbSlot[] = this.#o.slots.map((name) => {
      const inOrder = order.includes(name);
      if (this.#o.scheme === "grub") {
        const ok = parseBootInt(get(`${name}_OK`), 0);
        const tried = parseBootInt(get(`${name}_TRY`), 0);
        return { name, inOrder, ok, tried, good: inOrder && ok === 1 && tried === 0 };
      }
      const left = parseBootInt(get(`BOOT_${name}_LEFT`), 16);
      return { name, inOrder, left, good: inOrder && left !== null && left > 0 };
    });
    const primary = order.find((n) => slots.find((s) => s.name === n)?.good) ?? null;
    return { scheme: this.#o.scheme, order, primary, slots };
  }

  /** Read the A/B state (one env read). */
  async state(): Promise<BootAbState> {
    return this.stateOf(await this.#env.list());
  }

  /** The slot the bootloader boots next, or null when none is good. */
  async primary(): Promise<string | null> {
    return (await this.state()).primary;
  }

  /** Whether `slot` is good. */
  async isGood(slot: string): Promise<boolean> {
    this.#slot(slot);
    return (await this.state()).slots.find((s) => s.name === slot)!.good;
  }

  /** The changes that make `slot` the primary (exposed for tests and dry runs). */
  async setPrimaryChanges(slot: string): Promise<BootEnvChanges> {
    this.#slot(slot);
    const current = splitOrder(await this.#env.get(this.#orderVar()));
    const rest = [...current, ...this.#o.slots].filter((n, i, a) =>
      n !== slot && a.indexOf(n) === i
    );
    const order = [slot, ...rest].join(" ");
    if (this.#o.scheme === "grub") {
      return { [`${slot}_OK`]: "1", [`${slot}_TRY`]: "0", ORDER: order };
    }
    return { [`BOOT_${slot}_LEFT`]: this.#o.attemptsPrimary.toString(16), BOOT_ORDER: order };
  }

  /** Boot `slot` next: first in order and bootable again (one write). */
  async setPrimary(slot: string): Promise<void> {
    await this.#env.set(await this.setPrimaryChanges(slot));
  }

  /** Mark `slot` good (grub: OK=1 TRY=0; uboot: LEFT=attempts). */
  async markGood(slot: string): Promise<void> {
    this.#slot(slot);
    if (this.#o.scheme === "grub") {
      await this.#env.set({ [`${slot}_OK`]: "1", [`${slot}_TRY`]: "0" });
    } else await this.#env.set({ [`BOOT_${slot}_LEFT`]: this.#o.attempts.toString(16) });
  }

  /** Mark `slot` bad (grub: OK=0 TRY=0; uboot: removed from BOOT_ORDER and LEFT=0, one write). */
  async markBad(slot: string): Promise<void> {
    this.#slot(slot);
    if (this.#o.scheme === "grub") {
      await this.#env.set({ [`${slot}_OK`]: "0", [`${slot}_TRY`]: "0" });
      return;
    }
    const raw = await this.#env.get("BOOT_ORDER");
    const changes: BootEnvChanges = { [`BOOT_${slot}_LEFT`]: "0" };
    if (raw !== undefined) changes.BOOT_ORDER = splitOrder(raw).filter((n) => n !== slot).join(" ");
    await this.#env.set(changes);
  }
}
