export type {
  Authorize,
  BroadcastOptions,
  BroadcastResult,
  ChannelsOptions,
  ChannelsStats,
  Membership,
  SlowConsumerPolicy,
} from "./channels.js";
export { Channels } from "./channels.js";
export type { Sharder } from "./sharder.js";
export type { ChannelId } from "./table.js";
export type { Member, Sendable } from "./transports/index.js";
