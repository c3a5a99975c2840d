/**
 * The example SMS gateway on an HA pair under kill -9 of the active (tests/e2e/smsgw_lab.ts):
 * a client submits at a steady rate to the service address; each kill counts as survived
 * when the peer serves again, the killed node returns as a resynced standby, and at the end
 * every acknowledged message is on the survivor and reached the SMSC. Bounded: 1 kill; long
 * form: 20. Needs root, iproute2, keepalived, setpriv.
 */
import type { ChaosScenario } from "./types.ts";
import { labSkipReason } from "../tests/e2e/ha_lab.ts";
import { runSmsgwPair, smsgwFiguresLine } from "../tests/e2e/smsgw_lab.ts";

/** The scenario. */
export const scenario: ChaosScenario = {
  name: "smsgw_kills",
  description:
    "SIGKILL of the active node while a client submits SMS to the service address: the peer " +
    "serves, no acknowledged message is missing on the survivor, every one reaches the SMSC",
  async run({ bounded, log }) {
    const skip = labSkipReason();
    if (skip) throw new Error(`smsgw_kills needs the namespace lab: ${skip}`);
    const f = await runSmsgwPair({ kills: bounded ? 1 : 20, rate: 20, log });
    for (const p of f.problems) log(`problem: ${p}`);
    // a kill is lost if its round failed; acknowledged messages missing or undelivered at
    // the end are counted against the last kill (they cannot be told apart)
    const lostAtEnd = f.missing + f.undelivered > 0 ? 1 : 0;
    const survived = Math.max(0, f.survivedKills - lostAtEnd);
    return {
      injected: f.kills,
      survived,
      lost: f.kills - survived,
      notes: smsgwFiguresLine(f),
    };
  },
};
