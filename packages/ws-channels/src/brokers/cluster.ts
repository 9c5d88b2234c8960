import { EventEmitter } from "node:events";
import type { ChannelId } from "../types.js";
import type { Broker, BrokerEvents, BrokerStats } from "./broker.js";
import { asBuffer, type BrokerToPrimary, type BrokerToWorker, fromPrimary } from "./cluster-protocol.js";

/** Options of `new ClusterBroker()`. */
export interface ClusterBrokerOptions {
  /**
   * The most publishes handed to IPC and not yet written to it; past it a broadcast is not
   * published (counted in `unpublished`). Default: 65,536.
   */
  maxPending?: number;
  /** The same bound in bytes of envelopes (an IPC channel backed up by a busy primary holds them all). Default: 64 MiB. */
  maxPendingBytes?: number;
}

/** What a worker's IPC channel needs to offer: `process` in a cluster worker. */
interface Ipc {
  readonly connected: boolean;
  send?(message: BrokerToPrimary, callback?: (error: Error | null) => void): boolean;
  on(event: "disconnect", listener: () => void): unknown;
  off(event: "disconnect", listener: () => void): unknown;
}

/**
 * A broker for the workers of one node:cluster primary (the cores of one machine). Each worker
 * sends its subscriptions and broadcasts to the primary over its IPC channel; the primary
 * (`setupPrimary()`) keeps which worker is in which channel and forwards each broadcast only to
 * the other workers subscribed to it. The primary must call `setupPrimary()` before forking, so
 * that Buffers cross IPC as bytes (`serialization: "advanced"`).
 *
 * The broker is up once the primary has answered its first message, and down once the IPC channel
 * is gone (the primary exited). A worker forked before `setupPrimary()` never comes up: it emits
 * `down` with an error saying so, and counts its broadcasts as unpublished.
 *
 * @example
 * // worker
 * const channels = new Channels({ broker: new ClusterBroker() });
 */
export class ClusterBroker extends EventEmitter<BrokerEvents> implements Broker {
  readonly #ipc: Ipc;
  readonly #maxPending: number;
  readonly #maxPendingBytes: number;
  readonly #live = new Set<ChannelId>();
  readonly #acks = new Map<number, (acknowledged: boolean) => void>();
  readonly #counts = { published: 0, unpublished: 0 };
  /** This turn's broadcasts, sent to the primary as one message when the turn ends. */
  #channels: ChannelId[] = [];
  #envelopes: Buffer[] = [];
  #turnBytes = 0;
  #nextId = 0;
  #pending = 0;
  #pendingBytes = 0;
  #connected = false;
  #closed = false;
  /** The primary answered, but over JSON IPC: it forked this worker before `setupPrimary()`. */
  #misconfigured = false;
  #receive: ((envelope: Buffer) => void) | undefined;
  /** Stops handing the primary's messages to this broker. */
  #unlisten: (() => void) | undefined;

