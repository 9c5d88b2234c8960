import type { Worker } from "node:cluster";
import { fromWorkers, WorkerBacklog, type WorkerBacklogOptions } from "ws-channels/cluster";
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
 *
 * Deliveries to a worker that stops reading its IPC channel are bounded (`bound`, `WorkerBacklog`'s
 * defaults otherwise): past it they are dropped and reported to `dropped`, so one stuck worker
 * cannot take the primary down. Once that worker has taken everything sent to it, it is told
 * which channels lost says (`history-lost`), and their members there get `{"resync": CH}`.
 * @returns a function that stops serving and forgets every say.
 */
export function serveClusterHistory(
  settings: HistorySettings,
  bound: WorkerBacklogOptions = {},
  dropped: (worker: Worker) => void = () => undefined,
): () => void {
  const says = new SayHistory(settings);
  const readers = new WorkerIndex<string>();
  const backlog = new WorkerBacklog(bound);
  /** Per worker that lost deliveries: the channels, told once it has caught up. */
  const behind = new Map<Worker, Set<string>>();

  const caughtUp = (worker: Worker): void => {
    const channels = behind.get(worker);
    if (channels === undefined || backlog.pending(worker).messages > 0) return;
    behind.delete(worker);
    send(worker, { wsChannels: "history-lost", channels: [...channels] });
  };
  const deliver = (worker: Worker, message: Extract<HistoryToWorker, { wsChannels: "history-msg" }>): void => {
    if (backlog.send(worker, message, message.text.length, () => caughtUp(worker)) || !worker.isConnected()) return;
    const channels = behind.get(worker) ?? new Set<string>();
    behind.set(worker, channels.add(message.channel));
    dropped(worker);
    caughtUp(worker); // a say larger than the bound alone: nothing pending to call it later
  };

  const stop = fromWorkers<HistoryToPrimary>({
    "history-say": ({ channel, entry, request }, worker) => {
      const { text, position } = says.numbered(channel, entry);
      const { epoch, offset } = position;
      for (const reader of readers.workers(channel)) deliver(reader, { wsChannels: "history-msg", channel, text, epoch, offset });
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
    behind.clear();
  };
}

/** Answers and notices: not bounded, one per request the worker made or per channel it lost says of. */
function send(worker: Worker, message: HistoryToWorker): void {
  // the worker may die with a message in flight: its `exit` forgets it
  if (worker.isConnected()) worker.send(message, undefined, () => undefined);
}
