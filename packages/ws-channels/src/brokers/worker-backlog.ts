import type { Worker } from "node:cluster";
import type { BrokerToWorker } from "./cluster-protocol.js";

/** Options of `new WorkerBacklog()`: the bound on what one worker has not taken yet. */
export interface WorkerBacklogOptions {
  /**
   * The most messages handed to one worker's IPC channel and not yet written to it, each envelope
   * of a turn's batch counted as one. Default: 65,536.
   */
  maxPending?: number;
  /** The same bound in bytes (as the sender counts them: an envelope's length). Default: 64 MiB. */
  maxPendingBytes?: number;
}

/** What one worker has not taken yet, and the envelopes queued for it this turn. */
interface Pending {
  messages: number;
  bytes: number;
  turn: Uint8Array[];
  turnBytes: number;
}

/** Told how many queued envelopes one message carried, once it is written to the channel (null) or could not be. */
export type Written = (envelopes: number, error: Error | null) => void;

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
  /** Workers with envelopes queued this turn. */
  readonly #queued = new Set<Worker>();
  readonly #written: Written | undefined;

  /**
   * @param written told of the envelopes `queue` took, once each turn's message is written.
   * @throws {RangeError} if `maxPending` or `maxPendingBytes` is not an integer >= 1.
   */
  constructor(options: WorkerBacklogOptions = {}, written?: Written) {
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const { maxPending = 65_536, maxPendingBytes = 64 * 1024 * 1024 } = options;
    for (const [name, value] of Object.entries({ maxPending, maxPendingBytes }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1, got ${String(value)}`);
    this.#maxPending = maxPending;
    this.#maxPendingBytes = maxPendingBytes;
    this.#written = written;
  }

  /**
   * Sends `message` to `worker`, unless its IPC channel is closed or its backlog is past the bound.
   * @param bytes what the message counts for against `maxPendingBytes`.
   * @param written called once the message is written to the channel (null) or could not be (an Error).
   * @returns false if the message was dropped (and `written` is not called).
   */
  send(worker: Worker, message: object, bytes: number, written?: (error: Error | null) => void): boolean {
    const pending = this.#room(worker, bytes);
    if (pending === undefined) return false;
    pending.messages++;
    pending.bytes += bytes;
    // With a callback, a channel closing under the send is reported here instead of an 'error' event.
    worker.send(message, undefined, (error: Error | null) => {
      pending.messages--;
      pending.bytes -= bytes;
      written?.(error);
    });
    return true;
  }

  /**
   * Queues `envelope` for `worker`: the turn's envelopes for one worker leave as one message
   * (`msgs`) when the turn ends, with one callback. An envelope counts against the bound as one
   * message of its own.
   * @returns false if it was dropped (the channel is closed, or the worker is past its bound).
   */
  queue(worker: Worker, envelope: Uint8Array): boolean {
    const pending = this.#room(worker, envelope.byteLength);
    if (pending === undefined) return false;
    if (this.#queued.size === 0) process.nextTick(this.#flush);
    this.#queued.add(worker);
    pending.messages++;
    pending.bytes += envelope.byteLength;
    pending.turn.push(envelope);
    pending.turnBytes += envelope.byteLength;
    return true;
  }

  /** The worker's counts if one more message of `bytes` fits under its bound. */
  #room(worker: Worker, bytes: number): Pending | undefined {
    if (!worker.isConnected()) return undefined;
    let pending = this.#pending.get(worker);
    if (pending === undefined) {
      pending = { messages: 0, bytes: 0, turn: [], turnBytes: 0 };
      this.#pending.set(worker, pending);
    }
    if (pending.messages >= this.#maxPending || pending.bytes + bytes > this.#maxPendingBytes) return undefined;
    return pending;
  }

  readonly #flush = (): void => {
    for (const worker of this.#queued) {
      const pending = this.#pending.get(worker) as Pending;
      const { turn: envelopes, turnBytes: bytes } = pending;
      pending.turn = [];
      pending.turnBytes = 0;
      const message: BrokerToWorker = { wsChannels: "msgs", envelopes };
      const done = (error: Error | null): void => {
        pending.messages -= envelopes.length;
        pending.bytes -= bytes;
        this.#written?.(envelopes.length, error);
      };
      if (worker.isConnected()) worker.send(message, undefined, done);
      else done(new Error("the worker's IPC channel closed"));
    }
    this.#queued.clear();
  };

  /** What `worker` has been handed and not yet taken. */
  pending(worker: Worker): { messages: number; bytes: number } {
    const { messages = 0, bytes = 0 } = this.#pending.get(worker) ?? {};
    return { messages, bytes };
  }
}
