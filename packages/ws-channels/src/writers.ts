/** Settled once: a task starts in a microtask after it is handed to a writer. */
const STARTED = Promise.resolve();

/** A unit of work on one queue: resolves or rejects its own promise, never the pool. */
interface Task {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** A point several queues must all reach before `fire` runs; it holds no writer while it waits. */
interface Barrier {
  waiting: number;
  readonly queues: Queue[];
  readonly fire: () => void;
}

/** One shard's FIFO of tasks and barriers. */
interface Queue {
  readonly items: (Task | Barrier)[];
  /** A task of this queue is running: the next one waits. */
  running: boolean;
  /** In the ring, waiting for a writer. */
  ready: boolean;
  /** Its head barrier has counted it as arrived. */
  arrived: boolean;
}

const isBarrier = (item: Task | Barrier): item is Barrier => "fire" in item;

/**
 * The writer pool. Every shard is a FIFO queue; queues whose next task may run wait in a ring,
 * and a free writer takes the next queue of the ring (round robin), so a small channel's
 * broadcast never waits behind the whole of a large one. At most `size` tasks run at once;
 * `size` grows by one per waiting queue up to `maxWriters` and falls back to `writers` once
 * nothing waits. A task never starts inside the call that queued it, but in a later microtask, so
 * that what is queued in the same turn can join it first. Tasks of one queue run one at a time, in call order, which is
 * what keeps each member's order. A barrier (`after`) runs a function once every queue it names
 * has finished the tasks queued before it, and holds back their later tasks until then: a
 * barrier over a small and a large shard holds the small one until the large one gets there.
 */
export class WriterPool {
  readonly #writers: number;
  /** How many tasks may run at once now. */
  #size: number;
  /** Tasks handed to a writer and not finished. */
  #running = 0;
  readonly #maxWriters: number;
  readonly #queues = new WeakMap<object, Queue>();
  readonly #ring: Queue[] = [];
  #ringHead = 0;
  /** Tasks handed to a writer and not finished, the one run by `begin`/`end` included. */
  #busy = 0;
  /** The key whose task the caller runs itself, between `begin` and `end`. */
  #inline: object | undefined;
  /** Its queue, made only if something was queued or put a barrier on it meanwhile. */
  #inlineQueue: Queue | undefined;

  /**
   * @param writers tasks run at once when idle (an integer >= 1, checked by the caller).
   * @param maxWriters the most tasks run at once while others wait (an integer >= writers).
   */
  constructor(writers: number, maxWriters: number) {
    this.#writers = writers;
    this.#maxWriters = maxWriters;
    this.#size = writers;
  }

  /**
   * Queues `task` on `key`'s queue; it runs once the queue's earlier items are done and a writer
   * is free. @returns the task's result; a task that throws rejects only its own promise.
   */
  run<T>(key: object, task: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const queue = this.#queue(key);
      queue.items.push({ run: task, resolve: resolve as (value: unknown) => void, reject });
      this.#advance(queue);
      this.#dispatch();
    });
  }

  /**
   * Runs `fire` as soon as every queue of `keys` has finished what was queued on it before this
   * call, synchronously if they all have already; their later tasks wait until `fire` has run.
   */
  after(keys: readonly object[], fire: () => void): void {
    const queues = [...new Set(keys.map((key) => this.#queue(key)))];
    if (queues.every((queue) => queue.items.length === 0 && !queue.running)) {
      fire();
      return;
    }
    const barrier: Barrier = { waiting: queues.length, queues, fire };
    for (const queue of queues) queue.items.push(barrier);
    for (const queue of queues) this.#advance(queue);
  }

  /** No task is running or waiting on any queue (so no barrier waits either). */
  get idle(): boolean {
    return this.#busy === 0 && this.#ringHead === this.#ring.length;
  }

  /**
   * For a task the caller runs itself, synchronously, right now: only when the pool is idle, marks
   * `key`'s queue as running until `end()`, so that what is called meanwhile (a barrier on that
   * queue, any other task) waits for it exactly as it would wait for a task of the pool.
   * @returns false, marking nothing, if the pool is not idle: then queue the task with `run`.
   */
  begin(key: object): boolean {
    if (!this.idle) return false;
    // Idle, every queue is empty: the key's queue is looked up (and marked running) only if a
    // call made meanwhile needs it, which keeps the common case to two field writes.
    this.#busy++;
    this.#inline = key;
    return true;
  }

  /** Ends the task `begin` started: what waited for it goes on. */
  end(): void {
    const queue = this.#inlineQueue;
    this.#inline = undefined;
    this.#inlineQueue = undefined;
    if (queue === undefined) this.#busy--;
    else this.#finished(queue);
    this.#dispatch();
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.#running;
  }

  /** How many queues have a task ready to run and wait for a writer. */
  get pending(): number {
    return this.#ring.length - this.#ringHead;
  }

  /** How many tasks may run at once now: between `writers` and `maxWriters`. */
  get size(): number {
    return this.#size;
  }

  #queue(key: object): Queue {
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { items: [], running: false, ready: false, arrived: false };
      this.#queues.set(key, queue);
    }
    if (key === this.#inline && this.#inlineQueue === undefined) {
      queue.running = true; // the caller is running this queue's task right now (`begin`)
      this.#inlineQueue = queue;
    }
    return queue;
  }

  /** Puts an idle queue whose head is a task into the ring; counts its arrival at a head barrier. */
  #advance(queue: Queue): void {
    if (queue.running || queue.ready) return;
    const head = queue.items[0];
    if (head === undefined) return;
    if (!isBarrier(head)) {
      queue.ready = true;
      this.#ring.push(queue);
      return;
    }
    if (queue.arrived) return;
    queue.arrived = true;
    if (--head.waiting > 0) return;
    try {
      head.fire();
    } finally {
      // Whatever `fire` did, the queues behind the barrier go on.
      for (const q of head.queues) {
        q.items.shift();
        q.arrived = false;
      }
      for (const q of head.queues) this.#advance(q);
      this.#dispatch();
    }
  }

  /** Hands ready queues to free writers, growing the pool while queues still wait. */
  #dispatch(): void {
    while (this.pending > 0) {
      if (this.#running >= this.#size) {
        if (this.#size >= this.#maxWriters) return;
        this.#size++;
      }
      const queue = this.#ring[this.#ringHead++] as Queue;
      if (this.#ringHead === this.#ring.length) {
        this.#ring.length = 0;
        this.#ringHead = 0;
      } else if (this.#ringHead > 1024 && this.#ringHead * 2 > this.#ring.length) {
        this.#ring.splice(0, this.#ringHead); // drop the consumed front now and then, not on every take
        this.#ringHead = 0;
      }
      queue.ready = false;
      queue.running = true;
      this.#busy++;
      this.#running++;
      const task = queue.items.shift() as Task;
      void STARTED.then(task.run)
        .then(task.resolve, task.reject)
        .then(() => {
          this.#running--;
          this.#finished(queue);
        });
    }
  }

  #finished(queue: Queue): void {
    queue.running = false;
    this.#busy--;
    this.#advance(queue);
    if (this.pending === 0) this.#size = this.#writers;
    this.#dispatch();
  }
}
