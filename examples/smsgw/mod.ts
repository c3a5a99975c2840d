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
 * handoff: the service address's API and the nodes' shared internal key).
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
import { Smsgw, SMSGW_TABLES } from "./app.ts";

const env = subsystem()?.env ?? {};
const listen = env.SMSGW_LISTEN ?? "127.0.0.1:8780";
const i = listen.lastIndexOf(":");
const db = await tables(SMSGW_TABLES);
const app = new Smsgw({
  tables: db,
  node,
  handoff,
  reportQueue,
  status,
}, {
  smscUrl: env.SMSGW_SMSC_URL ?? "http://127.0.0.1:9100/submit",
  activeUrl: env.SMSGW_ACTIVE_URL,
  peerKey: env.SMSGW_PEER_KEY,
});
const accounts = (env.SMSGW_ACCOUNTS ?? "").split(",").filter(Boolean).map((p) => {
  const [name, key] = p.split(":");
  return [name, key] as [string, string];
});
const seed = () =>
  app.seedAccounts(accounts).catch((e) => status(`accounts not seeded: ${e.message}`));
await seed();
onNode((n) => {
  if (n.writable) void seed();
});
const server = Deno.serve({
  hostname: listen.slice(0, i),
  port: Number(listen.slice(i + 1)),
  onListen: () => {},
}, (req) => app.handle(req));
app.start();
onStop(async () => {
  await app.stop();
  await server.shutdown();
});
ready();
status(`listening on ${listen}`);
