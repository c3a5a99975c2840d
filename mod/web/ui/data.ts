/** Loose readers for API JSON in pages (pages render whatever fields exist). */

/** A JSON object. */
export type Obj = Record<string, unknown>;

/** Field as object. */
export function obj(v: unknown): Obj {
  return v && typeof v === "object" && !Array.isArray(v) ? v as Obj : {};
}
/** Field as array of objects. */
export function arr(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map(obj) : [];
}
/** Field as string ("" when absent). */
export function str(v: unknown): string {
  return v === null || v === undefined ? "" : typeof v === "string" ? v : String(v);
}
/** Field as number or null. */
export function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
/** Array of strings (objects rendered by a `name`/`reason` field). */
export function strs(v: unknown): string[] {
  return Array.isArray(v)
    ? v.map((x) =>
      typeof x === "string" ? x : str(obj(x).reason ?? obj(x).name ?? JSON.stringify(x))
    )
    : [];
}

/** A time field (ms number or ISO string) as ms, or null. */
export function time(v: unknown): number | null {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string") {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }
  return null;
}
