/**
 * Pairing on the API: `GET /api/ha/pair` (this node's pairing), `POST /api/ha/pair/code`
 * (a one-time code, shown by `keepwire ha pair --code` and the HA page), `POST
 * /api/ha/pair` (`keepwire ha pair --peer HOST --code CODE`: pair with the node showing
 * the code). See pairing.ts.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { jsonBody, parseOr400 } from "../web/errors.ts";
import { answer, apiDoc } from "../web/openapi.ts";
import { certFingerprint, PairError, type Pairing } from "./pairing.ts";

/** Body of POST /api/ha/pair. */
export const pairRequestSchema = z.lazy(() =>
  z.strictObject({
    peer: z.string().min(1).max(253).describe("the other node's address (host or IP)"),
    code: z.string().min(8).max(32).describe("the one-time code the other node shows"),
    port: z.number().int().min(1).max(65535).optional().describe(
      "its peer link port (default: this node's ha.peerLink.port)",
    ),
  })
);

/**
 * Where this node stands: `ha_off` (ha.enabled false), `no_peer_link` (HA on, no
 * ha.peerLink: nothing to pair over), `unpaired` (HA on, not paired), `secret` (linked by
 * the configured ha.peerLink.secret, no certificates), `paired`, `peer_unpaired` (paired
 * here, but the peer removed the pair: see `next`).
 */
export const pairStateSchema = z.lazy(() =>
  z.enum([
    "ha_off",
    "no_peer_link",
    "unpaired",
    "secret",
    "paired",
    "peer_unpaired",
  ])
);
/** Where this node stands (see {@link pairStateSchema}). */
export type PairState = z.infer<typeof pairStateSchema>;

/** This node's pairing (GET /api/ha/pair, and the answer of POST /api/ha/pair). */
export const pairStatusSchema = z.lazy(() =>
  z.object({
    state: pairStateSchema,
    summary: z.string().describe("the state in a sentence"),
    next: z.string().nullable().describe("what to run next (null: nothing to do)"),
    paired: z.boolean(),
    pairId: z.string().nullable(),
    node: z.string().nullable(),
    peerNode: z.string().nullable(),
    fingerprint: z.string().nullable().describe("SHA-256 of this node's certificate"),
    peerFingerprint: z.string().nullable().describe("SHA-256 of the pinned peer certificate"),
    pairedAt: z.string().nullable(),
    certExpiresAt: z.string().nullable().describe("when this node's certificate expires"),
    peerCertExpiresAt: z.string().nullable().describe("when the pinned peer certificate expires"),
    peerNextFingerprint: z.string().nullable().describe(
      "the peer's next certificate, accepted too while it rotates",
    ),
    rotatedAt: z.string().nullable().describe("when this node's certificate was last rotated"),
    offering: z.object({ expiresAt: z.string() }).nullable()
      .describe("a code is outstanding until then"),
  })
);
/** This node's pairing. */
export type PairStatus = z.infer<typeof pairStatusSchema>;

/** A fresh code (POST /api/ha/pair/code). */
export const pairCodeSchema = z.lazy(() =>
  z.object({
    code: z.string(),
    expiresAt: z.string(),
    fingerprint: z.string().describe("SHA-256 of the certificate this node made for the pair"),
  })
);

/** Body of POST /api/ha/unpair. */
export const unpairRequestSchema = z.lazy(() =>
  z.strictObject({
    by: z.string().min(1).max(64).optional(),
    force: z.boolean().optional().describe(
      "unpair although this node is the only copy of changes the peer has not acknowledged",
    ),
  })
);
/** Answer of POST /api/ha/unpair. */
export const unpairAnswerSchema = z.lazy(() =>
  z.object({
    lost: z.string().nullable().describe("what only this node holds (forced), or null"),
    pairing: pairStatusSchema,
  })
);
/** Body of POST /api/ha/pair/rotate. */
export const rotateRequestSchema = z.lazy(() =>
  z.strictObject({ by: z.string().min(1).max(64).optional() })
);

apiDoc("POST", "/api/ha/unpair", {
  operationId: "haUnpair",
  summary: "leave the pair: this node's credentials removed, the peer link back to pairing only",
  body: unpairRequestSchema,
  response: unpairAnswerSchema,
  errors: {
    409: "not paired, or this node is the only copy of changes the peer has not acknowledged " +
      "(ha_unpair_would_lose: the message says which; force to unpair anyway)",
  },
});
apiDoc("POST", "/api/ha/pair/rotate", {
  operationId: "haRotateCert",
  summary: "new certificate for this node: handed to the peer over the link, then switched",
  body: rotateRequestSchema,
  response: pairStatusSchema,
  errors: { 409: "not paired", 502: "the peer did not take the certificate: nothing changed" },
});
apiDoc("GET", "/api/ha/pair", {
  operationId: "getHaPair",
  summary: "this node's pairing: pair id, peer, certificate fingerprints, outstanding code",
  response: pairStatusSchema,
});
apiDoc("POST", "/api/ha/pair/code", {
  operationId: "haPairCode",
  summary: "make a one-time pairing code (valid 10 minutes; the other node enters it)",
  response: pairCodeSchema,
});
apiDoc("POST", "/api/ha/pair", {
  operationId: "haPair",
  summary: "pair with the node showing a code: certificates exchanged and pinned, pair id",
  body: pairRequestSchema,
  response: pairStatusSchema,
});

