export type { Broker, BrokerEvents, BrokerHandle, BrokerStats } from "./brokers/broker.js";
export type { BrokerLinkStats } from "./brokers/link.js";
export { Channels } from "./channels.js";
export * from "./history/index.js";
export type { Authorize, ChannelsOptions, ChannelsStats, SlowConsumerPolicy } from "./options.js";
export {
  MAX_FRAME_BYTES,
  MAX_FRAME_ENTRIES,
  type PresenceCount,
  type PresenceDiff,
  type PresenceFrames,
} from "./presence/frames.js";
export type { PresenceOptions } from "./presence/options.js";
export { Presence, type PresenceMode, type PresenceSnapshot } from "./presence/presence.js";
export type { Member, Sendable } from "./transports/index.js";
export type {
  BroadcastOptions,
  BroadcastResult,
  ChannelId,
  Membership,
  MembershipCause,
  MembershipListener,
  PoolStats,
  Sharder,
} from "./types.js";
