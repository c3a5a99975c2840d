/**
 * Honest health for the UI: every card and the whole box reduced to one of
 * ok / degraded / failed, with words. A part that works but is impaired (an array
 * rebuilding, the governor shedding load, a segment in bypass) is degraded, never a
 * green "ok" beside a warning.
 */
import { arr, type Obj, obj, str } from "./data.ts";

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
export function storageHealth(storage: Obj | null): UiHealth | null {
  if (!storage) return null;
  const failed: string[] = [], degraded: string[] = [];
  for (const a of arr(storage.arrays)) {
    const h = str(a.health);
    if (h === "failed" || h === "inactive") failed.push(`${str(a.name)} ${h}`);
    else if (h !== "ok") degraded.push(`${str(a.name)} ${h}`);
  }
  for (const d of arr(storage.disks)) {
    const h = str(d.health);
    if (h === "failing") failed.push(`${str(d.device)} failing SMART`);
    else if (h === "warning") degraded.push(`${str(d.device)} SMART warning`);
  }
  if (storage.error) failed.push(`cannot read md: ${str(storage.error)}`);
  if (failed.length) return { state: "failed", words: failed.concat(degraded).join(", ") };
  if (degraded.length) return { state: "degraded", words: degraded.join(", ") };
  return { state: "ok", words: "all arrays in sync" };
}

/** Load governor (GET /api/governor). */
export function governorHealth(gov: Obj | null): UiHealth | null {
  if (!gov) return null;
  const level = str(gov.level);
  const suspended = arr(gov.suspended).map((s) => str(s.name));
  if (gov.enabled === false) return { state: "ok", words: "disabled" };
  if (level === "normal" || level === "") {
    return { state: "ok", words: "normal load" };
  }
  return {
    state: "degraded",
    words: `${level}: shedding load${
      suspended.length ? `, suspended ${suspended.join(", ")}` : ""
    }`,
  };
}

const SUB_OK = new Set(["ready", "running", "stopped", "disabled"]);

/** Supervised subsystems (GET /api/subsystems). */
export function subsystemsHealth(subs: Obj | null): UiHealth | null {
  if (!subs) return null;
  const list = arr(subs.subsystems);
  const failed = list.filter((s) => str(s.state) === "failed").map((s) => str(s.name));
  const odd = list.filter((s) => !SUB_OK.has(str(s.state)) && str(s.state) !== "failed")
    .map((s) => `${str(s.name)} ${str(s.state)}`);
  if (failed.length) return { state: "failed", words: `failed: ${failed.join(", ")}` };
  if (odd.length) return { state: "degraded", words: odd.join(", ") };
  return { state: "ok", words: list.length ? `${list.length} running` : "none configured" };
}

/** Bypass segments (GET /api/bypass): a segment not inline carries no inspected traffic. */
export function bypassHealth(bypass: Obj | null): UiHealth | null {
  if (!bypass) return null;
  const off = arr(bypass.segments).filter((s) => str(s.mode) !== "inline")
    .map((s) => `${str(s.name)} ${str(s.mode)}`);
  if (off.length) return { state: "degraded", words: `not inline: ${off.join(", ")}` };
  return { state: "ok", words: "all segments inline" };
}

/**
 * The state a slot is shown with. The booted slot whose bootloader variables still say
 * "bad" has simply not been marked good yet (a fresh install, a first boot): it runs, so it
 * reads "unconfirmed", not "bad".
 */
export function slotState(s: Obj): string {
  const st = str(s.state);
  if (s.booted && st === "bad") return "unconfirmed";
  return st;
}

/** Update slots (GET /api/update). */
export function slotsHealth(update: Obj | null): UiHealth | null {
  if (!update) return null;
  const slots = arr(update.slots);
  if (!slots.length) return { state: "ok", words: "no slots configured" };
  const booted = slots.find((s) => s.booted);
  if (!booted) return { state: "degraded", words: "booted from none of the configured slots" };
  const st = slotState(booted);
  if (st === "good") return { state: "ok", words: `booted ${str(booted.bootname)}, marked good` };
  return {
    state: "degraded",
    words: `booted ${str(booted.bootname)}, ${
      st === "unconfirmed" ? "not marked good yet" : st
    } (mark good once it works)`,
  };
}

/** HA (GET /api/ha/status). */
export function haHealth(ha: Obj | null): UiHealth | null {
  if (!ha || ha.enabled === false) return null;
  const role = str(ha.role);
  if (role === "active" || role === "standby") return { state: "ok", words: role };
  if (role === "fault") return { state: "failed", words: `fault: ${str(ha.reason)}` };
  return { state: "degraded", words: `${role}${ha.reason ? `: ${str(ha.reason)}` : ""}` };
}

/** A part of /api/health. */
export function partState(p: Obj): UiState {
  return p.ok ? "ok" : p.essential ? "failed" : "degraded";
}

/**
 * The whole box: failed when /api/health is not ok (an essential part is down), else the
 * worst of the cards (a failed non-essential part counts as degraded).
 */
export function overallHealth(
  health: Obj | null,
  cards: Record<string, UiHealth | null>,
): UiHealth {
  if (!health) return { state: "failed", words: "health unknown (no answer)" };
  const parts = obj(health.parts);
  if (!health.ok) {
    const down = Object.entries(parts).filter(([, p]) => !obj(p).ok).map(([n, p]) =>
      `${n}${obj(p).detail ? ` (${str(obj(p).detail)})` : ""}`
    );
    return { state: "failed", words: `not working: ${down.join(", ") || "starting up"}` };
  }
  const bad = Object.entries(cards).filter(([, h]) => h && h.state !== "ok")
    .map(([n, h]) => `${n}: ${h!.words}`);
  const partsBad = Object.entries(parts).filter(([, p]) => !obj(p).ok)
    .map(([n, p]) => `${n}: ${str(obj(p).detail) || "not ok"}`);
  const all = [...bad, ...partsBad];
  if (all.length) return { state: "degraded", words: `working, but ${all.join("; ")}` };
  return { state: "ok", words: "everything works" };
}
