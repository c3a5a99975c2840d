/**
 * The replication frame: one batch of changesets with the header the standby checks
 * before it applies anything.
 *
 * Layout (big-endian):
 * ```
 * "KWRF" | u8 version | u16 n + pairId (UTF-8) | [version 2: u8 n + channel (ASCII)]
 *        | u16 n + schemaVersion (UTF-8) | u32 epoch | u64 seq | 32 B sha256 | u32 count
 *        | u32 payloadBytes | payload = count × (u32 n + changeset bytes)
 * ```
 * Version 1 frames carry channel `a` (the only channel before active-active); channel `a`
 * is still written as version 1, so a peer from before channels reads it. Other channels
 * are version 2.
 * `sha256` covers every byte of the frame except itself (so a flipped bit in the header
 * is caught as surely as one in a changeset). Frames are self-delimiting: a request body
 * is frames back to back.
 * @module
 */
import { createHash } from "node:crypto";
import { ReplFrameError } from "./errors.ts";

const MAGIC = [0x4b, 0x57, 0x52, 0x46]; // KWRF
const VERSION = 1;
/** With a channel name after the pair id. */
const VERSION_CHANNEL = 2;
/** The largest frame accepted (a bound on what a peer can make us allocate). */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** A decoded frame. */
export interface Frame {
  /** Pair identity: frames of another pair are refused. */
  pairId: string;
  /** The channel (client set) it belongs to; frames of another channel are refused. */
  channel: string;
  /** Epoch of the primary that made it (bumped at every promotion). */
  epoch: number;
  /** Monotonic sequence number (one per frame, continuing across epochs). */
  seq: number;
  /** Schema version of the replicated tables on the sender (migrations by version). */
  schemaVersion: string;
  /** Hex SHA-256 of the frame (see the module doc). */
  sha256: string;
  /** Changesets, applied in order in one transaction. */
  changesets: Uint8Array[];
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Encode a frame (the checksum is computed here). */
export function encodeFrame(
  f: Omit<Frame, "sha256" | "channel"> & { channel?: string },
): Uint8Array {
  const pid = enc.encode(f.pairId);
  const channel = f.channel ?? "a";
  const ch = channel === "a" ? null : enc.encode(channel);
  if (ch && (ch.length > 255 || !ch.length)) throw new RangeError("channel name too long");
  const sv = enc.encode(f.schemaVersion);
  const payloadBytes = f.changesets.reduce((n, c) => n + 4 + c.length, 0);
  const total = 4 + 1 + 2 + pid.length + (ch ? 1 + ch.length : 0) + 2 + sv.length + 4 + 8 + 32 + 4 +
    4 + payloadBytes;
  const buf = new Uint8Array(total);
  const dv = new DataView(buf.buffer);
  let o = 0;
  buf.set(MAGIC, o), o += 4;
  buf[o++] = ch ? VERSION_CHANNEL : VERSION;
  dv.setUint16(o, pid.length), o += 2;
  buf.set(pid, o), o += pid.length;
  if (ch) buf[o++] = ch.length, buf.set(ch, o), o += ch.length;
  dv.setUint16(o, sv.length), o += 2;
  buf.set(sv, o), o += sv.length;
  dv.setUint32(o, f.epoch), o += 4;
  dv.setBigUint64(o, BigInt(f.seq)), o += 8;
  const shaAt = o;
  o += 32;
  dv.setUint32(o, f.changesets.length), o += 4;
  dv.setUint32(o, payloadBytes), o += 4;
  for (const c of f.changesets) {
    dv.setUint32(o, c.length), o += 4;
    buf.set(c, o), o += c.length;
  }
  const h = createHash("sha256");
  h.update(buf.subarray(0, shaAt));
  h.update(buf.subarray(shaAt + 32));
  buf.set(h.digest(), shaAt);
  return buf;
}

/** Concatenate frames into one request body. */
export function concatFrames(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let o = 0;
  for (const f of frames) out.set(f, o), o += f.length;
  return out;
}

/**
 * Decode the frames of a body, back to back. Throws {@link ReplFrameError} with
 * `truncated` or `corrupt` on the first bad frame (nothing of a bad body is returned).
 */
export function decodeFrames(buf: Uint8Array): Frame[] {
  const out: Frame[] = [];
  let o = 0;
  while (o < buf.length) {
    const [f, n] = decodeFrame(buf.subarray(o));
    out.push(f);
    o += n;
  }
  return out;
}

/**
 * Decode the one frame at the start of `buf`: the frame and its length in bytes (the
 * next frame starts there). Throws {@link ReplFrameError} like {@link decodeFrames}.
 */
export function decodeFrame(buf: Uint8Array): [Frame, number] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  const need = (n: number, what: string) => {
    if (o + n > buf.length) {
      throw new ReplFrameError(
        "truncated",
        `frame ends inside ${what} (${buf.length} bytes, needed ${o + n})`,
      );
    }
  };
  need(5, "the magic");
  for (let i = 0; i < 4; i++) {
    if (buf[i] !== MAGIC[i]) throw new ReplFrameError("corrupt", "not a frame (bad magic)");
  }
  o = 4;
  const version = buf[o++];
  if (version !== VERSION && version !== VERSION_CHANNEL) {
    throw new ReplFrameError("corrupt", `unknown frame version ${version}`);
  }
  const str = (what: string) => {
    need(2, what);
    const n = dv.getUint16(o);
    o += 2;
    need(n, what);
    try {
      return dec.decode(buf.subarray(o, o += n));
    } catch {
      throw new ReplFrameError("corrupt", `${what} is not UTF-8`);
    }
  };
  const pairId = str("pairId");
  let channel = "a";
  if (version === VERSION_CHANNEL) {
    need(1, "the channel");
    const n = buf[o++];
    need(n, "the channel");
    channel = String.fromCharCode(...buf.subarray(o, o += n));
    if (!/^[a-z][a-z0-9]{0,15}$/.test(channel)) {
      throw new ReplFrameError("corrupt", "channel is not a channel name");
    }
  }
  const schemaVersion = str("schemaVersion");
  need(12 + 32 + 8, "the header");
  const epoch = dv.getUint32(o);
  o += 4;
  const seq = Number(dv.getBigUint64(o));
  o += 8;
  const shaAt = o;
  const sha = buf.subarray(o, o += 32);
  const count = dv.getUint32(o);
  o += 4;
  const payloadBytes = dv.getUint32(o);
  o += 4;
  if (payloadBytes > MAX_FRAME_BYTES) {
    throw new ReplFrameError("corrupt", `payload of ${payloadBytes} bytes is over the bound`);
  }
  need(payloadBytes, "the payload");
  const end = o + payloadBytes;
  const h = createHash("sha256");
  h.update(buf.subarray(0, shaAt));
  h.update(buf.subarray(shaAt + 32, end));
  const got = h.digest();
  if (!timingSafeEqualBytes(got, sha)) {
    throw new ReplFrameError("corrupt", `checksum mismatch in frame seq ${seq}`);
  }
  const changesets: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (o + 4 > end) throw new ReplFrameError("corrupt", "changeset count exceeds the payload");
    const n = dv.getUint32(o);
    o += 4;
    if (o + n > end) throw new ReplFrameError("corrupt", "changeset length exceeds the payload");
    changesets.push(buf.slice(o, o += n));
  }
  if (o !== end) throw new ReplFrameError("corrupt", "payload has bytes after its changesets");
  return [{ pairId, channel, schemaVersion, epoch, seq, sha256: hex(sha), changesets }, end];
}

function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Lower-case hex of bytes. */
export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The channel named by the first frame of a body, without checking anything else
 * (the receiver's demultiplexer routes on it; the engine then verifies every frame and
 * refuses one of another channel). Null when the body does not start like a frame.
 */
export function peekChannel(buf: Uint8Array): string | null {
  if (buf.length < 7 || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1]) return null;
  if (buf[2] !== MAGIC[2] || buf[3] !== MAGIC[3]) return null;
  if (buf[4] === VERSION) return "a";
  if (buf[4] !== VERSION_CHANNEL) return null;
  const o = 7 + ((buf[5] << 8) | buf[6]);
  if (o >= buf.length || o + 1 + buf[o] > buf.length) return null;
  return String.fromCharCode(...buf.subarray(o + 1, o + 1 + buf[o]));
}
