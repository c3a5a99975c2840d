/**
 * The governor benchmark's peer: Node + fastify + @fastify/under-pressure, with the
 * same essential (~`essentialMs` CPU) and sheddable (~`featureMs`) routes, the
 * pressure plugin registered only in the non-essential scope.
 * @module
 */

/** Versions installed with npm at bench time. */
export const PEER_VERSIONS = { fastify: "5.12.8", "@fastify/under-pressure": "9.2.0" };

const PEER_SERVER = (essentialMs: number, featureMs: number) =>
  `'use strict'
const fastify = require('fastify')({ logger: false })
const opts = JSON.parse(process.env.UP_OPTS || 'null')
function busy (ms) { const end = performance.now() + ms; while (performance.now() < end) {} }
fastify.get('/essential', async () => { busy(${essentialMs}); return 'ok' })
fastify.register(async (scope) => {
  if (opts) await scope.register(require('@fastify/under-pressure'), opts)
  scope.get('/feature', async () => { busy(${featureMs}); return 'ok' })
})
fastify.listen({ host: '127.0.0.1', port: 0 }).then(() => {
  console.log('PORT ' + fastify.server.address().port)
})
process.on('SIGTERM', () => fastify.close().then(() => process.exit(0)))
`;

/** Peer settings tried; the one with the lower essential p99 at 10x C is reported. */
export const PEER_SETTINGS: Record<string, Record<string, unknown>> = {
  "lag 10ms/50ms": { maxEventLoopDelay: 10, sampleInterval: 50, retryAfter: 1 },
  "ELU 0.5 interval/20ms": {
    maxEventLoopUtilization: 0.5,
    eventLoopUtilizationMode: "interval",
    sampleInterval: 20,
    retryAfter: 1,
  },
};

/**
 * Install the peer into a temp dir with npm (the versions above) and write its server;
 * returns the dir (run `node server.cjs` there with UP_OPTS set to a setting or "null").
 */
export async function installPeer(essentialMs: number, featureMs: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kw-governor-peer-" });
  await Deno.writeTextFile(`${dir}/package.json`, JSON.stringify({ name: "peer", private: true }));
  await Deno.writeTextFile(`${dir}/server.cjs`, PEER_SERVER(essentialMs, featureMs));
  const out = await new Deno.Command("npm", {
    args: [
      "install",
      "--no-audit",
      "--no-fund",
      "--silent",
      ...Object.entries(PEER_VERSIONS).map(([n, v]) => `${n}@${v}`),
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`npm install of the peer failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return dir;
}
