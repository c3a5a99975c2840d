/**
 * Pairing: `keepwire ha pair --code` on one box shows a one-time code; `keepwire ha pair
 * --peer HOST --code CODE` on the other creates the pair's credentials on both. Each
 * node makes its own certificate at pairing time (ECDSA P-256, self-signed, not a CA)
 * and pins the other's: from then on the peer link is HTTPS with mutual authentication
 * (each side accepts exactly the other's certificate) plus the link's HMAC with a secret
 * both derived during pairing.
 *
 * The exchange (one request, on the peer link's unauthenticated `POST /peer/v1/pair`,
 * served only while the node is unpaired):
 * 1. the requester sends `{pairId, node, cert, nonce}` and `mac1 = HMAC(code, "kw-pair-1" …)`;
 * 2. the code's node checks the code (unexpired, ≤ 5 wrong tries, used once) and that it may
 *    pin the requester's certificate ({@link peerCertProblem}), stores its credentials,
 *    answers `{node, cert, nonce}` and `mac2 = HMAC(code, "kw-pair-2" …)` over both messages;
 * 3. the requester checks mac2 and the answered certificate the same way, and stores its
 *    credentials.
 * A wrong or expired code, or a certificate either node must not pin, stores nothing on
 * either side (the code's node checks its own certificate before offering a code; a
 * requester refusing the answered one keeps only an unpaired record, for a peer of another
 * build that stored the pair before answering). The code is 12 characters of
 * base32 (60 bits): an eavesdropper cannot guess it in its 10 minutes, and the MACs bind
 * both certificates, so a man in the middle without the code cannot substitute his own.
 * Credentials are node-local (`<dataDir>/ha/pair.json`, mode 0600), never replicated.
 * @module
 */
import { join } from "node:path";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { z } from "zod";
import { KeepwireError } from "../errors.ts";

/** The pair's credentials on one node. */
export const pairCredentialsSchema = z.lazy(() =>
  z.strictObject({
    version: z.literal(1),
    pairId: z.string().min(1).max(128),
    node: z.string().min(1).max(64),
    peerNode: z.string().min(1).max(64),
    key: z.string().min(1),
    cert: z.string().min(1),
    peerCert: z.string().min(1),
    /** The peer's next certificate while it rotates (accepted alongside `peerCert`). */
    peerCertNext: z.string().min(1).optional(),
    secret: z.string().regex(/^[0-9a-f]{64}$/),
    pairedAt: z.string(),
    /** When this node's certificate was last rotated (absent: made at pairing). */
    rotatedAt: z.string().optional(),
  })
);
/** The pair's credentials on one node. */
export type PairCredentials = z.infer<typeof pairCredentialsSchema>;

/** Where a node keeps its pair credentials. */
export function pairFile(dataDir: string): string {
  return join(dataDir, "ha", "pair.json");
}

