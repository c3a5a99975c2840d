/**
 * The transport between the primary's engine and the standby's: a small interface so
 * the HA peer link (HTTPS with mutual authentication) plugs in, an in-memory one for
 * tests, and the HTTP one in `http.ts`.
 *
 * The model is push: the primary sends frames and, when the standby's answer asks for
 * it, a snapshot; every answer is an {@link ReplAck}. "Requesting a snapshot" is the
 * standby answering `needSnapshot: true`.
 * @module
 */
import type { RefusalReason } from "./errors.ts";

/** The standby's answer to frames or a snapshot. */
export interface ReplAck {
  /** True when everything sent was applied (or had been already). */
  ok: boolean;
  /** The standby's epoch after this request. */
  epoch: number;
  /** The last sequence the standby has applied (its ack). */
  seq: number;
  /** Why something was refused. */
  reason?: RefusalReason;
  /** A sentence for the journal. */
  message?: string;
  /** The standby asks for a full snapshot (gap, epoch change, corrupt frame, conflict). */
  needSnapshot?: boolean;
}

/** One epoch of the pair's history: the seq the primary of `epoch` started after. */
export interface EpochStart {
  /** The epoch. */
  epoch: number;
  /** Its first frame is `startSeq + 1`; frames of older epochs above it were never taken. */
  startSeq: number;
}

/** What precedes a snapshot's bytes. */
export interface SnapshotMeta {
  /** Pair identity. */
  pairId: string;
  /** The channel (client set) it replaces; absent means `a` (peers from before channels). */
  channel?: string;
  /** Epoch of the primary that made it. */
  epoch: number;
  /** Every frame up to this seq is in it. */
  seq: number;
  /** Schema version of the sender. */
  schemaVersion: string;
  /** Hex SHA-256 of all the bytes. */
  sha256: string;
  /** Total bytes. */
  bytes: number;
  /** Epoch history of the primary (for the tail of a returning ex-primary). */
  history: EpochStart[];
}

/** The primary's side of a link to the standby. */
export interface ReplTransport {
  /** Send a body of frames (back to back); resolves with the standby's answer. */
  sendFrames(body: Uint8Array, signal?: AbortSignal): Promise<ReplAck>;
  /** Stream a snapshot; resolves with the standby's answer once it is installed. */
  sendSnapshot(
    meta: SnapshotMeta,
    chunks: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<ReplAck>;
}

/** The standby's side: what a transport delivers to. */
export interface ReplReceiver {
  /** Verify and apply a body of frames. */
  receiveFrames(body: Uint8Array): ReplAck;
  /** Verify and install a snapshot. */
  receiveSnapshot(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<ReplAck>;
}

/** Thrown by a transport when the peer cannot be reached. */
export class TransportDownError extends Error {
  /** Build one. */
  constructor(message: string) {
    super(message);
    this.name = "TransportDownError";
  }
}

/**
 * In-process transport for tests: delivers to a receiver, can be taken down, delayed,
 * or given a hook that rewrites the bytes on the wire.
 */
export class MemoryTransport implements ReplTransport {
  /** When true, every send fails as an unreachable peer would. */
  down = false;
  /** Rewrite a body before delivery (fault injection). */
  mangle: ((body: Uint8Array) => Uint8Array) | undefined;
  /** Bodies sent (frames requests). */
  sent = 0;
  /** Snapshots sent. */
  snapshots = 0;

  /** Deliver to `target` (the standby's engine). */
  constructor(public target: ReplReceiver) {}

  /** Send frames. */
  sendFrames(body: Uint8Array): Promise<ReplAck> {
    if (this.down) return Promise.reject(new TransportDownError("peer down (memory transport)"));
    this.sent++;
    const b = this.mangle ? this.mangle(body) : body;
    // a microtask hop, as a real link is never synchronous
    return Promise.resolve().then(() => this.target.receiveFrames(b));
  }

  /** Send a snapshot. */
  async sendSnapshot(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<ReplAck> {
    if (this.down) throw new TransportDownError("peer down (memory transport)");
    this.snapshots++;
    return await this.target.receiveSnapshot(meta, chunks);
  }
}
