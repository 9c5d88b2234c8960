import { Dispatcher } from "./dispatch.js";
import { type Sharder, toShardCount } from "./sharder.js";
import { type ChannelId, Table } from "./table.js";
import { CloseWatcher, closeSlow, isClosed, isMember, type Member, Payload } from "./transports/index.js";

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
}

/** Options of `broadcast`. */
export interface BroadcastOptions {
  /** A member that does not get this message (the sender, say). */
  except?: Member;
}

/** What one broadcast did. */
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
  /** Totals over every broadcast so far. */
  delivered: number;
  failed: number;
  dropped: number;
}

/** One member of a channel and its meta, as `reduce` sees it. */
export interface Membership<Meta> {
  member: Member;
  meta: Meta;
}

/** `join`'s meta: optional when `Meta` allows undefined, required otherwise. */
type MetaArg<Meta> = undefined extends Meta ? [meta?: Meta] : [meta: Meta];

/**
 * Channel (room) membership kept in memory, with broadcast. Channels are sharded `Map`s; a
 * broadcast is fanned out shard by shard on a bounded writer pool.
 *
 * @typeParam Meta - what each membership carries (a user id and name, say); default: nothing.
 */
export class Channels<Meta = undefined> {
  readonly #table: Table<Member, Meta>;
  readonly #dispatch: Dispatcher;
  /** Members that are event emitters leave every channel when they emit `close`. */
  readonly #closeWatch = new CloseWatcher<Member>((member) => this.leave(member));
  readonly #slowConsumer: SlowConsumerPolicy;
  readonly #authorize: Authorize<Meta> | undefined;
  #closed = false;

