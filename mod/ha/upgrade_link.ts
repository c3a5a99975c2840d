/**
 * The rolling upgrade's real driver (mod/ha/upgrade.ts): this node through the updater,
 * the peer through routes mounted on the authenticated peer link:
 *
 * - GET  /peer/v1/upgrade/view     this node's {@link UpgradeNodeView}
 * - POST /peer/v1/upgrade/bundle   the bundle, streamed; `x-kw-peer-meta` carries its size
 *   and sha256, checked before it is kept (the updater verifies its signature at install)
 * - POST /peer/v1/upgrade/install  install the received bundle, answer, then activate
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { readBundleInfo } from "../update/bundle.ts";
import { codeStoreSchema } from "../update/bundle_schema.ts";
import type { UpdateState } from "../update/state.ts";
import type { UpdateModule } from "../update/types.ts";
import { VERSION } from "../version.ts";
import { PEER_BODY_HEADER, PEER_META_HEADER, peerAnswer, type PeerMount } from "./peer.ts";
import type { ModuleContext } from "../module.ts";
import type { FailbackChannel } from "./failback.ts";
import {
  RollingUpgrade,
  type UpgradeDriver,
  type UpgradeNodeView,
  upgradeStatusSchema,
} from "./upgrade.ts";

/** Prefix of the upgrade routes on the peer link. */
export const UPGRADE_PEER_PREFIX = "/peer/v1/upgrade";

/** What the driver needs of the updater (the update module). */
export interface UpgradeUpdater {
  /** Install a bundle file into the other slot. */
  installFrom(file: string, opts: { allowDowngrade?: boolean }): Promise<unknown>;
  /** Activate the installed slot (restart or reboot: this process goes away). */
  activate(): Promise<unknown>;
  /** The update lifecycle state. */
  state(): UpdateState;
}

/** The updater seen through {@link UpgradeUpdater}. */
export function updaterOf(u: UpdateModule): UpgradeUpdater {
  return {
    installFrom: (f, opts) => u.installFrom(f, opts),
    activate: () => u.activate(),
    state: () => u.service.state.current().state,
  };
}

/** What the driver needs of this node. */
export interface UpgradeLinkOptions {
  node: string;
  /** The device's update.compatible. */
  compatible: string;
  /** Where a bundle received from the peer is kept. */
  inbox: string;
  updater: UpgradeUpdater;
  role(): string;
  healthy(): { ok: boolean; detail?: string };
  /** Store schema versions ("module:version,..."). */
  schema(): string;
  /** Null when the pair can hand over, else why not ({@link handoverBlocker}). */
  ready?(): string | null;
  /** `ha failover` here (after replication drained: HaModule.handOver). */
  handover(): void | Promise<void>;
  /** The peer-link fetch and the peer's origin (null before the link is up). */
  peerFetch(): typeof fetch | null;
  peerOrigin(): string | null;
  /** Delay before activating after answering (default 300 ms). */
  activateDelayMs?: number;
}

/**
 * A node's view as its peer reads it. Not strict: in a rolling upgrade the old active reads
 * the upgraded peer's view, and a field a newer version adds must not stop the rollout
 * (unknown fields are dropped; the known ones are checked).
 */
export const upgradeViewSchema = z.lazy(() =>
  z.object({
    node: z.string(),
    role: z.string(),
    version: z.string(),
    compatible: z.string(),
    schema: z.string(),
    codeSchema: z.string().max(16_384).optional(),
    healthy: z.boolean(),
    activation: z.enum(["committed", "pending", "failed"]),
    detail: z.string().optional(),
  })
);

