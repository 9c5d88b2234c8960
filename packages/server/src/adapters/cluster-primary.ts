import cluster, { type Worker } from "node:cluster";
import { fromWorkers, WorkerBacklog } from "ws-channels/cluster";
import type { AdapterToPrimary, AdapterToWorker } from "./cluster.js";

/**
 * In the primary, the side of `ClusterAdapter` that `ClusterBroker`'s `setupPrimary` does not
 * cover: the id table (id -> the workers holding it), and node messages forwarded to the worker
 * they name. A worker that exits frees its ids at once. Call before forking. Node messages to a
 * worker that stops reading its IPC channel are bounded (`WorkerBacklog`'s defaults): past it
 * they are dropped and reported to `dropped`, so one stuck worker cannot take the primary down.
 * @returns a function that stops serving and forgets the table.
 */
export function serveClusterAdapter(dropped: (worker: Worker) => void = () => undefined): () => void {
  const backlog = new WorkerBacklog();
  const holders = new Map<string, Set<Worker>>();
  const held = new Map<Worker, Set<string>>();
  const drop = (id: string, worker: Worker): void => {
    const workers = holders.get(id);
    workers?.delete(worker);
    if (workers?.size === 0) holders.delete(id);
  };

  const stop = fromWorkers<AdapterToPrimary>({
    claim: ({ id, exclusive, request }, worker) => {
      const workers = holders.get(id) ?? new Set<Worker>();
      const granted = !exclusive || [...workers].every((w) => w === worker);
      if (granted) {
        workers.add(worker);
        holders.set(id, workers);
        held.set(worker, (held.get(worker) ?? new Set()).add(id));
      }
      send(worker, { wsChannels: "claimed", request, granted });
    },
    release: ({ id }, worker) => {
      drop(id, worker);
      held.get(worker)?.delete(id);
    },
    locate: ({ ids, request }, worker) => {
      const found: [string, string[]][] = [];
      for (const id of ids) {
        const elsewhere = [...(holders.get(id) ?? [])].filter((w) => w !== worker).map((w) => String(w.id));
        if (elsewhere.length > 0) found.push([id, elsewhere]);
      }
      send(worker, { wsChannels: "located", request, found });
    },
    node: ({ node, message }) => {
      const worker = cluster.workers?.[node];
      const forward: AdapterToWorker = { wsChannels: "node", message };
      if (worker !== undefined && !backlog.send(worker, forward, message.length, ignore) && worker.isConnected()) dropped(worker);
    },
  });

  const onExit = (worker: Worker): void => {
    for (const id of held.get(worker) ?? []) drop(id, worker);
    held.delete(worker);
  };
  cluster.on("exit", onExit);
  return () => {
    stop();
    cluster.off("exit", onExit);
    holders.clear();
    held.clear();
  };
}

/** The worker may die with a message in flight: a failed send is its `exit`'s business. */
const ignore = (): void => undefined;

/** Answers a worker's request: not bounded, one per request it made. */
function send(worker: Worker, message: AdapterToWorker): void {
  if (worker.isConnected()) worker.send(message, undefined, ignore);
}
