import { channelOf, isBinary, payloadStart } from "../../packages/ws-channels/src/brokers/envelope.js";
import type { ChannelId } from "../../packages/ws-channels/src/types.js";

/** One envelope's fields, decoded whole: what tests compare (the link reads them in place). */
export interface Envelope {
  readonly origin: number;
  readonly epoch: number;
  readonly seq: number;
  readonly channel: ChannelId;
  readonly binary: boolean;
  /** A view of the envelope's bytes, not a copy. */
  readonly payload: Buffer;
}

/** Decodes an envelope. @returns undefined for bytes that are not one (another version, truncated). */
export function decodeEnvelope(bytes: Buffer): Envelope | undefined {
  const end = payloadStart(bytes);
  if (end < 0) return undefined;
  return {
    origin: bytes.readUIntBE(2, 6),
    epoch: bytes.readUInt32BE(8),
    seq: bytes.readUInt32BE(12),
    channel: channelOf(bytes, end),
    binary: isBinary(bytes),
    payload: bytes.subarray(end),
  };
}
