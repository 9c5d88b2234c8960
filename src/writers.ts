import pLimit, { type LimitFunction } from "p-limit";

const settle = (): void => undefined;

/**
 * The writer pool: runs tasks with bounded concurrency (p-limit), `writers` at once, growing one
 * writer at a time up to `maxWriters` while tasks wait and back to `writers` once nothing waits.
 *
 * Tasks given the same queue key run one after another, in the order `run` was called; tasks of
 * different keys run side by side. A broadcast uses a shard as the key, so every member, which
 * always sits in the same shard of a channel, gets that channel's broadcasts in call order.
 */
export class WriterPool {
  readonly #limit: LimitFunction;
  readonly #writers: number;
  readonly #maxWriters: number;
  readonly #tails = new WeakMap<object, Promise<void>>();

  /**
   * @param writers tasks run at once when idle (integer >= 1).
   * @param maxWriters the most tasks run at once while others wait (integer >= writers).
   * @throws {RangeError} for a count that breaks those rules.
   */
  constructor(writers: number, maxWriters: number) {
    if (!Number.isInteger(writers) || writers < 1) {
      throw new RangeError(`writers must be an integer >= 1, got ${String(writers)}`);
    }
    if (!Number.isInteger(maxWriters) || maxWriters < writers) {
      throw new RangeError(`maxWriters must be an integer >= writers (${writers}), got ${String(maxWriters)}`);
    }
    this.#writers = writers;
    this.#maxWriters = maxWriters;
    this.#limit = pLimit(writers);
  }

  /**
   * Runs `task` once every earlier task of `queue` has settled and a writer is free.
   * @returns the task's result; a task that throws rejects only its own promise.
   */
  run<T>(queue: object, task: () => T | Promise<T>): Promise<T> {
    const previous = this.#tails.get(queue);
    const result = previous === undefined ? this.#submit(task) : previous.then(() => this.#submit(task));
    const tail = result.then(settle, settle);
    this.#tails.set(queue, tail);
    void tail.then(() => {
      if (this.#tails.get(queue) === tail) this.#tails.delete(queue);
    });
    return result;
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.#limit.activeCount;
  }

  /** How many tasks wait for a writer (not counting those that wait for their queue). */
  get pending(): number {
    return this.#limit.pendingCount;
  }

  /** How many tasks may run at once now: between `writers` and `maxWriters`. */
  get size(): number {
    return this.#limit.concurrency;
  }

  #submit<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.#limit(task);
    if (this.#limit.pendingCount > 0 && this.#limit.concurrency < this.#maxWriters) {
      this.#limit.concurrency++;
    }
    void result.then(this.#shrink, this.#shrink);
    return result;
  }

  readonly #shrink = (): void => {
    if (this.#limit.pendingCount === 0 && this.#limit.concurrency !== this.#writers) {
      this.#limit.concurrency = this.#writers;
    }
  };
}
