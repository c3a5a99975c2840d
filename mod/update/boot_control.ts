/**
 * Boot control of the updater on top of hw/boot's {@link BootAb} (RAUC's GRUB
 * scheme `ORDER`/`<X>_OK`/`<X>_TRY` and U-Boot scheme `BOOT_ORDER`/`BOOT_<X>_LEFT`):
 * read the per-slot state, mark good/bad, set the primary in one write, and pick
 * the slot to start the way RAUC's example boot scripts do (the `restart` mode
 * launcher plays the bootloader).
 * @module
 */
import { BootAb, type BootAbState, type BootScheme } from "../../hw/boot/ab.ts";
import type { BootEnv, BootEnvChanges, BootEnvVars } from "../../hw/boot/types.ts";
import type { UpdateConfig } from "./config.ts";
import { errorMessage, UpdateError } from "./errors.ts";

/** Boot state of a slot: good (bootable, committed), trying (on trial), bad (not bootable). */
export type BootState = "good" | "bad" | "trying";

/** One slot as the boot env sees it. */
export interface BootSlotView {
  /** Bootname. */
  name: string;
  /** State per the scheme (trying: GRUB `<X>_TRY=1`, or U-Boot attempts used). */
  state: BootState;
  /** In ORDER / BOOT_ORDER. */
  inOrder: boolean;
  /** Raw variables of the slot. */
  vars: Record<string, string | null>;
}

/** The boot env read once. */
export interface BootView {
  /** Scheme in use. */
  scheme: BootScheme;
  /** Boot order. */
  order: string[];
  /** Slot booted next, or null. */
  primary: string | null;
  /** Per slot. */
  slots: BootSlotView[];
}

/** The scheme a config uses (`auto`: uboot for the uboot backend, else grub). */
export function schemeOf(config: UpdateConfig): BootScheme {
  if (config.scheme !== "auto") return config.scheme;
  return config.bootloader.backend === "uboot" ? "uboot" : "grub";
}

/** Boot control over one boot env. */
export class BootControl {
  readonly #env: BootEnv;
  readonly #ab: BootAb;
  readonly #scheme: BootScheme;
  readonly #slots: string[];
  readonly #attempts: number;