/** Read this node's credentials (null when unpaired; throws when the file is damaged). */
export function loadPair(dataDir: string): PairCredentials | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(pairFile(dataDir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return pairCredentialsSchema.parse(JSON.parse(text));
}

/** Store this node's credentials (atomically; mode 0600); a pairing ends an unpaired record. */
export function savePair(dataDir: string, c: PairCredentials): void {
  writeJson(pairFile(dataDir), c);
  try {
    Deno.removeSync(unpairedFile(dataDir));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

function writeJson(path: string, v: unknown): void {
  Deno.mkdirSync(join(path, ".."), { recursive: true, mode: 0o700 });
  const tmp = path + ".tmp";
  Deno.writeTextFileSync(tmp, JSON.stringify(v, null, 2) + "\n", { mode: 0o600 });
  Deno.renameSync(tmp, path);
}

/**
 * What a node keeps after `ha unpair` (`<dataDir>/ha/unpaired.json`): the pair it left and
 * a key derived from the old link secret, good only for signing "this node left the pair"
 * to the peer (who derives the same key from its own copy of the secret). The private key,
 * the certificates and the secret itself are gone.
 */
export const unpairedSchema = z.lazy(() =>
  z.strictObject({
    version: z.literal(1),
    pairId: z.string().min(1).max(128),
    node: z.string().min(1).max(64),
    peerNode: z.string().min(1).max(64),
    unpairedAt: z.string(),
    by: z.string().max(64),
    key: z.string().regex(/^[0-9a-f]{64}$/),
  })
);
/** What a node keeps after `ha unpair`. */
export type Unpaired = z.infer<typeof unpairedSchema>;

/** Where the unpaired record is kept. */
export function unpairedFile(dataDir: string): string {
  return join(dataDir, "ha", "unpaired.json");
}

/** The unpaired record, or null (also when damaged: it only serves a notice). */
export function loadUnpaired(dataDir: string): Unpaired | null {
  try {
    return unpairedSchema.parse(JSON.parse(Deno.readTextFileSync(unpairedFile(dataDir))));
  } catch {
    return null;
  }
}

/** The notice key both nodes derive from the pair's link secret. */
export function unpairNoticeKey(secret: string): string {
  return createHmac("sha256", secret).update("kw-unpaired-key").digest("hex");
}

/** The MAC of an unpaired notice, bound to the asker's nonce. */
export function unpairNoticeMac(
  key: string,
  n: { pairId: string; node: string; unpairedAt: string; nonce: string },
): string {
  return createHmac("sha256", key).update(
    `kw-unpaired\n${n.pairId}\n${n.node}\n${n.unpairedAt}\n${n.nonce}`,
  ).digest("hex");
}

/** The notice a node that left the pair answers on `GET /peer/v1/unpaired?nonce=`. */
export const unpairNoticeSchema = z.lazy(() =>
  z.strictObject({
    pairId: z.string().min(1).max(128),
    node: z.string().min(1).max(64),
    unpairedAt: z.string().max(64),
    mac: z.string().regex(/^[0-9a-f]{64}$/),
  })
);

/** Is `notice` a genuine "left the pair" from the peer of `c` for `nonce`? */
export function checkUnpairNotice(c: PairCredentials, notice: unknown, nonce: string): boolean {
  const n = unpairNoticeSchema.safeParse(notice);
  if (!n.success || n.data.pairId !== c.pairId || n.data.node !== c.peerNode) return false;
  const want = unpairNoticeMac(unpairNoticeKey(c.secret), { ...n.data, nonce });
  return sameHex(n.data.mac, want);
}

/** When a certificate (PEM) expires, or null when it does not parse. */
export async function certNotAfter(pem: string): Promise<Date | null> {
  try {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    return new x509.X509Certificate(pem).notAfter;
  } catch {
    return null;
  }
}

/**
 * Why `pem` cannot be pinned as the peer's certificate, or null when it can. Pinned
 * certificates are the peer link's trust anchors (the TLS `ca` list), so one that is a CA
 * (basicConstraints CA:TRUE) or may sign certificates (keyCertSign, cRLSign) would accept
 * every certificate made with its key; and a certificate whose key usage rules out the
 * link's use (a TLS signature: digitalSignature; both server and client authentication)
 * would break every handshake once the switch is made. Absent usage extensions allow
 * every use, as in TLS. The sentence names what is wrong.
 */
export async function peerCertProblem(pem: string, now: number): Promise<string | null> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  let c: InstanceType<typeof x509.X509Certificate>;
  try {
    c = new x509.X509Certificate(pem);
  } catch {
    return "not a certificate (PEM X.509)";
  }
  if (c.notAfter.getTime() <= now) return `it expired on ${c.notAfter.toISOString()}`;
  const bc = c.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca) {
    return "it is a CA certificate (basicConstraints CA:TRUE): pinned, it would accept every " +
      "certificate its key signs; a node certificate is not a CA";
  }
  const F = x509.KeyUsageFlags;
  const ku = c.getExtension(x509.KeyUsagesExtension);
  if (ku) {
    const signs = [[F.keyCertSign, "keyCertSign"], [F.cRLSign, "cRLSign"]] as const;
    const bad = signs.filter(([f]) => ku.usages & f).map(([, n]) => n);
    if (bad.length) {
      return `its key usage allows signing certificates (${bad.join(", ")}): ` +
        "pinned, it would act as a CA";
    }
    if (!(ku.usages & F.digitalSignature)) {
      return "its key usage lacks digitalSignature: the peer link's TLS handshakes need it";
    }
  }
  const eku = c.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku) {
    const want = [
      [x509.ExtendedKeyUsage.serverAuth, "serverAuth"],
      [x509.ExtendedKeyUsage.clientAuth, "clientAuth"],
    ] as const;
    const lacks = want.filter(([oid]) => !eku.usages.map(String).includes(oid)).map(([, n]) => n);
    if (lacks.length) {
      return `its extended key usage lacks ${lacks.join(" and ")}: ` +
        "a node is both the server and the client of the peer link";
    }
  }
  return null;
}

