import { Channels } from "../channels.js";
import { checkChannel, checkFunction, checkMember, describe } from "../checks.js";
import type { Member } from "../transports/index.js";
import type { ChannelId, MembershipCause } from "../types.js";
import { diffFrames, type PresenceCount, type PresenceDiff } from "./frames.js";
import { Group, sameCount } from "./group.js";
import { checkOptions, type PresenceOptions } from "./options.js";

/** What a listener gets: every entry and each turn's diff (`"full"`), or the counts (`"count"`). */
export type PresenceMode = "full" | "count";

/** What a listener starts from: the entries, or (count listeners, or over `max`) the counts. */
export type PresenceSnapshot<E> = { entries: E[] } | { count: PresenceCount };

/**
 * Presence on a `Channels`: who is in a channel, as entries built from each membership's meta,
 * and listeners that get each channel's joins and leaves. A channel's changes are gathered per
 * event-loop turn (a join and a leave of one member in one turn cancel) and sent as one diff,
 * split into frames of at most 1,000 entries or 64 KiB, each built once and fanned out to the
 * listeners like a broadcast (the writer pool, the slow-consumer rule, in order). A channel with
 * no listener is not even observed: joins and leaves cost nothing more than without presence.
 *
 * @typeParam E - one entry, as `options.entry` builds it.
 */
export class Presence<Meta, M extends Member, E> {
  readonly #channels: Channels<Meta, M>;
  readonly #listeners: Channels<undefined, M>; // two channels per listened channel (see `Group`)
  readonly #options: Required<Pick<PresenceOptions<Meta, M, E>, "entry" | "frames" | "max" | "countInterval">>;
  readonly #user: ((entry: E) => unknown) | undefined;
  readonly #groups = new Map<ChannelId, Group<M, E, PresenceDiff<E>>>();
  readonly #byId = new Map<number, ChannelId>();
  readonly #dirty = new Set<ChannelId>();
  #immediate: NodeJS.Immediate | undefined;
  #nextId = 0;

