import { BrokerLink } from "./brokers/link.js";
import { Dispatcher } from "./dispatch.js";
import {
  type BroadcastOptions,
  type BroadcastResult,
  type ChannelsOptions,
  type ChannelsStats,
  checkBroadcastOptions,
  checkChannel,
  checkMember,
  checkMessage,
  settings,
} from "./options.js";
import { type ChannelId, Table } from "./table.js";
import { CloseWatcher, closeSlow, isClosed, type Member, Payload } from "./transports/index.js";

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
  readonly #slowConsumer: ChannelsOptions<Meta>["slowConsumer"];
  readonly #authorize: ChannelsOptions<Meta>["authorize"];
  readonly #link: BrokerLink | undefined;
  #closed = false;
  #broadcasts = 0;

  /**
   * @throws {TypeError} if `options`, `authorize`, `sharder`, `slowConsumer` or `broker` has the
   *   wrong type, or (an `Error`) if the broker already serves another `Channels`.
   * @throws {RangeError} if `writers < 1`, `maxWriters < writers`, either is not an integer, or
   *   `highWaterMark` or `sliceMs` is not a number > 0.
   */
  constructor(options: ChannelsOptions<Meta> = {}) {
    const { authorize, shardCount, broker, writers, maxWriters, sliceMs, highWaterMark, slowConsumer } = settings(options);
    this.#authorize = authorize;
    this.#slowConsumer = slowConsumer;
    this.#dispatch = new Dispatcher({
      writers,
      maxWriters,
      sliceMs,
      rules: { highWaterMark, failed: this.#dropFailed, slow: this.#dropSlow },
    });
    const watch = {
      added: (member: Member) => this.#closeWatch.watch(member),
      removed: (member: Member) => this.#closeWatch.unwatch(member),
    };
    if (broker === undefined) {
      this.#table = new Table(shardCount, watch);
      return;
    }
    const link = new BrokerLink(broker, this.#deliverReceived);
    this.#link = link;
    this.#table = new Table(shardCount, {
      ...watch,
      created: (channel) => link.created(channel),
      deleted: (channel) => link.deleted(channel),
    });
  }

  /**
   * Adds `member` to `channel`, with `meta`. Joining again changes nothing and keeps the first meta.
   * A `ws` WebSocket, `net.Socket` or other event emitter leaves every channel when it emits `close`;
   * one that is already closed or closing is not added, since it would never emit it again.
   * With a broker, the channel's first member here starts this node's subscription to it; until
   * the broker acknowledges it, broadcasts from other nodes may miss this member: await
   * `subscribed(channel)` (or use `tryJoin`, which does) before relying on them.
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
   * With a broker it resolves once this node's subscription to the channel is acknowledged (see
   * `subscribed`), so that a broadcast made on any node afterwards reaches the member.
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
    const pending = this.#link?.pending(channel);
    if (pending !== undefined) await pending;
    return true;
  }

  /**
   * Waits for this node's subscription to `channel`: with a broker, until the broker has
   * acknowledged the subscription made when the channel's first local member joined (Redis's
   * SUBSCRIBE reply, the cluster primary's answer). Resolves at once without a broker, for a
   * channel with no member here, for one already acknowledged, and while the broker is down (the
   * subscription is then made when it comes back, and the broker emits `up`). Never rejects.
   * @throws {TypeError} for a bad `channel`.
   */
  async subscribed(channel: ChannelId): Promise<void> {
    const pending = this.#link?.pending(checkChannel(channel));
    if (pending !== undefined) await pending;
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
   * Writes `message` to every member of `channel`, on this node and, with a broker, on every
   * other node that has members in it. The message is encoded once: for `ws` members one WebSocket
   * frame is built and the same bytes go to every socket; for the broker, one envelope. Each shard
   * is one task on the writer pool; every member gets a channel's broadcasts from one node in the
   * order `broadcast` was called there (there is no order between broadcasts of two nodes).
   * A one-shard channel of at most 256 members here is written inside the call when no writer is
   * busy and nothing is queued (the returned promise is then already settled), which is what the
   * pool would have written next.
   * A large fan-out writes in slices of at most `sliceMs` and yields the event loop between them.
   * A member that is closed or whose write throws is counted in `failed` and leaves every channel;
   * a slow consumer (over `highWaterMark`) is counted in `dropped` and skipped or closed.
   *
   * @param message a `string` is sent as text; a `Buffer` or `Uint8Array` as binary.
   * @param options `except`: a member of this node that does not get it; `local: true`: this
   *   node's members only.
   * @returns how many members of this node got the message, failed, or were dropped as slow
   *   (other nodes' deliveries are not counted); all 0 for a channel with no members here.
   *   Rejects with code `ERR_CHANNELS_CLOSED` after `close()`.
   * @throws {TypeError} for a bad `channel`, `message` or `options`.
   */
  broadcast(channel: ChannelId, message: string | Uint8Array, options: BroadcastOptions = {}): Promise<BroadcastResult> {
    checkChannel(channel);
    checkMessage(message);
    const { except, local } = checkBroadcastOptions(options);
    if (this.#closed) {
      return Promise.reject(
        Object.assign(new Error("broadcast after close(): this Channels no longer broadcasts"), { code: "ERR_CHANNELS_CLOSED" }),
      );
    }
    this.#broadcasts++;
    if (this.#link !== undefined && local !== true) this.#link.publish(channel, message);
    return this.#fanOut(channel, new Payload(message), except);
  }

  /** Writes `payload` to this node's members of `channel` but `except`: the local part of every broadcast. */
  #fanOut(channel: ChannelId, payload: Payload, except: Member | undefined): Promise<BroadcastResult> {
    const shards = this.#table.shards(channel);
    if (shards === undefined) return Promise.resolve({ delivered: 0, failed: 0, dropped: 0 });
    return this.#dispatch.broadcast(shards, payload, except);
  }

  /** A broadcast from another node, decoded once: fanned out here like a local one. */
  readonly #deliverReceived = (channel: ChannelId, payload: Payload): void => {
    if (!this.#closed) void this.#fanOut(channel, payload, undefined);
  };

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
      broadcasts: this.#broadcasts,
      ...dispatch.totals,
      ...(this.#link === undefined ? {} : { broker: this.#link.stats() }),
    };
  }

  /**
   * Stops broadcasting: broadcasts already called are written, later ones reject. Membership
   * calls keep working, so sockets that close during a shutdown still leave their channels.
   * With a broker, nothing more is received and the broker is closed (its subscriptions and
   * connections end) once those broadcasts are written.
   * @returns a promise that resolves once every broadcast called before `close()` has settled
   *   and the broker, if any, is closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#dispatch.drained();
    await this.#link?.close();
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
