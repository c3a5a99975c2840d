/**
 * Channels: in an active-active pair each client set (`a`, `b`) has its own replication
 * channel — its own engine ({@link Replicator} with `channel`), tables, sequence, epochs
 * and tail files — following the role of its own VRRP instance. Both channels share the
 * peer link: the standby's side is one {@link ReplReceiver} that hands each request to
 * the engine of the channel it names ({@link channelReceiver}). docs/ha.md
 * ("Active-active: channels") is the reference.
 * @module
 */
import { peekChannel } from "./frame.ts";
import type { ReplAck, ReplReceiver, SnapshotMeta } from "./transport.ts";

/** The channels there are: `a` always, `b` in an active-active pair. */
export const CHANNELS = ["a", "b"] as const;
/** One channel. */
export type Channel = typeof CHANNELS[number];

function refusal(message: string): ReplAck {
  return { ok: false, epoch: 0, seq: 0, reason: "wrong_channel", message };
}

/**
 * One receiver for every channel: frames go to the engine of the channel their first
 * frame names (the engine then refuses any frame of another channel in the body), a
 * snapshot to the one its meta names (absent: `a`). A channel this node does not run is
 * refused (`wrong_channel`, no resync asked).
 */
export function channelReceiver(
  pick: (channel: string) => ReplReceiver | undefined,
): ReplReceiver {
  return {
    receiveFrames(body: Uint8Array): ReplAck {
      const ch = peekChannel(body) ?? "a"; // not a frame: channel a's engine says why
      const r = pick(ch);
      return r ? r.receiveFrames(body) : refusal(`this node runs no channel ${ch}`);
    },
    async receiveSnapshot(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>) {
      const ch = meta.channel ?? "a";
      const r = pick(ch);
      return r ? await r.receiveSnapshot(meta, chunks) : refusal(`this node runs no channel ${ch}`);
    },
  };
}
