import { EventEmitter } from "node:events";
import { Redis, type RedisOptions } from "ioredis";
import type { ChannelId } from "../types.js";
import type { Broker, BrokerEvents, BrokerStats } from "./broker.js";

/** Options of `new RedisBroker()`. */
export interface RedisBrokerOptions {
  /** Where Redis is, as ioredis reads it (`redis://`, `rediss://`, a unix socket path). Default: `redis://127.0.0.1:6379`. */
  url?: string;
  /**
   * An ioredis client to publish with, instead of connecting to `url`: the broker subscribes on a
   * `duplicate()` of it, and `close()` quits only that duplicate. Its offline queue is never used:
   * the broker publishes only while it is ready.
   */
  client?: Redis;
  /**
   * More ioredis options for the connections the broker makes (TLS, password, retryStrategy); the
   * broker's own (no offline queue, no automatic resubscription) win.
   */
  redis?: ConnectionOptions;
  /** What Redis channel names start with: `PREFIX:s:NAME` for a string channel, `PREFIX:n:NUMBER` for a number. Default: `ws-channels`. */
  prefix?: string;
  /**
   * The most publishes sent and not yet answered by Redis; past it a broadcast is not published
   * (counted in `unpublished`), so that a slow Redis cannot make this process's memory grow.
   * Default: 65,536.
   */
  maxPending?: number;
  /**
   * How long Redis may take to answer a command, in ms. A command unanswered that long (or a
   * health-check PING, sent every `timeoutMs` while idle) means Redis is unreachable though the
   * socket is open (a partition, a paused server): the broker reports `down`, reconnects, and
   * subscribes again once Redis answers. Default: 2000.
   */
  timeoutMs?: number;
}

/** ioredis options, but the reply mapping: the broker reads replies in ioredis's default shape. */
export type ConnectionOptions = Omit<RedisOptions, "replyMapping">;

/** What the broker makes its own connections with; these win over `redis` options. */
const FORCED: ConnectionOptions = {
  // Never queue while disconnected: a publish then is counted as unpublished instead, and the
  // subscriptions are made again from the live set on `ready`.
  enableOfflineQueue: false,
  // ioredis would restore the subscriptions of the connection that dropped, which misses channels
  // subscribed during the outage and brings back channels unsubscribed during it.
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  // Commands in flight when the connection drops are rejected at once rather than held.
  maxRetriesPerRequest: 0,
};

/**
 * A broker over Redis pub/sub: one Redis channel per live channel, subscribed while this node has
 * members in it (never a pattern). One connection publishes, in call order, which keeps each
 * node's order per channel; another subscribes. While Redis is unreachable, broadcasts are still
 * written to local members and those that could not be published are counted; when Redis is back
 * the broker subscribes to exactly the channels live at that moment, then emits `up`.
 *
 * @example
 * const channels = new Channels({ broker: new RedisBroker({ url: "redis://10.0.0.5:6379" }) });
 */
export class RedisBroker extends EventEmitter<BrokerEvents> implements Broker {
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #ownsPub: boolean;
  readonly #prefix: string;
  readonly #maxPending: number;
  /** The live set: every channel subscribed and not unsubscribed, with its Redis name. */
  readonly #live = new Map<ChannelId, string>();
  readonly #counts = { published: 0, unpublished: 0 };
  readonly #health: NodeJS.Timeout;
  #pending = 0;
  #receive: ((envelope: Buffer) => void) | undefined;
  /** The subscribing connection is ready and has subscribed to the whole live set. */
  #subscribed = false;
  #connected = false;
  #lastError: Error | undefined;
  #closing: Promise<void> | undefined;
  #corked = false;