const metaSchema = z.lazy(() =>
  z.strictObject({
    size: z.number().int().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
);

/** What {@link handoverBlocker} reads of replication (GET /api/repl/status). */
export interface ReplSyncView {
  enabled: boolean;
  role?: string;
  link?: string;
  pending?: number;
  lagMs?: number;
  /** Every channel (the automatic failback reads the one of its set). */
  channels?: readonly ({ channel: string } & FailbackChannel)[];
}

/** Oldest change the standby may not have confirmed yet when the handover starts. */
export const HANDOVER_LAG_MS = 2000;

/**
 * Why the active cannot hand over yet, or null: while this node replicates, the standby
 * answers and has confirmed every change older than {@link HANDOVER_LAG_MS} (a standby
 * that just restarted is behind by its restart until its resync, and a handover then
 * would lose what it missed); and the peer reports every part healthy (its subsystems
 * ready to serve).
 */
export function handoverBlocker(
  repl: ReplSyncView | null,
  peerDegraded: readonly string[],
): string | null {
  if (repl?.enabled && repl.role === "primary") {
    if (repl.link !== "up") return "replication: the standby does not answer yet";
    if ((repl.lagMs ?? 0) > HANDOVER_LAG_MS) {
      return `replication: the standby is ${repl.pending ?? "?"} changes (${
        Math.round(repl.lagMs ?? 0)
      } ms) behind`;
    }
  }
  if (peerDegraded.length > 0) return `the peer is not ready: ${peerDegraded.join("; ")}`;
  return null;
}

/** Map the updater's lifecycle to the rollout's view. */
export function activationOf(s: UpdateState): UpgradeNodeView["activation"] {
  if (s === "gate-failed") return "failed";
  if (s === "installing" || s === "installed" || s === "activating" || s === "trying") {
    return "pending";
  }
  return "committed";
}

function view(o: UpgradeLinkOptions): UpgradeNodeView {
  const h = o.healthy();
  return {
    node: o.node,
    role: o.role(),
    version: VERSION,
    compatible: o.compatible,
    schema: o.schema(),
    codeSchema: codeStoreSchema(),
    healthy: h.ok,
    activation: activationOf(o.updater.state()),
    ...(h.detail ? { detail: h.detail } : {}),
  };
}

async function installThenActivate(o: UpgradeLinkOptions, file: string): Promise<void> {
  await o.updater.installFrom(file, {});
  // answer first: activation ends this process (restart) or the machine (reboot)
  setTimeout(() => void o.updater.activate().catch(() => {}), o.activateDelayMs ?? 300);
}

function fail(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

/** The routes this node serves to its peer for a rolling upgrade. */
export function upgradePeerMount(o: UpgradeLinkOptions): PeerMount {
  const bundlePath = `${UPGRADE_PEER_PREFIX}/bundle`;
  return {
    prefix: UPGRADE_PEER_PREFIX,
    streamed: [bundlePath],
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === "GET" && path === `${UPGRADE_PEER_PREFIX}/view`) {
        return Response.json(view(o));
      }
      if (req.method === "POST" && path === bundlePath) {
        let meta: z.infer<typeof metaSchema>;
        try {
          meta = metaSchema.parse(JSON.parse(req.headers.get(PEER_META_HEADER) ?? ""));
        } catch (e) {
          return fail(400, "upgrade_bad_meta", `bundle meta: ${(e as Error).message}`);
        }
        const tmp = `${o.inbox}.part`;
        const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
        const h = createHash("sha256");
        let size = 0;
        try {
          for await (const chunk of req.body ?? new ReadableStream<Uint8Array>()) {
            h.update(chunk);
            size += chunk.length;
            let off = 0;
            while (off < chunk.length) off += await f.write(chunk.subarray(off));
          }
          await f.sync();
        } finally {
          f.close();
        }
        const sum = h.digest("hex");
        if (size !== meta.size || sum !== meta.sha256) {
          await Deno.remove(tmp).catch(() => {});
          return fail(
            400,
            "upgrade_bundle_corrupt",
            `bundle received ${size} bytes sha256 ${sum}, sent ${meta.size} bytes ${meta.sha256}`,
          );
        }
        await Deno.rename(tmp, o.inbox);
        return Response.json({ size });
      }
      if (req.method === "POST" && path === `${UPGRADE_PEER_PREFIX}/install`) {
        try {
          await installThenActivate(o, o.inbox);
        } catch (e) {
          return fail(409, "upgrade_install_failed", (e as Error).message);
        }
        return Response.json({ ok: true });
      }
      return fail(404, "not_found", `no ${req.method} ${path}`);
    },
  };
}

async function answerOf(res: Response, what: string): Promise<unknown> {
  const { json, refusal } = await peerAnswer(res);
  if (refusal !== null) throw new Error(`${what}: peer answered ${res.status}: ${refusal}`);
  return json;
}

/** The driver of this node's rollout. */
export function upgradeDriver(o: UpgradeLinkOptions): UpgradeDriver {
  const peer = () => {
    const f = o.peerFetch(), origin = o.peerOrigin();
    if (!f || !origin) throw new Error("the peer link is not up");
    return { f, origin };
  };
  return {
    async bundle(path) {
      const { manifest } = await readBundleInfo(path);
      return {
        version: manifest.version,
        compatible: manifest.compatible,
        ...(manifest.storeSchema ? { storeSchema: manifest.storeSchema } : {}),
      };
    },
    local: () => Promise.resolve(view(o)),
    async peer() {
      const { f, origin } = peer();
      const res = await f(`${origin}${UPGRADE_PEER_PREFIX}/view`, {
        signal: AbortSignal.timeout(5000),
      });
      return upgradeViewSchema.parse(await answerOf(res, "peer view"));
    },
    async send(path) {
      const { f, origin } = peer();
      const h = createHash("sha256");
      let size = 0;
      const file = await Deno.open(path);
      try {
        for await (const c of file.readable) {
          h.update(c);
          size += c.length;
        }
      } catch { /* readable closes the file */ }
      const body = (await Deno.open(path)).readable;
      const res = await f(`${origin}${UPGRADE_PEER_PREFIX}/bundle`, {
        method: "POST",
        headers: {
          [PEER_BODY_HEADER]: "stream",
          [PEER_META_HEADER]: JSON.stringify({ size, sha256: h.digest("hex") }),
        },
        body,
      });
      await answerOf(res, "send the bundle");
    },
    async peerInstall() {
      const { f, origin } = peer();
      const res = await f(`${origin}${UPGRADE_PEER_PREFIX}/install`, { method: "POST", body: "" });
      await answerOf(res, "install on the peer");
    },
    ready: () => Promise.resolve(o.ready?.() ?? null),
    handover: () => Promise.resolve(o.handover()),
    async localInstall(path) {
      await installThenActivate(o, path);
    },
  };
}

/** Settings key of the saved rollout. */
export const UPGRADE_KEY = "ha.upgrade";

/** What {@link createRollingUpgrade} needs of the HA module. */
export interface RollingUpgradeWiring extends Omit<UpgradeLinkOptions, "inbox" | "schema"> {
  ctx: ModuleContext;
  /** Mount routes on the peer link. */
  mount(m: PeerMount): void;
  /** A driver to use instead of the real one (tests). */
  driver?: UpgradeDriver;
}

/**
 * Build this node's rollout (saved under {@link UPGRADE_KEY}), mount its peer routes and
 * finish a rollout this node's own activation interrupted.
 */
export function createRollingUpgrade(w: RollingUpgradeWiring): RollingUpgrade {
  const { ctx } = w;
  const o: UpgradeLinkOptions = {
    ...w,
    inbox: `${ctx.config.dataDir}/ha-upgrade-inbox.kwb`,
    schema: () =>
      (ctx.store.db.prepare("SELECT module, version FROM schema_versions ORDER BY module")
        .all() as { module: string; version: number }[]).map((r) => `${r.module}:${r.version}`)
        .join(","),
  };
  w.mount(upgradePeerMount(o));
  const ru = new RollingUpgrade({
    node: w.node,
    driver: w.driver ?? upgradeDriver(o),
    clock: ctx.clock,
    bus: ctx.bus,
    store: {
      load: () => {
        const r = upgradeStatusSchema.safeParse(ctx.store.getSetting<unknown>(UPGRADE_KEY));
        return r.success ? r.data : null;
      },
      save: (s) => ctx.store.setSetting(UPGRADE_KEY, s),
    },
  });
  ru.resume();
  return ru;
}
