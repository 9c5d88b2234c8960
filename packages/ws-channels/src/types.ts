import type { Member } from "./transports/index.js";

/*
 * The library's vocabulary: the types every layer speaks (the table, the sharder, fan-out, the
 * brokers and `Channels`). It imports nothing above the transports, so that the brokers can use
 * it too; the options and stats of `Channels`, which name the broker, are in options.ts.
 */

/**
 * A channel's name: a string or a finite number. Channels are keys of a `Map`, so `42` and `"42"`
 * are two channels: a JSON client that sends `"42"` is not in channel `42`.
 */
export type ChannelId = string | number;

/**
 * Decides how many shards a channel is split into. Either a function of the channel or an object
 * with a `shards(channel)` method; the answer must be an integer from 1 to 1024. It is asked once per
 * channel, when the channel's first member joins.
 */
export type Sharder = ((channel: ChannelId) => number) | { shards(channel: ChannelId): number };

/** Options of `broadcast`. */
export interface BroadcastOptions<M extends Member = Member> {
  /** A member of this node that does not get this message (the sender, say). */
  except?: M;
  /** true: this node's members only; the broker does not carry it. Default: false. */
  local?: boolean;
}

/** What one broadcast did, on this node: other nodes' deliveries are not counted here. */
export interface BroadcastResult {
  /** Members the message was written to. */
  delivered: number;
  /** Members that were closed or whose write threw; each has left every channel. */
  failed: number;
  /** Slow consumers that did not get the message (skipped, or closed under the "close" policy). */
  dropped: number;
}

/** The writer pool's state at one moment. */
export interface PoolStats {
  /** Shard tasks running now. */
  active: number;
  /** Shards with a task ready, waiting for a writer. */
  pending: number;
  /** How many tasks may run at once now: from `writers` up to `maxWriters`. */
  size: number;
}

/** One member of a channel and its meta, as `reduce` sees it. */
export interface Membership<Meta, M = Member> {
  member: M;
  meta: Meta;
}

/** `join`'s meta: optional when `Meta` allows undefined, required otherwise. */
export type MetaArg<Meta> = undefined extends Meta ? [meta?: Meta] : [meta: Meta];

/**
 * Why a membership changed:
 * - `"join"`: `join` or `tryJoin` added it;
 * - `"leave"`: `leave(channel, member)` or `leave(member)` removed it;
 * - `"close"`: the member emitted `close`;
 * - `"failed"`: a write to it found it closed or threw (a broadcast's `failed`, or `send`);
 * - `"slow"`: it was closed as a slow consumer, under the `"close"` policy.
 */
export type MembershipCause = "join" | "leave" | "close" | "failed" | "slow";

/**
 * Told of one membership change: `member` joined or left `channel`, with `meta`, for `cause`.
 * - When: synchronously, once the call that made the change has finished changing the table and
 *   before it returns; a member leaving several channels (`leave(member)`, a close) is told once
 *   per channel, after it has left them all.
 * - Order: changes are told in the order they were made, every listener sees them in that order:
 *   a change a listener makes (a join, a leave) is told after the one in hand. A listener added
 *   meanwhile is told only of changes made after it was added.
 * - Errors: a listener that throws stops neither the change nor the other listeners; its error is
 *   thrown again in a later tick, an uncaught exception there, as `EventTarget` does.
 * The channel's listeners are told before the every-channel ones, each in the order added.
 */
export type MembershipListener<Meta, M = Member> = (channel: ChannelId, member: M, meta: Meta, cause: MembershipCause) => void;
