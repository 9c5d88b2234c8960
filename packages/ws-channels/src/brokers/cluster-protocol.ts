import cluster, { type Worker } from "node:cluster";
import type { ChannelId } from "../types.js";

/**
 * Everything ws-channels says over node:cluster's IPC channel (the broker, a server's id claims
 * and node messages, a worker's start-up report) is one object tagged `wsChannels`, whose value
 * names its kind. The channel is the application's too: an object without the tag is left alone.
 * Each side has one dispatcher (one 'message' listener) handing each kind to the one module that
 * handles it; modules register their kinds with `fromWorkers` (in the primary) or `fromPrimary`
 * (in a worker), and a kind registered twice is a bug, so it throws.
 */
export interface Tagged {
  readonly wsChannels: string;
}

/** What `ClusterBroker` says to the primary. */
export type BrokerToPrimary =
  | { wsChannels: "hello" }
  | { wsChannels: "sub"; channel: ChannelId; id: number }
  | { wsChannels: "unsub"; channel: ChannelId }
  /** A turn's broadcasts, in publish order: `envelopes[i]` for `channels[i]`. */
  | { wsChannels: "pubs"; channels: ChannelId[]; envelopes: Uint8Array[] };

/** What `setupPrimary` answers; `welcome` carries bytes as a probe: they arrive as bytes only over "advanced" serialization. */
export type BrokerToWorker =
  | { wsChannels: "welcome"; probe: Uint8Array }
  | { wsChannels: "ack"; id: number }
  /** The envelopes routed to this worker in one turn of the primary, in the order they came. */
  | { wsChannels: "msgs"; envelopes: Uint8Array[] };

/** The handlers of one module, one per kind of the message union `M`. */
export type Handlers<M extends Tagged, Args extends unknown[]> = {
  [K in M["wsChannels"]]: (message: Extract<M, { wsChannels: K }>, ...args: Args) => void;
};

type Handler<Args extends unknown[]> = (message: Tagged, ...args: Args) => void;

/** Whether `message` is one of ws-channels', not the application's. */
function isTagged(message: unknown): message is Tagged {
  return message !== null && typeof message === "object" && typeof (message as { wsChannels?: unknown }).wsChannels === "string";
}

/** Kinds to handlers, with the one IPC listener attached while any kind is registered. */
class Dispatcher<Args extends unknown[]> {
  readonly #handlers = new Map<string, Handler<Args>>();
  readonly #attach: (active: boolean) => void;

  constructor(attach: (active: boolean) => void) {
    this.#attach = attach;
  }

  register<M extends Tagged>(handlers: Handlers<M, Args>): () => void {
    const kinds = Object.keys(handlers);
    for (const kind of kinds)
      if (this.#handlers.has(kind))
        throw new Error(
          `IPC messages of kind "${kind}" already have a handler here (one ClusterBroker per worker, one setupPrimary per primary)`,
        );
    if (this.#handlers.size === 0) this.#attach(true);
    for (const kind of kinds) this.#handlers.set(kind, handlers[kind as keyof typeof handlers] as Handler<Args>);
    return () => {
      for (const kind of kinds) this.#handlers.delete(kind);
      if (this.#handlers.size === 0) this.#attach(false);
    };
  }

  dispatch(message: unknown, ...args: Args): void {
    if (isTagged(message)) this.#handlers.get(message.wsChannels)?.(message, ...args);
  }
}

const primarySide: Dispatcher<[Worker]> = new Dispatcher((active) => {
  if (active) cluster.on("message", onWorkerMessage);
  else cluster.off("message", onWorkerMessage);
});
const onWorkerMessage = (worker: Worker, message: unknown): void => primarySide.dispatch(message, worker);

const workerSide: Dispatcher<[]> = new Dispatcher((active) => {
  if (active) process.on("message", onPrimaryMessage);
  else process.off("message", onPrimaryMessage);
});
const onPrimaryMessage = (message: unknown): void => workerSide.dispatch(message);

/**
 * In the primary: hands each message of these kinds, from any worker, to its handler.
 * @returns a function that stops handling them.
 * @throws {Error} if one of the kinds already has a handler.
 */
export function fromWorkers<M extends Tagged>(handlers: Handlers<M, [worker: Worker]>): () => void {
  return primarySide.register(handlers);
}

/**
 * In a worker: hands each message of these kinds, from the primary, to its handler.
 * @returns a function that stops handling them.
 * @throws {Error} if one of the kinds already has a handler.
 */
export function fromPrimary<M extends Tagged>(handlers: Handlers<M, []>): () => void {
  return workerSide.register(handlers);
}

/** The bytes of an envelope that crossed IPC: the structured clone may hand a Uint8Array back. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
