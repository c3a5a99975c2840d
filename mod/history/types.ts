/**
 * The one small API every module records its metric history through: a module that has
 * series to keep over time implements `Module.history()` and returns one
 * {@link HistorySample} per series; the history module (mod/history) calls it on its
 * sampling clock and keeps the samples in the store. No imports: modules import only
 * this type, never the history module.
 * @module
 */

/**
 * How a series is kept: a `gauge` is a level now (a chart bucket shows its highest value);
 * a `counter` is a total that only grows while keepwire runs (kept as the increase since the
 * previous sample; a bucket shows the sum of increases, e.g. restarts per step).
 */
export type HistoryKind = "gauge" | "counter";

/** One value of one series, as a module reports it. */
export interface HistorySample {
  /**
   * `<module>.<what>[.<instance>]`: letters, digits and `_ . : / -`, at most 200 characters,
   * e.g. `governor.signal.eventLoopLagMs`, `supervisor.restarts.worker-a`,
   * `storage.temperature.sda`.
   */
  series: string;
  /** The value (finite). */
  value: number;
  /** Unit as a person reads it (`ms`, `°C`, `restarts`). */
  unit: string;
  /** gauge (default) or counter. */
  kind?: HistoryKind;
  /** Name in a chart's legend (default: the series name). */
  label?: string;
  /**
   * Lines a chart draws across the series, by name (e.g. the governor's `elevated`,
   * `overload`, `severe` thresholds of a signal, in the signal's unit).
   */
  thresholds?: Record<string, number>;
  /**
   * When the value was measured (ms), when that is not now (e.g. the last SMART read): a
   * sample no newer than the series' last stored one is not stored again.
   */
  t?: number;
}

/** Series names the history accepts. */
export const SERIES_NAME = /^[A-Za-z0-9_.:\/-]{1,200}$/;
