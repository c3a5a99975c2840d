/**
 * IPv4 addresses and prefixes as the `ha` section writes them (`10.231.0.50/24`).
 * IPv6 is not supported yet (keepalived runs one address family per VRRP instance;
 * docs/ha.md).
 * @module
 */

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** Is `s` a dotted-quad IPv4 address (no leading zeros)? */
export function isIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** An IPv4 address as an unsigned 32-bit number. Throws on a malformed address. */
export function ipv4ToInt(s: string): number {
  if (!isIpv4(s)) throw new Error(`not an IPv4 address: ${JSON.stringify(s)}`);
  return s.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** A number back to dotted-quad form. */
export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** An address with its prefix length: `10.231.0.50/24`. */
export interface Cidr {
  /** The address as written. */
  address: string;
  /** Prefix length 0..32. */
  prefix: number;
}

/** Parse `a.b.c.d/n`; null when malformed. */
export function parseCidr(s: string): Cidr | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIpv4(m[1])) return null;
  const prefix = Number(m[2]);
  if (prefix > 32) return null;
  return { address: m[1], prefix };
}

/** The network address of a CIDR (`10.231.0.0` for `10.231.0.50/24`). */
export function networkOf(c: Cidr): number {
  const size = 2 ** (32 - c.prefix);
  return Math.floor(ipv4ToInt(c.address) / size) * size;
}

/** Is `address` inside the network of `net`? */
export function inPrefix(address: string, net: Cidr): boolean {
  const size = 2 ** (32 - net.prefix);
  return Math.floor(ipv4ToInt(address) / size) * size === networkOf(net);
}

/** `10.231.0.0/24` for `10.231.0.50/24`. */
export function formatNetwork(c: Cidr): string {
  return `${intToIpv4(networkOf(c))}/${c.prefix}`;
}

/**
 * Is the address the network or broadcast address of its prefix (unusable as a
 * host address for prefixes up to /30)?
 */
export function isNetworkOrBroadcast(c: Cidr): boolean {
  if (c.prefix >= 31) return false;
  const n = ipv4ToInt(c.address);
  const net = networkOf(c);
  return n === net || n === net + 2 ** (32 - c.prefix) - 1;
}
