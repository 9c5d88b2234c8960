import cluster, { type ClusterSettings, type Worker } from "node:cluster";
import type { ChannelId } from "../types.js";
import { type BrokerToPrimary, type BrokerToWorker, fromWorkers } from "./cluster-protocol.js";
import { WorkerBacklog, type WorkerBacklogOptions } from "./worker-backlog.js";

/** What the primary's routing holds and has done. */
export interface ClusterPrimaryStats {
  /** Workers that said hello and have not exited. */
  workers: number;
  /** Channels at least one worker is subscribed to. */
  channels: number;
  /** Envelopes received from workers. */
  routed: number;
  /** Envelope copies written to workers' IPC channels. */
  forwarded: number;
  /**
   * Envelope copies not sent: the worker's IPC channel was closed or closing, or the worker had
   * more than its bound of them not yet taken (`SetupPrimaryOptions`).
   */
  dropped: number;
}

/** The primary's side of `ClusterBroker`, as `setupPrimary()` returns it. */
export interface ClusterPrimary {
  /** How many workers are subscribed to `channel` now. */
  subscribers(channel: ChannelId): number;
  stats(): ClusterPrimaryStats;
  /** Stops routing: the primary forgets every subscription and stops listening to workers. */
  close(): void;
}

/** Options of `setupPrimary()`: the bound on what one worker has not taken yet. */
export type SetupPrimaryOptions = WorkerBacklogOptions;

/**
 * Makes this process (a node:cluster primary) the hub of `ClusterBroker`: it sets
 * `serialization: "advanced"` (plus `settings`) with `cluster.setupPrimary`, so call it before
 * `cluster.fork()`. Then it keeps which worker is subscribed to which channel, acknowledges each
 * subscription, and forwards every broadcast to the other workers subscribed to its channel, in
 * the order each worker sent them: what a worker sends in one turn comes as one message, and what
 * is routed to one worker in one turn of the primary leaves as one message. A worker that exits is forgotten. Messages without the
 * `wsChannels` tag are the application's and are left alone. A worker that stops reading its IPC
 * channel gets at most `maxPending` envelopes or `maxPendingBytes` bytes waiting in the primary;
 * past that its copies are dropped and counted (`dropped`), so it cannot take the primary down.
 *
 * @param settings more `cluster.setupPrimary` settings (`exec`, `args`...); `serialization` is always "advanced".
 * @param options per worker: `maxPending` (default 65,536) and `maxPendingBytes` (default 64 MiB).
 * @throws {Error} in a worker, or if the routing is already set up (and not closed) in this process.
 * @throws {RangeError} if `maxPending` or `maxPendingBytes` is not an integer >= 1.
 */
export function setupPrimary(settings: ClusterSettings = {}, options: SetupPrimaryOptions = {}): ClusterPrimary {
  if (!cluster.isPrimary) throw new Error("setupPrimary() runs in the cluster primary, not in a worker");
  const counts = { routed: 0, forwarded: 0, dropped: 0 };
  // A worker's channel closing under a send is counted instead of an 'error' event.
  const backlog = new WorkerBacklog(options, (envelopes, error) => {
    if (error === null) counts.forwarded += envelopes;
    else counts.dropped += envelopes;
  });
  cluster.setupPrimary({ ...settings, serialization: "advanced" });
  const routes = new Map<ChannelId, Set<Worker>>();
  const subscriptions = new Map<Worker, Set<ChannelId>>();

  const unsubscribe = (worker: Worker, channel: ChannelId): void => {
    const workers = routes.get(channel);
    if (workers === undefined) return;
    workers.delete(worker);
    if (workers.size === 0) routes.delete(channel);
  };

  const ignore = (): void => undefined; // an answer to a worker that is going: its exit cleans up
  // Answers are not bounded: one per request the worker made, and a dropped ack would hang its subscription.
  const answer = (worker: Worker, message: BrokerToWorker): void => {
    if (worker.isConnected()) worker.send(message, ignore);
  };

  const stopHandling = fromWorkers<BrokerToPrimary>({
    pubs: ({ channels, envelopes }, worker) => {
      counts.routed += envelopes.length;
      for (let i = 0; i < envelopes.length; i++) {
        const envelope = envelopes[i] as Uint8Array;
        for (const other of routes.get(channels[i] as ChannelId) ?? []) {
          if (other !== worker && !backlog.queue(other, envelope)) counts.dropped++;
        }
      }
    },
    sub: (message, worker) => {
      const workers = routes.get(message.channel);
      if (workers === undefined) routes.set(message.channel, new Set([worker]));
      else workers.add(worker);
      subscriptions.get(worker)?.add(message.channel);
      answer(worker, { wsChannels: "ack", id: message.id });
    },
    unsub: (message, worker) => {
      unsubscribe(worker, message.channel);
      subscriptions.get(worker)?.delete(message.channel);
    },
    hello: (_message, worker) => {
      if (!subscriptions.has(worker)) subscriptions.set(worker, new Set());
      answer(worker, { wsChannels: "welcome", probe: new Uint8Array([1]) });
    },
  });

  const onExit = (worker: Worker): void => {
    for (const channel of subscriptions.get(worker) ?? []) unsubscribe(worker, channel);
    subscriptions.delete(worker);
  };

  cluster.on("exit", onExit);
  cluster.on("disconnect", onExit);
  return {
    subscribers: (channel) => routes.get(channel)?.size ?? 0,
    stats: () => ({ workers: subscriptions.size, channels: routes.size, ...counts }),
    close: () => {
      stopHandling();
      cluster.off("exit", onExit);
      cluster.off("disconnect", onExit);
      routes.clear();
      subscriptions.clear();
    },
  };
}