  /**
   * @throws {TypeError} if `channels` is not a `Channels`, or `entry`, `user` or a frame builder not a function.
   * @throws {RangeError} if `max` or `countInterval` is not a number >= 0.
   */
  constructor(channels: Channels<Meta, M>, options: PresenceOptions<Meta, M, E>) {
    const { entry, frames, user, max, countInterval, highWaterMark, slowConsumer } = checkOptions(channels, options);
    this.#channels = channels;
    this.#options = { entry, frames, max, countInterval };
    this.#user = user;
    this.#listeners = new Channels<undefined, M>({
      ...(highWaterMark !== undefined && { highWaterMark }),
      ...(slowConsumer !== undefined && { slowConsumer }),
    });
    this.#listeners.observe((id, _member, _meta, cause) => {
      if (cause !== "join") this.#release(this.#byId.get(id as number));
    });
  }

  /** `channel`'s entries now, one per member. @throws {TypeError} for a bad `channel`. */
  entries(channel: ChannelId): E[] {
    return [...this.#entriesOf(checkChannel(channel)).values()];
  }

  /** `channel`'s counts now (O(members)). @throws {TypeError} for a bad `channel`. */
  count(channel: ChannelId): PresenceCount {
    return this.#countOf(this.#entriesOf(checkChannel(channel)).values());
  }

  /**
   * Makes `member` a listener of `channel`: it gets the channel's diffs (`"full"`) or counts
   * (`"count"`) from the snapshot this resolves with onward. Applying the diffs, in order, to the
   * snapshot gives the channel's entries at every moment. With `reply`, the frame it builds from
   * the snapshot is written to `member` before any diff. Listening again (or in the other mode)
   * takes a new snapshot. `member` need not be in `channel`; it stops listening at `unlisten`,
   * when it closes, or when a write to it fails.
   * It sends the changes of the turn so far to the other listeners at once and waits until the
   * diffs of `channel` are written, so that `member` gets none its snapshot already holds.
   * @returns the snapshot, or undefined if `member` is closed.
   * @throws {TypeError} for a bad `channel`, `member`, `mode` or `reply`.
   */
  async listen(
    channel: ChannelId,
    member: M,
    mode: PresenceMode = "full",
    reply?: (snapshot: PresenceSnapshot<E>) => string | Uint8Array,
  ): Promise<PresenceSnapshot<E> | undefined> {
    checkChannel(channel);
    checkMember(member);
    if (mode !== "full" && mode !== "count") throw new TypeError(`mode must be "full" or "count", got ${describe(mode)}`);
    if (reply !== undefined) checkFunction("reply", reply, "(snapshot) => frame");
    const group = this.#group(channel);
    group.adding++;
    try {
      // the turn's changes go to the listeners there are now, and are in the snapshot
      for (await group.idle(); !group.gather.empty; await group.idle()) this.#send(channel, group);
    } finally {
      group.adding--;
    }
    const { full, count } = group;
    const before = this.#entriesOf(channel);
    if (this.#listeners.count(full) === 0) group.overflow = before.size > this.#options.max;
    let snapshot: PresenceSnapshot<E>;
    if (mode === "full" && !group.overflow && before.size <= this.#options.max) snapshot = { entries: [...before.values()] };
    else {
      if (mode === "full") group.overflow = true;
      snapshot = { count: this.#countOf(before.values()) };
    }
    const [into, other] = mode === "full" ? [full, count] : [count, full];
    if (!this.#listeners.join(into, member) && !this.#listeners.member(into, member)) {
      this.#release(channel);
      return undefined;
    }
    this.#listeners.leave(other, member);
    if (reply !== undefined) await this.#listeners.send(member, reply(snapshot));
    return snapshot;
  }

  /**
   * Stops `member` listening to `channel`.
   * @returns false if it was not listening. @throws {TypeError} for a bad `channel` or `member`.
   */
  unlisten(channel: ChannelId, member: M): boolean {
    const group = this.#groups.get(checkChannel(channel));
    checkMember(member);
    if (group === undefined) return false;
    return this.#listeners.leave(group.full, member) || this.#listeners.leave(group.count, member);
  }

  /**
   * Calls `watcher` with `channel`'s diff once per event-loop turn in which it changed (not split
   * into frames). A snapshot taken with `entries` when it is added, then the diffs, give the
   * entries at every moment. A watcher that throws has its error rethrown in a later tick.
   * @returns a function that removes it. @throws {TypeError} for a bad `channel` or `watcher`.
   */
  watch(channel: ChannelId, watcher: (diff: PresenceDiff<E>) => void): () => void {
    checkFunction("watcher", watcher, "(diff) => void");
    const group = this.#group(checkChannel(channel));
    group.watchers.add(watcher);
    return () => {
      if (group.watchers.delete(watcher)) this.#release(channel);
    };
  }

  /**
   * Gives `channel`'s listeners a fresh start, for a store whose entries went stale once it knows them again: full-list
   * listeners a `members` frame of the entries now (counts above `max`) with the turn's changes folded in (watchers get
   * them as a diff), count listeners the counts even unchanged. @throws {TypeError} for a bad `channel`.
   */
  refresh(channel: ChannelId): void {
    const group = this.#groups.get(checkChannel(channel));
    if (group === undefined) return;
    this.#dirty.delete(channel);
    group.tell(group.gather.take());
    group.overflow = this.#channels.count(channel) > this.#options.max;
    if (!group.overflow) this.#fan(group, group.full, this.#options.frames.members(channel, [...this.#entriesOf(channel).values()]));
    group.lastCount = undefined;
    if (group.overflow || this.#listeners.count(group.count) > 0) this.#countSoon(channel, group);
  }

  /** Stops every listener and watcher, and resolves once the frames already called are written. */
  async close(): Promise<void> {
    for (const group of this.#groups.values()) group.dispose();
    this.#groups.clear();
    this.#byId.clear();
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    await this.#listeners.close();
  }

  #group(channel: ChannelId): Group<M, E, PresenceDiff<E>> {
    let group = this.#groups.get(channel);
    if (group !== undefined) return group;
    const full = this.#nextId;
    this.#nextId += 2;
    const stop = this.#channels.observe(channel, (_channel, member, meta, cause) => this.#changed(channel, member, meta, cause));
    group = new Group<M, E, PresenceDiff<E>>(full, stop);
    this.#groups.set(channel, group);
    this.#byId.set(full, channel).set(full + 1, channel);
    return group;
  }

  /** Forgets `channel` once nobody listens, watches or is being added: it is no longer observed. */
  #release(channel: ChannelId | undefined): void {
    const group = channel === undefined ? undefined : this.#groups.get(channel);
    if (channel === undefined || group === undefined || group.adding > 0 || group.watchers.size > 0) return;
    if (this.#listeners.count(group.full) > 0 || this.#listeners.count(group.count) > 0) return;
    group.dispose();
    this.#groups.delete(channel);
    this.#byId.delete(group.full);
    this.#byId.delete(group.count);
    this.#dirty.delete(channel);
  }

  #changed(channel: ChannelId, member: M, meta: Meta, cause: MembershipCause): void {
    const group = this.#groups.get(channel);
    if (group === undefined) return;
    const entry = this.#options.entry(member, meta);
    if (cause === "join") group.gather.join(member, entry);
    else group.gather.leave(member, entry);
    this.#dirty.add(channel);
    this.#immediate ??= setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#immediate = undefined;
    for (const channel of this.#dirty) {
      this.#dirty.delete(channel);
      const group = this.#groups.get(channel);
      if (group !== undefined) this.#send(channel, group);
    }
  };

  /** Sends the turn's diff of `channel` to its watchers and listeners. */
  #send(channel: ChannelId, group: Group<M, E, PresenceDiff<E>>): void {
    const diff = group.gather.take();
    if (!group.tell(diff)) return;
    const { frames, max } = this.#options;
    const over = this.#channels.count(channel) > max;
    if (this.#listeners.count(group.full) === 0) group.overflow = over;
    else if (group.overflow && !over) {
      group.overflow = false;
      this.#fan(group, group.full, frames.members(channel, [...this.#entriesOf(channel).values()]));
    } else if (over) group.overflow = true;
    else for (const frame of diffFrames(channel, diff, frames)) this.#fan(group, group.full, frame);
    if (group.overflow || this.#listeners.count(group.count) > 0) this.#countSoon(channel, group);
  }

  #countSoon(channel: ChannelId, group: Group<M, E, PresenceDiff<E>>): void {
    group.countSoon(this.#options.countInterval, () => this.#groups.get(channel) === group && this.#sendCount(channel, group));
  }

  #sendCount(channel: ChannelId, group: Group<M, E, PresenceDiff<E>>): void {
    const count = this.count(channel);
    if (sameCount(group.lastCount, count)) return;
    group.lastCount = count;
    group.lastCountAt = Date.now();
    const frame = this.#options.frames.count(channel, count);
    this.#fan(group, group.count, frame);
    if (group.overflow) this.#fan(group, group.full, frame);
  }

  #fan(group: Group<M, E, PresenceDiff<E>>, id: number, frame: string | Uint8Array): void {
    if (this.#listeners.count(id) > 0) group.track(this.#listeners.broadcast(id, frame));
  }

  #entriesOf(channel: ChannelId): Map<M, E> {
    const { entry } = this.#options;
    return this.#channels.reduce(channel, new Map<M, E>(), (map, { member, meta }) => map.set(member, entry(member, meta)));
  }

  #countOf(entries: Iterable<E>): PresenceCount {
    const all = [...entries];
    const user = this.#user;
    return { connections: all.length, users: user === undefined ? all.length : new Set(all.map(user)).size };
  }
}
