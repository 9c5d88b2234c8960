import type { ChannelId } from "../types.js";

/**
 * The messages `ClusterBroker` (in workers) and `setupPrimary` (in the primary) exchange over
 * node:cluster's IPC channel. That channel is the application's too, so each carries the tag
 * `wsChannels` (naming its kind) and anything without it is left to the application.
 */
export type ToPrimary =
  | { wsChannels: "hello" }
  | { wsChannels: "sub"; channel: ChannelId; id: number }
  | { wsChannels: "unsub"; channel: ChannelId }
  | { wsChannels: "pub"; channel: ChannelId; envelope: Uint8Array };

/** `welcome` carries bytes as a probe: they arrive as bytes only over "advanced" serialization. */
export type ToWorker =
  | { wsChannels: "welcome"; probe: Uint8Array }
  | { wsChannels: "ack"; id: number }
  | { wsChannels: "msg"; envelope: Uint8Array };

/** Whether `message` is one of the broker's, not the application's. */
export function isBrokerMessage<T extends ToPrimary | ToWorker>(message: unknown): message is T {
  return message !== null && typeof message === "object" && typeof (message as { wsChannels?: unknown }).wsChannels === "string";
}

/** The bytes of an envelope that crossed IPC: the structured clone may hand a Uint8Array back. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
