import { type FanOut, writeShard } from "./fanout.js";
import type { BroadcastResult, SlowConsumerPolicy } from "./options.js";
import type { Shard } from "./table.js";
import { closeSlow, DELIVERED, FAILED, type Member, type Payload, write } from "./transports/index.js";
import { TurnClock } from "./turn.js";
import { WriterPool } from "./writers.js";

/** The most broadcasts written together in one walk of a shard. */
const MAX_BATCH = 64;

/** How `Delivery` writes: the writer pool's bounds and the slow-consumer rule. */
export interface DeliveryOptions {
  readonly writers: number;
  readonly maxWriters: number;
  readonly highWaterMark: number;
  readonly slowConsumer: SlowConsumerPolicy;
  readonly sliceMs: number;
  /** Takes a member out of every channel: it failed, or was closed as a slow consumer. */
  readonly leave: (member: Member) => void;
}

/**
 * This node's writing: fans a payload out over a channel's shards on the writer pool, batching the
 * broadcasts queued on a shard, and writes single messages in order with them. It knows shards,
 * not channels: `Channels` looks them up in the table.
 */
export class Delivery {
  readonly pool: WriterPool;
  /** Broadcasts called and not yet settled. */
  readonly inFlight = new Set<Promise<unknown>>();
  /** Totals over every fan-out so far. */
  readonly totals = { delivered: 0, failed: 0, dropped: 0 };
  /** Per shard, the batch of broadcasts queued and not yet taken by a writer. */
  readonly #batches = new WeakMap<Shard<Member, unknown>, { jobs: FanOut[]; done: Promise<void> }>();
  readonly #clock: TurnClock;
  readonly #highWaterMark: number;
  readonly #slowConsumer: SlowConsumerPolicy;
  readonly #leave: (member: Member) => void;

  /** @throws {RangeError} for writer counts the pool refuses. */
  constructor(options: DeliveryOptions) {
    this.pool = new WriterPool(options.writers, options.maxWriters);
    this.#clock = new TurnClock(options.sliceMs);
    this.#highWaterMark = options.highWaterMark;
    this.#slowConsumer = options.slowConsumer;
    this.#leave = options.leave;
  }

  /**
   * Writes `payload` to every member of `shards` but `except`.
   * @returns a promise of the counts, settled once every shard is written; never rejects.
   */
  fanOut(shards: readonly Shard<Member, unknown>[] | undefined, payload: Payload, except: Member | undefined): Promise<BroadcastResult> {
    const result: BroadcastResult = { delivered: 0, failed: 0, dropped: 0 };
    if (shards === undefined) return Promise.resolve(result);
    const job: FanOut = {
      payload,
      except,
      highWaterMark: this.#highWaterMark,
      counts: result,
      failed: this.#dropFailed,
      slow: this.#dropSlow,
    };
    const done = Promise.all(shards.map((shard) => this.#enqueue(shard, job)));
    this.inFlight.add(done);
    const settle = (): void => {
      this.inFlight.delete(done);
      this.totals.delivered += result.delivered;
      this.totals.failed += result.failed;
      this.totals.dropped += result.dropped;
    };
    done.then(settle, settle);
    return done.then(() => result);
  }

  /**
   * Writes `payload` to `member` once every broadcast queued on `shards` (the member's) is
   * written, ahead of any queued after.
   * @returns whether it was written (see `Channels.send`).
   */
  send(member: Member, shards: readonly Shard<Member, unknown>[], payload: Payload): Promise<boolean> {
    for (const shard of shards) this.#batches.delete(shard); // later broadcasts queue behind this message
    return new Promise((resolve) => {
      this.pool.after(shards, () => {
        const outcome = write(member, payload, this.#highWaterMark, this.#dropFailed);
        if (outcome === FAILED) this.#dropFailed(member);
        else if (outcome !== DELIVERED) this.#dropSlow(member);
        resolve(outcome === DELIVERED);
      });
    });
  }

  /** A member that was closed or whose write threw (or whose `send` promise rejected later). */
  readonly #dropFailed = (member: Member): void => this.#leave(member);

  /** A slow consumer: under the "close" policy it leaves and is closed. @returns whether it stays. */
  readonly #dropSlow = (member: Member): boolean => {
    if (this.#slowConsumer !== "close") return true;
    this.#leave(member);
    closeSlow(member);
    return false;
  };

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
    const done = this.pool.run(shard, () => {
      if (this.#batches.get(shard)?.jobs === jobs) this.#batches.delete(shard);
      return writeShard(shard, jobs, this.#clock);
    });
    this.#batches.set(shard, { jobs, done });
    return done;
  }
}
