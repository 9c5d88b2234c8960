import type { ChannelId } from "../types.js";
import type { BrokerHandle } from "./broker.js";

/** The last envelope received from one origin on one channel. */
export interface Seen {
  epoch: number;
  seq: number;
  /** The last envelope dropped for jumping too far: if the next one follows it, the origin moved on. */
  jumped?: { epoch: number; seq: number } | undefined;
}

/**
 * A live channel as the link follows it, kept by the table with the channel: where its broadcasts
 * are delivered, its outgoing sequence once broadcast to (taken from `Sequences`, handed back when
 * the channel is deleted), the last envelope of each origin, and the broker's slot (it is the
 * handle given to the broker with the channel's subscription and broadcasts).
 * The first origin heard from is kept in the record itself, the others in a Map: with few nodes,
 * a broadcast then touches one object of the link's for its channel, with no lookup of its own.
 */
export interface Followed<Target> extends Seen, BrokerHandle {
  readonly channel: ChannelId;
  readonly target: Target;
  /** Set once the channel is deleted: a broker handing this record back then is not believed. */
  gone: boolean;
  /** The outgoing sequence's epoch: 0 before the channel's first broadcast here. */
  outEpoch: number;
  /** The outgoing sequence's last seq. */
  outSeq: number;
  /** The first origin heard from, -1 before any. */
  origin: number;
  others: Map<number, Seen> | undefined;
}

/** A new record of `channel`, delivered to `target`, before any broadcast to or from it. */
export function record<Target>(channel: ChannelId, target: Target): Followed<Target> {
  return {
    channel,
    target,
    gone: false,
    outEpoch: 0,
    outSeq: 0,
    origin: -1,
    epoch: 0,
    seq: 0,
    jumped: undefined,
    others: undefined,
    broker: undefined,
  };
}
