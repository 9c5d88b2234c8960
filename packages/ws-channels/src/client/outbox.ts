type Timer = ReturnType<typeof setTimeout>;

interface Queued {
  readonly frames: readonly string[];
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: Timer;
}

/**
 * What waits for a connection: at most `max` messages, each for at most `timeout` ms; past
 * either bound the promise rejects, so that an offline client never buffers without end.
 */
export class Outbox {
  readonly #max: number;
  readonly #timeout: number;
  #queue: Queued[] = [];

  constructor(max: number, timeout: number) {
    this.#max = max;
    this.#timeout = timeout;
  }

  /**
   * Sends `frames` (one message's frames, kept together) at once through `send`, or queues them.
   * @returns a promise that resolves once they are written to an open connection, and rejects
   * when the queue is full, after the timeout, or when the client closes first.
   */
  push(frames: readonly string[], send: (text: string) => boolean): Promise<void> {
    if (this.#queue.length === 0 && sendAll(frames, send)) return Promise.resolve();
    if (this.#queue.length >= this.#max) {
      return Promise.reject(new Error(`offline queue full: ${this.#max} messages already wait for a connection`));
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#queue = this.#queue.filter((queued) => queued !== entry);
        reject(new Error(`not sent: no connection within ${this.#timeout} ms`));
      }, this.#timeout);
      const entry: Queued = { frames, resolve, reject, timer };
      this.#queue.push(entry);
    });
  }

  /** Sends what waits, in order, while `send` succeeds. */
  flush(send: (text: string) => boolean): void {
    while (this.#queue.length > 0) {
      const entry = this.#queue[0] as Queued;
      if (!sendAll(entry.frames, send)) return;
      this.#queue.shift();
      clearTimeout(entry.timer);
      entry.resolve();
    }
  }

  /** Rejects everything waiting with `error`. */
  rejectAll(error: Error): void {
    for (const entry of this.#queue.splice(0)) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
  }
}

function sendAll(frames: readonly string[], send: (text: string) => boolean): boolean {
  for (const frame of frames) if (!send(frame)) return false;
  return true;
}

/** Calls waiting for the reply that echoes their `req`. */
export class Replies {
  readonly #waiting = new Map<number, { resolve: (frame: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  #next = 0;

  /** A new `req`, unique on this client. */
  next(): number {
    return ++this.#next;
  }

  /** Waits for the reply to `req`: an `error` frame rejects, any other resolves. */
  wait(req: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.#waiting.set(req, { resolve, reject }));
  }

  /** Settles the call waiting for `frame.req`, if any. @returns whether one was. */
  settle(frame: Record<string, unknown>): boolean {
    const waiting = typeof frame.req === "number" ? this.#waiting.get(frame.req) : undefined;
    if (waiting === undefined) return false;
    this.#waiting.delete(frame.req as number);
    if (typeof frame.error === "string") waiting.reject(Object.assign(new Error(frame.error), { reply: frame }));
    else waiting.resolve(frame);
    return true;
  }

  /** Rejects every call still waiting (their messages may have been handled: the reply was lost). */
  rejectAll(error: Error): void {
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
  }
}
