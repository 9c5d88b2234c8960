import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import type { ChannelId } from "../types.js";
import type { Broker, BrokerEvents, BrokerHandle, BrokerStats } from "./broker.js";
import { encodeBatch, sentBy } from "./envelope.js";
import { REDIS_DEFAULTS, RedisConnections, type RedisConnectionsOptions } from "./redis-connections.js";
import { LiveSet } from "./redis-live.js";
import { RedisPublisher } from "./redis-publisher.js";
import { RedisSubscriber } from "./redis-subscriber.js";

/** Options of `new RedisBroker()`: its own connections' (see `RedisConnectionsOptions`), or shared ones. */
export interface RedisBrokerOptions extends RedisConnectionsOptions {
  /**
   * Connections to share with other users of the same Redis (a server's id claims, say) instead
   * of a pair of the broker's own: `url`, `client`, `redis`, `prefix` and `timeoutMs` are then
   * theirs, the broker reads only the messages of its own channel names, and `close()`
   * unsubscribes its channels but leaves the connections to their owner.
   */
  connections?: RedisConnections;
  /**
   * The most publishes sent and not yet answered by Redis; past it a broadcast is not published
   * (counted in `unpublished`), so that a slow Redis cannot make this process's memory grow.
   * Default: 65,536.
   */
  maxPending?: number;
  /** The same bound in bytes of envelopes: past it a broadcast is not published. Default: 64 MiB. */
  maxPendingBytes?: number;
}

/** The most channels one SUBSCRIBE names. */
const BATCH = 1000;
/** ':' in a Redis name. */
const COLON = 0x3a;
/** 'n', the kind of a number channel's name. */
const N = 0x6e;
/** The most bytes of envelopes one PUBLISH carries as a batch. */
const MAX_BATCH_BYTES = 64 * 1024;

/**
 * A broker over Redis pub/sub: one Redis channel per live channel, subscribed while this node has
 * members in it (never a pattern), named `PREFIX:s:NAME` for a string channel and `PREFIX:n:NUMBER`
 * for a number. Two connections of the broker's own, in RESP written by hand, follow the
 * `commands` connection of its `RedisConnections` to the same server: one publishes, in call
 * order, which keeps each node's order per channel (`RedisPublisher`), one subscribes
 * (`RedisSubscriber`). While Redis is unreachable, broadcasts are still written to local members
 * and those that could not be published are counted; when Redis is back the broker subscribes to
 * exactly the channels live at that moment, then emits `up`.
 *
 * @example
 * const channels = new Channels({ broker: new RedisBroker({ url: "redis://10.0.0.5:6379" }) });
 */
export class RedisBroker extends EventEmitter<BrokerEvents> implements Broker {
  readonly #connections: RedisConnections;
  readonly #pub: Redis;
  readonly #publisher: RedisPublisher;
  readonly #subscriber: RedisSubscriber;
  /** Whether the connections are the broker's own, to close with it. */
  readonly #owns: boolean;
  /** Where the kind's one letter ends in the broker's Redis names. */
  readonly #kindEnd: number;
  readonly #maxPending: number;
  readonly #maxPendingBytes: number;
  /** The live set: every channel subscribed and not unsubscribed. */
  readonly #live: LiveSet<BrokerHandle>;
  readonly #counts = { published: 0, unpublished: 0 };
  #pending = 0;
  #pendingBytes = 0;
  #receive: ((envelope: Buffer, channel: ChannelId, handle?: BrokerHandle) => void) | undefined;
  /** The origin of this node's envelopes, whose echo is dropped unread. */
  #origin = -1;
  /** The subscribing connection is ready and has subscribed to the whole live set. */
  #subscribed = false;
  #connected = false;
  #closing: Promise<void> | undefined;
  /** The turn's open PUBLISH: envelopes to one channel in a row, one batch once another's come or the turn ends. */
  #batchHeader = "";
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #turn = false;
  /** Subscriptions made while the subscribing connection was being opened, answered with the live set's. */
  #opening: ((subscribed: boolean) => void)[] = [];

