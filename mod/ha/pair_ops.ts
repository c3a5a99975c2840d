/**
 * The operator's pair maintenance beside pairing itself: what `ha unpair` would leave
 * unreplicated (in words), and when a peer link certificate warns before it expires.
 * Pure functions on injected time; the HA module (mod.ts) runs them.
 * @module
 */

/** Changes the primary made that the standby never acknowledged (from replication). */
export interface UnackedChanges {
  /** Frames not acknowledged. */
  frames: number;
  /** Their first and last sequence number. */
  fromSeq: number;
  toSeq: number;
  /** Per table: rows touched and the operations. */
  tables: Record<string, { rows: number; insert: number; update: number; delete: number }>;
}

/** What unpairing would leave only on this node, in one sentence (null: nothing). */
export function unpairLoss(u: UnackedChanges | null, peer: string): string | null {
  if (!u || u.frames === 0) return null;
  const tables = Object.entries(u.tables).map(([t, c]) =>
    `${t}: ${c.rows} row(s) (${c.insert} inserted, ${c.update} updated, ${c.delete} deleted)`
  );
  return `this node is the only copy of ${u.frames} change frame(s) (seq ${u.fromSeq}–${u.toSeq}${
    tables.length ? `; ${tables.join("; ")}` : ""
  }) that ${peer} has not acknowledged; after unpairing they are never replicated to it`;
}

/** Days before expiry a certificate warns (`ha.cert_expiring`), then once a day. */
export const CERT_WARN_DAYS = 30;

/** A certificate the pair depends on. */
export interface PairCert {
  whose: "this node" | "peer";
  holder: string;
  fingerprint: string;
  notAfter: Date;
}

/**
 * The certificates to warn about now: within {@link CERT_WARN_DAYS} of expiry (or
 * expired) and not warned about within the last day (`warned`: fingerprint → time of the
 * last warning; updated here).
 */
export function expiryWarnings(
  certs: PairCert[],
  now: number,
  warned: Map<string, number>,
): (PairCert & { daysLeft: number })[] {
  const out: (PairCert & { daysLeft: number })[] = [];
  for (const c of certs) {
    const daysLeft = Math.floor((c.notAfter.getTime() - now) / 86_400_000);
    if (daysLeft > CERT_WARN_DAYS) continue;
    const last = warned.get(c.fingerprint);
    if (last !== undefined && now - last < 86_400_000) continue;
    warned.set(c.fingerprint, now);
    out.push({ ...c, daysLeft });
  }
  return out;
}
