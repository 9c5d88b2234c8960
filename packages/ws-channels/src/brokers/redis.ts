import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import type { ChannelId } from "../types.js";
import type { Broker, BrokerEvents, BrokerStats } from "./broker.js";
import { encodeBatch } from "./envelope.js";
import { REDIS_DEFAULTS, RedisConnections, type RedisConnectionsOptions } from "./redis-connections.js";
import { RedisPublisher } from "./redis-publisher.js";

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

/** The most channels one SUBSCRIBE or UNSUBSCRIBE names. */
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
 * for a number. One connection publishes, in call order, which keeps each node's order per
 * channel (`RedisPublisher`, RESP written by hand); another subscribes, and a third runs the
 * subscriber's health checks and other users' commands (see `RedisConnections`). While Redis is unreachable, broadcasts are still
 * written to local members and those that could not be published are counted; when Redis is back
 * the broker subscribes to exactly the channels live at that moment, then emits `up`.
 *
 * @example
 * const channels = new Channels({ broker: new RedisBroker({ url: "redis://10.0.0.5:6379" }) });
 */
export class RedisBroker extends EventEmitter<BrokerEvents> implements Broker {
  readonly #connections: RedisConnections;
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #publisher: RedisPublisher;
  /** Whether the connections are the broker's own, to close with it. */
  readonly #owns: boolean;
  /** Where the kind's one letter ends in the broker's Redis names: a ':' there, and the name is the broker's. */
  readonly #kindEnd: number;
  readonly #maxPending: number;
  readonly #maxPendingBytes: number;
  /** The live set: every channel subscribed and not unsubscribed, with its Redis name. */
  readonly #live = new Map<ChannelId, string>();
  readonly #counts = { published: 0, unpublished: 0 };
  #pending = 0;
  #pendingBytes = 0;
  #receive: ((envelope: Buffer, channel: ChannelId) => void) | undefined;
  /** The subscribing connection is ready and has subscribed to the whole live set. */
  #subscribed = false;
  #connected = false;
  #closing: Promise<void> | undefined;
  /**
   * The turn's open PUBLISH: the envelopes published one after another to one channel, sent as
   * one batch when another channel's comes, or the turn ends.
   */
  #batchName = "";
  readonly #batch: Buffer[] = [];
  #batchBytes = 0;
  #turn = false;

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
    this.#sub = this.#connections.subscriber;
    this.#kindEnd = Buffer.byteLength(this.#connections.prefix) + 2;
    this.#publisher = new RedisPublisher(this.#connections, { ready: this.#update, closed: this.#update, answered: this.#answered });
    for (const connection of [this.#pub, this.#sub]) connection.on("close", this.#update);
    this.#pub.on("ready", this.#update);
    this.#sub.on("ready", this.#resubscribe);
    this.#sub.on("messageBuffer", this.#onMessage);
    // connections given ready emit no `ready`
    if (this.#sub.status === "ready") queueMicrotask(this.#resubscribe);
  }

  /** @throws {Error} when called a second time. */
  start(receive: (envelope: Buffer, channel: ChannelId) => void): void {
    if (this.#receive !== undefined) throw new Error("this RedisBroker already serves a Channels");
    this.#receive = receive;
  }

  subscribe(channel: ChannelId): Promise<boolean> {
    if (this.#closing !== undefined) return Promise.resolve(false);
    const name = this.#nameOf(channel);
    this.#live.set(channel, name);
    if (this.#sub.status !== "ready") return Promise.resolve(false);
    return this.#sub.subscribe(name).then(
      () => true,
      (error: unknown) => {
        this.#unanswered(error); // the connection dropped or stalled first: `ready` subscribes again
        return false;
      },
    );
  }

  unsubscribe(channel: ChannelId): void {
    const name = this.#live.get(channel);
    if (name === undefined) return;
    this.#live.delete(channel);
    if (this.#sub.status === "ready") this.#sub.unsubscribe(name).catch(() => undefined); // a drop unsubscribes anyway
  }

  publish(channel: ChannelId, envelope: Buffer): void {
    const bytes = envelope.byteLength;
    const full = this.#pending >= this.#maxPending || this.#pendingBytes + bytes > this.#maxPendingBytes;
    if (!this.#publisher.ready || full || this.#closing !== undefined) {
      this.#counts.unpublished++;
      return;
    }
    this.#pending++;
    this.#pendingBytes += bytes;
    const name = this.#live.get(channel) ?? this.#nameOf(channel);
    if (name !== this.#batchName || this.#batchBytes + bytes > MAX_BATCH_BYTES) this.#sendBatch();
    this.#batchName = name;
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
    if (this.#publisher.ready) this.#publisher.publish(this.#batchName, message, envelopes, this.#batchBytes);
    else this.#answered(envelopes, this.#batchBytes, false); // it closed this turn
    batch.length = 0;
    this.#batchBytes = 0;
  }

  stats(): BrokerStats {
    return { connected: this.#connected, ...this.#counts, subscriptions: this.#live.size };
  }

  /** Unsubscribes from every channel and quits the connections it made (not a `client` or `connections` it was given). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const names = [...this.#live.values()];
    this.#live.clear();
    this.#connected = false;
    this.#pub.off("close", this.#update).off("ready", this.#update);
    this.#sub.off("close", this.#update).off("ready", this.#resubscribe).off("messageBuffer", this.#onMessage);
    if (this.#sub.status === "ready") {
      const batches = this.#owns ? [this.#sub.unsubscribe()] : this.#batches(names, (batch) => this.#sub.unsubscribe(...batch));
      await Promise.all(batches).catch(() => undefined);
    }
    this.#sendBatch();
    await this.#publisher.end();
    if (this.#owns) await this.#connections.close();
  }

  /** Calls `command` with each slice of BATCH names. @returns its promises. */
  #batches(names: string[], command: (batch: string[]) => Promise<unknown>): Promise<unknown>[] {
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < names.length; i += BATCH) batches.push(command(names.slice(i, i + BATCH)));
    return batches;
  }

  /**
   * A message on the subscribing connection: the broker's when its name is (other users' kinds are
   * longer than one letter), handed on with the channel its name says, which the envelope must match.
   */
  readonly #onMessage = (name: Buffer, envelope: Buffer): void => {
    if (name[this.#kindEnd] !== COLON || this.#receive === undefined) return;
    const channel = name.toString("utf8", this.#kindEnd + 1);
    this.#receive(envelope, name[this.#kindEnd - 1] === N ? Number(channel) : channel);
  };

  #nameOf(channel: ChannelId): string {
    return this.#connections.name(typeof channel === "number" ? "n" : "s", channel);
  }

  /** Redis answered a PUBLISH carrying `envelopes` envelopes (or the connection closed under it). */
  readonly #answered = (envelopes: number, bytes: number, published: boolean): void => {
    this.#pending -= envelopes;
    this.#pendingBytes -= bytes;
    if (published) this.#counts.published += envelopes;
    else this.#counts.unpublished += envelopes;
  };

  readonly #unanswered = (error: unknown): void => this.#connections.unanswered(error);

  /** The subscribing connection is (again) ready: subscribe to exactly the live set. */
  readonly #resubscribe = (): void => {
    this.#subscribed = false;
    Promise.all(this.#batches([...this.#live.values()], (batch) => this.#sub.subscribe(...batch))).then(
      () => {
        this.#subscribed = this.#sub.status === "ready";
        this.#update();
      },
      this.#unanswered, // dropped again before the replies: the next `ready` starts over
    );
  };

  /** Emits `up` or `down` when both connections together change state. */
  readonly #update = (): void => {
    if (this.#sub.status !== "ready") this.#subscribed = false;
    const connected = this.#closing === undefined && this.#subscribed && this.#pub.status === "ready" && this.#publisher.ready;
    if (connected === this.#connected) return;
    this.#connected = connected;
    if (connected) this.emit("up", this.#live.size);
    else this.emit("down", this.#connections.lastError);
  };
}
