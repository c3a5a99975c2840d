/** The routes answered without a session or token. */

/** Paths answered without a session or token. Everything else needs one. */
export const PUBLIC_PATHS: readonly (string | RegExp)[] = [
  "/api/health",
  "/api/ha", // who is active: public fields only (the HA module's GET /ha)
  "/api/login",
  "/api/setup",
  "/login",
  "/setup",
  /^\/static\//,
  "/favicon.ico",
];

/** Is a path public? */
export function isPublic(path: string): boolean {
  return PUBLIC_PATHS.some((p) => typeof p === "string" ? p === path : p.test(path));
}
