/**
 * A segment's config against its card: what the card can do (checked once the
 * driver answered; a config it cannot do is fatal) and the provisioning policies
 * (power-off, power-up and watchdog-expiry modes, kept in EEPROM/NVRAM on real
 * cards), written only when they differ so a restart does not wear the EEPROM.
 * @module
 */
import type { SegmentConfig } from "../../hw/bypass/config.ts";
import type {
  BypassCapabilities,
  BypassDriver,
  BypassPolicies,
  BypassPolicyName,
} from "../../hw/bypass/types.ts";
import { BypassSegmentConfigError } from "./errors.ts";
import type { SegmentPublish } from "./events.ts";

const POLICIES: BypassPolicyName[] = ["powerOff", "powerUp", "watchdogExpiry"];

/** Throw BypassSegmentConfigError (naming segment, driver and field) when the card cannot do the config. */
export function checkCapabilities(
  cfg: SegmentConfig,
  driverKind: string,
  caps: BypassCapabilities,
): void {
  const fail = (field: string, message: string) =>
    new BypassSegmentConfigError(cfg.name, driverKind, field, message);
  for (const k of POLICIES) {
    const want = cfg.policies[k];
    const c = caps.policies[k];
    if (c.settable.includes(want) || c.fixed === want) continue;
    if (c.fixed === null && c.settable.length === 0 && want === "bypass") continue;
    if (k === "watchdogExpiry" && !caps.watchdog && want === "bypass") continue;
    throw fail(
      `policies.${k}`,
      `${want} is not possible (${
        c.settable.length
          ? `settable: ${c.settable.join(", ")}`
          : `fixed: ${c.fixed ?? "not applicable"}`
      })`,
    );
  }
  const wd = cfg.watchdog.timeoutMs;
  if (wd > 0 && !caps.watchdog) {
    throw fail("watchdog.timeoutMs", "this card has no watchdog; use 0");
  }
  if (wd > 0 && caps.watchdogRangeMs) {
    const { min, max } = caps.watchdogRangeMs;
    if (wd < min || wd > max) {
      throw fail(
        "watchdog.timeoutMs",
        `${wd} ms is outside what the card supports (${min}..${max} ms)`,
      );
    }
  }
}

/**
 * Write only the settable policies that differ from the card
 * (`bypass.policies_written`), or with `provision: false` only report them
 * (`bypass.policies_differ`). Driver errors throw.
 */
export async function provisionPolicies(
  cfg: SegmentConfig,
  driver: BypassDriver,
  caps: BypassCapabilities,
  timed: <T>(p: Promise<T>, what: string) => Promise<T>,
  publish: SegmentPublish,
): Promise<void> {
  const current = await timed(driver.readPolicies(), "policy read");
  const diff: Partial<BypassPolicies> = {};
  for (const k of POLICIES) {
    if (caps.policies[k].settable.length === 0) continue;
    if (k === "watchdogExpiry" && !caps.watchdog) continue;
    if (current[k] !== cfg.policies[k]) diff[k] = cfg.policies[k];
  }
  const changed = Object.keys(diff) as BypassPolicyName[];
  if (changed.length === 0) return;
  const previous = Object.fromEntries(changed.map((k) => [k, current[k] ?? null]));
  if (!cfg.policies.provision) {
    publish("bypass.policies_differ", { wanted: diff, card: previous }, "warning");
    return;
  }
  await timed(driver.writePolicies(diff), "policy write");
  publish("bypass.policies_written", { written: diff, previous }, "notice");
}
