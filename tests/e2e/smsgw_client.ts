/**
 * The client side of the smsgw HA lab (tests/e2e/smsgw_pair_test.ts), run in the lab's
 * client namespace: the stand-in SMSC on this address, and a client that submits messages
 * at a steady rate to the service address, each retried with its clientRef until it is
 * acknowledged (a failover in between must not make a second message). When the file
 * `STOP` appears it stops submitting, waits for what is in flight and for the SMSC to get
 * every acknowledged message, looks each one up on the survivor, and writes the figures
 * to `OUT` (JSON).
 *
 * `deno run -A smsgw_client.ts VIP:PORT SMSC_HOST:SMSC_PORT RATE_PER_S API_KEY STOP OUT`
 * @module
 */
import { startSmsc } from "../../examples/smsgw/smsc.ts";

const [service, smscAt, rateArg, apiKey, stopFile, outFile] = Deno.args;
const [smscHost, smscPort] = smscAt.split(":");
const smsc = startSmsc(Number(smscPort), smscHost);
const base = `http://${service}`;
const rate = Number(rateArg);

const acked = new Map<string, { id: string; at: number; durable: string; tries: number }>();
const ackTimes: number[] = [];
let submitted = 0;
let inflight = 0;
let stopping = false;
let duplicateAnswers = 0;
let errors = 0;
/** When submits failed (the first 2000). */
const errorTimes: number[] = [];
const failed = () => {
  errors++;
  if (errorTimes.length < 2000) errorTimes.push(Date.now());
};

async function submitOne(i: number): Promise<void> {
  inflight++;
  const ref = `c${i}`;
  let tries = 0;
  try {
    while (true) {
      tries++;
      try {
        const r = await fetch(`${base}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": apiKey },
          body: JSON.stringify({ to: "+4915100000001", text: `message ${i}`, clientRef: ref }),
          signal: AbortSignal.timeout(5000),
        });
        const b = await r.json().catch(() => ({}));
        if (r.status === 201 || r.status === 200) {
          if (r.status === 200) duplicateAnswers++;
          acked.set(ref, { id: b.id, at: Date.now(), durable: b.durable, tries });
          ackTimes.push(Date.now());
          return;
        }
        failed();
      } catch {
        failed();
      }
      if (tries > 600) return; // ~2 min of retries: give up (counted as not acknowledged)
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    inflight--;
  }
}

const t0 = Date.now();
const gen = setInterval(() => {
  if (stopping) return;
  void submitOne(submitted++);
}, 1000 / rate);
// progress for the lab driver (it cannot reach this namespace's addresses); the driver
// slows the SMSC down by writing a delay (ms) into `OUT.smsc_delay`
const progress = setInterval(() => {
  // written aside and renamed: the driver never reads half a file
  void Deno.writeTextFile(
    `${outFile}.progress.tmp`,
    JSON.stringify({
      acked: acked.size,
      submitted,
      lastAckAt: ackTimes.at(-1) ?? 0,
      byNode: smsc.stats().byNode,
    }),
  ).then(() => Deno.rename(`${outFile}.progress.tmp`, `${outFile}.progress`)).catch(() => {});
  void Deno.readTextFile(`${outFile}.smsc_delay`).then(
    (t) => smsc.delayMs = Number(t.trim()) || 0,
    () => {},
  );
}, 250);

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

while (!(await exists(stopFile))) await new Promise((r) => setTimeout(r, 100));
stopping = true;
clearInterval(gen);
clearInterval(progress);
const stopAt = Date.now();
while (inflight > 0 && Date.now() - stopAt < 60_000) await new Promise((r) => setTimeout(r, 100));
// every acknowledged message reaches the SMSC (delivered by whichever node is active)
const ids = [...acked.values()].map((a) => a.id);
const deliverBy = Date.now() + 60_000;
while (ids.some((id) => !smsc.seen.has(id)) && Date.now() < deliverBy) {
  await new Promise((r) => setTimeout(r, 200));
}
// each acknowledged message on the survivor (through the service address)
let missing = 0;
const missingIds: string[] = [];
/** The missing ones' acknowledgements: when, how durable the gateway said they were. */
const missingAcks: { id: string; at: number; durable: string; tries: number }[] = [];
const statuses: Record<string, number> = {};
for (const a of acked.values()) {
  let status = "";
  for (let t = 0; t < 20 && !status; t++) {
    try {
      const r = await fetch(`${base}/v1/messages/${a.id}`, {
        headers: { "x-api-key": apiKey },
        signal: AbortSignal.timeout(5000),
      });
      if (r.status === 404) {
        await r.body?.cancel();
        status = "missing";
      } else if (r.ok) status = (await r.json()).status;
      else await r.body?.cancel();
    } catch { /* retry */ }
    if (!status) await new Promise((r) => setTimeout(r, 250));
  }
  if (status === "missing" || !status) {
    missing++;
    if (missingIds.length < 10) missingIds.push(a.id);
    if (missingAcks.length < 200) {
      missingAcks.push({ id: a.id, at: a.at, durable: a.durable, tries: a.tries });
    }
  }
  statuses[status || "unknown"] = (statuses[status || "unknown"] ?? 0) + 1;
}
const undelivered = ids.filter((id) => !smsc.seen.has(id)).length;
await Deno.writeTextFile(
  outFile,
  JSON.stringify({
    t0,
    stopAt,
    submitted,
    acked: acked.size,
    ackedLocalOnly: [...acked.values()].filter((a) => a.durable !== "replicated").length,
    retriedSubmits: [...acked.values()].filter((a) => a.tries > 1).length,
    duplicateAnswers,
    errors,
    errorTimes,
    missing,
    missingIds,
    missingAcks,
    undelivered,
    statuses,
    smsc: smsc.stats(),
    repeats: smsc.repeats().slice(0, 500),
    ackTimes,
  }),
);
await smsc.close();
Deno.exit(0);