  /**
   * @throws {TypeError} for options of the wrong type.
   * @throws {RangeError} if `maxPending` is not an integer >= 1.
   */
  constructor(options: RedisBrokerOptions = {}) {
    super();
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const { url = "redis://127.0.0.1:6379", client, redis = {}, prefix = "ws-channels", maxPending = 65_536, timeoutMs = 2000 } = options;
    if (typeof url !== "string") throw new TypeError("url must be a string");
    if (typeof prefix !== "string") throw new TypeError("prefix must be a string");
    if (client !== undefined && !(client instanceof Redis)) throw new TypeError("client must be an ioredis Redis client");
    if (!Number.isInteger(maxPending) || maxPending < 1)
      throw new RangeError(`maxPending must be an integer >= 1, got ${String(maxPending)}`);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`timeoutMs must be an integer >= 1, got ${String(timeoutMs)}`);
    this.#prefix = prefix;
    this.#maxPending = maxPending;
    const forced = { ...FORCED, commandTimeout: timeoutMs };
    this.#ownsPub = client === undefined;
    this.#pub = client ?? new Redis(url, { ...redis, ...forced });
    this.#sub = client === undefined ? new Redis(url, { ...redis, ...forced }) : client.duplicate(forced);
    for (const connection of [this.#pub, this.#sub]) {
      connection.on("error", this.#onError);
      connection.on("close", this.#update);
    }
    this.#pub.on("ready", this.#update);
    this.#sub.on("ready", this.#resubscribe);
    this.#sub.on("messageBuffer", (_name: Buffer, envelope: Buffer) => this.#receive?.(envelope));
    if (this.#pub.status === "ready") queueMicrotask(this.#update); // a client given ready emits no `ready`
    this.#health = setInterval(() => {
      for (const connection of [this.#pub, this.#sub]) if (connection.status === "ready") connection.ping().catch(this.#unanswered);
    }, timeoutMs).unref();
  }

  /** @throws {Error} when called a second time. */
  start(receive: (envelope: Buffer) => void): void {
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
    if (this.#pub.status !== "ready" || this.#pending >= this.#maxPending || this.#closing !== undefined) {
      this.#counts.unpublished++;
      return;
    }
    this.#pending++;
    if (!this.#corked) this.#cork();
    this.#pub.publish(this.#live.get(channel) ?? this.#nameOf(channel), envelope).then(this.#published, this.#unpublished);
  }

  stats(): BrokerStats {
    return { connected: this.#connected, ...this.#counts, subscriptions: this.#live.size };
  }

  /** Unsubscribes from every channel and quits the connections it made (not a `client` it was given). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#health);
    this.#live.clear();
    this.#connected = false;
    const quit = async (connection: Redis): Promise<void> => {
      if (connection.status === "ready") await connection.quit().catch(() => undefined);
      connection.disconnect(); // no reconnection, whatever state the connection was in
    };
    if (this.#sub.status === "ready") await this.#sub.unsubscribe().catch(() => undefined);
    await Promise.all([quit(this.#sub), this.#ownsPub ? quit(this.#pub) : undefined]);
    if (!this.#ownsPub) {
      // the client stays the application's: leave it as it was given
      this.#pub.off("error", this.#onError).off("close", this.#update).off("ready", this.#update);
    }
  }

  readonly #onError = (error: Error): void => {
    this.#lastError = error;
  };

  /**
   * ioredis writes every command to its socket on its own, one system call each: corked until the
   * end of the tick, the publishes of one tick leave in one `writev` (as member sockets do).
   */
  #cork(): void {
    const stream = this.#pub.stream;
    if (stream === undefined || stream === null) return;
    this.#corked = true;
    stream.cork();
    process.nextTick(() => {
      this.#corked = false;
      stream.uncork();
    });
  }

  #nameOf(channel: ChannelId): string {
    return `${this.#prefix}:${typeof channel === "number" ? "n" : "s"}:${channel}`;
  }

  readonly #published = (): void => {
    this.#pending--;
    this.#counts.published++;
  };

  readonly #unpublished = (error: unknown): void => {
    this.#pending--;
    this.#counts.unpublished++;
    this.#unanswered(error);
  };

  /**
   * A command failed. If Redis left it unanswered for `timeoutMs` the socket is open but nobody
   * answers: drop both connections (a given client is left to its owner) so that the broker is
   * down until Redis answers again, then subscribes to the live set anew.
   */
  readonly #unanswered = (error: unknown): void => {
    if (this.#closing !== undefined || !(error instanceof Error) || !/timed out/i.test(error.message)) return;
    this.#lastError = new Error("Redis did not answer in time");
    if (this.#ownsPub) this.#pub.disconnect(true);
    this.#sub.disconnect(true);
  };

  /** The subscribing connection is (again) ready: subscribe to exactly the live set. */
  readonly #resubscribe = (): void => {
    this.#subscribed = false;
    const names = [...this.#live.values()];
    const batches: Promise<unknown>[] = [];
    for (let i = 0; i < names.length; i += 1000) batches.push(this.#sub.subscribe(...names.slice(i, i + 1000)));
    Promise.all(batches).then(
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
    const connected = this.#closing === undefined && this.#subscribed && this.#pub.status === "ready";
    if (connected === this.#connected) return;
    this.#connected = connected;
    if (connected) this.emit("up", this.#live.size);
    else this.emit("down", this.#lastError);
  };
}