  /**
   * @throws {Error} outside a cluster worker (a process without an IPC channel).
   * @throws {RangeError} if `maxPending` or `maxPendingBytes` is not an integer >= 1.
   */
  constructor(options: ClusterBrokerOptions = {}) {
    super();
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    const { maxPending = 65_536, maxPendingBytes = 64 * 1024 * 1024 } = options;
    for (const [name, value] of Object.entries({ maxPending, maxPendingBytes }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1, got ${String(value)}`);
    if (typeof process.send !== "function")
      throw new Error("ClusterBroker runs in a node:cluster worker (this process has no IPC channel)");
    this.#ipc = process as unknown as Ipc;
    this.#maxPending = maxPending;
    this.#maxPendingBytes = maxPendingBytes;
  }

  /** Says hello to the primary: the broker is up once it answers. @throws {Error} when called a second time, or for a second ClusterBroker in this worker. */
  start(receive: (envelope: Buffer) => void): void {
    if (this.#receive !== undefined) throw new Error("this ClusterBroker already serves a Channels");
    this.#receive = receive;
    this.#unlisten = fromPrimary<BrokerToWorker>({ msgs: this.#onEnvelopes, ack: this.#onAck, welcome: this.#onWelcome });
    this.#ipc.on("disconnect", this.#onDisconnect);
    this.#send({ wsChannels: "hello" });
  }

  subscribe(channel: ChannelId): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#live.add(channel);
    const id = this.#nextId++;
    if (!this.#send({ wsChannels: "sub", channel, id })) return Promise.resolve(false);
    return new Promise((resolve) => this.#acks.set(id, resolve));
  }

  unsubscribe(channel: ChannelId): void {
    if (this.#live.delete(channel)) this.#send({ wsChannels: "unsub", channel });
  }

  publish(channel: ChannelId, envelope: Buffer): void {
    const bytes = envelope.byteLength;
    const full = this.#pending >= this.#maxPending || this.#pendingBytes + bytes > this.#maxPendingBytes;
    if (!this.#ipc.connected || full || this.#closed || this.#misconfigured) {
      this.#counts.unpublished++;
      return;
    }
    this.#pending++;
    this.#pendingBytes += bytes;
    if (this.#envelopes.length === 0) process.nextTick(this.#flush);
    this.#channels.push(channel);
    this.#envelopes.push(envelope);
    this.#turnBytes += bytes;
  }

  /** Sends the turn's broadcasts as one message, with one callback: until it runs, they are pending. */
  readonly #flush = (): void => {
    const envelopes = this.#envelopes;
    const bytes = this.#turnBytes;
    const message: BrokerToPrimary = { wsChannels: "pubs", channels: this.#channels, envelopes };
    this.#channels = [];
    this.#envelopes = [];
    this.#turnBytes = 0;
    const written = (error: Error | null): void => {
      this.#pending -= envelopes.length;
      this.#pendingBytes -= bytes;
      if (error === null) this.#counts.published += envelopes.length;
      else this.#counts.unpublished += envelopes.length;
    };
    if (this.#ipc.connected) this.#ipc.send?.(message, written);
    else written(new Error("the IPC channel to the cluster primary closed"));
  };

  stats(): BrokerStats {
    return { connected: this.#connected, ...this.#counts, subscriptions: this.#live.size };
  }

  /** Unsubscribes from every channel and stops listening to IPC (the channel itself is the worker's). */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const channel of this.#live) this.#send({ wsChannels: "unsub", channel });
    this.#live.clear();
    this.#closed = true;
    this.#connected = false;
    this.#unlisten?.();
    this.#ipc.off("disconnect", this.#onDisconnect);
    this.#settleAcks();
  }

  /** @returns false if the IPC channel is gone. */
  #send(message: BrokerToPrimary): boolean {
    if (!this.#ipc.connected) return false;
    this.#ipc.send?.(message, ignore); // with a callback, a channel closing under it is not an 'error' event
    return true;
  }

  readonly #onEnvelopes = (message: { envelopes: Uint8Array[] }): void => {
    for (const envelope of message.envelopes) this.#receive?.(asBuffer(envelope));
  };

  readonly #onAck = (message: { id: number }): void => {
    this.#acks.get(message.id)?.(true);
    this.#acks.delete(message.id);
  };

  readonly #onWelcome = (message: { probe: Uint8Array }): void => {
    if (this.#connected || this.#misconfigured) return;
    if (!(message.probe instanceof Uint8Array)) {
      this.#misconfigured = true; // JSON turned the probe's bytes into an object: envelopes would not survive either
      this.emit("down", new Error('the cluster primary must call setupPrimary() from "ws-channels/cluster" before cluster.fork()'));
      return;
    }
    this.#connected = true;
    this.emit("up", this.#live.size);
  };

  readonly #onDisconnect = (): void => {
    this.#settleAcks();
    if (!this.#connected) return;
    this.#connected = false;
    this.emit("down", new Error("the IPC channel to the cluster primary closed"));
  };

  /** No acknowledgement will come: the waiting subscriptions resolve false. */
  #settleAcks(): void {
    for (const resolve of this.#acks.values()) resolve(false);
    this.#acks.clear();
  }
}

/** IPC errors mean the channel is closing: the 'disconnect' event reports the broker down. */
const ignore = (): void => undefined;
