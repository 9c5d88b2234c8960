import type { ChannelId } from "./table.js";

/**
 * Decides how many shards a channel is split into. Either a function of the channel or an object
 * with a `shards(channel)` method; the answer must be an integer from 1 to 1024. It is asked once per
 * channel, when the channel's first member joins.
 */
export type Sharder = ((channel: ChannelId) => number) | { shards(channel: ChannelId): number };

/** The most shards a channel may have: enough for millions of members, small enough to allocate. */
export const MAX_SHARDS = 1024;

/** The default sharder: every channel has one shard. */
export const oneShard = (): number => 1;

/**
 * Turns a user's sharder into a function that checks every answer.
 *
 * @throws {TypeError} if `sharder` is neither a function nor an object with `shards`.
 * @returns a function that throws `RangeError` when the sharder answers anything but an integer from 1 to 1024.
 */
export function toShardCount(sharder: Sharder | undefined): (channel: ChannelId) => number {
  if (sharder === undefined) return oneShard;
  let ask: (channel: ChannelId) => number;
  if (typeof sharder === "function") ask = sharder;
  else if (sharder !== null && typeof sharder === "object" && typeof sharder.shards === "function") {
    ask = (channel) => sharder.shards(channel);
  } else {
    throw new TypeError("sharder must be a function (channel) => number or an object with shards(channel)");
  }
  return (channel) => {
    const shards = ask(channel);
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new RangeError(
        `sharder answered ${String(shards)} for channel ${JSON.stringify(channel)}: shards must be an integer from 1 to ${MAX_SHARDS}`,
      );
    }
    return shards;
  };
}
