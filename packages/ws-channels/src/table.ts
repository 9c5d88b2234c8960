import { type Left, Observers } from "./observers.js";
import type { Shard, Sharded } from "./shards.js";
import type { ChannelId, MembershipCause, MembershipListener } from "./types.js";

/** One channel: its shards, how many members they hold together, and what its owner attached when it was created. */
interface Channel<M, Meta, Attached> extends Sharded<M, Meta> {
  size: number;
  attached: Attached | undefined;
}

/**
 * The reverse index entry of a member: its placement id and the channels it is in. Most members
 * are in one channel, so that one is kept as it is; a Set (about 150 bytes) is made only for a
 * member's second channel, and kept until it leaves them all.
 */
interface Placement {
  readonly id: number;
  channels: ChannelId | Set<ChannelId>;
}

/**
 * What the table tells its owner, synchronously, as it changes: a member joins its first channel
 * or leaves its last one; a channel gets its first member (created) or loses its last (deleted).
 * The channel events are where a broker's subscriptions follow the table.
 */
export interface Lifecycle<M, Meta, Attached> {
  added(member: M): void;
  removed(member: M): void;
  /** Optional, free when absent. `entry` (its shards) stays the channel's until `deleted`; what it returns is kept with it (`channel()`). */
  created?(channel: ChannelId, entry: Sharded<M, Meta>): Attached;
  deleted?(channel: ChannelId): void;
}

/**
 * The membership table: `channel -> shards` (the channel its own first), each a `Map<member,
 * meta>`, plus a reverse index `member -> channels`. It does no I/O and knows nothing of what a
 * member is.
 *
 * A member's shard is its placement id (a counter value given when it joins its first channel)
 * modulo the channel's shard count, so join, leave and member are O(1), and leaving every channel
 * costs O(channels of that member). A channel exists exactly while it has members.
 *
 * It tells membership listeners (`observe`) of every join and leave, with the leave's cause,
 * once the call that made it has changed the table; while there are none, a field test per change.
 */
export class Table<M, Meta, Attached = undefined> {
  readonly #channels = new Map<ChannelId, Channel<M, Meta, Attached>>();
  readonly #members = new Map<M, Placement>();
  readonly #shardCount: (channel: ChannelId) => number;
  readonly #lifecycle: Lifecycle<M, Meta, Attached>;
  #observers: Observers<Meta, M> | undefined;
  #nextId = 0;
  #memberships = 0;

  /**
   * @param shardCount asked once per channel, when its first member joins; may throw.
   * @param lifecycle told when a member enters or leaves the table, so that callers never have to
   *   look a member up again after a change (a miss in a large, churning `Map` is its slowest path).
   */
  constructor(shardCount: (channel: ChannelId) => number, lifecycle: Lifecycle<M, Meta, Attached>) {
    this.#shardCount = shardCount;
    this.#lifecycle = lifecycle;
  }

  /** Adds `member` to `channel` with `meta`. Returns false, keeping the first meta, if already in. */
  join(channel: ChannelId, member: M, meta: Meta): boolean {
    let entry = this.#channels.get(channel);
    const created = entry === undefined;
    if (entry === undefined) {
      const count = this.#shardCount(channel);
      const shards: Shard<M, Meta>[] = [];
      entry = { members: new Map(), joinedSince: undefined, shards, sharded: count > 1, size: 0, attached: undefined };
      shards.push(entry);
      for (let i = 1; i < count; i++) shards.push({ members: new Map(), joinedSince: undefined });
      this.#channels.set(channel, entry);
    }
    let placement = this.#members.get(member);
    const first = placement === undefined;
    if (placement === undefined) {
      placement = { id: this.#nextId++, channels: channel };
      this.#members.set(member, placement);
    }
    const shard = shardOf(entry, placement);
    if (shard.members.has(member)) return false;
    shard.members.set(member, meta);
    shard.joinedSince?.add(member);
    entry.size++;
    this.#memberships++;
    if (first) this.#lifecycle.added(member);
    else if (typeof placement.channels === "object") placement.channels.add(channel);
    else placement.channels = new Set([placement.channels, channel]);
    // told last, once the table is whole: a listener that throws leaves no empty channel behind
    if (created) entry.attached = this.#lifecycle.created?.(channel, entry);
    const observers = this.#observers;
    if (observers !== undefined) {
      observers.queue(channel, member, meta, "join");
      observers.flush();
    }
    return true;
  }

  /**
   * Calls `listener` for each join and leave made from now on, of `channel` or (undefined) of every
   * channel (see `Observers` for the order). @returns a function that removes it.
   */
  observe(channel: ChannelId | undefined, listener: MembershipListener<Meta, M>): () => void {
    this.#observers ??= new Observers();
    const observers = this.#observers;
    const remove = observers.add(channel, listener);
    return () => {
      remove();
      if (observers.size === 0 && this.#observers === observers) this.#observers = undefined;
    };
  }

  /** Removes `member` from `channel`. Returns false if it was not a member. */
  leave(channel: ChannelId, member: M): boolean {
    const observers = this.#observers;
    if (observers === undefined) return this.#leave(channel, member, undefined);
    const left = this.#leave(channel, member, observers.left.leave);
    observers.flush();
    return left;
  }

  /**
   * Removes `member` from every channel, for `cause` (what the listeners are told). Returns how
   * many channels it left.
   */
  leaveAll(member: M, cause: Exclude<MembershipCause, "join">): number {
    const observers = this.#observers;
    if (observers === undefined) return this.#leaveAll(member, undefined);
    const count = this.#leaveAll(member, observers.left[cause]);
    observers.flush();
    return count;
  }

  #leave(channel: ChannelId, member: M, left: Left<M, Meta> | undefined): boolean {
    const placement = this.#members.get(member);
    if (placement === undefined) return false;
    const channels = placement.channels;
    if (typeof channels !== "object") {
      if (channels !== channel) return false;
      this.#remove(channel, member, placement, left);
      this.#forget(member);
      return true;
    }
    if (!channels.delete(channel)) return false;
    this.#remove(channel, member, placement, left);
    if (channels.size === 0) this.#forget(member);
    return true;
  }

  #leaveAll(member: M, left: Left<M, Meta> | undefined): number {
    const placement = this.#members.get(member);
    if (placement === undefined) return 0;
    const channels = placement.channels;
    if (typeof channels !== "object") this.#remove(channels, member, placement, left);
    else for (const channel of channels) this.#remove(channel, member, placement, left);
    this.#forget(member);
    return typeof channels === "object" ? channels.size : 1;
  }