/** What the routes know of the HA configuration (for the state). */
export interface PairConfigView {
  /** ha.enabled. */
  enabled: boolean;
  /** ha.peerLink is configured (and a peer). */
  peerLink: boolean;
  /** ha.peerLink.secret is configured. */
  secret: boolean;
  /** The peer removed the pair (learnt on the peer link), or null. */
  peerUnpaired: { at: string; node: string } | null;
}

function stateOf(
  paired: boolean,
  v: PairConfigView,
): { state: PairState; summary: string; next: string | null } {
  if (!v.enabled) {
    return {
      state: "ha_off",
      summary: "HA is off on this node (ha.enabled is false): it runs alone",
      next:
        "to make a pair: set ha.enabled, ha.node, ha.peers and ha.peerLink on both nodes (docs/ha.md), restart, then keepwire ha pair --code on one node",
    };
  }
  if (!v.peerLink) {
    return {
      state: "no_peer_link",
      summary: "HA is on, but there is no peer link (ha.peerLink): the nodes cannot pair",
      next: "add ha.peerLink (and ha.peers) on both nodes, restart, then keepwire ha pair --code",
    };
  }
  if (paired && v.peerUnpaired) {
    return {
      state: "peer_unpaired",
      summary:
        `HA is on and this node holds the pair's credentials, but the peer ${v.peerUnpaired.node} removed the pair at ${v.peerUnpaired.at}: nothing is replicated`,
      next:
        "keepwire ha unpair here (it says what would be lost), then keepwire ha pair --code on one node and --peer HOST --code CODE on the other",
    };
  }
  if (paired) {
    return {
      state: "paired",
      summary: "HA is on and this node is paired: the peer link is HTTPS with pinned certificates",
      next: null,
    };
  }
  if (v.secret) {
    return {
      state: "secret",
      summary:
        "HA is on and the nodes are linked by the configured ha.peerLink.secret (no certificates)",
      next:
        "for certificates and mutual TLS: keepwire ha pair --code on one node, --peer HOST --code CODE on the other",
    };
  }
  return {
    state: "unpaired",
    summary: "HA is on but this node is NOT paired: the nodes do not talk, nothing is replicated",
    next:
      "keepwire ha pair --code on one node, then keepwire ha pair --peer <its address> --code CODE on the other",
  };
}

/** The status of a pairing (`p` null: HA or the peer link is off). */
export function pairStatus(
  p: Pairing | null,
  v: PairConfigView,
  expiry: (pem: string) => string | null = () => null,
): PairStatus {
  const c = p?.credentials() ?? null;
  return {
    ...stateOf(c !== null, v),
    paired: c !== null,
    pairId: c?.pairId ?? null,
    node: c?.node ?? null,
    peerNode: c?.peerNode ?? null,
    fingerprint: c ? certFingerprint(c.cert) : null,
    peerFingerprint: c ? certFingerprint(c.peerCert) : null,
    pairedAt: c?.pairedAt ?? null,
    certExpiresAt: c ? expiry(c.cert) : null,
    peerCertExpiresAt: c ? expiry(c.peerCert) : null,
    peerNextFingerprint: c?.peerCertNext ? certFingerprint(c.peerCertNext) : null,
    rotatedAt: c?.rotatedAt ?? null,
    offering: p?.offering ?? null,
  };
}

/** The routes; `pairing()` is null without ha.peerLink. */
export function pairRoutes(
  pairing: () => Pairing | null,
  o: {
    port: () => number | null;
    pairId: () => string;
    config: () => PairConfigView;
    expiry: (pem: string) => string | null;
    unpair: (by: string, force: boolean) => Promise<{ lost: string | null }>;
    rotate: (by: string) => Promise<void>;
  },
): Hono {
  const app = new Hono();
  const need = () => {
    const p = pairing();
    if (!p) {
      throw new PairError(409, "pair_no_peer_link", "pairing needs ha.enabled and ha.peerLink");
    }
    return p;
  };
  app.get(
    "/ha/pair",
    (c) => answer(c, pairStatusSchema, pairStatus(pairing(), o.config(), o.expiry)),
  );
  app.post("/ha/pair/code", async (c) => answer(c, pairCodeSchema, await need().offer()));
  app.post("/ha/pair", async (c) => {
    const body = parseOr400(pairRequestSchema, await jsonBody(c), "pairing request");
    const p = need();
    const port = body.port ?? o.port();
    const host = body.peer.includes(":") && !body.peer.startsWith("[")
      ? `[${body.peer}]`
      : body.peer;
    await p.request(`http://${host}:${port}`, body.code, o.pairId());
    return answer(c, pairStatusSchema, pairStatus(p, o.config(), o.expiry));
  });
  app.post("/ha/unpair", async (c) => {
    const body = parseOr400(unpairRequestSchema, await jsonBody(c), "unpair request");
    const { lost } = await o.unpair(body.by ?? "api", body.force ?? false);
    return answer(c, unpairAnswerSchema, { lost, pairing: pairStatus(pairing(), o.config()) });
  });
  app.post("/ha/pair/rotate", async (c) => {
    const body = parseOr400(rotateRequestSchema, await jsonBody(c), "rotation request");
    await o.rotate(body.by ?? "api");
    return answer(c, pairStatusSchema, pairStatus(pairing(), o.config(), o.expiry));
  });
  return app;
}