  /**
   * @throws {TypeError} if `options`, `sharder` or `slowConsumer` has the wrong type.
   * @throws {RangeError} if `writers < 1`, `maxWriters < writers`, either is not an integer, or
   *   `highWaterMark` or `sliceMs` is not a number > 0.
   */
  constructor(options: ChannelsOptions<Meta> = {}) {
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const {
      sharder,
      writers = 10,
      maxWriters = Math.max(50, writers),
      highWaterMark = 1024 * 1024,
      slowConsumer = "skip",
      sliceMs = 3,
      authorize,
    } = options;
    if (authorize !== undefined && typeof authorize !== "function")
      throw new TypeError("authorize must be a function (channel, member, meta) => boolean | Promise<boolean>");
    this.#authorize = authorize;
    if (slowConsumer !== "skip" && slowConsumer !== "close")
      throw new TypeError(`slowConsumer must be "skip" or "close", got ${String(slowConsumer)}`);
    for (const [name, value] of [
      ["highWaterMark", highWaterMark],
      ["sliceMs", sliceMs],
    ] as const) {
      if (typeof value !== "number" || !(value > 0)) throw new RangeError(`${name} must be a number > 0, got ${String(value)}`);
    }
    this.#table = new Table(toShardCount(sharder), {
      added: (member) => this.#closeWatch.watch(member),
      removed: (member) => this.#closeWatch.unwatch(member),
    });
    this.#slowConsumer = slowConsumer;
    this.#dispatch = new Dispatcher({
      writers,
      maxWriters,
      sliceMs,
      rules: { highWaterMark, failed: this.#dropFailed, slow: this.#dropSlow },
    });
  }

  /**
   * Adds `member` to `channel`, with `meta`. Joining again changes nothing and keeps the first meta.
   * A `ws` WebSocket, `net.Socket` or other event emitter leaves every channel when it emits `close`;
   * one that is already closed or closing is not added, since it would never emit it again.
   *
   * @returns true if the member newly joined; false if it was already in the channel or is closed.
   * @throws {TypeError} for a bad `channel` or `member`.
   * @throws {RangeError} when the sharder answers anything but an integer from 1 to 1024 for a new channel.
   */
  join(channel: ChannelId, member: Member, ...[meta]: MetaArg<Meta>): boolean {
    checkChannel(channel);
    checkMember(member);
    if (isClosed(member)) return false;
    return this.#table.join(channel, member, meta as Meta);
  }

  /**
   * Joins `member` to `channel` if the `authorize` hook allows it (sync or async), for untrusted
   * requests such as a client's join message. A hook that throws or rejects refuses.
   *
   * @returns true if the member is in the channel afterwards (newly or already); false if the hook
   *   refused, or the member closed while the hook was deciding.
   * @throws {TypeError} for a bad `channel` or `member`, before the hook is asked.
   */
  async tryJoin(channel: ChannelId, member: Member, ...[meta]: MetaArg<Meta>): Promise<boolean> {
    checkChannel(channel);
    checkMember(member);
    if (this.#authorize !== undefined) {
      let allowed: boolean;
      try {
        allowed = (await this.#authorize(channel, member, meta as Meta)) === true;
      } catch {
        allowed = false;
      }
      if (!allowed) return false;
    }
    if (isClosed(member)) return false; // it closed while the hook was deciding
    this.#table.join(channel, member, meta as Meta);
    return true;
  }

  /**
   * `leave(channel, member)` removes `member` from `channel` and returns false if it was not in it.
   * `leave(member)` removes `member` from every channel and returns how many it left.
   *
   * @throws {TypeError} for a bad `channel` or `member`; never for a member that is not in the channel.
   */
  leave(channel: ChannelId, member: Member): boolean;
  leave(member: Member): number;
  leave(...args: [ChannelId, Member] | [Member]): boolean | number {
    if (args.length === 1) return this.#table.leaveAll(checkMember(args[0]));
    return this.#table.leave(checkChannel(args[0]), checkMember(args[1]));
  }

  /**
   * Whether `member` is in `channel`.
   * @throws {TypeError} for a bad `channel` or `member`.
   */
  member(channel: ChannelId, member: Member): boolean {
    return this.#table.has(checkChannel(channel), checkMember(member));
  }

  /**
   * Writes `message` to every member of `channel`. The message is encoded once: for `ws` members
   * one WebSocket frame is built and the same bytes go to every socket. Each shard is one task on
   * the writer pool; every member gets a channel's broadcasts in the order `broadcast` was called.
   * A one-shard channel of at most 256 members is written inside the call when no writer is busy
   * and nothing is queued (the returned promise is then already settled), which is what the pool
   * would have written next.
   * A large fan-out writes in slices of at most `sliceMs` and yields the event loop between them.
   * A member that is closed or whose write throws is counted in `failed` and leaves every channel;
   * a slow consumer (over `highWaterMark`) is counted in `dropped` and skipped or closed.
   *
   * @param message a `string` is sent as text; a `Buffer` or `Uint8Array` as binary.
   * @returns how many members got the message, failed, or were dropped as slow; all 0 for a
   *   channel with no members. Rejects with code `ERR_CHANNELS_CLOSED` after `close()`.
   * @throws {TypeError} for a bad `channel`, `message` or `options`.
   */
  broadcast(channel: ChannelId, message: string | Uint8Array, options?: BroadcastOptions): Promise<BroadcastResult> {
    checkChannel(channel);
    checkMessage(message);
    if (options !== undefined && (options === null || typeof options !== "object")) throw new TypeError("options must be an object");
    if (this.#closed) {
      return Promise.reject(
        Object.assign(new Error("broadcast after close(): this Channels no longer broadcasts"), { code: "ERR_CHANNELS_CLOSED" }),
      );
    }
    return this.#fanOut(channel, new Payload(message), options?.except);
  }

  /** The local fan-out of one broadcast: every member of `channel` here but `except`. */
  #fanOut(channel: ChannelId, payload: Payload, except: Member | undefined): Promise<BroadcastResult> {
    const shards = this.#table.shards(channel);
    if (shards === undefined) return Promise.resolve({ delivered: 0, failed: 0, dropped: 0 });
    return this.#dispatch.broadcast(shards, payload, except);
  }

  /**
   * Writes `message` to one member, in order with broadcasts: after every broadcast called before
   * to a channel the member is in at this call, and before any called after to those channels.
   * Use it for replies and targeted messages, so that they cannot overtake a large fan-out still
   * under way. The slow-consumer rule applies as to a broadcast.
   *
   * @param message a `string` is sent as text; a `Buffer` or `Uint8Array` as binary.
   * @returns true once written; false if the member is closed or its write threw (it then leaves
   *   every channel), or it is a slow consumer (skipped, or closed under the "close" policy).
   * @throws {TypeError} for a bad `member` or `message`.
   */
  send(member: Member, message: string | Uint8Array): Promise<boolean> {
    checkMember(member);
    checkMessage(message);
    return this.#dispatch.send(member, this.#table.shardsOf(member), new Payload(message));
  }

  /**
   * Folds over the members of `channel` and their meta, shard by shard.
   * @returns the last value `fn` returned, or `initial` for a channel with no members.
   * @throws {TypeError} for a bad `channel` or a `fn` that is not a function; rethrows what `fn` throws.
   */
  reduce<A>(channel: ChannelId, initial: A, fn: (acc: A, membership: Membership<Meta>) => A): A {
    checkChannel(channel);
    if (typeof fn !== "function") throw new TypeError("fn must be a function (acc, { member, meta }) => acc");
    let acc = initial;
    for (const shard of this.#table.shards(channel) ?? []) {
      for (const [member, meta] of shard.members) acc = fn(acc, { member, meta });
    }
    return acc;
  }

  /**
   * How many members `channel` has (0 for a channel nobody joined).
   * @throws {TypeError} for a bad `channel`.
   */
  count(channel: ChannelId): number {
    return this.#table.count(checkChannel(channel));
  }

  /**
   * The channels `member` is in, in the order it joined them.
   * @throws {TypeError} for a bad `member`.
   */
  channelsOf(member: Member): ChannelId[] {
    return this.#table.channelsOf(checkMember(member));
  }

  /** What the table holds now, the writer pool's state, and totals over every broadcast so far. */
  stats(): ChannelsStats {
    const table = this.#table;
    const dispatch = this.#dispatch;
    return {
      channels: table.channels,
      members: table.members,
      memberships: table.memberships,
      inFlight: dispatch.inFlight,
      writers: dispatch.writers,
      ...dispatch.totals,
    };
  }

  /**
   * Stops broadcasting: broadcasts already called are written, later ones reject. Membership
   * calls keep working, so sockets that close during a shutdown still leave their channels.
   * @returns a promise that resolves once every broadcast called before `close()` has settled.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#dispatch.drained();
  }

  /** A member that was closed or whose write threw (or whose `send` promise rejected later). */
  readonly #dropFailed = (member: Member): void => void this.leave(member);

  /** A slow consumer: under the "close" policy it leaves and is closed. @returns whether it stays. */
  readonly #dropSlow = (member: Member): boolean => {
    if (this.#slowConsumer !== "close") return true;
    this.leave(member);
    closeSlow(member);
    return false;
  };
}

function checkChannel(channel: unknown): ChannelId {
  if (typeof channel === "string" || (typeof channel === "number" && Number.isFinite(channel))) return channel;
  throw new TypeError(`channel must be a string or a finite number, got ${describe(channel)}`);
}

function checkMessage(message: unknown): void {
  if (typeof message !== "string" && !(message instanceof Uint8Array)) {
    throw new TypeError("message must be a string, a Buffer or a Uint8Array");
  }
}

function checkMember(member: unknown): Member {
  if (isMember(member)) return member;
  throw new TypeError(`member must be a ws WebSocket, a net.Socket or an object with send(data), got ${describe(member)}`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ? `a ${value.constructor.name}` : "an object";
  return typeof value === "number" ? String(value) : typeof value;
}
