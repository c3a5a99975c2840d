/**
 * U-Boot env images for tests: file-backed single and redundant envs (CRC32 +
 * flags layout, as mkenvimage writes them) described in a fw_env.config in a
 * temp dir, for the real libubootenv tools.
 */
import { join } from "node:path";

/** True when `tool` is on PATH. */
export function which(tool: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** fw_printenv and fw_setenv (Debian libubootenv-tool) are installed. */
export const HAVE_UBOOT_TOOLS = which("fw_printenv") && which("fw_setenv");
if (HAVE_UBOOT_TOOLS) await Deno.mkdir("/var/lock", { recursive: true }).catch(() => {});

/** Size of every test env copy. */
export const SIZE = 0x4000;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32 as U-Boot computes it. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Build an env image: u32le CRC [+ flags] + `k=v\0...\0` + 0xff padding (as mkenvimage). */
export function buildImage(
  vars: Array<[string, string]>,
  redundant: boolean,
  flags = 1,
): Uint8Array {
  const img = new Uint8Array(SIZE).fill(0xff);
  const hdr = redundant ? 5 : 4;
  let p = hdr;
  for (const [k, v] of vars) {
    const b = new TextEncoder().encode(`${k}=${v}`);
    img.set(b, p);
    p += b.length;
    img[p++] = 0;
  }
  img[p++] = 0;
  if (redundant) img[4] = flags;
  new DataView(img.buffer).setUint32(0, crc32(img.subarray(hdr)), true);
  return img;
}

/** A parsed env image. */
export interface Parsed {
  crcOk: boolean;
  flags: number | null;
  vars: Record<string, string>;
}

/** Parse an env image. */
export function parseImage(img: Uint8Array, redundant: boolean): Parsed {
  const hdr = redundant ? 5 : 4;
  const crcOk = new DataView(img.buffer, img.byteOffset).getUint32(0, true) ===
    crc32(img.subarray(hdr));
  const vars: Record<string, string> = {};
  let p = hdr;
  while (p < img.length && img[p] !== 0) {
    const end = img.indexOf(0, p);
    const s = new TextDecoder().decode(img.subarray(p, end));
    const eq = s.indexOf("=");
    vars[s.slice(0, eq)] = s.slice(eq + 1);
    p = end + 1;
  }
  return { crcOk, flags: redundant ? img[4] : null, vars };
}

/** A temp dir with env copies and their fw_env.config. */
export interface Fixture {
  dir: string;
  config: string;
  copies: string[];
}

/** Write env copies holding `vars` and a fw_env.config naming them. */
export async function fixture(vars: Array<[string, string]>, redundant: boolean): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "kw-uboot-" });
  const copies = redundant
    ? [join(dir, "env0.bin"), join(dir, "env1.bin")]
    : [join(dir, "env.bin")];
  for (const c of copies) await Deno.writeFile(c, buildImage(vars, redundant, 1));
  const config = join(dir, "fw_env.config");
  await Deno.writeTextFile(
    config,
    "# device offset size\n" + copies.map((c) => `${c} 0x0 0x${SIZE.toString(16)}\n`).join(""),
  );
  return { dir, config, copies };
}

/** `fw_printenv -c config` output, asserting success. */
export async function rawPrintenv(config: string): Promise<string> {
  const out = await new Deno.Command("fw_printenv", { args: ["-c", config] }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}
