/**
 * Honest health for the UI: every card and the whole box reduced to one of
 * ok / degraded / failed, with words. A part that works but is impaired (an array
 * rebuilding, the governor shedding load, a segment in bypass) is degraded, never a
 * green "ok" beside a warning.
 */
import type { PartHealth } from "../../module.ts";
import type { StorageView } from "../../storage/types.ts";
import type { GovernorSnapshot } from "../../governor/status.ts";
import type { SubsystemList } from "../../supervisor/routes.ts";
import type { BypassStatus } from "../../bypass/routes.ts";
import type { SlotView, UpdateFullStatus } from "../../update/status.ts";
import type { HaStatus } from "../../ha/types.ts";

/** GET /api/health as the pages read it. */
export interface HealthAnswer {
  /** Every essential part is ok. */
  ok: boolean;
  /** Each part. */
  parts: Record<string, PartHealth>;
}

/** The three states the UI shows (with colours green, amber, red). */
export type UiState = "ok" | "degraded" | "failed";

/** A state and the words that explain it. */
export interface UiHealth {
  /** The state. */
  state: UiState;
  /** One short sentence: what is wrong, or that nothing is. */
  words: string;
}

const RANK: Record<UiState, number> = { ok: 0, degraded: 1, failed: 2 };

/** The worse of the states. */
export function worst(...states: UiState[]): UiState {
  return states.reduce<UiState>((a, b) => RANK[b] > RANK[a] ? b : a, "ok");
}

/** The UI state of one md array's health (rebuilding is degraded: not yet redundant). */
export function arrayState(health: string): UiState {
  return health === "ok"
    ? "ok"
    : health === "failed" || health === "inactive"
    ? "failed"
    : "degraded";
}

/** RAID arrays and SMART disks (GET /api/storage). */
export function storageHealth(storage: StorageView | null): UiHealth | null {
  if (!storage) return null;
  const failed: string[] = [], degraded: string[] = [];
  for (const a of storage.arrays) {
    const h = a.health;
    if (h === "failed" || h === "inactive") failed.push(`${a.name} ${h}`);
    else if (h !== "ok") degraded.push(`${a.name} ${h}`);
  }
  for (const d of storage.disks) {
    if (d.health === "failing") failed.push(`${d.device} failing SMART`);
    else if (d.health === "warning") degraded.push(`${d.device} SMART warning`);
  }
  if (storage.error) failed.push(`cannot read md: ${storage.error}`);
  if (failed.length) return { state: "failed", words: failed.concat(degraded).join(", ") };
  if (degraded.length) return { state: "degraded", words: degraded.join(", ") };
  return { state: "ok", words: "all arrays in sync" };
}

/** Load governor (GET /api/governor). */
export function governorHealth(gov: GovernorSnapshot | null): UiHealth | null {
  if (!gov) return null;
  const level = gov.level;
  const suspended = gov.suspended.map((s) => s.name);
  if (!gov.enabled) return { state: "ok", words: "disabled" };
  if (level === "normal") {
    return { state: "ok", words: "normal load" };
  }
  return {
    state: "degraded",
    words: `${level}: shedding load${
      suspended.length ? `, suspended ${suspended.join(", ")}` : ""
    }`,
  };
}

/** Supervised subsystems (GET /api/subsystems): ready or stopped on purpose is ok. */
export function subsystemsHealth(subs: SubsystemList | null): UiHealth | null {
  if (!subs) return null;
  const list = subs.subsystems;
  const failed = list.filter((s) => s.state === "failed").map((s) => s.name);
  const odd = list.filter((s) => !["ready", "stopped", "failed"].includes(s.state))
    .map((s) => `${s.name} ${s.state}`);
  if (failed.length) return { state: "failed", words: `failed: ${failed.join(", ")}` };
  if (odd.length) return { state: "degraded", words: odd.join(", ") };
  return { state: "ok", words: list.length ? `${list.length} running` : "none configured" };
}

/** Bypass segments (GET /api/bypass): a segment not inline carries no inspected traffic. */
export function bypassHealth(bypass: BypassStatus | null): UiHealth | null {
  if (!bypass) return null;
  const off = bypass.segments.filter((s) => s.mode !== "inline").map((s) => `${s.name} ${s.mode}`);
  if (off.length) return { state: "degraded", words: `not inline: ${off.join(", ")}` };
  return { state: "ok", words: "all segments inline" };
}

/**
 * The state a slot is shown with. The booted slot whose bootloader variables still say
 * "bad" has simply not been marked good yet (a fresh install, a first boot): it runs, so it
 * reads "unconfirmed", not "bad".
 */
export function slotState(s: SlotView): string {
  if (s.booted && s.state === "bad") return "unconfirmed";
  return s.state;
}

/** Update slots (GET /api/update). */
export function slotsHealth(update: UpdateFullStatus | null): UiHealth | null {
  if (!update) return null;
  const slots = update.slots;
  if (!slots.length) return { state: "ok", words: "no slots configured" };
  const booted = slots.find((s) => s.booted);
  if (!booted) return { state: "degraded", words: "booted from none of the configured slots" };
  const st = slotState(booted);
  if (st === "good") return { state: "ok", words: `booted ${booted.bootname}, marked good` };
  return {
    state: "degraded",
    words: `booted ${booted.bootname}, ${
      st === "unconfirmed" ? "not marked good yet" : st
    } (mark good once it works)`,
  };
}

/** HA (GET /api/ha/status). */
export function haHealth(ha: HaStatus | null): UiHealth | null {
  if (!ha || !ha.enabled) return null;
  const role = ha.role;
  if (role === "active" || role === "standby") return { state: "ok", words: role };
  if (role === "fault") return { state: "failed", words: `fault: ${ha.reason ?? ""}` };
  return { state: "degraded", words: `${role}${ha.reason ? `: ${ha.reason}` : ""}` };
}

/** A part of /api/health. */
export function partState(p: PartHealth): UiState {
  return p.ok ? "ok" : p.essential ? "failed" : "degraded";
}

/**
 * The whole box: failed when /api/health is not ok (an essential part is down), else the
 * worst of the cards (a failed non-essential part counts as degraded).
 */
export function overallHealth(
  health: HealthAnswer | null,
  cards: Record<string, UiHealth | null>,
): UiHealth {
  if (!health) return { state: "failed", words: "health unknown (no answer)" };
  const parts = health.parts;
  if (!health.ok) {
    const down = Object.entries(parts).filter(([, p]) => !p.ok).map(([n, p]) =>
      `${n}${p.detail ? ` (${p.detail})` : ""}`
    );
    return { state: "failed", words: `not working: ${down.join(", ") || "starting up"}` };
  }
  const bad = Object.entries(cards).filter(([, h]) => h && h.state !== "ok")
    .map(([n, h]) => `${n}: ${h!.words}`);
  const partsBad = Object.entries(parts).filter(([, p]) => !p.ok)
    .map(([n, p]) => `${n}: ${p.detail || "not ok"}`);
  const all = [...bad, ...partsBad];
  if (all.length) return { state: "degraded", words: `working, but ${all.join("; ")}` };
  return { state: "ok", words: "everything works" };
}
