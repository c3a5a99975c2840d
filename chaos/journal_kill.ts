/**
 * Chaos: kill -9 of keepwire in the middle of a 10,000-event journal burst.
 *
 * A child process (tests/helpers/journal_burst.ts) starts a real Runtime on a fresh data
 * directory and publishes events as fast as it can, printing `ack <id> <seq>` after each
 * `publish` returns (that is the journal's promise: durable when it returns). The parent
 * kills it with SIGKILL at a random point of the burst, then opens the store and checks
 * every acknowledged event is there with its own sequence number and the database passes
 * SQLite's integrity check.
 *
 * Each kill is one injection: survived when no acknowledged event is missing or altered
 * and the database is intact; lost otherwise.
 */
import { Store } from "../mod/store/mod.ts";
import type { ChaosResult, ChaosScenario } from "./types.ts";
import { burstAndKill } from "../tests/helpers/journal_kill.ts";

const EVENTS = 10_000;

/** Outcome of one kill. */
interface KillOutcome {
  acked: number;
  stored: number;
  missing: number;
  intact: boolean;
  killedAt: number;
}

async function killOnce(killAfter: number): Promise<KillOutcome> {
  const dir = await Deno.makeTempDir({ prefix: "kw-chaos-journal-" });
  const { acked } = await burstAndKill(dir, EVENTS, killAfter, {
    stderr: "null",
    deadlineMs: 60_000,
  });
  try {
    const store = new Store({ path: `${dir}/keepwire.db` });
    try {
      const intact = (store.db.prepare("PRAGMA integrity_check").get() as Record<string, string>)[
        "integrity_check"
      ] === "ok";
      const rows = store.events({ kind: "test.burst", order: "asc", limit: 10_000 });
      const byId = new Map(rows.map((r) => [r.id, r.payload.seq as number]));
      let missing = 0;
      for (const [id, seq] of acked) if (byId.get(id) !== seq) missing++;
      return { acked: acked.size, stored: rows.length, missing, intact, killedAt: killAfter };
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "journal_kill",
  description:
    "kill -9 of keepwire at a random point of a 10,000-event journal burst: every acknowledged event is stored, the database intact",
  async run({ bounded, log }): Promise<ChaosResult> {
    const kills = bounded ? 8 : 40;
    let survived = 0, lost = 0, acked = 0, missing = 0;
    for (let k = 0; k < kills; k++) {
      const at = 200 + Math.floor(Math.random() * (EVENTS - 1000));
      const o = await killOnce(at);
      acked += o.acked;
      missing += o.missing;
      const ok = o.missing === 0 && o.intact && o.acked >= Math.min(at, 1);
      if (ok) survived++;
      else lost++;
      log(
        `kill ${
          k + 1
        }/${kills} after ${o.acked} acks: ${o.stored} stored, ${o.missing} missing, integrity ${
          o.intact ? "ok" : "FAILED"
        }`,
      );
    }
    return {
      injected: kills,
      survived,
      lost,
      notes: `kills; ${acked} acknowledged events checked, ${missing} missing`,
    };
  },
};
