/**
 * Resident set size of the keepwire process, compared with the `rssMb`
 * thresholds (the RAM budget of keepwire). Signal: `rssMb`.
 * @module
 */
import type { SignalValues } from "../config.ts";
import type { SignalSource } from "./types.ts";

/** Options of the RSS source. */
export interface RssSourceOptions {
  /** Memory reader (default Deno.memoryUsage). */
  memory?: () => { rss: number; heapUsed: number; heapTotal: number };
}

/** The RSS source. */
export class RssSource implements SignalSource {
  /** Source name. */
  readonly name = "rss";
  #memory: () => { rss: number; heapUsed: number; heapTotal: number };
  #last: { rss: number; heapUsed: number; heapTotal: number } | undefined;

  /** Build. */
  constructor(o: RssSourceOptions = {}) {
    this.#memory = o.memory ?? (() => Deno.memoryUsage());
  }

  /** `rssMb`. */
  sample(_now: number): SignalValues {
    this.#last = this.#memory();
    return { rssMb: Math.round(this.#last.rss / 1048576 * 10) / 10 };
  }

  /** Heap figures. */
  detail(): Record<string, unknown> {
    if (!this.#last) return {};
    return {
      rssMb: Math.round(this.#last.rss / 1048576 * 10) / 10,
      heapUsedMb: Math.round(this.#last.heapUsed / 1048576 * 10) / 10,
      heapTotalMb: Math.round(this.#last.heapTotal / 1048576 * 10) / 10,
    };
  }
}
