import { type FanOut, SLICE_CHECK, type WriteRules, writeNow, writeShard } from "./fanout.js";
import type { SlowConsumerPolicy } from "./options.js";
import type { Shard, Sharded } from "./shards.js";
import { closeSlow, DELIVERED, FAILED, type Member, type Payload, write } from "./transports/index.js";
import { TurnClock } from "./turn.js";
import type { BroadcastResult, PoolStats } from "./types.js";
import { WriterPool } from "./writers.js";

/** The most broadcasts written together in one walk of a shard. */
const MAX_BATCH = 64;

/** The broadcasts queued on one shard and not yet taken by its writer. */
interface Batch {
  readonly jobs: FanOut[];
  readonly done: Promise<void>;
}

/** How the dispatcher writes: pool sizes, the turn budget, the slow-consumer rule, and how a member leaves. */
export interface DispatchOptions {
  writers: number;
  maxWriters: number;
  sliceMs: number;
  highWaterMark: number;
  slowConsumer: SlowConsumerPolicy;
  /** Takes a failed member, or a slow consumer under the "close" policy, out of every channel. */
  leave: (member: Member, cause: "failed" | "slow") => void;
}

/**
 * Turns broadcasts and sends into writes, in order. The common case, a one-shard channel of at
 * most SLICE_CHECK members while no writer is busy anywhere, is written at once, inside the
 * call, as the writer pool would have written it next; everything else becomes shard tasks on
 * the pool, where broadcasts queued on one shard are written together as a batch. It keeps the
 * counts of every broadcast and knows which are still in flight.
 */
export class Dispatcher {
  readonly #pool: WriterPool;
  readonly #clock: TurnClock;
  readonly #rules: WriteRules;
  /** Per shard, the batch of broadcasts queued and not yet taken by a writer. */
  readonly #batches = new WeakMap<Shard<Member, unknown>, Batch>();
  readonly #totals: BroadcastResult = { delivered: 0, failed: 0, dropped: 0 };
  #inFlight = 0;
  #drained: (() => void)[] = [];

