/**
 * The shape of one chaos scenario (`deno task chaos`). Each `chaos/<name>.ts` file exports
 * `export const scenario: ChaosScenario`; the runner in `chaos/mod.ts` finds it by reading the
 * folder, so adding a scenario is adding a file.
 */

/** What one scenario run did: every injected fault is counted as survived or lost. */
export interface ChaosResult {
  /** Faults injected (kills, mutated inputs, requests, ...), in the scenario's own unit. */
  injected: number;
  /** Injections after which every invariant the scenario checks held. */
  survived: number;
  /** Injections after which an invariant broke (data lost, crash, corruption). Must be 0. */
  lost: number;
  /** One line for the table: the unit, a latency figure, what was checked. */
  notes?: string;
}

/** One fault class: injects faults into a real keepwire and counts what survived. */
export interface ChaosScenario {
  /** Short snake_case name, the file name without `.ts`; used on the command line. */
  name: string;
  /** One sentence: what is injected and which invariants are checked. */
  description: string;
  /**
   * Run the scenario. `bounded` is the CI form (must finish within about 60 s on a busy
   * 2-core machine); unbounded is the longer form run by hand. `log` prints progress lines.
   * Throws only when the scenario itself could not run (setup failed); faults that broke an
   * invariant are counted in `lost`.
   */
  run(opts: { bounded: boolean; log: (s: string) => void }): Promise<ChaosResult>;
}
