import { BrokerLink, type Followed } from "./brokers/link.js";
import { checkBroadcastOptions, checkChannel, checkFunction, checkMember, checkMessage, settings } from "./checks.js";
import { Dispatcher } from "./dispatch.js";
import type { ChannelsOptions, ChannelsStats } from "./options.js";
import type { Sharded } from "./shards.js";
import { Table } from "./table.js";
import { CloseWatcher, isClosed, type Member, Payload } from "./transports/index.js";
import type { BroadcastOptions, BroadcastResult, ChannelId, Membership, MembershipListener, MetaArg } from "./types.js";

/**
 * Channel (room) membership kept in memory, with broadcast. Channels are sharded `Map`s; a
 * broadcast is fanned out shard by shard on a bounded writer pool.
 *
 * A channel is a string or a finite number, and a key of a `Map`: `42` and `"42"` are two channels.
 *
 * @typeParam Meta - what each membership carries (a user id and name, say); default: nothing.
 * @typeParam M - what members are (`WebSocket`, say): what `reduce`, `observe` and the hooks hand
 *   back; default: any `Member`.
 */
export class Channels<Meta = undefined, M extends Member = Member> {
  readonly #table: Table<M, Meta, Followed<Sharded<M, Meta>>>;
  readonly #dispatch: Dispatcher;
  /** Members that are event emitters leave every channel when they emit `close`. */
  readonly #closeWatch = new CloseWatcher<M>((member) => this.#table.leaveAll(member, "close"));
  readonly #authorize: ChannelsOptions<Meta, M>["authorize"];
  readonly #link: BrokerLink<Sharded<M, Meta>> | undefined;
  #closed = false;
  #broadcasts = 0;

