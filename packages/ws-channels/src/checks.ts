import type { Broker } from "./brokers/broker.js";
import type { Authorize, ChannelsOptions, SlowConsumerPolicy } from "./options.js";
import { isMember, type Member } from "./transports/index.js";
import type { BroadcastOptions, ChannelId, Sharder } from "./types.js";

/** The most shards a channel may have: enough for millions of members, small enough to allocate. */
const MAX_SHARDS = 1024;

/** The options of `new Channels()`, checked, with their defaults. */
export interface Settings<Meta, M extends Member> {
  readonly authorize: Authorize<Meta, M> | undefined;
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
 * @throws {RangeError} if `writers < 1`, `maxWriters < writers`, either is not an integer, or
 *   `highWaterMark` or `sliceMs` is not a number > 0.
 */
export function settings<Meta, M extends Member>(options: ChannelsOptions<Meta, M>): Settings<Meta, M> {
  checkObject("options", options);
  const { sharder, writers = 10, maxWriters = Math.max(50, writers), highWaterMark = 1024 * 1024, slowConsumer = "skip" } = options;
  const { sliceMs = 3, authorize, broker } = options;
  if (authorize !== undefined && typeof authorize !== "function")
    throw new TypeError(`authorize must be a function (channel, member, meta) => boolean | Promise<boolean>, got ${describe(authorize)}`);
  if (slowConsumer !== "skip" && slowConsumer !== "close")
    throw new TypeError(`slowConsumer must be "skip" or "close", got ${describe(slowConsumer)}`);
  if (!Number.isInteger(writers) || writers < 1) throw new RangeError(`writers must be an integer >= 1, got ${describe(writers)}`);
  if (!Number.isInteger(maxWriters) || maxWriters < writers)
    throw new RangeError(`maxWriters must be an integer >= writers (${writers}), got ${describe(maxWriters)}`);
  for (const [name, value] of [
    ["highWaterMark", highWaterMark],
    ["sliceMs", sliceMs],
  ] as const) {
    if (typeof value !== "number" || !(value > 0)) throw new RangeError(`${name} must be a number > 0, got ${describe(value)}`);
  }
  if (broker !== undefined && !isBroker(broker)) {
    throw new TypeError(
      `broker must implement the Broker interface (start, subscribe, unsubscribe, publish, stats, close, on, off), got ${describe(broker)}`,
    );
  }
  return { authorize, shardCount: toShardCount(sharder), writers, maxWriters, highWaterMark, slowConsumer, sliceMs, broker };
}

/**
 * Turns a user's sharder into a function that checks every answer.
 * @throws {TypeError} if `sharder` is neither a function nor an object with `shards`.
 * @returns a function that throws `RangeError` when the sharder answers anything but an integer from 1 to 1024.
 */
function toShardCount(sharder: Sharder | undefined): (channel: ChannelId) => number {
  if (sharder === undefined) return () => 1;
  let ask: (channel: ChannelId) => number;
  if (typeof sharder === "function") ask = sharder;
  else if (sharder !== null && typeof sharder === "object" && typeof sharder.shards === "function") {
    ask = (channel) => sharder.shards(channel);
  } else {
    throw new TypeError(`sharder must be a function (channel) => number or an object with shards(channel), got ${describe(sharder)}`);
  }
  return (channel) => {
    const shards = ask(channel);
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
      throw new RangeError(
        `sharder answered ${describe(shards)} for channel ${JSON.stringify(channel)}: shards must be an integer from 1 to ${MAX_SHARDS}`,
      );
    }
    return shards;
  };
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
    throw new TypeError(`message must be a string, a Buffer or a Uint8Array, got ${describe(message)}`);
  }
}

/** @throws {TypeError} unless `member` can be written to. */
export function checkMember<M extends Member>(member: M): M {
  if (isMember(member)) return member;
  throw new TypeError(`member must be a ws WebSocket, a net.Socket or an object with send(data), got ${describe(member)}`);
}

/** @throws {TypeError} unless `options` is an object. */
export function checkBroadcastOptions<M extends Member>(options: BroadcastOptions<M>): BroadcastOptions<M> {
  return checkObject("options", options);
}

/** @throws {TypeError} naming `name` unless `fn` is a function; `shape` says which. */
export function checkFunction<F>(name: string, fn: F, shape: string): F {
  if (typeof fn === "function") return fn;
  throw new TypeError(`${name} must be a function ${shape}, got ${describe(fn)}`);
}

function checkObject<T>(name: string, value: T): T {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  throw new TypeError(`${name} must be an object, got ${describe(value)}`);
}

/**
 * Says what a wrong argument is, for the end of an error message ("..., got " + this): `null`,
 * `undefined`, `an object`, `an array`, `a function`, `an instance of Map`, `the string "x"`
 * (shortened past 40 characters), `the number 1.5`, `NaN`, `true`.
 */
export function describe(value: unknown): string {
  if (value === null || value === undefined || typeof value === "boolean") return String(value);
  switch (typeof value) {
    case "string":
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
    case "number":
      return Number.isFinite(value) ? `the number ${value}` : String(value);
    case "bigint":
      return `the bigint ${value}n`;
    case "symbol":
      return "a symbol";
    case "function":
      return "a function";
  }
  if (Array.isArray(value)) return "an array";
  const type = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor;
  return type === undefined || type === Object || typeof type.name !== "string" || type.name === ""
    ? "an object"
    : `an instance of ${type.name}`;
}
