/**
 * TLS material for the web server: the configured cert/key, or a self-signed
 * ECDSA P-256 certificate generated on first start (Web Crypto + @peculiar/x509)
 * and kept in the data directory.
 * @module
 */
import { join } from "node:path";
import { hostname } from "node:os";

/** PEM certificate and key. */
export interface TlsMaterial {
  /** Certificate chain (PEM). */
  cert: string;
  /** Private key (PEM, PKCS#8). */
  key: string;
  /** Where they came from. */
  source: "configured" | "generated" | "generated-earlier";
}

/** Generate a self-signed certificate for `names` (DNS names and IPs), valid 10 years. */
export async function generateSelfSigned(names: string[]): Promise<{ cert: string; key: string }> {
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]) as CryptoKeyPair;
  const serial = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const isIp = (n: string) => /^[\d.]+$/.test(n) || n.includes(":");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `7f${serial}`,
    name: `CN=${names[0]}, O=keepwire self-signed`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3650 * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) => ({ type: isIp(n) ? "ip" as const : "dns" as const, value: n })),
      ),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { cert: cert.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/**
 * Load the configured cert/key, or the generated pair in `dataDir/tls/`, or
 * generate one now. A configured path that cannot be read is an error.
 */
export async function loadTls(
  cfg: { cert?: string; key?: string },
  dataDir: string,
  listenHost: string,
): Promise<TlsMaterial> {
  if (cfg.cert || cfg.key) {
    if (!cfg.cert || !cfg.key) throw new Error("web.tls: set both cert and key, or neither");
    try {
      return {
        cert: await Deno.readTextFile(cfg.cert),
        key: await Deno.readTextFile(cfg.key),
        source: "configured",
      };
    } catch (e) {
      throw new Error(`web.tls: cannot read certificate or key: ${(e as Error).message}`);
    }
  }
  const dir = join(dataDir, "tls");
  const certPath = join(dir, "cert.pem"), keyPath = join(dir, "key.pem");
  try {
    return {
      cert: await Deno.readTextFile(certPath),
      key: await Deno.readTextFile(keyPath),
      source: "generated-earlier",
    };
  } catch { /* generate */ }
  const names = [...new Set([hostname(), "localhost", "127.0.0.1", "::1", listenHost])].filter(
    (n) => n && n !== "0.0.0.0" && n !== "::",
  );
  const pair = await generateSelfSigned(names);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(keyPath, pair.key, { mode: 0o600 });
  await Deno.writeTextFile(certPath, pair.cert, { mode: 0o644 });
  return { ...pair, source: "generated" };
}
