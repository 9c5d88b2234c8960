import type { ChannelId, MembershipCause, MembershipListener } from "./types.js";

/** Told of each membership a leave removes, with its meta, as the table removes it. */
export type Left<M, Meta> = (channel: ChannelId, member: M, meta: Meta) => void;

/** A listener and the number of the first change it is told: the changes made after it was added. */
interface Entry<Meta, M> {
  readonly listener: MembershipListener<Meta, M>;
  readonly from: number;
}

/** Slots per queued change: channel, member, meta, cause. */
const SLOTS = 4;

/**
 * The membership listeners of one `Channels`, of one channel or of every channel, and the changes
 * not yet told. A change is queued as the table makes it and told once the call that made it has
 * finished changing the table (`flush`). Changes are told in the order they were made, each to the
 * listeners added before it: a change a listener makes while it is told of another (a join, a
 * leave) is queued and told after the one in hand, to every listener, so that each sees every
 * change in one order; and a listener added then is told only of changes made after it (a
 * snapshot it takes when added, with `reduce`, already holds the earlier ones).
 */
export class Observers<Meta, M> {
  readonly #every = new Set<Entry<Meta, M>>();
  readonly #byChannel = new Map<ChannelId, Set<Entry<Meta, M>>>();
  /** Changes not yet told, SLOTS slots each, so that queueing one allocates no object. */
  readonly #queue: unknown[] = [];
  /** Changes queued so far: the number of the next one. */
  #queued = 0;
  #flushing = false;
  #size = 0;

  /** For `Table.leave` and `Table.leaveAll`: queues each membership they remove, with the cause. */
  readonly left: Readonly<Record<Exclude<MembershipCause, "join">, Left<M, Meta>>> = {
    leave: (channel, member, meta) => this.queue(channel, member, meta, "leave"),
    close: (channel, member, meta) => this.queue(channel, member, meta, "close"),
    failed: (channel, member, meta) => this.queue(channel, member, meta, "failed"),
    slow: (channel, member, meta) => this.queue(channel, member, meta, "slow"),
  };

  /**
   * Adds `listener`, for `channel`'s changes or, with `channel` undefined, every channel's.
   * @returns a function that removes it (calling it again does nothing).
   */
  add(channel: ChannelId | undefined, listener: MembershipListener<Meta, M>): () => void {
    const entry: Entry<Meta, M> = { listener, from: this.#queued };
    let set = this.#every;
    if (channel !== undefined) {
      set = this.#byChannel.get(channel) ?? new Set();
      this.#byChannel.set(channel, set);
    }
    set.add(entry);
    this.#size++;
    return () => {
      if (!set.delete(entry)) return;
      this.#size--;
      if (channel !== undefined && set.size === 0 && this.#byChannel.get(channel) === set) this.#byChannel.delete(channel);
    };
  }

  /** How many listeners there are. */
  get size(): number {
    return this.#size;
  }

  /** Queues a change, to be told at the next `flush`. */
  queue(channel: ChannelId, member: M, meta: Meta, cause: MembershipCause): void {
    this.#queue.push(channel, member, meta, cause);
    this.#queued++;
  }

  /**
   * Tells every queued change, in order, unless a flush is already under way (it tells them).
   * A listener that throws stops neither the others nor the change: its error is thrown again in
   * a later tick, an uncaught exception there, as `EventTarget` does with its listeners' errors.
   */
  flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    const queue = this.#queue;
    try {
      for (let i = 0; i < queue.length; i += SLOTS) {
        const number = this.#queued - (queue.length - i) / SLOTS;
        const set = this.#byChannel.get(queue[i] as ChannelId);
        if (set !== undefined) this.#tell(set, number, queue, i);
        if (this.#every.size !== 0) this.#tell(this.#every, number, queue, i);
      }
    } finally {
      queue.length = 0;
      this.#flushing = false;
    }
  }

  #tell(set: Set<Entry<Meta, M>>, number: number, queue: unknown[], i: number): void {
    const channel = queue[i] as ChannelId;
    const member = queue[i + 1] as M;
    const meta = queue[i + 2] as Meta;
    const cause = queue[i + 3] as MembershipCause;
    for (const { listener, from } of set) {
      if (number < from) continue;
      try {
        listener(channel, member, meta, cause);
      } catch (error) {
        process.nextTick(rethrow, error);
      }
    }
  }
}

function rethrow(error: unknown): never {
  throw error;
}
