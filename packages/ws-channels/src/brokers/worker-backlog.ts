import type { Worker } from "node:cluster";

/** Options of `new WorkerBacklog()`: the bound on what one worker has not taken yet. */
export interface WorkerBacklogOptions {
  /** The most messages handed to one worker's IPC channel and not yet written to it. Default: 65,536. */
  maxPending?: number;
  /** The same bound in bytes (as the sender counts them: an envelope's length). Default: 64 MiB. */
  maxPendingBytes?: number;
}

/** What one worker has not taken yet. */
interface Pending {
  messages: number;
  bytes: number;
}

/**
 * A cluster primary's bound on each worker's IPC backlog. `worker.send()` never refuses: when a
 * worker stops reading (busy, stopped, swapping) its messages pile up in the primary's memory, and
 * one stuck worker could take down the primary and with it every worker. Sent through here, a
 * message past the worker's bound is dropped instead, for the caller to count.
 */
export class WorkerBacklog {
  readonly #maxPending: number;
  readonly #maxPendingBytes: number;
  readonly #pending = new WeakMap<Worker, Pending>();

  /** @throws {RangeError} if `maxPending` or `maxPendingBytes` is not an integer >= 1. */
  constructor(options: WorkerBacklogOptions = {}) {
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const { maxPending = 65_536, maxPendingBytes = 64 * 1024 * 1024 } = options;
    for (const [name, value] of Object.entries({ maxPending, maxPendingBytes }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1, got ${String(value)}`);
    this.#maxPending = maxPending;
    this.#maxPendingBytes = maxPendingBytes;
  }

  /**
   * Sends `message` to `worker`, unless its IPC channel is closed or its backlog is past the bound.
   * @param bytes what the message counts for against `maxPendingBytes`.
   * @param written called once the message is written to the channel (null) or could not be (an Error).
   * @returns false if the message was dropped (and `written` is not called).
   */
  send(worker: Worker, message: object, bytes: number, written?: (error: Error | null) => void): boolean {
    if (!worker.isConnected()) return false;
    let pending = this.#pending.get(worker);
    if (pending === undefined) {
      pending = { messages: 0, bytes: 0 };
      this.#pending.set(worker, pending);
    }
    if (pending.messages >= this.#maxPending || pending.bytes + bytes > this.#maxPendingBytes) return false;
    pending.messages++;
    pending.bytes += bytes;
    const mine = pending;
    // With a callback, a channel closing under the send is reported here instead of an 'error' event.
    worker.send(message, undefined, (error: Error | null) => {
      mine.messages--;
      mine.bytes -= bytes;
      written?.(error);
    });
    return true;
  }

  /** What `worker` has been handed and not yet taken. */
  pending(worker: Worker): { messages: number; bytes: number } {
    const { messages = 0, bytes = 0 } = this.#pending.get(worker) ?? {};
    return { messages, bytes };
  }
}
