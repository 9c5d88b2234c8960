import type { Broker } from "./brokers/broker.js";
import type { BrokerLinkStats } from "./brokers/link.js";
import type { Member } from "./transports/index.js";
import type { ChannelId, PoolStats, Sharder } from "./types.js";

/*
 * What `new Channels()` takes and what `stats()` gives back: public types that name the broker,
 * kept apart from types.ts, which the brokers themselves import.
 */

/** What to do with a member whose unsent bytes are over the high-water mark. */
export type SlowConsumerPolicy = "skip" | "close";

/**
 * Decides whether `member` may join `channel` with `meta`, for `tryJoin`: true allows; false, a
 * throw or a rejection refuses.
 */
export type Authorize<Meta, M extends Member = Member> = (channel: ChannelId, member: M, meta: Meta) => boolean | Promise<boolean>;

/** Options of `new Channels()`. */
export interface ChannelsOptions<Meta = undefined, M extends Member = Member> {
  /** Asked by `tryJoin` before a join; `join` itself does not ask. Default: everyone may join. */
  authorize?: Authorize<Meta, M>;
  /** How many shards each channel has; asked once per channel, at its first join. Default: 1. */
  sharder?: Sharder;
  /** Shard tasks run at once when the pool is idle (integer >= 1). Default: 10. */
  writers?: number;
  /** Shard tasks run at once at the most while others wait (integer >= `writers`). Default: 50. */
  maxWriters?: number;
  /**
   * A member holding more unsent bytes than this (`bufferedAmount`; `writableLength` for a
   * socket) is a slow consumer. Default: 1,048,576 (1 MiB).
   */
  highWaterMark?: number;
  /**
   * `"skip"`: a slow consumer does not get the message (counted in `dropped`) and stays.
   * `"close"`: it is closed (a WebSocket with 1013) and leaves every channel. Default: `"skip"`.
   */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * How long fan-out may hold the event loop in one turn before it yields (`setImmediate`), in
   * ms. Default: 3.
   */
  sliceMs?: number;
  /**
   * Carries broadcasts to the `Channels` of other processes and machines (`RedisBroker` from
   * `ws-channels/redis`, `ClusterBroker` from `ws-channels/cluster`, or your own). A broker serves
   * one `Channels`, which closes it in `close()`. Default: none, this process only.
   */
  broker?: Broker;
}

/** What the table holds now, and what broadcasting has done since the `Channels` was made. */
export interface ChannelsStats {
  /** Channels with at least one member (an empty channel does not exist). */
  channels: number;
  /** Members in at least one channel. */
  members: number;
  /** (channel, member) pairs. */
  memberships: number;
  /** Broadcasts called and not yet settled. */
  inFlight: number;
  /** The writer pool now. */
  pool: PoolStats;
  /** Broadcasts called on this node so far (received ones are not counted). */
  broadcasts: number;
  /** Totals over every delivery on this node so far, of local broadcasts and received ones. */
  delivered: number;
  failed: number;
  dropped: number;
  /** With a broker only: what it carried, what arrived, and what was lost. */
  broker?: BrokerLinkStats;
}
