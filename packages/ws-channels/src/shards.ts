/**
 * One shard of a channel: its members with their meta. While a fan-out over it is paused, it sets
 * `joinedSince` and the table records there every member that joins the shard, so that the
 * fan-out, resuming the same live iterator, can skip them (Map iterators visit appended entries).
 */
export interface Shard<M, Meta> {
  readonly members: Map<M, Meta>;
  joinedSince: Set<M> | undefined;
}

/**
 * A channel's shards as the fan-out takes them. The channel is its own first shard, and says
 * whether it has others, so a broadcast to a one-shard channel touches one object of the table's
 * beyond the members' Map: at 10,000 channels and more, each is a cache miss. Its `members` are
 * its first shard's: the whole channel's only when it is not `sharded`.
 */
export interface Sharded<M, Meta> extends Shard<M, Meta> {
  /** Every shard, this one first. */
  readonly shards: readonly Shard<M, Meta>[];
  /** Whether there is more than one shard (`shards.length > 1`, read without touching `shards`). */
  readonly sharded: boolean;
}