  /**
   * @throws {TypeError} for options of the wrong type, or `connections` with options of its own.
   * @throws {RangeError} if `maxPending`, `maxPendingBytes` or `timeoutMs` is not an integer >= 1.
   */
  constructor(options: RedisBrokerOptions = {}) {
    super();
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const { connections, maxPending = REDIS_DEFAULTS.maxPending, maxPendingBytes = REDIS_DEFAULTS.maxPendingBytes, ...own } = options;
    if (connections !== undefined && !(connections instanceof RedisConnections))
      throw new TypeError("connections must be a RedisConnections");
    if (connections !== undefined && Object.values(own).some((value) => value !== undefined))
      throw new TypeError("connections come with their own url, client, redis, prefix and timeoutMs");
    for (const [name, value] of Object.entries({ maxPending, maxPendingBytes }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1, got ${String(value)}`);
    this.#maxPending = maxPending;
    this.#maxPendingBytes = maxPendingBytes;
    this.#owns = connections === undefined;
    this.#connections = connections ?? new RedisConnections(own);
    this.#pub = this.#connections.commands;
    this.#kindEnd = Buffer.byteLength(this.#connections.prefix) + 2;
    this.#live = new LiveSet<BrokerHandle>((channel) => this.#connections.name(typeof channel === "number" ? "n" : "s", channel));
    this.#publisher = new RedisPublisher(this.#connections, { ready: this.#update, closed: this.#update, answered: this.#answered });
    this.#subscriber = new RedisSubscriber(this.#connections, {
      ready: this.#resubscribe,
      closed: this.#subscriberClosed,
      message: this.#onMessage,
    });
    this.#pub.on("close", this.#update).on("ready", this.#update);
  }

  /** @throws {Error} when called a second time. */
  start(receive: (envelope: Buffer, channel: ChannelId, handle?: BrokerHandle) => void, origin = -1): void {
    if (this.#receive !== undefined) throw new Error("this RedisBroker already serves a Channels");
    this.#receive = receive;
    this.#origin = origin;
  }

  /** Fills `handle`'s slot with the channel's live entry, which `publish` reads back. */
  subscribe(channel: ChannelId, handle?: BrokerHandle): Promise<boolean> {
    if (this.#closing !== undefined) return Promise.resolve(false);
    const live = this.#live.add(channel, handle);
    if (handle !== undefined) handle.broker = live;
    // while the connection is being opened, the live set's subscription on `ready` answers; false if it fails
    if (this.#subscriber.connecting) return new Promise((resolve) => this.#opening.push(resolve));
    return this.#subscriber.subscribe([live.name]); // false if the connection is down or drops first: `ready` subscribes again
  }

  unsubscribe(channel: ChannelId): void {
    const name = this.#live.delete(channel);
    if (name !== undefined) this.#subscriber.unsubscribe([name]); // a drop unsubscribes anyway
  }

  publish(channel: ChannelId, envelope: Buffer, handle?: BrokerHandle): void {
    const bytes = envelope.byteLength;
    const full = this.#pending >= this.#maxPending || this.#pendingBytes + bytes > this.#maxPendingBytes;
    if (!this.#publisher.ready || full || this.#closing !== undefined) {
      this.#counts.unpublished++;
      return;
    }
    this.#pending++;
    this.#pendingBytes += bytes;
    const header = this.#live.header(channel, handle?.broker); // the slot `subscribe` filled, if still this broker's
    if (header !== this.#batchHeader || this.#batchBytes + bytes > MAX_BATCH_BYTES) this.#sendBatch();
    this.#batchHeader = header;
    this.#batch.push(envelope);
    this.#batchBytes += bytes;
    if (!this.#turn) {
      this.#turn = true;
      process.nextTick(this.#endTurn);
    }
  }

  readonly #endTurn = (): void => {
    this.#turn = false;
    this.#sendBatch();
  };

  /** Hands the open batch to the publisher: one envelope as it is, several framed as a batch. */
  #sendBatch(): void {
    const batch = this.#batch;
    const envelopes = batch.length;
    if (envelopes === 0) return;
    const message = envelopes === 1 ? (batch[0] as Buffer) : encodeBatch(batch);
    if (this.#publisher.ready) this.#publisher.publish(this.#batchHeader, message, envelopes, this.#batchBytes);
    else this.#answered(envelopes, this.#batchBytes, false); // it closed this turn
    this.#batch = []; // a new array, where setting `length` would be a call into V8's runtime per PUBLISH
    this.#batchBytes = 0;
  }

  stats(): BrokerStats {
    return { connected: this.#connected, ...this.#counts, subscriptions: this.#live.size };
  }

  /** Closes its own connections (which unsubscribes from every channel) and quits those it made (not a `client` or `connections` it was given). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#live.clear();
    this.#connected = false;
    this.#pub.off("close", this.#update).off("ready", this.#update);
    this.#sendBatch();
    await Promise.all([this.#subscriber.end(), this.#publisher.end()]);
    if (this.#owns) await this.#connections.close();
  }

  /**
   * A message on the subscribing connection, as offsets in `bytes`: this node's own echo is dropped
   * on its first bytes; anything else is handed on (a view) with the channel its Redis name says,
   * which the envelope must match, and that channel's handle while it is live.
   */
  readonly #onMessage = (bytes: Buffer, nameStart: number, nameEnd: number, at: number, end: number): void => {
    if (this.#receive === undefined || sentBy(bytes, this.#origin, at)) return;
    const live = this.#live.find(bytes, nameStart, nameEnd);
    if (live !== undefined) {
      this.#receive(bytes.subarray(at, end), live.channel, live.handle);
      return;
    }
    const kind = nameStart + this.#kindEnd; // not live (any more), or not a name of the broker's
    if (bytes[kind] !== COLON) return; // not a name of the broker's
    const channel = bytes.toString("utf8", kind + 1, nameEnd);
    this.#receive(bytes.subarray(at, end), bytes[kind - 1] === N ? Number(channel) : channel);
  };

  /** Redis answered a PUBLISH carrying `envelopes` envelopes (or the connection closed under it). */
  readonly #answered = (envelopes: number, bytes: number, published: boolean): void => {
    this.#pending -= envelopes;
    this.#pendingBytes -= bytes;
    if (published) this.#counts.published += envelopes;
    else this.#counts.unpublished += envelopes;
  };

  /** The subscribing connection is (again) ready: subscribe to exactly the live set. */
  readonly #resubscribe = (): void => {
    this.#subscribed = false;
    const names = this.#live.names();
    const batches: Promise<boolean>[] = [];
    for (let i = 0; i < names.length; i += BATCH) batches.push(this.#subscriber.subscribe(names.slice(i, i + BATCH)));
    void Promise.all(batches).then((acknowledged) => {
      // dropped again before the replies: the next `ready` starts over
      this.#subscribed = this.#subscriber.ready && acknowledged.every(Boolean);
      this.#answerOpening(this.#subscribed);
      this.#update();
    });
  };

  readonly #subscriberClosed = (): void => {
    this.#answerOpening(false);
    this.#update();
  };

  #answerOpening(subscribed: boolean): void {
    for (const resolve of this.#opening.splice(0)) resolve(subscribed);
  }

  /** Emits `up` or `down` when both connections together change state. */
  readonly #update = (): void => {
    if (!this.#subscriber.ready) this.#subscribed = false;
    const connected = this.#closing === undefined && this.#subscribed && this.#pub.status === "ready" && this.#publisher.ready;
    if (connected === this.#connected) return;
    this.#connected = connected;
    if (connected) this.emit("up", this.#live.size);
    else this.emit("down", this.#connections.lastError);
  };
}
