import type { RedisOptions } from "ioredis";
import { Redis } from "./ioredis.js";

/** The defaults of every Redis set-up of ws-channels: a `RedisBroker`'s and a server's on `--redis`. */
export const REDIS_DEFAULTS = {
  url: "redis://127.0.0.1:6379",
  prefix: "ws-channels",
  /** How long Redis may take to answer a command, in ms. */
  timeoutMs: 2000,
  /** The most publishes sent and not yet answered. */
  maxPending: 65_536,
  /** The most bytes of envelopes sent and not yet answered: 64 MiB. */
  maxPendingBytes: 64 * 1024 * 1024,
} as const;

/** ioredis options, but the reply mapping: ws-channels reads replies in ioredis's default shape. */
export type ConnectionOptions = Omit<RedisOptions, "replyMapping">;

/** What the connections ws-channels makes are made with; these win over `redis` options. */
const FORCED: ConnectionOptions = {
  // Never queue while disconnected: a publish then is counted as unpublished instead, a claim is
  // granted, and the subscriptions are made again from the live set on `ready`.
  enableOfflineQueue: false,
  // ioredis would restore the subscriptions of the connection that dropped, which misses channels
  // subscribed during the outage and brings back channels unsubscribed during it.
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  // Commands in flight when the connection drops are rejected at once rather than held.
  maxRetriesPerRequest: 0,
  // A connection dropped because Redis stopped answering is destroyed at once: ioredis would wait
  // 2 s for the peer to close it, and stay "ready" meanwhile though nothing can be written.
  disconnectTimeout: 0,
};

/** Options of `new RedisConnections()`. */
export interface RedisConnectionsOptions {
  /** Where Redis is, as ioredis reads it (`redis://`, `rediss://`, a unix socket path). Default: `redis://127.0.0.1:6379`. */
  url?: string;
  /**
   * An ioredis client to send commands and publishes with, instead of connecting to `url`: the
   * subscriber is a `duplicate()` of it, and `close()` quits only that duplicate. Its offline
   * queue is never used: ws-channels publishes only while it is ready.
   */
  client?: Redis;
  /** More ioredis options for the connections made here (TLS, password, retryStrategy); ws-channels' own win. */
  redis?: ConnectionOptions;
  /** What every Redis name starts with (`PREFIX:KIND:NAME`): set-ups with different prefixes never see each other. Default: `ws-channels`. */
  prefix?: string;
  /**
   * How long Redis may take to answer a command, in ms. A command unanswered that long (or a
   * health-check PING, sent every `timeoutMs` while idle) means Redis is unreachable though the
   * socket is open (a partition, a paused server): the connections are dropped and reconnect.
   * Default: 2000.
   */
  timeoutMs?: number;
}

/**
 * The ioredis connections one node keeps to Redis: `commands`, for every command, and
 * `subscriber`, made on first use, which once it subscribes can run nothing else. A `RedisBroker`
 * makes its own, or shares those given to it (a server's broker, id claims and node messages share
 * them); it publishes and subscribes on two connections of its own, in RESP written by hand, to the
 * server `commands` is connected to, and uses `commands` to know when Redis is reachable: three
 * connections for a broker alone, four for a server's node (its id claims and node messages
 * subscribe on `subscriber`).
 */
export class RedisConnections {
  readonly commands: Redis;
  readonly prefix: string;
  /** How long Redis may take to answer a command, in ms. */
  readonly timeoutMs: number;
  /** The last error a connection reported: the reason of the next `down`. */
  lastError: Error | undefined;
  readonly #owned: Redis[];
  readonly #health: NodeJS.Timeout;
  #subscriber: Redis | undefined;
  readonly #makeSubscriber: () => Redis;
  #closing: Promise<void> | undefined;

  /**
   * @throws {TypeError} for options of the wrong type.
   * @throws {RangeError} if `timeoutMs` is not an integer >= 1.
   */
  constructor(options: RedisConnectionsOptions = {}) {
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const { url = REDIS_DEFAULTS.url, client, redis = {}, prefix = REDIS_DEFAULTS.prefix, timeoutMs = REDIS_DEFAULTS.timeoutMs } = options;
    if (typeof url !== "string") throw new TypeError("url must be a string");
    if (typeof prefix !== "string") throw new TypeError("prefix must be a string");
    if (client !== undefined && !(client instanceof Redis)) throw new TypeError("client must be an ioredis Redis client");
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`timeoutMs must be an integer >= 1, got ${String(timeoutMs)}`);
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
    const forced = { ...FORCED, commandTimeout: timeoutMs };
    this.commands = client ?? new Redis(url, { ...redis, ...forced });
    this.#makeSubscriber = () => (client === undefined ? new Redis(url, { ...redis, ...forced }) : client.duplicate(forced));
    this.#owned = client === undefined ? [this.commands] : [];
    this.commands.on("error", this.#onError);
    this.#health = setInterval(() => {
      for (const connection of [this.commands, this.#subscriber])
        if (connection?.status === "ready") connection.ping().catch(this.unanswered);
    }, timeoutMs).unref();
  }

  /** The subscribing connection (a `duplicate()` of a given `client`), made on first use. */
  get subscriber(): Redis {
    if (this.#subscriber === undefined) {
      this.#subscriber = this.#makeSubscriber();
      this.#subscriber.on("error", this.#onError);
      this.#owned.push(this.#subscriber);
    }
    return this.#subscriber;
  }

  /** Redis's name for a thing of this set-up: `PREFIX:KIND:NAME`. */
  name(kind: string, name: string | number): string {
    return `${this.prefix}:${kind}:${name}`;
  }

  /**
   * A command failed. If Redis left it unanswered for `timeoutMs` the socket is open but nobody
   * answers: drop the connections made here (a given client is left to its owner), so that they
   * reconnect and their users start over on `ready`.
   */
  readonly unanswered = (error: unknown): void => {
    if (this.#closing !== undefined || !(error instanceof Error) || !/timed out/i.test(error.message)) return;
    this.lastError = new Error("Redis did not answer in time");
    for (const connection of this.#owned) connection.disconnect(true);
  };

  /** Quits the connections made here, whatever state they are in; a given client stays its owner's. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#health);
      const quit = async (connection: Redis): Promise<void> => {
        if (connection.status === "ready") await connection.quit().catch(() => undefined);
        connection.disconnect(); // no reconnection, whatever state the connection was in
      };
      await Promise.all(this.#owned.map(quit));
      this.commands.off("error", this.#onError);
    })();
    return this.#closing;
  }

  readonly #onError = (error: Error): void => {
    this.lastError = error;
  };
}
