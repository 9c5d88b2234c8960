import type { ChannelId } from "../types.js";

/**
 * What a broker has carried since it was made. Counts are of envelopes (one per broadcast), not of
 * members.
 */
export interface BrokerStats {
  /** Whether the broker can carry broadcasts now. */
  connected: boolean;
  /** Envelopes handed to the broker's server (Redis, the cluster primary) for other nodes. */
  published: number;
  /**
   * Envelopes that could not be published: the broker was down, or more than its bound of
   * publishes were waiting. They are dropped and counted here, never queued without bound.
   */
  unpublished: number;
  /** Channels this node is subscribed to, or will subscribe to as soon as the broker is up. */
  subscriptions: number;
}

/** Events a broker emits, the `EventEmitter` way. */
export interface BrokerEvents {
  /**
   * The broker can carry broadcasts again (and at start-up, once it first can): every live
   * channel's subscription has been made again. `channels` is how many.
   */
  up: [channels: number];
  /** The broker can no longer carry broadcasts; `reason` says why, when known. */
  down: [reason: Error | undefined];
}

/**
 * What a `Channels` gives a broker with a channel's subscription, and again with each of the
 * channel's broadcasts while it is live: opaque, but for `broker`, a slot the broker may fill with
 * its own state of that channel (its entry in a set of live channels, say) and read back instead
 * of looking it up.
 */
export interface BrokerHandle {
  broker: unknown;
}

/**
 * Carries broadcasts between nodes (processes, each with its own `Channels`). A `Channels` made
 * with `{ broker }` calls these methods and nothing else, so another transport (NATS, say) is one
 * class implementing this interface; test/brokers/conformance.ts is the suite it should pass.
 *
 * The broker moves opaque envelopes (bytes) per channel. Encoding, echo (a node's own broadcast
 * coming back) and sequence numbers are the `Channels`'s business, not the broker's. What the
 * broker must keep:
 * - order: envelopes one node publishes to one channel reach every other node in publish order;
 * - subscriptions: a node gets the envelopes of exactly the channels it is subscribed to;
 * - faults: while it is down, `publish` drops and counts; when it is back, it subscribes again to
 *   exactly the channels subscribed and not unsubscribed meanwhile, then emits `up`.
 */
export interface Broker {
  /**
   * Called once, by the `Channels` the broker is given to: from now on every envelope received
   * for a subscribed channel goes to `receive`, in the order the broker got them, with the channel
   * it came on when the broker's server names it (a Redis channel): an envelope naming another
   * channel than that is dropped and counted invalid, since anyone able to write to the server can
   * publish anything there. With the channel, a broker may give back the `handle` its last
   * `subscribe` of that channel was given: the `Channels` then finds the channel's state without a
   * lookup of its own (optional; `RedisBroker` does).
   * @param origin the origin id this node's envelopes carry (bytes 2 to 8 of an envelope or a
   *   batch, `envelope.ts`): a broker may drop a message carrying it without reading further,
   *   since it is this node's own broadcast back (the `Channels` drops it otherwise).
   * @throws {Error} when called a second time (a broker serves one `Channels`).
   */
  start(receive: (envelope: Buffer, channel?: ChannelId, handle?: BrokerHandle) => void, origin?: number): void;
  /**
   * Subscribes this node to `channel`. Calls for one channel (subscribe, unsubscribe, subscribe)
   * reach the broker's server in call order. A broker that keeps `handle` hands it back with the
   * channel's envelopes (see `start`) until `unsubscribe`, and may fill its `broker` slot; it may
   * also ignore it.
   * @returns a promise that resolves true once the server has acknowledged the subscription
   *   (any broadcast published after that reaches this node), or false at once when the broker
   *   is down, or as soon as it goes down: the subscription is then made when it comes back.
   *   It never rejects.
   */
  subscribe(channel: ChannelId, handle?: BrokerHandle): Promise<boolean>;
  /** Unsubscribes this node from `channel`. Never throws; unsubscribing a channel not subscribed does nothing. */
  unsubscribe(channel: ChannelId): void;
  /**
   * Sends `envelope` to every node subscribed to `channel` (this node too, if it is: the
   * `Channels` drops its own echo). Never throws and never waits: an envelope that cannot be sent
   * now is dropped and counted in `unpublished`. `handle` is the one the channel's `subscribe` was
   * given, while the channel is live here; a broker reading its slot must still check that what it
   * finds there is its own (a handle may be given to two brokers) and `channel`'s, and must not
   * throw on anything else.
   */
  publish(channel: ChannelId, envelope: Buffer, handle?: BrokerHandle): void;
  /** What the broker has carried, and whether it is connected. */
  stats(): BrokerStats;
  /** Unsubscribes from every channel and closes the broker's connections. Idempotent. */
  close(): Promise<void>;
  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this;
  off<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this;
}
