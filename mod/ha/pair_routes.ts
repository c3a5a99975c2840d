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
export const pairRequestSchema = z.strictObject({
  peer: z.string().min(1).max(253).describe("the other node's address (host or IP)"),
  code: z.string().min(8).max(32).describe("the one-time code the other node shows"),
  port: z.number().int().min(1).max(65535).optional().describe(
    "its peer link port (default: this node's ha.peerLink.port)",
  ),
});

/** This node's pairing (GET /api/ha/pair, and the answer of POST /api/ha/pair). */
export const pairStatusSchema = z.object({
  paired: z.boolean(),
  pairId: z.string().nullable(),
  node: z.string().nullable(),
  peerNode: z.string().nullable(),
  fingerprint: z.string().nullable().describe("SHA-256 of this node's certificate"),
  peerFingerprint: z.string().nullable().describe("SHA-256 of the pinned peer certificate"),
  pairedAt: z.string().nullable(),
  offering: z.object({ expiresAt: z.string() }).nullable()
    .describe("a code is outstanding until then"),
});
/** This node's pairing. */
export type PairStatus = z.infer<typeof pairStatusSchema>;

/** A fresh code (POST /api/ha/pair/code). */
export const pairCodeSchema = z.object({
  code: z.string(),
  expiresAt: z.string(),
  fingerprint: z.string().describe("SHA-256 of the certificate this node made for the pair"),
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

/** The status of a pairing (null: HA or the peer link is off). */
export function pairStatus(p: Pairing | null): PairStatus {
  const c = p?.credentials() ?? null;
  return {
    paired: c !== null,
    pairId: c?.pairId ?? null,
    node: c?.node ?? null,
    peerNode: c?.peerNode ?? null,
    fingerprint: c ? certFingerprint(c.cert) : null,
    peerFingerprint: c ? certFingerprint(c.peerCert) : null,
    pairedAt: c?.pairedAt ?? null,
    offering: p?.offering ?? null,
  };
}

/** The routes; `pairing()` is null without ha.peerLink. */
export function pairRoutes(
  pairing: () => Pairing | null,
  o: { port: () => number | null; pairId: () => string },
): Hono {
  const app = new Hono();
  const need = () => {
    const p = pairing();
    if (!p) {
      throw new PairError(409, "pair_no_peer_link", "pairing needs ha.enabled and ha.peerLink");
    }
    return p;
  };
  app.get("/ha/pair", (c) => answer(c, pairStatusSchema, pairStatus(pairing())));
  app.post("/ha/pair/code", async (c) => answer(c, pairCodeSchema, await need().offer()));
  app.post("/ha/pair", async (c) => {
    const body = parseOr400(pairRequestSchema, await jsonBody(c), "pairing request");
    const p = need();
    const port = body.port ?? o.port();
    const host = body.peer.includes(":") && !body.peer.startsWith("[")
      ? `[${body.peer}]`
      : body.peer;
    await p.request(`http://${host}:${port}`, body.code, o.pairId());
    return answer(c, pairStatusSchema, pairStatus(p));
  });
  return app;
}
