/**
 * Bypass drivers: the factory that builds the driver a segment's config names.
 * @module
 */
import type { Clock } from "../../mod/module.ts";
import { systemClock } from "../../mod/module.ts";
import type { SegmentConfig } from "./config.ts";
import type { BypassDriver } from "./types.ts";
import type { BypassSpawner, BypassToolRunner } from "./exec.ts";
import { MockBypassDriver } from "./mock.ts";
import { SilicomBypassDriver } from "./silicom.ts";
import { GpioBypassDriver } from "./gpio.ts";
import { TcBypassDriver } from "./tc.ts";

export * from "./types.ts";
export { MockBypassDriver } from "./mock.ts";
export { SilicomBypassDriver } from "./silicom.ts";
export { GpioBypassDriver } from "./gpio.ts";
export { TcBypassDriver } from "./tc.ts";

/** What drivers may need besides their config. */
export interface BypassDriverDeps {
  /** Clock (mock switch delays and card watchdog, GPIO settle wait). */
  clock?: Clock;
  /** Environment for external tools (tests put fake tools first on PATH). */
  env?: Record<string, string>;
  /** Tool runner (tests). */
  run?: BypassToolRunner;
  /** Child spawner (tests). */
  spawn?: BypassSpawner;
}

/** Build the driver of one segment. The config is already validated. */
export function createBypassDriver(seg: SegmentConfig, deps: BypassDriverDeps = {}): BypassDriver {
  const clock = deps.clock ?? systemClock;
  switch (seg.driver) {
    case "mock": {
      const o = seg.mock;
      return new MockBypassDriver({
        ports: seg.ports,
        clock,
        initialMode: o?.initialMode,
        switchMs: o?.switchMs,
        stuck: o?.stuck,
        tap: o?.tap,
      });
    }
    case "silicom":
      return new SilicomBypassDriver({
        ports: seg.ports,
        root: seg.silicom?.root,
        master: seg.silicom?.master,
      });
    case "gpio": {
      const g = seg.gpio;
      if (!g) throw new Error(`segment "${seg.name}": driver gpio needs its options object "gpio"`);
      return new GpioBypassDriver({
        ports: seg.ports,
        chip: g.chip,
        line: g.line,
        disconnectLine: g.disconnectLine,
        statusLine: g.statusLine,
        activeLow: g.activeLow,
        statusActiveLow: g.statusActiveLow,
        tool: g.tool,
        gpioset: g.gpioset,
        gpioget: g.gpioget,
        consumer: g.consumer,
        settleMs: g.settleMs,
        env: deps.env,
        run: deps.run,
        spawn: deps.spawn,
        clock,
      });
    }
    case "tc": {
      const t = seg.tc;
      if (!t) throw new Error(`segment "${seg.name}": driver tc needs its options object "tc"`);
      return new TcBypassDriver({
        ports: seg.ports,
        engine: t.engine,
        netns: t.netns,
        tc: t.tc,
        ip: t.ip,
        prio: t.prio,
        run: deps.run,
      });
    }
  }
}