  constructor({ writers, maxWriters, sliceMs, highWaterMark, slowConsumer, leave }: DispatchOptions) {
    this.#pool = new WriterPool(writers, maxWriters);
    this.#clock = new TurnClock(sliceMs);
    this.#rules = {
      highWaterMark,
      failed: (member) => leave(member, "failed"),
      slow: (member) => {
        if (slowConsumer !== "close") return true;
        leave(member, "slow");
        closeSlow(member);
        return false;
      },
    };
  }

  /**
   * Writes `payload` to every member of `channel` (its shards; undefined for one with no members) but `except`.
   * @returns the broadcast's counts, already settled when it was written at once.
   */
  broadcast(channel: Sharded<Member, unknown> | undefined, payload: Payload, except: Member | undefined): Promise<BroadcastResult> {
    const counts: BroadcastResult = { delivered: 0, failed: 0, dropped: 0 };
    if (channel === undefined) return Promise.resolve(counts);
    if (this.#atOnce(channel, payload, except, counts)) {
      this.#add(counts);
      return Promise.resolve(counts);
    }
    return this.#queue(channel, { payload, except, counts });
  }

  /** `broadcast` of a message from another node, whose result nobody awaits: written at once, it makes no counts or promise of its own. */
  deliver(channel: Sharded<Member, unknown>, payload: Payload): void {
    if (!this.#atOnce(channel, payload, undefined, this.#totals))
      void this.#queue(channel, { payload, except: undefined, counts: { delivered: 0, failed: 0, dropped: 0 } });
  }

  /** Queues `job` on every shard of `channel`. @returns its counts once every shard has written it. */
  #queue(channel: Sharded<Member, unknown>, job: FanOut): Promise<BroadcastResult> {
    const counts = job.counts;
    let done: Promise<unknown>;
    if (!channel.sharded) done = this.#enqueue(channel, job);
    else {
      const each: Promise<void>[] = [];
      for (const shard of channel.shards) each.push(this.#enqueue(shard, job));
      done = Promise.all(each);
    }
    this.#inFlight++;
    return done.then(
      () => this.#settle(counts),
      (error: unknown) => {
        this.#settle(counts);
        throw error;
      },
    );
  }

  /**
   * Writes the broadcast inside the call, counted in `counts`, if the pool would start this task
   * next and finish it within one slice's writes: nothing queued or running anywhere, so no order,
   * batch or barrier can be overtaken. Bounded like one `ws.send` loop of the caller's own, it needs
   * no look at the clock. @returns false, having written nothing, otherwise.
   */
  #atOnce(channel: Sharded<Member, unknown>, payload: Payload, except: Member | undefined, counts: BroadcastResult): boolean {
    if (channel.sharded || channel.members.size > SLICE_CHECK || !this.#pool.begin(channel)) return false;
    try {
      writeNow(channel.members, payload, except, counts, this.#rules);
    } finally {
      this.#pool.end();
    }
    return true;
  }

  /**
   * Writes `payload` to `member` once every shard of `shards` (the member's shard in each of its
   * channels) has written what was queued on it before, and holds their later broadcasts behind it.
   * @returns true once written; false if the member failed or was skipped or closed as slow.
   */
  send(member: Member, shards: readonly Shard<Member, unknown>[], payload: Payload): Promise<boolean> {
    for (const shard of shards) this.#batches.delete(shard); // later broadcasts queue behind this message
    const rules = this.#rules;
    return new Promise((resolve) => {
      this.#pool.after(shards, () => {
        const outcome = write(member, payload, rules.highWaterMark, rules.failed);
        if (outcome === FAILED) rules.failed(member);
        else if (outcome !== DELIVERED) rules.slow(member);
        resolve(outcome === DELIVERED);
      });
    });
  }

  /** Broadcasts called and not yet settled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Totals over every settled broadcast. */
  get totals(): Readonly<BroadcastResult> {
    return this.#totals;
  }

  /** The writer pool's state. */
  get pool(): PoolStats {
    const pool = this.#pool;
    return { active: pool.active, pending: pool.pending, size: pool.size };
  }

  /** Resolves once every broadcast called so far has settled. */
  drained(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #settle(counts: BroadcastResult): BroadcastResult {
    this.#add(counts);
    if (--this.#inFlight === 0) {
      const waiting = this.#drained;
      this.#drained = [];
      for (const resolve of waiting) resolve();
    }
    return counts;
  }

  #add(counts: BroadcastResult): void {
    const totals = this.#totals;
    totals.delivered += counts.delivered;
    totals.failed += counts.failed;
    totals.dropped += counts.dropped;
  }

  /**
   * Adds `job` to the shard's open batch: the broadcasts queued on a shard before its writer
   * starts are written together, member by member. A new batch opens once the writer has taken
   * the last one, or once `send` has put a barrier behind it.
   * @returns a promise that settles when the batch holding `job` is written.
   */
  #enqueue(shard: Shard<Member, unknown>, job: FanOut): Promise<void> {
    const open = this.#batches.get(shard);
    if (open !== undefined) {
      open.jobs.push(job);
      // A batch waits while its shard is busy; past MAX_BATCH the next broadcasts start another,
      // so one member's socket never gets more than MAX_BATCH messages from one walk of the shard.
      if (open.jobs.length >= MAX_BATCH) this.#batches.delete(shard);
      return open.done;
    }
    const jobs = [job];
    // The task runs later (the pool starts tasks asynchronously): the batch is in the map by then.
    const done = this.#pool.run(shard, () => {
      if (this.#batches.get(shard)?.jobs === jobs) this.#batches.delete(shard);
      return writeShard(shard, jobs, this.#clock, this.#rules);
    });
    this.#batches.set(shard, { jobs, done });
    return done;
  }
}