  /** Build for the configured bootnames. */
  constructor(env: BootEnv, opts: { scheme: BootScheme; slots: string[]; attempts: number }) {
    this.#env = env;
    this.#scheme = opts.scheme;
    this.#slots = [...opts.slots];
    this.#attempts = opts.attempts;
    this.#ab = new BootAb(env, {
      scheme: opts.scheme,
      slots: opts.slots,
      attempts: opts.attempts,
      attemptsPrimary: opts.attempts,
    });
  }

  /** Scheme in use. */
  get scheme(): BootScheme {
    return this.#scheme;
  }

  /** The boot env description. */
  describe(): string {
    return `${this.#env.describe()} (${this.#scheme} scheme)`;
  }

  async #list(): Promise<BootEnvVars> {
    try {
      return await this.#env.list();
    } catch (e) {
      throw new UpdateError(
        "boot-env",
        `cannot read boot env ${this.#env.describe()}: ${errorMessage(e)}`,
        {
          cause: e,
        },
      );
    }
  }

  async #set(changes: BootEnvChanges, what: string): Promise<void> {
    try {
      await this.#env.set(changes);
    } catch (e) {
      throw new UpdateError(
        "boot-env",
        `cannot ${what} in boot env ${this.#env.describe()}: ${errorMessage(e)}`,
        { cause: e },
      );
    }
  }

  /** Read the whole state once. */
  async read(): Promise<BootView> {
    const vars = await this.#list();
    const st: BootAbState = this.#ab.stateOf(vars);
    const get = (k: string) => (Object.hasOwn(vars, k) ? vars[k] : null);
    return {
      scheme: st.scheme,
      order: st.order,
      primary: st.primary,
      slots: st.slots.map((s) => {
        let state: BootState = s.good ? "good" : "bad";
        if (this.#scheme === "grub" && s.inOrder && s.ok === 1 && s.tried !== 0) state = "trying";
        if (
          this.#scheme === "uboot" && s.good && s.left !== null && s.left !== undefined &&
          s.left < this.#attempts
        ) state = "trying";
        const names = this.#scheme === "grub"
          ? [`${s.name}_OK`, `${s.name}_TRY`]
          : [`BOOT_${s.name}_LEFT`];
        return {
          name: s.name,
          state,
          inOrder: s.inOrder,
          vars: Object.fromEntries(names.map((n) => [n, get(n)])),
        };
      }),
    };
  }

  /** `KEEPWIRE_BOOTED` from the boot env (a boot script may set it), or undefined. */
  async bootedHint(): Promise<string | undefined> {
    const v = await this.#list();
    return Object.hasOwn(v, "KEEPWIRE_BOOTED") ? v.KEEPWIRE_BOOTED : undefined;
  }

  /** Mark `slot` good (run on every healthy start). */
  async markGood(slot: string): Promise<void> {
    this.#check(slot);
    const changes: BootEnvChanges = this.#scheme === "grub"
      ? { [`${slot}_OK`]: "1", [`${slot}_TRY`]: "0" }
      : { [`BOOT_${slot}_LEFT`]: this.#attempts.toString(16) };
    // A slot missing from the order (fresh env) is added at the end, never first.
    const v = await this.read();
    if (!v.order.includes(slot)) {
      changes[this.#orderVar()] = [...v.order, slot].join(" ");
    }
    await this.#set(changes, `mark ${slot} good`);
  }

  /**
   * Mark `slot` bad without touching the boot order (before an install writes
   * into it, and on fallback): GRUB `<X>_OK=0 <X>_TRY=0`, U-Boot `BOOT_<X>_LEFT=0`.
   */
  async markBad(slot: string): Promise<void> {
    this.#check(slot);
    const changes: BootEnvChanges = this.#scheme === "grub"
      ? { [`${slot}_OK`]: "0", [`${slot}_TRY`]: "0" }
      : { [`BOOT_${slot}_LEFT`]: "0" };
    await this.#set(changes, `mark ${slot} bad`);
  }

  /** Make `slot` the primary: first in order and bootable, in ONE atomic write. */
  async setPrimary(slot: string): Promise<void> {
    this.#check(slot);
    let changes: BootEnvChanges;
    try {
      changes = await this.#ab.setPrimaryChanges(slot);
    } catch (e) {
      throw new UpdateError("boot-env", `cannot read boot env: ${errorMessage(e)}`, { cause: e });
    }
    await this.#set(changes, `make ${slot} primary`);
  }

  /**
   * Pick the slot to start, as RAUC's example boot scripts do, and record the
   * try in one write. GRUB: the first slot of ORDER with OK=1 and TRY=0 gets
   * TRY=1. U-Boot: the first slot of BOOT_ORDER with LEFT>0 gets LEFT-1. When no
   * slot qualifies the tries are reset (GRUB: TRY=0 on OK slots; U-Boot: LEFT=attempts)
   * and null is returned (the bootloader's rescue case).
   */
  async select(): Promise<string | null> {
    const vars = await this.#list();
    const st = this.#ab.stateOf(vars);
    if (this.#scheme === "grub") {
      for (const name of st.order) {
        const s = st.slots.find((x) => x.name === name);
        if (s && s.ok === 1 && s.tried === 0) {
          await this.#set({ [`${name}_TRY`]: "1" }, `record a try of ${name}`);
          return name;
        }
      }
      const reset: BootEnvChanges = {};
      for (const s of st.slots) if (s.ok === 1) reset[`${s.name}_TRY`] = "0";
      if (Object.keys(reset).length) await this.#set(reset, "reset tries");
      return null;
    }
    for (const name of st.order) {
      const s = st.slots.find((x) => x.name === name);
      if (s && s.left !== null && s.left !== undefined && s.left > 0) {
        await this.#set(
          { [`BOOT_${name}_LEFT`]: (s.left - 1).toString(16) },
          `record a try of ${name}`,
        );
        return name;
      }
    }
    const reset: BootEnvChanges = { BOOT_ORDER: this.#slots.join(" ") };
    for (const s of this.#slots) reset[`BOOT_${s}_LEFT`] = this.#attempts.toString(16);
    await this.#set(reset, "reset tries");
    return null;
  }

  /** Initial variables for a fresh env: every slot good, order as configured. */
  initialVars(): Record<string, string> {
    if (this.#scheme === "grub") {
      return Object.fromEntries([
        ["ORDER", this.#slots.join(" ")],
        ...this.#slots.flatMap((s) => [[`${s}_OK`, "1"], [`${s}_TRY`, "0"]]),
      ]);
    }
    return Object.fromEntries([
      ["BOOT_ORDER", this.#slots.join(" ")],
      ...this.#slots.map((s) => [`BOOT_${s}_LEFT`, this.#attempts.toString(16)]),
    ]);
  }

  #orderVar(): string {
    return this.#scheme === "grub" ? "ORDER" : "BOOT_ORDER";
  }

  #check(slot: string): void {
    if (!this.#slots.includes(slot)) {
      throw new UpdateError(
        "bad-request",
        `unknown slot ${JSON.stringify(slot)} (configured: ${this.#slots.join(", ")})`,
      );
    }
  }
}