/** SHA-256 of a PEM certificate's DER, hex (what both sides show). */
export function certFingerprint(pem: string): string {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return createHash("sha256").update(Buffer.from(b64, "base64")).digest("hex");
}

/**
 * A node certificate for the peer link: ECDSA P-256, self-signed, not a CA (so nothing
 * can chain to it: pinning it accepts exactly it), server and client use, the given
 * IP addresses as its names, valid 10 years (`validDays`: tests of the expiry warning).
 */
export async function makeNodeCert(
  node: string,
  ips: string[],
  validDays = 3650,
): Promise<{ cert: string; key: string }> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  const serial = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `7e${serial}`,
    name: `CN=keepwire ${node}, O=keepwire peer link`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + validDays * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(
        [...new Set(ips)].map((ip) => ({ type: "ip" as const, value: ip })),
      ),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { cert: cert.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/** Pairing failed; nothing was stored. */
export class PairError extends KeepwireError {
  /** Build one with a status and a stable code. */
  constructor(status: 400 | 403 | 409 | 410 | 500 | 502, code: string, message: string) {
    super(status, code, message);
  }
}

const CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // 32 symbols, no 0/O/1/I
/** How long a code is valid. */
export const PAIR_CODE_TTL_MS = 10 * 60_000;
/** Wrong tries before a code is destroyed. */
export const PAIR_CODE_TRIES = 5;

/** Normalise a typed code: upper case, no spaces or dashes. */
export function normaliseCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, "");
}

function newCode(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  const c = Array.from(b, (x) => CODE_ALPHABET[x & 31]).join("");
  return `${c.slice(0, 4)}-${c.slice(4, 8)}-${c.slice(8)}`;
}

function mac(code: string, text: string): string {
  return createHmac("sha256", normaliseCode(code)).update(text).digest("hex");
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The requester's message. */
export const pairHelloSchema = z.lazy(() =>
  z.strictObject({
    pairId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/),
    node: z.string().min(1).max(64),
    cert: z.string().min(1).max(8192),
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
    mac: z.string().regex(/^[0-9a-f]{64}$/),
  })
);
/** The code node's answer. */
export const pairAnswerSchema = z.lazy(() =>
  z.strictObject({
    node: z.string().min(1).max(64),
    cert: z.string().min(1).max(8192),
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
    mac: z.string().regex(/^[0-9a-f]{64}$/),
  })
);

const helloText = (h: Omit<z.infer<typeof pairHelloSchema>, "mac">) =>
  `kw-pair-1\n${h.pairId}\n${h.node}\n${h.nonce}\n${certFingerprint(h.cert)}`;
const answerText = (h: string, a: Omit<z.infer<typeof pairAnswerSchema>, "mac">) =>
  `kw-pair-2\n${h}\n${a.node}\n${a.nonce}\n${certFingerprint(a.cert)}`;
const secretOf = (code: string, hello: string, answer: string) =>
  mac(code, `kw-pair-secret\n${hello}\n${answer}`);

interface Offer {
  code: string;
  expiresAt: number;
  tries: number;
  cert: string;
  key: string;
}

/** Options of {@link Pairing}. */
export interface PairingOptions {
  /** Where the credentials are kept. */
  dataDir: string;
  /** This node's id. */
  node: string;
  /** The addresses this node's certificate names (the peer reaches it by one of them). */
  ips: string[];
  /** Injected time. */
  now: () => number;
  /** Credentials were just stored (the module restarts its peer link with them). */
  onPaired: (c: PairCredentials, how: "code" | "peer") => void;
}

/** One node's side of pairing. */
export class Pairing {
  #offer: Offer | null = null;
  readonly #o: PairingOptions;

  /** Build one for this node. */
  constructor(o: PairingOptions) {
    this.#o = o;
  }

  /** The credentials, or null when unpaired. */
  credentials(): PairCredentials | null {
    return loadPair(this.#o.dataDir);
  }

  #refuseIfPaired(): void {
    const c = this.credentials();
    if (c) {
      throw new PairError(
        409,
        "pair_already_paired",
        `this node is paired (pair ${c.pairId} with ${c.peerNode}); run keepwire ha unpair on both nodes to pair again`,
      );
    }
  }

