/**
 * The example SMS gateway as a keepwire worker subsystem (README.md beside this file).
 *
 * Config (examples/smsgw/keepwire.jsonc):
 * ```jsonc
 * { "name": "smsgw", "kind": "worker", "module": "examples/smsgw/mod.ts",
 *   "env": { "SMSGW_LISTEN": "0.0.0.0:8780", "SMSGW_SMSC_URL": "http://127.0.0.1:9100/submit",
 *            "SMSGW_ACCOUNTS": "acme:acme-secret-key" } }
 * ```
 * Env: `SMSGW_LISTEN` (host:port of the API), `SMSGW_SMSC_URL`, `SMSGW_ACCOUNTS`
 * (`name:key,...`, created on the active), `SMSGW_ACTIVE_URL` and `SMSGW_PEER_KEY` (queue
 * handoff: the service address's API and the nodes' shared internal key),
 * `SMSGW_SET_B_HOSTS` (active-active: set b's service addresses, comma-separated; a
 * request sent to one of them is stored in set b's tables — sets.ts) and
 * `SMSGW_SMSC_URL_B` (the SMSC set b's messages go to; default `SMSGW_SMSC_URL`).
 * @module
 */
import {
  handoff,
  node,
  onNode,
  onStop,
  ready,
  reportQueue,
  status,
  subsystem,
  tables,
} from "../../mod/sdk/mod.ts";
import { Smsgw, SMSGW_TABLES, type SmsgwSdk } from "./app.ts";
import { laneOf, laneSdk, SMSGW_TABLES_B } from "./sets.ts";

const env = subsystem()?.env ?? {};
const listen = env.SMSGW_LISTEN ?? "127.0.0.1:8780";
const i = listen.lastIndexOf(":");
const db = await tables(SMSGW_TABLES);
const sdk: SmsgwSdk = { tables: db, node, handoff, reportQueue, status };
const smscUrl = env.SMSGW_SMSC_URL ?? "http://127.0.0.1:9100/submit";
const app = new Smsgw(sdk, {
  smscUrl,
  activeUrl: env.SMSGW_ACTIVE_URL,
  peerKey: env.SMSGW_PEER_KEY,
});
// active-active: set b's clients get a lane of their own on set b's tables
const setBHosts = new Set(
  (env.SMSGW_SET_B_HOSTS ?? "").split(",").map((h) => h.trim()).filter(Boolean),
);
const laneB = setBHosts.size
  ? new Smsgw(laneSdk(sdk, await tables(SMSGW_TABLES_B)), {
    smscUrl: env.SMSGW_SMSC_URL_B ?? smscUrl,
  })
  : null;
const accounts = (env.SMSGW_ACCOUNTS ?? "").split(",").filter(Boolean).map((p) => {
  const [name, key] = p.split(":");
  return [name, key] as [string, string];
});
const seed = () =>
  app.seedAccounts(accounts).catch((e) => status(`accounts not seeded: ${e.message}`));
const seedB = () =>
  laneB?.seedAccounts(accounts).catch((e) => status(`set b accounts not seeded: ${e.message}`));
await seed();
await seedB();
onNode((n) => {
  if (n.writable) void seed();
  if (n.writableSets?.includes("b")) void seedB();
});
const server = Deno.serve({
  hostname: listen.slice(0, i),
  port: Number(listen.slice(i + 1)),
  onListen: () => {},
}, (req) => laneB && laneOf(req, setBHosts) === "b" ? laneB.handle(req) : app.handle(req));
app.start();
laneB?.start();
onStop(async () => {
  await app.stop();
  await laneB?.stop();
  await server.shutdown();
});
ready();
status(`listening on ${listen}`);