  /**
   * @throws {TypeError} if `options`, `authorize`, `sharder`, `slowConsumer` or `broker` has the
   *   wrong type, or (an `Error`) if the broker already serves another `Channels`.
   * @throws {RangeError} if `writers < 1`, `maxWriters < writers`, either is not an integer, or
   *   `highWaterMark` or `sliceMs` is not a number > 0.
   */
  constructor(options: ChannelsOptions<Meta, M> = {}) {
    const { authorize, shardCount, broker, ...writing } = settings(options);
    this.#authorize = authorize;
    this.#dispatch = new Dispatcher({ ...writing, leave: (member, cause) => this.#table.leaveAll(member as M, cause) });
    const link = broker === undefined ? undefined : new BrokerLink(broker, this.#deliverReceived);
    this.#link = link;
    this.#table = new Table(shardCount, {
      added: (member) => this.#closeWatch.watch(member),
      removed: (member) => this.#closeWatch.unwatch(member),
      ...(link !== undefined && { created: link.created, deleted: link.deleted }),
    });
  }

  /**
   * Adds `member` to `channel`, with `meta`. Joining again changes nothing and keeps the first meta.
   * A `ws` WebSocket, `net.Socket` or other event emitter leaves every channel when it emits `close`;
   * one that is already closed or closing is not added, since it would never emit it again. That
   * listener is added at its first join: a `close` listener added after it finds `channelsOf(member)`
   * already empty (`observe` tells which channels a closed member left).
   * With a broker, the channel's first member here starts this node's subscription to it; until
   * the broker acknowledges it, broadcasts from other nodes may miss this member: await
   * `subscribed(channel)` (or use `tryJoin`, which does) before relying on them.
   *
   * @returns true if the member newly joined; false if it was already in the channel or is closed.
   * @throws {TypeError} for a bad `channel` or `member`.
   * @throws {RangeError} when the sharder answers anything but an integer from 1 to 1024 for a new channel.
   */
  join(channel: ChannelId, member: M, ...[meta]: MetaArg<Meta>): boolean {
    checkChannel(channel);
    checkMember(member);
    return !isClosed(member) && this.#table.join(channel, member, meta as Meta);
  }

  /**
   * Joins `member` to `channel` if the `authorize` hook allows it (sync or async), for untrusted
   * requests such as a client's join message. A hook that throws or rejects refuses.
   * With a broker it resolves once this node's subscription to the channel is acknowledged (see
   * `subscribed`), so that a broadcast made on any node afterwards reaches the member.
   *
   * @returns true if the member is in the channel afterwards (newly or already); false if the hook
   *   refused, or the member closed while the hook was deciding.
   * @throws {TypeError} for a bad `channel` or `member`, before the hook is asked.
   */
  async tryJoin(channel: ChannelId, member: M, ...[meta]: MetaArg<Meta>): Promise<boolean> {
    checkChannel(channel);
    checkMember(member);
    if (this.#authorize !== undefined) {
      let allowed: boolean;
      try {
        allowed = (await this.#authorize(channel, member, meta as Meta)) === true;
      } catch {
        allowed = false; // a hook that throws or rejects refuses
      }
      if (!allowed) return false;
    }
    if (isClosed(member)) return false; // it closed while the hook was deciding
    this.#table.join(channel, member, meta as Meta);
    await this.#link?.pending(channel);
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
    await this.#link?.pending(checkChannel(channel));
  }

  /**
   * `leave(channel, member)` removes `member` from `channel` and returns false if it was not in it.
   * `leave(member)` removes `member` from every channel and returns how many it left.
   * @throws {TypeError} for a bad `channel` or `member`; never for a member that is not in the channel.
   */
  leave(channel: ChannelId, member: M): boolean;
  leave(member: M): number;
  leave(...args: [ChannelId, M] | [M]): boolean | number {
    if (args.length === 1) return this.#table.leaveAll(checkMember(args[0]), "leave");
    return this.#table.leave(checkChannel(args[0]), checkMember(args[1]));
  }

  /**
   * Calls `listener(channel, member, meta, cause)` for every join and leave made from now on, in
   * `channel` or, without it, in every channel, once the table has changed (when and in which
   * order: see `MembershipListener`). A snapshot taken with `reduce` when the listener is added
   * and the changes it is told after it give the channel's members at every moment. Without
   * listeners, a change costs a field test and allocates nothing.
   * @returns a function that removes the listener; calling it again does nothing.
   * @throws {TypeError} for a bad `channel` or a `listener` that is not a function.
   */
  observe(listener: MembershipListener<Meta, M>): () => void;
  observe(channel: ChannelId, listener: MembershipListener<Meta, M>): () => void;
  observe(...args: [MembershipListener<Meta, M>] | [ChannelId, MembershipListener<Meta, M>]): () => void {
    const channel = args.length === 1 ? undefined : checkChannel(args[0]);
    const listener = checkFunction("listener", args.length === 1 ? args[0] : args[1], "(channel, member, meta, cause) => void");
    return this.#table.observe(channel, listener);
  }

  /**
   * Whether `member` is in `channel`.
   * @throws {TypeError} for a bad `channel` or `member`.
   */
  member(channel: ChannelId, member: M): boolean {
    return this.#table.has(checkChannel(channel), checkMember(member));
  }

  /**
   * Writes `message` to every member of `channel`, on this node and, with a broker, on every
   * other node that has members in it. The message is encoded once: for `ws` members one WebSocket
   * frame is built and the same bytes go to every socket; for the broker, one envelope. Each shard
   * is one task on the writer pool; every member gets a channel's broadcasts from one node in the
   * order `broadcast` was called there (there is no order between broadcasts of two nodes).
   * A one-shard channel of at most 256 members here is written inside the call when no writer is
   * busy and nothing is queued (the returned promise is then already settled), as the pool would
   * have written it next. A large fan-out writes in slices of at most `sliceMs` and yields between.
   * A member that is closed or whose write throws is counted in `failed` and leaves every channel;
   * a slow consumer (over `highWaterMark`) is counted in `dropped` and skipped or closed.
   *
   * @param message a `string` is sent as text; a `Buffer` or `Uint8Array` as binary.
   * @param options `except`: a member of this node that does not get it; `local`: this node only.
   * @returns how many members of this node got the message, failed, or were dropped as slow
   *   (other nodes' deliveries are not counted); all 0 for a channel with no members here.
   *   Rejects with code `ERR_CHANNELS_CLOSED` after `close()`.
   * @throws {TypeError} for a bad `channel`, `message` or `options`.
   */
  broadcast(channel: ChannelId, message: string | Uint8Array, options: BroadcastOptions<M> = {}): Promise<BroadcastResult> {
    checkChannel(channel);
    checkMessage(message);
    const { except, local } = checkBroadcastOptions(options);
    const closed = "broadcast after close(): this Channels no longer broadcasts";
    if (this.#closed) return Promise.reject(Object.assign(new Error(closed), { code: "ERR_CHANNELS_CLOSED" }));
    this.#broadcasts++;
    const entry = this.#table.channel(channel);
    if (this.#link !== undefined && local !== true) this.#link.publish(channel, message, entry?.attached);
    return this.#dispatch.broadcast(entry, new Payload(message), except);
  }

  /** A broadcast from another node, decoded once: fanned out here like a local one, to the channel its record holds. */
  readonly #deliverReceived = (channel: Sharded<M, Meta>, payload: Payload): void => {
    if (!this.#closed) this.#dispatch.deliver(channel, payload);
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
  send(member: M, message: string | Uint8Array): Promise<boolean> {
    checkMember(member);
    checkMessage(message);
    return this.#dispatch.send(member, this.#table.shardsOf(member), new Payload(message));
  }

  /**
   * Folds over the members of `channel` and their meta, shard by shard.
   * @returns the last value `fn` returned, or `initial` for a channel with no members.
   * @throws {TypeError} for a bad `channel` or a `fn` that is not a function; rethrows what `fn` throws.
   */
  reduce<A>(channel: ChannelId, initial: A, fn: (acc: A, membership: Membership<Meta, M>) => A): A {
    checkChannel(channel);
    checkFunction("fn", fn, "(acc, { member, meta }) => acc");
    let acc = initial;
    for (const shard of this.#table.channel(channel)?.shards ?? [])
      for (const [member, meta] of shard.members) acc = fn(acc, { member, meta });
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
  channelsOf(member: M): ChannelId[] {
    return this.#table.channelsOf(checkMember(member));
  }

  /** What the table holds now, the writer pool's state, and totals over every broadcast so far. */
  stats(): ChannelsStats {
    const { channels, members, memberships } = this.#table;
    const { inFlight, pool, totals } = this.#dispatch;
    const broker = this.#link?.stats();
    return { channels, members, memberships, inFlight, pool, broadcasts: this.#broadcasts, ...totals, ...(broker && { broker }) };
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
}
