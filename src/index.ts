export type { Broker, BrokerEvents, BrokerStats } from "./brokers/broker.js";
export type { BrokerLinkStats } from "./brokers/link.js";
export { Channels, type Membership } from "./channels.js";
export type {
  Authorize,
  BroadcastOptions,
  BroadcastResult,
  ChannelsOptions,
  ChannelsStats,
  SlowConsumerPolicy,
} from "./options.js";
export type { Sharder } from "./sharder.js";
export type { ChannelId } from "./table.js";
export type { Member, Sendable } from "./transports/index.js";
