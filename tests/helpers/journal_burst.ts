/**
 * Test helper: starts a real Runtime on a data dir given as argv[0], then publishes
 * argv[1] events as fast as it can, writing "ack <id> <seq>" to stdout after each
 * publish returns (that is the acknowledgement the kill -9 test checks against).
 */
import { validateConfig } from "../../mod/config/mod.ts";
import { Runtime } from "../../mod/runtime.ts";

const [dataDir, countArg] = Deno.args;
const rt = new Runtime(validateConfig({ dataDir, web: { listen: "127.0.0.1:0" } }));
await rt.start();
const enc = new TextEncoder();
Deno.stdout.writeSync(enc.encode("started\n"));
const n = Number(countArg);
for (let seq = 0; seq < n; seq++) {
  const e = rt.bus.publishUntyped({
    module: "test",
    kind: "test.burst",
    payload: { seq, pad: "x".repeat(64) },
  });
  Deno.stdout.writeSync(enc.encode(`ack ${e!.id} ${seq}\n`));
  if (seq % 500 === 0) await new Promise((r) => setTimeout(r, 0));
}
Deno.stdout.writeSync(enc.encode("done\n"));
await rt.stop();
