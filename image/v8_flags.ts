/**
 * The V8 flags of keepwire's shipped start path, in a module of their own so a bench can start
 * keepwire with them without loading the bundler.
 * @module
 */

/**
 * V8 flags of the shipped start path (the launcher image/bundle.ts writes, the checkout's
 * `./keepwire`, `deno task start`), for idle memory (README "Benchmarks", **Idle memory**):
 * - `--max-semi-space-size=2` (MB): the young generation stays at 2 × 2 MB instead of growing
 *   to V8's 2 × 16 MB; 1 MB cost a third of requests/s. It was withdrawn once because the image
 *   boot test failed with it on a quiet machine; that failure's cause was found since: systemd's
 *   WatchdogSec killed keepwire when WATCHDOG=1 was withheld for an event-loop lag above 1 s
 *   under TCG, fixed by `supervisor.serviceWatchdogLagMs` (withheld only for a real stall), and
 *   the test passes with the cap (473 s under TCG). A smaller young generation means more,
 *   shorter scavenges, not longer pauses; the web and governor benches (same session, against
 *   the 16 MB default) saw no difference beyond their run-to-run spread.
 * - `--gc-memory-reducer-start-delay-ms=1000`, `--memory-reducer-delay-ms=1000`: V8's memory
 *   reducer (it shrinks the heap with a few incremental GCs once the allocation rate is low,
 *   i.e. when the process idles) starts looking 1 s after a GC instead of 30 s / 8 s, so a
 *   started appliance gives back its start-up garbage and young generation ~10 s in instead of
 *   ~30 s. Under load the allocation rate is not low and it does not act.
 *
 * `--expose-gc` and a one-off `gc()` once idle were measured instead and cost ~10 MB more.
 * The pinned Deno must know each flag (it refuses to start on an unknown one): the bundle test
 * starts the launcher.
 */
export const V8_FLAGS =
  "--max-semi-space-size=2,--gc-memory-reducer-start-delay-ms=1000,--memory-reducer-delay-ms=1000";