  /**
   * Leave the pair: the credentials are removed (private key, certificates, secret) and
   * the unpaired record kept (see {@link unpairedSchema}); answers what was removed.
   */
  unpair(by: string): PairCredentials {
    const c = this.credentials();
    if (!c) throw new PairError(409, "pair_not_paired", "this node is not paired");
    this.#writeUnpaired({ pairId: c.pairId, node: c.node, peerNode: c.peerNode, by }, c.secret);
    Deno.removeSync(pairFile(this.#o.dataDir));
    this.#offer = null;
    return c;
  }

  /**
   * Store that this node is not in the pair (what `ha unpair` leaves), its notice key
   * derived from the pair's secret so the peer's probe can check the notice.
   */
  #writeUnpaired(
    r: Pick<Unpaired, "pairId" | "node" | "peerNode" | "by">,
    secret: string,
  ): void {
    const record: Unpaired = {
      version: 1,
      pairId: r.pairId,
      node: r.node,
      peerNode: r.peerNode,
      unpairedAt: new Date(this.#o.now()).toISOString(),
      by: r.by,
      key: unpairNoticeKey(secret),
    };
    writeJson(unpairedFile(this.#o.dataDir), record);
  }

  /** Replace the credentials with `f(credentials)` (rotation); throws when unpaired. */
  update(f: (c: PairCredentials) => PairCredentials): PairCredentials {
    const c = this.credentials();
    if (!c) throw new PairError(409, "pair_not_paired", "this node is not paired");
    const next = pairCredentialsSchema.parse(f(c));
    writeJson(pairFile(this.#o.dataDir), next);
    return next;
  }

  /** The certificate pairing and rotation make for this node (tests replace it). */
  makeCert(validDays?: number): Promise<{ cert: string; key: string }> {
    return makeNodeCert(this.#o.node, this.#o.ips, validDays);
  }

  /** Make a one-time code (and this node's certificate); a new code replaces an old one. */
  async offer(): Promise<{ code: string; expiresAt: string; fingerprint: string }> {
    this.#refuseIfPaired();
    const { cert, key } = await this.makeCert();
    // the requester would refuse to pin it after this node stored the pair: refuse first
    const unfit = await peerCertProblem(cert, this.#o.now());
    if (unfit) {
      throw new PairError(
        500,
        "pair_bad_certificate",
        `this node made a certificate the peer must not pin (${unfit}): no code offered`,
      );
    }
    this.#refuseIfPaired(); // paired by another request meanwhile
    const code = newCode();
    this.#offer = { code, expiresAt: this.#o.now() + PAIR_CODE_TTL_MS, tries: 0, cert, key };
    return {
      code,
      expiresAt: new Date(this.#offer.expiresAt).toISOString(),
      fingerprint: certFingerprint(cert),
    };
  }

  /** Is a code outstanding (for the HA page)? */
  get offering(): { expiresAt: string } | null {
    const o = this.#offer;
    if (!o || o.expiresAt <= this.#o.now()) return null;
    return { expiresAt: new Date(o.expiresAt).toISOString() };
  }

  /**
   * The code node's side of the exchange (the peer link's POST /peer/v1/pair). A requester
   * that proves the code but offers a certificate this node must not pin is refused
   * (`400 pair_bad_certificate`, naming why); nothing is stored and the code stays valid.
   */
  async answer(body: unknown): Promise<z.infer<typeof pairAnswerSchema>> {
    this.#refuseIfPaired();
    const p = pairHelloSchema.safeParse(body);
    if (!p.success) throw new PairError(400, "pair_malformed", "not a pairing request");
    const h = p.data;
    const o = this.#offer;
    if (!o) {
      throw new PairError(
        403,
        "pair_no_code",
        "no pairing code is outstanding on this node: run keepwire ha pair --code on it first",
      );
    }
    if (o.expiresAt <= this.#o.now()) {
      this.#offer = null;
      throw new PairError(410, "pair_code_expired", "the pairing code has expired: make a new one");
    }
    const ht = helloText(h);
    if (!sameHex(h.mac, mac(o.code, ht))) {
      if (++o.tries >= PAIR_CODE_TRIES) this.#offer = null;
      throw new PairError(
        403,
        "pair_bad_code",
        `wrong pairing code${
          this.#offer ? "" : ` (${PAIR_CODE_TRIES} wrong tries: code destroyed)`
        }`,
      );
    }
    const unfit = await peerCertProblem(h.cert, this.#o.now());
    if (unfit) {
      throw new PairError(
        400,
        "pair_bad_certificate",
        `certificate refused: ${unfit}; nothing stored, the code stays valid`,
      );
    }
    // checked while awaiting: another request may have paired or a new code replaced this one
    this.#refuseIfPaired();
    if (this.#offer !== o || o.expiresAt <= this.#o.now()) {
      throw new PairError(
        409,
        "pair_code_gone",
        "the pairing code was used, replaced or expired meanwhile: make a new one",
      );
    }
    const a = {
      node: this.#o.node,
      cert: o.cert,
      nonce: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex"),
    };
    const at = answerText(ht, a);
    const creds: PairCredentials = {
      version: 1,
      pairId: h.pairId,
      node: this.#o.node,
      peerNode: h.node,
      key: o.key,
      cert: o.cert,
      peerCert: h.cert,
      secret: secretOf(o.code, ht, at),
      pairedAt: new Date(this.#o.now()).toISOString(),
    };
    savePair(this.#o.dataDir, creds);
    this.#offer = null;
    this.#o.onPaired(creds, "code");
    return { ...a, mac: mac(o.code, at) };
  }

  /**
   * The requester's side: send our hello to the peer link at `url` (`http://HOST:PORT`)
   * and store the credentials when the answer proves the peer holds the code.
   */
  async request(
    url: string,
    code: string,
    pairId: string,
    fetchFn: typeof fetch = fetch,
  ): Promise<PairCredentials> {
    this.#refuseIfPaired();
    const { cert, key } = await this.makeCert();
    const h = {
      pairId,
      node: this.#o.node,
      cert,
      nonce: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex"),
    };
    const ht = helloText(h);
    let res: Response;
    try {
      res = await fetchFn(new URL("/peer/v1/pair", url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...h, mac: mac(code, ht) }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (e) {
      throw new PairError(502, "pair_unreachable", `cannot reach ${url}: ${(e as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
      const status = [400, 403, 409, 410].includes(res.status) ? res.status as 403 : 502;
      throw new PairError(
        status,
        err?.code ?? "pair_refused",
        `the peer refused: ${err?.message ?? `HTTP ${res.status}`}`,
      );
    }
    const p = pairAnswerSchema.safeParse(json);
    if (!p.success) throw new PairError(502, "pair_malformed", "the peer's answer is malformed");
    const at = answerText(ht, p.data);
    if (!sameHex(p.data.mac, mac(code, at))) {
      throw new PairError(
        502,
        "pair_peer_unproven",
        "the peer's answer does not prove it holds the code (a man in the middle?): nothing stored",
      );
    }
    const unfit = await peerCertProblem(p.data.cert, this.#o.now());
    if (unfit) {
      // The peer stored the pair before answering (only an older or broken build answers
      // with such a certificate). Leave what `ha unpair` leaves, keyed by the secret both
      // derived, so its probe learns that this node is not in the pair (peer_unpaired).
      if (!this.credentials()) {
        this.#writeUnpaired(
          { pairId, node: this.#o.node, peerNode: p.data.node, by: "pairing: certificate refused" },
          secretOf(code, ht, at),
        );
      }
      throw new PairError(
        502,
        "pair_bad_certificate",
        `the peer ${p.data.node} answered with a certificate this node must not pin: ${unfit}. ` +
          `Nothing stored here but a notice that this node is not in the pair; if the peer ` +
          `stored the pair, it shows the peer unpaired: run keepwire ha unpair on it`,
      );
    }
    this.#refuseIfPaired(); // paired by another request meanwhile
    const creds: PairCredentials = {
      version: 1,
      pairId,
      node: this.#o.node,
      peerNode: p.data.node,
      key,
      cert,
      peerCert: p.data.cert,
      secret: secretOf(code, ht, at),
      pairedAt: new Date(this.#o.now()).toISOString(),
    };
    savePair(this.#o.dataDir, creds);
    this.#o.onPaired(creds, "peer");
    return creds;
  }
}
