import cluster, { type Worker } from "node:cluster";
import { fromWorkers, WorkerBacklog, type WorkerBacklogOptions } from "ws-channels/cluster";
import type { AdapterToPrimary, AdapterToWorker } from "./cluster.js";
import { Gathering } from "./gather.js";
import { WorkerIndex } from "./worker-index.js";

/**
 * In the primary, the side of `ClusterAdapter` that `ClusterBroker`'s `setupPrimary` does not
 * cover: the id table (id -> the workers holding it), node messages forwarded to the worker
 * they name, and questions (`ask`) sent to every other worker, answered with what came in time.
 * A worker that exits frees its ids at once. Call before forking. Node messages to a worker that
 * stops reading its IPC channel are bounded (`bound`, `WorkerBacklog`'s defaults otherwise): past it
 * they are dropped and reported to `dropped`, so one stuck worker cannot take the primary down.
 * @returns a function that stops serving and forgets the table.
 */
export function serveClusterAdapter(dropped: (worker: Worker) => void = () => undefined, bound: WorkerBacklogOptions = {}): () => void {
  const backlog = new WorkerBacklog(bound);
  const holders = new WorkerIndex<string>();
  const gathering = new Gathering();

  const stop = fromWorkers<AdapterToPrimary>({
    claim: ({ id, exclusive, request }, worker) => {
      const granted = !exclusive || [...holders.workers(id)].every((w) => w === worker);
      if (granted) holders.add(id, worker);
      send(worker, { wsChannels: "claimed", request, granted });
    },
    release: ({ id }, worker) => holders.delete(id, worker),
    locate: ({ ids, request }, worker) => {
      const found: [string, string[]][] = [];
      for (const id of ids) {
        const elsewhere = [...holders.workers(id)].filter((w) => w !== worker).map((w) => String(w.id));
        if (elsewhere.length > 0) found.push([id, elsewhere]);
      }
      send(worker, { wsChannels: "located", request, found });
    },
    node: ({ node, message }) => {
      const worker = cluster.workers?.[node];
      const forward: AdapterToWorker = { wsChannels: "node", message };
      if (worker !== undefined && !backlog.send(worker, forward, message.length, ignore) && worker.isConnected()) dropped(worker);
    },
    ask: ({ question, request }, worker) => {
      const others = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w !== worker && w.isConnected());
      void gathering
        .ask((asked) => {
          for (const other of others) send(other, { wsChannels: "question", question, request: asked });
          return others.length;
        })
        .then((answers) => send(worker, { wsChannels: "answers", request, answers }));
    },
    answer: ({ request, answer }) => gathering.answer(request, answer),
  });

  return () => {
    stop();
    gathering.close();
    holders.close();
  };
}

/** The worker may die with a message in flight: a failed send is its `exit`'s business. */
const ignore = (): void => undefined;

/** Answers a worker's request: not bounded, one per request it made. */
function send(worker: Worker, message: AdapterToWorker): void {
  if (worker.isConnected()) worker.send(message, undefined, ignore);
}
