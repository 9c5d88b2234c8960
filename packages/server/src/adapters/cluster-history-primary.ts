import type { Worker } from "node:cluster";
import { fromWorkers } from "ws-channels/cluster";
import { type HistorySettings, SayHistory } from "../history.js";
import type { HistoryToPrimary, HistoryToWorker } from "./cluster-history.js";
import { WorkerIndex } from "./worker-index.js";

/**
 * In the primary, the history of every worker's `ClusterHistory`: the rings, the offsets (one
 * sequence per channel for the whole cluster, so a client back on another worker recovers) and
 * which workers want each channel's says. The primary handles one message at a time, so a join's
 * registration and snapshot are one step: every say numbered after the snapshot is sent to that
 * worker after the answer, and none before it is. The epochs are this primary's: a new primary
 * (a restart) starts new ones, and clients from before get `recovered: false`. Call before forking.
 * @returns a function that stops serving and forgets every say.
 */
export function serveClusterHistory(settings: HistorySettings): () => void {
  const says = new SayHistory(settings);
  const readers = new WorkerIndex<string>();

  const stop = fromWorkers<HistoryToPrimary>({
    "history-say": ({ channel, entry, request }, worker) => {
      const { text, position } = says.numbered(channel, entry);
      const { epoch, offset } = position;
      for (const reader of readers.workers(channel)) send(reader, { wsChannels: "history-msg", channel, text, epoch, offset });
      if (request !== undefined) send(worker, { wsChannels: "history-said", request, position });
    },
    "history-read": ({ channel, since, limit, request }, worker) =>
      send(worker, { wsChannels: "history-kept", request, kept: says.read(channel, since, limit) }),
    "history-join": ({ channel, recover, request }, worker) => {
      readers.add(channel, worker);
      send(worker, { wsChannels: "history-joined", request, reply: says.joined(channel, recover) });
    },
    "history-leave": ({ channel }, worker) => readers.delete(channel, worker),
  });

  return () => {
    stop();
    readers.close();
    says.close();
  };
}

function send(worker: Worker, message: HistoryToWorker): void {
  // the worker may die with a message in flight: its `exit` forgets it
  if (worker.isConnected()) worker.send(message, undefined, () => undefined);
}