  /** Whether `member` is in `channel`. */
  has(channel: ChannelId, member: M): boolean {
    const channels = this.#members.get(member)?.channels;
    return typeof channels === "object" ? channels.has(channel) : channels === channel;
  }

  /**
   * `channel`'s shards (callers must not modify them) and attachment, or undefined if it has no
   * members. Its `members` are its first shard's only: `count()` says how many it has in all.
   */
  channel(channel: ChannelId): (Sharded<M, Meta> & { readonly attached: Attached | undefined }) | undefined {
    return this.#channels.get(channel);
  }

  /** The shard holding `member` in each channel it is in. */
  shardsOf(member: M): Shard<M, Meta>[] {
    const placement = this.#members.get(member);
    if (placement === undefined) return [];
    return listOf(placement).map((channel) => shardOf(this.#live(channel), placement));
  }

  /** How many members `channel` has. */
  count(channel: ChannelId): number {
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** The channels `member` is in, in the order it joined them. */
  channelsOf(member: M): ChannelId[] {
    const placement = this.#members.get(member);
    return placement === undefined ? [] : listOf(placement);
  }

  /** How many channels exist (each has at least one member). */
  get channels(): number {
    return this.#channels.size;
  }

  /** How many members are in at least one channel. */
  get members(): number {
    return this.#members.size;
  }

  /** How many (channel, member) pairs there are. */
  get memberships(): number {
    return this.#memberships;
  }

  #forget(member: M): void {
    this.#members.delete(member);
    this.#lifecycle.removed(member);
  }

  /** A channel the reverse index names: it exists, since a channel lives exactly while it has members. */
  #live(channel: ChannelId): Channel<M, Meta, Attached> {
    const entry = this.#channels.get(channel);
    if (entry === undefined) throw new Error(`table invariant broken: channel ${String(channel)} is in the reverse index only`);
    return entry;
  }

  /** Takes `member` out of `channel`'s shard and tells `left`; the caller updates the reverse index. */
  #remove(channel: ChannelId, member: M, placement: Placement, left: Left<M, Meta> | undefined): void {
    const entry = this.#live(channel);
    const members = shardOf(entry, placement).members;
    if (left !== undefined) left(channel, member, members.get(member) as Meta);
    members.delete(member);
    this.#memberships--;
    if (--entry.size === 0) {
      this.#channels.delete(channel);
      this.#lifecycle.deleted?.(channel);
    }
  }
}

/** The channels of a placement, in the order the member joined them. */
function listOf(placement: Placement): ChannelId[] {
  const channels = placement.channels;
  return typeof channels === "object" ? [...channels] : [channels];
}

/** The shard of `channel` that holds the member with this placement. */
function shardOf<M, Meta>(channel: Channel<M, Meta, unknown>, placement: Placement): Shard<M, Meta> {
  return channel.sharded ? (channel.shards[placement.id % channel.shards.length] as Shard<M, Meta>) : channel;
}
