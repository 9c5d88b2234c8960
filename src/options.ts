import type { Broker } from "./brokers/broker.js";
import type { BrokerLinkStats } from "./brokers/link.js";
import { type Sharder, toShardCount } from "./sharder.js";
import type { ChannelId } from "./table.js";
import { isMember, type Member } from "./transports/index.js";

/** What to do with a member whose unsent bytes are over the high-water mark. */
export type SlowConsumerPolicy = "skip" | "close";

/**
 * Decides whether `member` may join `channel` with `meta`, for `tryJoin`: true allows; false, a
 * throw or a rejection refuses.
 */
export type Authorize<Meta> = (channel: ChannelId, member: Member, meta: Meta) => boolean | Promise<boolean>;

/** Options of `new Channels()`. */
export interface ChannelsOptions<Meta = undefined> {
  /** Asked by `tryJoin` before a join; `join` itself does not ask. Default: everyone may join. */
  authorize?: Authorize<Meta>;
  /** How many shards each channel has; asked once per channel, at its first join. Default: 1. */
  sharder?: Sharder;
  /** Shard tasks run at once when the pool is idle (integer >= 1). Default: 10. */
  writers?: number;
  /** Shard tasks run at once at the most while others wait (integer >= `writers`). Default: 50. */
  maxWriters?: number;
  /**
   * A member holding more unsent bytes than this (`bufferedAmount`; `writableLength` for a
   * socket) is a slow consumer. Default: 1,048,576 (1 MiB).
   */
  highWaterMark?: number;
  /**
   * `"skip"`: a slow consumer does not get the message (counted in `dropped`) and stays.
   * `"close"`: it is closed (a WebSocket with 1013) and leaves every channel. Default: `"skip"`.
   */
  slowConsumer?: SlowConsumerPolicy;
  /**
   * How long fan-out may hold the event loop in one turn before it yields (`setImmediate`), in
   * ms. Default: 3.
   */
  sliceMs?: number;
  /**
   * Carries broadcasts to the `Channels` of other processes and machines (`RedisBroker` from
   * `ws-channels/redis`, `ClusterBroker` from `ws-channels/cluster`, or your own). A broker serves
   * one `Channels`, which closes it in `close()`. Default: none, this process only.
   */
  broker?: Broker;
}

/** Options of `broadcast`. */
export interface BroadcastOptions {
  /** A member of this node that does not get this message (the sender, say). */
  except?: Member;
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

/** What the table holds now, and what broadcasting has done since the `Channels` was made. */
export interface ChannelsStats {
  /** Channels with at least one member (an empty channel does not exist). */
  channels: number;
  /** Members in at least one channel. */
  members: number;
  /** (channel, member) pairs. */
  memberships: number;
  /** Broadcasts called and not yet settled. */
  inFlight: number;
  /** Shard tasks running now, waiting for a writer, and the pool's current size. */
  writers: { active: number; pending: number; size: number };
  /** Broadcasts called on this node so far (received ones are not counted). */
  broadcasts: number;
  /** Totals over every delivery on this node so far, of local broadcasts and received ones. */
  delivered: number;
  failed: number;
  dropped: number;
  /** With a broker only: what it carried, what arrived, and what was lost. */
  broker?: BrokerLinkStats;
}

/** The options of `new Channels()`, checked, with their defaults. */
export interface Settings<Meta> {
  readonly authorize: Authorize<Meta> | undefined;
  readonly shardCount: (channel: ChannelId) => number;
  readonly writers: number;
  readonly maxWriters: number;
  readonly highWaterMark: number;
  readonly slowConsumer: SlowConsumerPolicy;
  readonly sliceMs: number;
  readonly broker: Broker | undefined;
}

/**
 * Checks `new Channels()`'s options and fills in the defaults.
 * @throws {TypeError} if `options`, `authorize`, `sharder`, `slowConsumer` or `broker` has the wrong type.
 * @throws {RangeError} if `highWaterMark` or `sliceMs` is not a number > 0 (`writers` and
 *   `maxWriters` are checked by the pool).
 */
export function settings<Meta>(options: ChannelsOptions<Meta>): Settings<Meta> {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  const { sharder, writers = 10, maxWriters = Math.max(50, writers), highWaterMark = 1024 * 1024, slowConsumer = "skip" } = options;
  const { sliceMs = 3, authorize, broker } = options;
  if (authorize !== undefined && typeof authorize !== "function")
    throw new TypeError("authorize must be a function (channel, member, meta) => boolean | Promise<boolean>");
  if (slowConsumer !== "skip" && slowConsumer !== "close")
    throw new TypeError(`slowConsumer must be "skip" or "close", got ${String(slowConsumer)}`);
  for (const [name, value] of [
    ["highWaterMark", highWaterMark],
    ["sliceMs", sliceMs],
  ] as const) {
    if (typeof value !== "number" || !(value > 0)) throw new RangeError(`${name} must be a number > 0, got ${String(value)}`);
  }
  if (broker !== undefined && !isBroker(broker)) {
    throw new TypeError("broker must implement the Broker interface (start, subscribe, unsubscribe, publish, stats, close, on, off)");
  }
  return { authorize, shardCount: toShardCount(sharder), writers, maxWriters, highWaterMark, slowConsumer, sliceMs, broker };
}

function isBroker(value: unknown): value is Broker {
  if (value === null || typeof value !== "object") return false;
  const methods = ["start", "subscribe", "unsubscribe", "publish", "stats", "close", "on", "off"];
  return methods.every((name) => typeof (value as Record<string, unknown>)[name] === "function");
}

/** @throws {TypeError} unless `channel` is a string or a finite number. */
export function checkChannel(channel: unknown): ChannelId {
  if (typeof channel === "string" || (typeof channel === "number" && Number.isFinite(channel))) return channel;
  throw new TypeError(`channel must be a string or a finite number, got ${describe(channel)}`);
}

/** @throws {TypeError} unless `message` is a string, a Buffer or a Uint8Array. */
export function checkMessage(message: unknown): void {
  if (typeof message !== "string" && !(message instanceof Uint8Array)) {
    throw new TypeError("message must be a string, a Buffer or a Uint8Array");
  }
}

/** @throws {TypeError} unless `member` can be written to. */
export function checkMember(member: unknown): Member {
  if (isMember(member)) return member;
  throw new TypeError(`member must be a ws WebSocket, a net.Socket or an object with send(data), got ${describe(member)}`);
}

/** @throws {TypeError} unless `options` is an object. */
export function checkBroadcastOptions(options: unknown): BroadcastOptions {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  return options;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ? `a ${value.constructor.name}` : "an object";
  return typeof value === "number" ? String(value) : typeof value;
}
