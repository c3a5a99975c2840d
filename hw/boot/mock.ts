/** In-memory boot environment with fault injection (tests of the updater). */
import {
  applyBootChanges,
  assertBootChanges,
  type BootEnv,
  type BootEnvChanges,
  BootEnvError,
  type BootEnvVars,
  newBootVars,
} from "./types.ts";

/** Faults the mock can inject. */
export interface MockBootEnvFaults {
  /** Fail writes: `true` fails every write, a number fails that many next writes. */
  failWrite: boolean | number;
  /** Fail reads (list/get) with a `corrupt` error. */
  failRead: boolean;
}

/** In-memory {@link BootEnv}; a failed write changes nothing (like the real atomic backends). */
export class MockBootEnv implements BootEnv {
  /** Backend name. */
  readonly backend = "mock" as const;
  /** Every successful write, in order. */
  readonly writes: BootEnvChanges[] = [];
  /** Faults to inject; change at any time. */
  readonly faults: MockBootEnvFaults = { failWrite: false, failRead: false };
  #vars: BootEnvVars;

  /** Start with `initial` variables. */
  constructor(initial: Record<string, string> = {}) {
    this.#vars = newBootVars(Object.entries(initial));
  }

  /** Short description. */
  describe(): string {
    return "mock (in memory)";
  }

  /** Current variables without fault injection (for assertions). */
  snapshot(): BootEnvVars {
    return newBootVars(Object.entries(this.#vars));
  }

  #readCheck(): void {
    if (this.faults.failRead) throw new BootEnvError("corrupt", "mock: injected read failure");
  }

  /** All variables. */
  list(): Promise<BootEnvVars> {
    this.#readCheck();
    return Promise.resolve(this.snapshot());
  }

  /** One variable. */
  get(name: string): Promise<string | undefined> {
    this.#readCheck();
    return Promise.resolve(Object.hasOwn(this.#vars, name) ? this.#vars[name] : undefined);
  }

  /** Apply all changes at once, or fail (injected) and change nothing. */
  set(vars: BootEnvChanges): Promise<void> {
    try {
      assertBootChanges(vars);
    } catch (e) {
      return Promise.reject(e);
    }
    const f = this.faults.failWrite;
    if (f === true || (typeof f === "number" && f > 0)) {
      if (typeof f === "number") this.faults.failWrite = f - 1;
      return Promise.reject(new BootEnvError("injected", "mock: injected write failure"));
    }
    this.#vars = applyBootChanges(this.#vars, vars);
    this.writes.push({ ...vars });
    return Promise.resolve();
  }
}
